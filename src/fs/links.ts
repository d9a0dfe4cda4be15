/**
 * The Guide's portable links: a file `NAME.ln` holding one line, a path, publishes that
 * target's content as `NAME`. Unlike a symbolic link it survives any file system and any
 * archive tool. The target is confined to the mount unless the caller opts out.
 *
 * @packageDocumentation
 */

import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { InvalidPortableLinkError, PathOutsideMountError } from './errors.js';
import { isPathInside } from './mounts.js';

/** The suffix that marks a portable link. */
export const PORTABLE_LINK_SUFFIX = '.ln';
/** Default limit on the size of a link file: one path fits with room to spare. */
export const MAX_PORTABLE_LINK_BYTES = 4096;

/** Options of {@link readPortableLink}. */
export interface ReadPortableLinkOptions {
  /** Accept a target outside the mount location. Default `false`. */
  allowOutside?: boolean;
  /** Largest link file read, in octets. Default {@link MAX_PORTABLE_LINK_BYTES}. */
  maxBytes?: number;
}

/**
 * Whether a file name (or path) is a portable link: it ends in `.ln` and has a name before it.
 *
 * @example
 * ```ts
 * isPortableLink('movie.mp4.ln') // true
 * isPortableLink('.ln')          // false
 * ```
 */
export function isPortableLink(name: string): boolean {
  // Most names do not end so: no basename made for them (a scan asks this of every file).
  if (!name.endsWith(PORTABLE_LINK_SUFFIX) && !name.endsWith('/')) return false;
  const base = basename(name);
  return base.length > PORTABLE_LINK_SUFFIX.length && base.endsWith(PORTABLE_LINK_SUFFIX);
}

/**
 * The name a portable link publishes under: its own name without `.ln`. Other names come
 * back unchanged.
 *
 * @example
 * ```ts
 * portableLinkName('videos/movie.mp4.ln') // 'videos/movie.mp4'
 * ```
 */
export function portableLinkName(name: string): string {
  return isPortableLink(name) ? name.slice(0, -PORTABLE_LINK_SUFFIX.length) : name;
}

/**
 * Reads a portable link and returns the real, absolute path of its target. A relative target
 * is resolved against the link file's directory. Only the first line counts, with surrounding
 * white space trimmed.
 *
 * @param linkFile - the `NAME.ln` file.
 * @param mountLocation - the published directory the target must stay in (after `realpath`).
 * @throws {@link PathOutsideMountError} if the target leaves `mountLocation` and
 *   `allowOutside` is not set; {@link InvalidPortableLinkError} if the link file is too
 *   large, empty or not a regular file, or the target is missing or not a regular file.
 *
 * @example
 * ```ts
 * // /srv/share/latest.iso.ln holds "releases/v2.iso"
 * await readPortableLink('/srv/share/latest.iso.ln', '/srv/share')
 * // '/srv/share/releases/v2.iso'
 * ```
 */
export async function readPortableLink(
  linkFile: string,
  mountLocation: string,
  options: ReadPortableLinkOptions = {},
): Promise<string> {
  const { allowOutside = false, maxBytes = MAX_PORTABLE_LINK_BYTES } = options;
  const line = await readFirstLine(resolve(linkFile), maxBytes);
  const target = resolve(dirname(resolve(linkFile)), line);

  let real: string;
  try {
    real = await realpath(target);
  } catch (error) {
    const message = `portable link ${linkFile}: target ${target} cannot be resolved`;
    throw new InvalidPortableLinkError('missing', linkFile, message, { cause: error });
  }
  if (!allowOutside) {
    const root = await realpath(mountLocation);
    if (!isPathInside(root, real)) {
      const message = `portable link ${linkFile} leads outside the mount ${root}: ${real}`;
      throw new PathOutsideMountError(real, root, message);
    }
  }
  let isFile: boolean;
  try {
    isFile = (await stat(real)).isFile();
  } catch (error) {
    const message = `portable link ${linkFile}: target ${real} vanished`;
    throw new InvalidPortableLinkError('missing', linkFile, message, { cause: error });
  }
  if (!isFile) {
    const message = `portable link ${linkFile}: target ${real} is not a regular file`;
    throw new InvalidPortableLinkError('not-a-file', linkFile, message);
  }
  return real;
}

async function readFirstLine(linkFile: string, maxBytes: number): Promise<string> {
  let handle;
  try {
    // O_NONBLOCK so that a FIFO named like a link cannot hang us before the fstat below.
    handle = await open(linkFile, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw new InvalidPortableLinkError('missing', linkFile, undefined, { cause: error });
  }
  try {
    if (!(await handle.stat()).isFile()) throw new InvalidPortableLinkError('not-a-file', linkFile);
    // One octet more than allowed tells "exactly at the limit" from "over it", even if the
    // file grew since the stat.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) {
      const message = `portable link ${linkFile} is larger than ${maxBytes} octets`;
      throw new InvalidPortableLinkError('too-large', linkFile, message);
    }
    const text = buffer.subarray(0, length).toString('utf8').replace(/^\uFEFF/, '');
    const line = (text.split(/\r\n|\r|\n/)[0] ?? '').trim();
    if (line === '') throw new InvalidPortableLinkError('empty', linkFile);
    if (line.includes('\0')) throw new InvalidPortableLinkError('invalid', linkFile);
    return line;
  } finally {
    await handle.close();
  }
}

function basename(name: string): string {
  const cut = Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\'));
  return name.slice(cut + 1);
}
