/**
 * Turning file names sent by a server into paths inside the client's inbox. The names are
 * untrusted (the reference client writes `../x` wherever it leads): every one is checked
 * segment by segment, and the safe variants also refuse symbolic links inside the inbox, so
 * a write can never land outside it.
 *
 * @packageDocumentation
 */

import { lstatSync, mkdirSync, realpathSync, unlinkSync, type Stats } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

import { PathOutsideInboxError, UnsafeNameError } from './errors.js';
import { isPathInside } from './mounts.js';

/** Longest accepted name, in octets of UTF-8 (Linux PATH_MAX). */
export const MAX_NAME_BYTES = 4096;
/** Longest accepted segment, in octets of UTF-8 (NAME_MAX on common file systems). */
export const MAX_SEGMENT_BYTES = 255;

// C0 controls and DEL; NUL is reported on its own.
const CONTROL = /[\u0001-\u001f\u007f]/;
const DRIVE = /^[A-Za-z]:/;
const WINDOWS_RESERVED_CHARACTERS = /[<>:"|?*]/;
const WINDOWS_RESERVED_NAMES = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/**
 * Checks an untrusted file name and returns its segments. A leading `"/"` is expected (server
 * names are virtual paths) but not required; empty segments are collapsed.
 *
 * Refused with {@link UnsafeNameError}: `"."` and `".."` segments, NUL, a name over 4096
 * octets or a segment over 255, a name with no segment at all; on Windows also backslashes
 * (a separator there), control characters, a segment starting with a drive letter (`C:`),
 * and the characters and names Windows reserves. On Linux and other POSIX systems every
 * other name is a name like any other (newline, tab, backslash, `*`, a trailing space): only
 * `/` separates, so none of them can lead out of the inbox.
 *
 * @param platform - whose reserved names to refuse; tests pass `'win32'` to check those rules.
 *
 * @example
 * ```ts
 * inboxSegments('/photos//a.jpg') // ['photos', 'a.jpg']
 * inboxSegments('/../x')          // throws UnsafeNameError, reason 'dot-segment'
 * ```
 */
export function inboxSegments(name: string, platform: NodeJS.Platform = process.platform): string[] {
  if (name.includes('\0')) throw new UnsafeNameError('nul', name);
  const windows = platform === 'win32';
  if (windows && name.includes('\\')) throw new UnsafeNameError('backslash', name);
  if (windows && CONTROL.test(name)) throw new UnsafeNameError('control-character', name);
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) throw new UnsafeNameError('too-long', name);
  const segments = name.split('/').filter((segment) => segment !== '');
  if (segments.length === 0) throw new UnsafeNameError('empty', name, `name ${JSON.stringify(name)} names no file`);
  for (const segment of segments) {
    if (segment === '.' || segment === '..') throw new UnsafeNameError('dot-segment', name);
    if (windows && DRIVE.test(segment)) throw new UnsafeNameError('drive-letter', name);
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      throw new UnsafeNameError('segment-too-long', name);
    }
    if (
      windows &&
      (WINDOWS_RESERVED_CHARACTERS.test(segment) ||
        WINDOWS_RESERVED_NAMES.test(segment) ||
        segment.endsWith('.') ||
        segment.endsWith(' '))
    ) {
      throw new UnsafeNameError('reserved-name', name);
    }
  }
  return segments;
}

/**
 * The physical path inside `inbox` for a file name sent by a server. Purely lexical: see
 * {@link resolveInboxPathSafely} for the check against symbolic links.
 *
 * @throws {@link UnsafeNameError} if the name is not safe (see {@link inboxSegments}).
 *
 * @example
 * ```ts
 * resolveInboxPath('/home/me/inbox', '/photos/a.jpg') // '/home/me/inbox/photos/a.jpg'
 * resolveInboxPath('/home/me/inbox', '../escape')     // throws UnsafeNameError
 * ```
 */
export function resolveInboxPath(inbox: string, virtualName: string): string {
  return inside(resolve(inbox), inboxSegments(virtualName));
}

/**
 * Like {@link resolveInboxPath}, but rooted at `realpath(inbox)` and checking every component
 * that already exists below the inbox: a symbolic link anywhere on the way, wherever it
 * points, is refused. The result is inside `realpath(inbox)`.
 *
 * This narrows but cannot close the window between the check and the write; use
 * {@link ensureParentDirs} to create the directories, which checks again as it goes.
 *
 * @throws {@link UnsafeNameError} for an unsafe name; {@link PathOutsideInboxError} for a
 *   symbolic link; the file-system error if the inbox itself does not exist.
 *
 * @example
 * ```ts
 * const target = await resolveInboxPathSafely(inbox, chunk.filename)
 * await ensureParentDirs(inbox, target)
 * ```
 */
