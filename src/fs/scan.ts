/**
 * Listing a mount's files. The walk is asynchronous (fast-glob's streaming walker), so a big
 * tree never holds the event loop for long, and it never leaves the mount: symbolic links are
 * skipped unless asked for, and even then only links to files inside the mount are followed;
 * symlinked directories are never walked.
 *
 * @packageDocumentation
 */

import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';

import fg from 'fast-glob';

import { PathOutsideMountError } from './errors.js';
import { readPortableLink, isPortableLink, portableLinkName } from './links.js';
import { isPathInside } from './mounts.js';

/** One publishable file found by {@link scanMount}. */
export interface ScannedFile {
  /** The file found in the tree: the `.ln` file for a portable link, the link for a symlink. */
  physicalPath: string;
  /**
   * The name it is published under, relative to the mount location, `"/"`-separated, without
   * a leading slash (`.ln` removed for portable links). Join it to the mount's virtual path
   * with `joinVirtual` to get its virtual path.
   */
  relativePath: string;
  /** Where to read the content from: the real target for links, else `physicalPath`. */
  contentPath: string;
  /** Size in octets, of the target for links. */
  size: number;
  /** Modification time in milliseconds, of the target for links. */
  mtimeMs: number;
  /** File mode bits, of the target for links. */
  mode: number;
  /** Inode number, of the target for links: with size and mtime, it tells a replaced file. */
  ino: number;
  /** For a portable link, its real target (the same as `contentPath`). */
  linkTarget?: string;
}

/** A directory, or a symbolic link not followed, found by {@link scanMount} (option `onNode`). */
export interface ScannedNode {
  physicalPath: string;
  /** Relative to the mount location, `"/"`-separated. */
  relativePath: string;
  kind: 'dir' | 'link';
  /** Permission bits. */
  mode: number;
  mtimeMs: number;
  /** A link's text, as readlink gives it. */
  target?: string;
}

/** Why {@link scanMount} left an entry out. */
export type ScanSkipReason =
  /** A symbolic link, and `followSymlinks` is off. */
  | 'symlink'
  /** A link (symbolic or portable) whose real target is outside the mount. */
  | 'outside'
  /** A symbolic link to a directory: never walked, its content is not published through it. */
  | 'directory-link'
  /** Not a regular file (FIFO, socket, device), or a link to one. */
  | 'not-a-file'
  /** A portable link that cannot be followed (missing target, empty, too large). */
  | 'bad-link'
  /** A symbolic link whose target does not exist or loops. */
  | 'broken-link'
  /** A portable link `NAME.ln` next to a real `NAME`: the real file wins. */
  | 'shadowed'
  /** The entry disappeared during the scan. */
  | 'vanished'
  /** The `publish` filter left it out (an exclude glob of the server). */
  | 'excluded';

/** An entry {@link scanMount} left out, reported through `onSkip`. */
export interface ScanSkip {
  physicalPath: string;
  /** Relative to the mount location, `"/"`-separated, as found (with any `.ln`). */
  relativePath: string;
  reason: ScanSkipReason;
  /** The error behind a `bad-link`, `outside` or `vanished` skip, when there is one. */
  error?: unknown;
}

/** Options of {@link scanMount}. */
export interface ScanOptions {
  /**
   * Publish symbolic links to regular files whose real target stays inside the location
   * (or anywhere, with `allowLinksOutside`). Default `false`: every symbolic link is
   * skipped. Links to directories are skipped either way.
   */
  followSymlinks?: boolean;
  /**
   * fast-glob patterns, relative to the location, of entries to leave out; use `"dir/**"` to
   * leave out a whole directory (it is then not even walked).
   */
  exclude?: string[];
  /**
   * Whether a file is published, by the name it would be published under (relative to the
   * location, `"/"`-separated, `.ln` removed): the server's include and exclude globs
   * (`compilePublishFilter`). Default: every file.
   */
  publish?: (relativePath: string) => boolean;
  /** Resolve `NAME.ln` portable links and publish them as `NAME`. Default `true`. */
  portableLinks?: boolean;
  /** Accept portable links, and followed symbolic links, whose target is outside the location. Default `false`. */
  allowLinksOutside?: boolean;
  /** Stops the scan: the iteration rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called for every entry left out, for logging. */
  onSkip?: (skip: ScanSkip) => void;
  /**
   * Called for every directory, and every symbolic link not followed, that the `publish`
   * filter lets through (a directory is judged as `relativePath + "/"`): what a client
   * mirroring the tree receives besides files. Without it, links are skipped as before.
   */
  onNode?: (node: ScannedNode) => void;
}

/**
 * Walks a mount location and yields its publishable files, in no particular order.
 *
 * @param location - the mount's physical directory.
 *
 * @example
 * ```ts
 * for await (const file of scanMount(mount.location, { exclude: ['**\/*.tmp'] })) {
 *   const virtualPath = joinVirtual(mount.virtualPath, file.relativePath)
 *   if (mounts.owns(mount, virtualPath)) publish(virtualPath, file)
 * }
 * ```
 */
