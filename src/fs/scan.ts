/**
 * Listing a mount's files. The walk is asynchronous (one directory listed at a time), so a big
 * tree never holds the event loop for long, and it never leaves the mount: symbolic links are
 * skipped unless asked for, and even then only links to files inside the mount are followed;
 * symlinked directories are never walked.
 *
 * Every name Linux allows is listed as it is (newline, tab, backslash, `*`, `[`...): the walk
 * matches no glob against the names it finds (fast-glob's did, and its `.` never matched a
 * newline). What cannot be published is reported through `onSkip` rather than thrown: a
 * folder or file we may not read, a name that is not UTF-8, a FIFO, socket or device.
 *
 * @packageDocumentation
 */

import { access, lstat, readlink, realpath, stat } from 'node:fs/promises';
import { constants, readdirSync, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { join, resolve } from 'node:path';

import picomatch from 'picomatch';

import { PathOutsideMountError } from './errors.js';
import { readPortableLink, isPortableLink, portableLinkName } from './links.js';
import { type EntryKind, type EntryStats, type FolderEntries, listFolder } from './listing.js';
import { isPathInside } from './mounts.js';
import { compareVirtualPaths, sortByVirtualPath } from './vpath.js';

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
  /** A folder we may not list, or a file we may not read (permissions): nothing in it is published. */
  | 'unreadable'
  /** A name that is not valid UTF-8: it cannot travel as a FILEMQ name (`relativePath` shows it with U+FFFD). */
  | 'bad-name'
  /** The `publish` filter left it out (an exclude glob of the server). */
  | 'excluded';

/** An entry {@link scanMount} left out, reported through `onSkip`. */
export interface ScanSkip {
  physicalPath: string;
  /** Relative to the mount location, `"/"`-separated, as found (with any `.ln`). */
  relativePath: string;
  reason: ScanSkipReason;
  /** The error behind a `bad-link`, `outside`, `vanished` or `unreadable` skip, when there is one. */
  error?: unknown;
  /** For `not-a-file`: what it is instead. */
  kind?: 'fifo' | 'socket' | 'device' | 'other';
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
   * Glob patterns (picomatch, as fast-glob reads them), relative to the location, of entries
   * to leave out; use `"dir/**"` to leave out a whole directory (it is then not even walked).
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
  /**
   * Walks only this folder of the location (relative, `"/"`-separated; default `""`, the whole
   * location), as a rescan of one subtree does; paths and link containment stay relative to
   * the location. The folder itself is not reported; its being gone rejects, as the root's.
   */
  under?: string;
  /**
   * Yields in the order of the paths' Unicode code points (the octet order of their UTF-8, the
   * order of a RESYNC cache in parts): each batch is a run of one folder's entries, the batches
   * follow each other in that order, and a directory's node comes at its own name, its content
   * at its name and `"/"` (after `a.txt` for a directory `a`). Default `false`: folder by folder.
   */
  sorted?: boolean;
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
  for await (const batch of scanFolders(location, options)) {
    for (const file of batch) {
      options.signal?.throwIfAborted();
      yield file;
    }
  }
}

/**
 * {@link scanMount} a folder at a time: each batch holds the publishable files of one folder
 * (possibly none). What a big tree costs is then its system calls, not a turn of the event
 * loop per file: a caller that handles a batch synchronously keeps the scan's pace.
 *
 * @example
 * ```ts
 * for await (const files of scanFolders(mount.location)) for (const file of files) publish(file)
 * ```
 */
export async function* scanFolders(location: string, options: ScanOptions = {}): AsyncGenerator<ScannedFile[]> {
  const {
    followSymlinks = false,
    exclude = [],
    publish = () => true,
    portableLinks = true,
    allowLinksOutside = false,
    signal,
    onSkip,
    onNode,
    under = '',
    sorted = false,
  } = options;
  signal?.throwIfAborted();
  const root = resolve(location);
  // Containment is judged on real paths, so a mount reached through a symlink still works.
  const realRoot = await realpath(root);

  const folders = walk(
    root,
    excluded(exclude),
    (relativePath, reason, error) => skip(join(root, ...relativePath.split('/')), relativePath, reason, error),
    under,
    sorted,
  );

  function skip(physicalPath: string, relativePath: string, reason: ScanSkipReason, error?: unknown, kind?: ScanSkip['kind']): void {
    if (onSkip === undefined) return;
    const skipped: ScanSkip = { physicalPath, relativePath, reason };
    if (error !== undefined) skipped.error = error;
    if (kind !== undefined) skipped.kind = kind;
    onSkip(skipped);
  }

  /** Entry `i` of a listing, a readable regular file as found (no link): its entry; else undefined (the slower path looks). */
  function plainFile(listing: FolderEntries, i: number, physicalPath: string, relativePath: string): ScannedFile | undefined {
    if (!listing.statted(i) || !listing.isFile(i)) return undefined;
    const mode = listing.mode(i);
    if (!readableBits(mode, listing.uid(i), listing.gid(i))) return undefined; // asked again, asynchronously
    return { physicalPath, relativePath, contentPath: physicalPath, size: listing.size(i), mtimeMs: listing.mtimeMs(i), mode, ino: listing.ino(i) };
  }

  /** Any other entry that is not a folder: a link, a portable link, a special or unreadable file. */
  async function otherEntry(entry: WalkEntry, physicalPath: string): Promise<ScannedFile | undefined> {
    const { dirent, path: relativePath } = entry;
    if (dirent.isSymbolicLink()) {
      const followed = followSymlinks ? await followSymlink(physicalPath, realRoot, allowLinksOutside) : 'symlink';
      if (typeof followed === 'string') {
        // Not followed: a link as such, with its text, to a client that mirrors the tree.
        const node = onNode === undefined ? undefined : await linkNode(physicalPath, relativePath);
        if (node !== undefined) onNode!(node);
        else skip(physicalPath, relativePath, followed);
        return undefined;
      }
      const { real, stats } = followed;
      return { physicalPath, relativePath, contentPath: real, ...statFields(stats) };
    }

    const stats = entry.stats;
    if (!dirent.isFile() || (stats !== undefined && !stats.isFile())) {
      skip(physicalPath, relativePath, 'not-a-file', undefined, specialKind(stats ?? dirent));
      return undefined;
    }

    if (portableLinks && isPortableLink(relativePath)) {
      const published = portableLinkName(relativePath);
      const sibling = join(root, ...published.split('/'));
      if (await exists(sibling)) {
        skip(physicalPath, relativePath, 'shadowed');
        return undefined;
      }
      let target: string;
      let targetStats: Stats;
      try {
        target = await readPortableLink(physicalPath, realRoot, { allowOutside: allowLinksOutside });
        targetStats = await stat(target);
      } catch (error) {
        skip(physicalPath, relativePath, error instanceof PathOutsideMountError ? 'outside' : 'bad-link', error);
        return undefined;
      }
      return { physicalPath, relativePath: published, contentPath: target, ...statFields(targetStats), linkTarget: target };
    }

    let fileStats = stats;
    if (fileStats === undefined) {
      try {
        fileStats = await lstat(physicalPath);
      } catch (error) {
        skip(physicalPath, relativePath, isDenied(error) ? 'unreadable' : 'vanished', error);
        return undefined;
      }
    }
    const denied = await unreadable(physicalPath, fileStats);
    if (denied !== undefined) {
      skip(physicalPath, relativePath, 'unreadable', denied);
      return undefined;
    }
    return { physicalPath, relativePath, contentPath: physicalPath, ...statFields(fileStats) };
  }

  for await (const { prefix, listing, indices, paths } of folders) {
    signal?.throwIfAborted();
    const files: ScannedFile[] = [];
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      const relativePath = paths[k]!;
      const physicalPath = prefix + listing.names[i]!;
      if (listing.isDirectory(i)) {
        if (onNode !== undefined && listing.statted(i) && publish(`${relativePath}/`)) {
          onNode({ physicalPath, relativePath, kind: 'dir', mode: listing.mode(i) & 0o7777, mtimeMs: listing.mtimeMs(i) });
        }
        continue;
      }
      const portable = portableLinks && isPortableLink(relativePath);
      // Judged before any link is followed: a file left out costs no more than its name.
      if (!publish(portable ? portableLinkName(relativePath) : relativePath)) {
        skip(physicalPath, relativePath, 'excluded');
        continue;
      }
      // The common case, a readable regular file, costs no promise (and no object but its own).
      const plain = portable ? undefined : plainFile(listing, i, physicalPath, relativePath);
      const file = plain ?? (await otherEntry(walkEntry(listing, i, relativePath), physicalPath));
      if (file !== undefined) files.push(file);
    }
    yield files;
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

function statFields(stats: Pick<Stats, 'size' | 'mtimeMs' | 'mode' | 'ino'>): Pick<ScannedFile, 'size' | 'mtimeMs' | 'mode' | 'ino'> {
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

/** One entry of {@link walk} as an object, for the rare entries handled asynchronously: its path, type and lstat. */
interface WalkEntry {
  path: string;
  dirent: EntryKind;
  /** Undefined when the lstat failed (the loop looks again). */
  stats?: EntryStats;
}

/** Entry `i` of a listing as a {@link WalkEntry}. */
function walkEntry(listing: FolderEntries, i: number, path: string): WalkEntry {
  const { dirent, stats } = listing.entry(i);
  return stats === undefined ? { path, dirent } : { path, dirent, stats };
}

/**
 * Entries of one folder listed by {@link walk}: indices into its listing, with the path of each
 * relative to the root (no object per entry: see {@link FolderEntries}).
 */
interface WalkFolder {
  /** The folder's physical path and a `/`. */
  prefix: string;
  listing: FolderEntries;
  /** The entries walked, by index into `listing`, in walk order. */
  indices: number[];
  /** The path of each, `/`-separated, relative to the root: `paths[k]` is that of `indices[k]`. */
  paths: string[];
}

/**
 * Walks `root` depth first, folders before their content, without following symbolic links;
 * `sorted`, in code point order of the paths (see {@link ScanOptions.sorted}). A folder that
 * cannot be listed is reported (`unreadable`) and its content left out; one that vanished
 * meanwhile is passed over; only the root itself failing throws.
 */
async function* walk(
  root: string,
  isExcluded: (relativePath: string) => boolean,
  onSkip: (relativePath: string, reason: ScanSkipReason, error?: unknown) => void,
  start = '',
  sorted = false,
): AsyncGenerator<WalkFolder> {
  if (sorted) {
    yield* walkSorted(root, isExcluded, onSkip, start);
    return;
  }
  const pending: string[] = [start];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const folder = listWalked(root, dir, dir === start, isExcluded, onSkip);
    if (folder === undefined) continue;
    yield folder;
    // Let the event loop run between folders (heartbeats, other clients).
    await new Promise<void>((resolve) => setImmediate(resolve));
    const { listing, indices, paths } = folder;
    // Popped in reverse: the first folder listed is walked first.
    for (let k = indices.length - 1; k >= 0; k--) if (listing.isDirectory(indices[k]!)) pending.push(paths[k]!);
  }
}

/**
 * {@link walk} in code point order: each folder's entries sorted by name, a directory's
 * content walked when its name and `"/"` comes (so `a`, `a.txt`, then `a/…`); one batch per
 * run of entries between two such descents.
 */
async function* walkSorted(
  root: string,
  isExcluded: (relativePath: string) => boolean,
  onSkip: (relativePath: string, reason: ScanSkipReason, error?: unknown) => void,
  start: string,
): AsyncGenerator<WalkFolder> {
  interface Frame {
    folder: WalkFolder;
    /** The directories' paths, by name and "/", and the position in `folder` each descends at. */
    descents: Array<{ path: string; at: number }>;
    /** The next entry of `folder` to yield, and the next descent. */
    at: number;
    descent: number;
  }
  const open = (dir: string): Frame | undefined => {
    const folder = listWalked(root, dir, dir === start, isExcluded, onSkip, true);
    if (folder === undefined) return undefined;
    const { listing, indices, paths } = folder;
    const names = listing.names;
    // Where each directory's descent goes among the entries, by its name and "/" (a descent
    // need not follow its entry: `a-b/` comes before `a/`).
    const descents: Array<{ key: string; path: string; at: number }> = [];
    for (let k = 0; k < indices.length; k++) if (listing.isDirectory(indices[k]!)) descents.push({ key: `${names[indices[k]!]!}/`, path: paths[k]!, at: 0 });
    sortByVirtualPath(descents, descentKey);
    let k = 0;
    for (const descent of descents) {
      while (k < indices.length && compareVirtualPaths(descent.key, names[indices[k]!]!) >= 0) k++;
      descent.at = k;
    }
    return { folder, descents, at: 0, descent: 0 };
  };
  const first = open(start);
  const stack: Frame[] = first === undefined ? [] : [first];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const { folder, descents } = frame;
    // The entries up to the next descent, then that descent.
    const next = frame.descent < descents.length ? descents[frame.descent++]! : undefined;
    const end = next === undefined ? folder.indices.length : next.at;
    const from = frame.at;
    frame.at = end;
    if (next === undefined) stack.pop();
    if (end > from) {
      yield { prefix: folder.prefix, listing: folder.listing, indices: folder.indices.slice(from, end), paths: folder.paths.slice(from, end) };
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (next !== undefined) {
      const opened = open(next.path);
      if (opened !== undefined) stack.push(opened);
    }
  }
}

/** A folder of the walk (relative, `/`-separated, `''` for the root) as a physical path. */
function physicalOf(root: string, dir: string): string {
  return dir === '' ? root : join(root, ...dir.split('/'));
}

const descentKey = ({ key }: { key: string }): string => key;

/**
 * One folder of {@link walk}, listed and lstat'ed, its entries in directory order or `sorted`
 * by name; undefined when it cannot be listed (said through `onSkip`).
 */
function listWalked(
  root: string,
  dir: string,
  isStart: boolean,
  isExcluded: (relativePath: string) => boolean,
  onSkip: (relativePath: string, reason: ScanSkipReason, error?: unknown) => void,
  sorted = false,
): WalkFolder | undefined {
  const physicalDir = physicalOf(root, dir);
  const prefix = physicalDir.endsWith('/') ? physicalDir : `${physicalDir}/`;
  let listing: FolderEntries;
  try {
    // One folder at a time, synchronously (listing.ts: natively where built): a folder's
    // entries cost a few microseconds each this way, less than through the thread pool (where
    // the system calls only compete with this thread and the rest of the process for the
    // same cores); the event loop runs between folders.
    listing = listFolder(physicalDir);
  } catch (error) {
    if (isStart) throw error;
    if (!isErrno(error, 'ENOENT') && !isErrno(error, 'ENOTDIR')) onSkip(dir, 'unreadable', error);
    return undefined;
  }
  const names = listing.names;
  // Names as strings (no Buffer each); a name that is not UTF-8 decodes with U+FFFD, so only a
  // folder showing one is listed again as octets to tell which names are not.
  const notUtf8 = names.some((name) => name.includes('\uFFFD')) ? badNames(physicalDir) : undefined;
  const base = dir === '' ? '' : `${dir}/`;
  const order = Array.from({ length: names.length }, (_, i) => i);
  if (sorted) sortByVirtualPath(order, (i) => names[i]!);
  const indices: number[] = [];
  const paths: string[] = [];
  for (const i of order) {
    const path = base + names[i]!;
    if (notUtf8?.has(names[i]!) === true) {
      // Decoded, the name is another one (U+FFFD): it could be neither read nor carried.
      onSkip(path, 'bad-name');
      continue;
    }
    if (isExcluded(path)) continue;
    // Folders too: their mode and mtime go to clients that mirror the tree. An entry without
    // stats (gone, or in a folder we may list but not search) is looked at again by the loop.
    indices.push(i);
    paths.push(path);
  }
  return { prefix, listing, indices, paths };
}

/**
 * `exclude` as one predicate. Compiled with the dotAll flag: in a glob `*` and `**` match
 * any character but `/`, a newline included, which picomatch's `.` alone would not.
 */
function excluded(patterns: readonly string[]): (relativePath: string) => boolean {
  if (patterns.length === 0) return () => false;
  const tests = patterns.map((pattern) => {
    const re = picomatch.makeRe(pattern, { dot: true });
    return { re: new RegExp(re.source, re.flags.includes('s') ? re.flags : re.flags + 's'), literal: requiredLiteral(pattern) };
  });
  // Every entry of every walk is asked: a path without a pattern's literal part (`.fmq` of
  // `**/.fmq/**`) is told apart without running the pattern's expression.
  return (relativePath) => {
    for (const { re, literal } of tests) if (relativePath.includes(literal) && re.test(relativePath)) return true;
    return false;
  };
}

/** Characters that make a glob segment more than its own text. */
const GLOB_MAGIC = /[*?[\]{}()!+@\\]/;

/**
 * Text that every path a glob matches contains: its longest segment without glob characters
 * (`.fmq` for `**\/.fmq/**`), or `''` when every segment has some.
 */
function requiredLiteral(pattern: string): string {
  let literal = '';
  for (const segment of pattern.split('/')) if (!GLOB_MAGIC.test(segment) && segment.length > literal.length) literal = segment;
  return literal;
}

/**
 * The names of `dir` that are not valid UTF-8, as they decode (with U+FFFD). A valid name that
 * decodes the same (it holds U+FFFD itself, beside an invalid one) is taken for one too: reported
 * as a skip, never mirrored wrongly.
 */
function badNames(dir: string): Set<string> {
  const bad = new Set<string>();
  try {
    for (const name of readdirSync(dir, { encoding: 'buffer' })) if (!isUtf8(name)) bad.add(name.toString('utf8'));
  } catch {
    // Gone meanwhile: its names are judged by the lstat that follows.
  }
  return bad;
}

/** What a special file is, for the report. */
function specialKind(entry: EntryStats | EntryKind): ScanSkip['kind'] {
  if (entry.isFIFO()) return 'fifo';
  if (entry.isSocket()) return 'socket';
  if (entry.isBlockDevice() || entry.isCharacterDevice()) return 'device';
  return 'other';
}

const uid = process.getuid?.();
const groups = new Set([process.getgid?.(), ...(process.getgroups?.() ?? [])]);

/** Whether the mode bits let this process read a file (root reads everything). */
export function readableByMode(stats: Pick<Stats, 'mode' | 'uid' | 'gid'>): boolean {
  return readableBits(stats.mode, stats.uid, stats.gid);
}

/** {@link readableByMode} of an entry's mode, owner and group. */
function readableBits(mode: number, owner: number, group: number): boolean {
  if (uid === undefined || uid === 0) return true;
  const bit = owner === uid ? 0o400 : groups.has(group) ? 0o040 : 0o004;
  return (mode & bit) !== 0;
}

/**
 * Why this process may not read a regular file, or undefined when it may. Judged from the
 * mode bits first (no system call for the common case); a file they refuse is then asked
 * about with `access`, so an ACL that grants reading is honoured. An ACL that refuses what
 * the mode grants shows up when the file is opened.
 *
 * @example
 * ```ts
 * if ((await unreadable(path, stats)) !== undefined) report(path, 'unreadable')
 * ```
 */
export async function unreadable(path: string, stats: Pick<Stats, 'mode' | 'uid' | 'gid'>): Promise<Error | undefined> {
  if (readableByMode(stats)) return undefined;
  try {
    await access(path, constants.R_OK);
    return undefined;
  } catch (error) {
    return isDenied(error) ? (error as Error) : undefined;
  }
}

/** A permission refused (EACCES, EPERM). */
export function isDenied(error: unknown): boolean {
  return isErrno(error, 'EACCES') || isErrno(error, 'EPERM');
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}