export async function resolveInboxPathSafely(inbox: string, virtualName: string): Promise<string> {
  return resolveInboxPathSafelySync(inbox, virtualName);
}

/**
 * Creates the missing parent directories of `path` (a path inside `inbox`, as returned by
 * {@link resolveInboxPath} or {@link resolveInboxPathSafely}) one level at a time, checking
 * each level with `lstat` after creating it, and returns `path` rebased on `realpath(inbox)`.
 *
 * @throws {@link PathOutsideInboxError} if `path` is not inside the inbox or a component is
 *   a symbolic link; an `ENOTDIR` error if a component is a file.
 *
 * @example
 * ```ts
 * const target = await ensureParentDirs(inbox, resolveInboxPath(inbox, '/a/b/c.txt'))
 * // <realpath(inbox)>/a and <realpath(inbox)>/a/b now exist and are real directories
 * ```
 */
export async function ensureParentDirs(inbox: string, path: string): Promise<string> {
  return ensureParentDirsSync(inbox, path);
}

/**
 * {@link resolveInboxPathSafely} with synchronous calls, for a writer whose per-file cost is a
 * few syscalls (each async call is a threadpool round trip). `root`, when given, is
 * `realpath(inbox)` as the caller resolved it earlier; it is not resolved again.
 *
 * @example
 * ```ts
 * const root = realpathSync(inbox)
 * const target = resolveInboxPathSafelySync(inbox, chunk.filename, root)
 * ```
 */
export function resolveInboxPathSafelySync(inbox: string, virtualName: string, root?: string): string {
  const segments = inboxSegments(virtualName);
  const base = root ?? realpathSync(inbox);
  let current = base;
  for (const segment of segments) {
    current = join(current, segment);
    const stats = lstatOrUndefinedSync(current);
    if (stats === undefined) break; // nothing below exists, so nothing below is a link
    if (stats.isSymbolicLink()) {
      throw new PathOutsideInboxError(current, base, `${current} is a symbolic link inside the inbox ${base}`);
    }
    if (!stats.isDirectory()) break; // a file: nothing can exist below it
  }
  return inside(base, segments);
}

/**
 * {@link ensureParentDirs} with synchronous calls; `root`, when given, is `realpath(inbox)`
 * as the caller resolved it earlier. A level that already is a real directory costs one
 * `lstat`; a missing one is created, then checked. With `replace` (a client mirroring the
 * tree), a file or a symbolic link where a directory belongs is removed and the directory made.
 *
 * @example
 * ```ts
 * const target = ensureParentDirsSync(inbox, resolveInboxPath(inbox, '/a/b/c.txt'))
 * ```
 */
export function ensureParentDirsSync(inbox: string, path: string, root?: string, replace = false): string {
  const base = root ?? realpathSync(inbox);
  const absolute = resolve(path);
  const from = [base, resolve(inbox)].find((candidate) => isPathInside(candidate, absolute));
  if (from === undefined) throw new PathOutsideInboxError(absolute, base);
  const segments = relative(from, absolute).split(sep);
  let current = base;
  for (const segment of segments.slice(0, -1)) {
    current = join(current, segment);
    let stats = lstatOrUndefinedSync(current);
    if (stats === undefined) {
      try {
        mkdirSync(current);
      } catch (error) {
        if (!isErrno(error, 'EEXIST')) throw error;
      }
      // Checked after mkdir, not before: whatever is there now is what the next step walks into.
      stats = lstatSync(current);
    }
    if (replace && !stats.isDirectory()) {
      // Mirroring a tree whose folder replaced a file or a link: the name itself goes (a link
      // is removed, never followed), and a folder takes its place.
      unlinkSync(current);
      try {
        mkdirSync(current);
      } catch (error) {
        if (!isErrno(error, 'EEXIST')) throw error;
      }
      stats = lstatSync(current);
    }
    if (stats.isSymbolicLink()) {
      throw new PathOutsideInboxError(current, base, `${current} is a symbolic link inside the inbox ${base}`);
    }
    if (!stats.isDirectory()) {
      throw Object.assign(new Error(`ENOTDIR: ${current} is not a directory`), {
        code: 'ENOTDIR',
        path: current,
      });
    }
  }
  return inside(base, segments);
}

/** Joins checked segments under `root`, with a last lexical check for good measure. */
function inside(root: string, segments: readonly string[]): string {
  const path = join(root, ...segments);
  if (!isPathInside(root, path)) throw new PathOutsideInboxError(path, root);
  return path;
}

/** `lstat`, or undefined when nothing is there (a file on the way, ENOTDIR, counts as nothing). */
export function lstatOrUndefinedSync(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if (isErrno(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