export async function* scanMount(location: string, options: ScanOptions = {}): AsyncGenerator<ScannedFile> {
  const {
    followSymlinks = false,
    exclude = [],
    publish = () => true,
    portableLinks = true,
    allowLinksOutside = false,
    signal,
    onSkip,
    onNode,
  } = options;
  signal?.throwIfAborted();
  const root = resolve(location);
  // Containment is judged on real paths, so a mount reached through a symlink still works.
  const realRoot = await realpath(root);

  const entries = fg.stream('**', {
    cwd: root,
    dot: true,
    onlyFiles: false,
    followSymbolicLinks: false,
    objectMode: true,
    stats: true,
    ignore: exclude,
    unique: false, // one pattern yields no duplicates; uniqueness would keep every path in memory
  }) as AsyncIterable<fg.Entry>;

  const skip = (physicalPath: string, relativePath: string, reason: ScanSkipReason, error?: unknown): void => {
    if (onSkip === undefined) return;
    const skipped: ScanSkip = { physicalPath, relativePath, reason };
    if (error !== undefined) skipped.error = error;
    onSkip(skipped);
  };

  for await (const entry of entries) {
    signal?.throwIfAborted();
    const { dirent } = entry;
    const relativePath = entry.path;
    const physicalPath = join(root, ...relativePath.split('/'));
    if (dirent.isDirectory()) {
      if (onNode !== undefined && entry.stats !== undefined && publish(`${relativePath}/`)) {
        onNode({ physicalPath, relativePath, kind: 'dir', mode: entry.stats.mode & 0o7777, mtimeMs: entry.stats.mtimeMs });
      }
      continue;
    }
    // Judged before any link is followed: a file left out costs no more than its name.
    if (!publish(portableLinks && isPortableLink(relativePath) ? portableLinkName(relativePath) : relativePath)) {
      skip(physicalPath, relativePath, 'excluded');
      continue;
    }

    if (dirent.isSymbolicLink()) {
      const followed = followSymlinks ? await followSymlink(physicalPath, realRoot, allowLinksOutside) : 'symlink';
      if (typeof followed === 'string') {
        // Not followed: a link as such, with its text, to a client that mirrors the tree.
        const node = onNode === undefined ? undefined : await linkNode(physicalPath, relativePath);
        if (node !== undefined) onNode!(node);
        else skip(physicalPath, relativePath, followed);
        continue;
      }
      const { real, stats } = followed;
      yield { physicalPath, relativePath, contentPath: real, ...statFields(stats) };
      continue;
    }

    const stats = entry.stats;
    if (!dirent.isFile() || (stats !== undefined && !stats.isFile())) {
      skip(physicalPath, relativePath, 'not-a-file');
      continue;
    }

    if (portableLinks && isPortableLink(relativePath)) {
      const published = portableLinkName(relativePath);
      const sibling = join(root, ...published.split('/'));
      if (await exists(sibling)) {
        skip(physicalPath, relativePath, 'shadowed');
        continue;
      }
      let target: string;
      let targetStats: Stats;
      try {
        target = await readPortableLink(physicalPath, realRoot, { allowOutside: allowLinksOutside });
        targetStats = await stat(target);
      } catch (error) {
        skip(physicalPath, relativePath, error instanceof PathOutsideMountError ? 'outside' : 'bad-link', error);
        continue;
      }
      yield {
        physicalPath,
        relativePath: published,
        contentPath: target,
        ...statFields(targetStats),
        linkTarget: target,
      };
      continue;
    }

    let fileStats = stats;
    if (fileStats === undefined) {
      try {
        fileStats = await lstat(physicalPath);
      } catch (error) {
        skip(physicalPath, relativePath, 'vanished', error);
        continue;
      }
    }
    yield { physicalPath, relativePath, contentPath: physicalPath, ...statFields(fileStats) };
  }
}

/** Follows a symbolic link to a regular file inside `realRoot` (anywhere if `allowOutside`), or says why not. */
async function followSymlink(
  link: string,
  realRoot: string,
  allowOutside: boolean,
): Promise<{ real: string; stats: Stats } | ScanSkipReason> {
  let real: string;
  let stats: Stats;
  try {
    real = await realpath(link);
    stats = await stat(real);
  } catch {
    return 'broken-link'; // dangling, looping or removed meanwhile: nothing to publish
  }
  if (!allowOutside && !isPathInside(realRoot, real)) return 'outside';
  if (stats.isDirectory()) return 'directory-link';
  if (!stats.isFile()) return 'not-a-file';
  return { real, stats };
}

/** A symbolic link as a node: its text and stat; undefined when it vanished meanwhile. */
async function linkNode(physicalPath: string, relativePath: string): Promise<ScannedNode | undefined> {
  try {
    const [target, stats] = await Promise.all([readlink(physicalPath), lstat(physicalPath)]);
    return { physicalPath, relativePath, kind: 'link', mode: stats.mode & 0o7777, mtimeMs: stats.mtimeMs, target };
  } catch {
    return undefined;
  }
}

function statFields(stats: Stats): Pick<ScannedFile, 'size' | 'mtimeMs' | 'mode' | 'ino'> {
  return { size: stats.size, mtimeMs: stats.mtimeMs, mode: stats.mode, ino: stats.ino };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
