/**
 * One folder listed with the lstat of each entry: natively when build/fmq_native.node was
 * built (native/list_folder.c, by `npm run build`), else with readdirSync and lstatSync. Both
 * give the same entries: names as strings (a name that is not UTF-8 shows U+FFFD), types and
 * stats as lstat sees them, "." and ".." left out; a folder that cannot be listed throws as
 * readdirSync throws (ENOENT, ENOTDIR, EACCES...).
 *
 * @packageDocumentation
 */
import { type Dir, type Dirent, lstatSync, opendirSync, readdirSync, type Stats } from 'node:fs';
import { loadNativeAddon } from '../util/native-addon.js';

/** What a walk asks of an entry's type (a Dirent answers it, and so does a native entry). */
export type EntryKind = Pick<Dirent, 'name' | 'isDirectory' | 'isFile' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'isBlockDevice' | 'isCharacterDevice'>;

/** What a walk asks of an entry's lstat (a Stats answers it, and so does a native entry). */
export type EntryStats = Pick<
  Stats,
  'mode' | 'size' | 'mtimeMs' | 'ino' | 'uid' | 'gid' | 'isDirectory' | 'isFile' | 'isSymbolicLink' | 'isFIFO' | 'isSocket' | 'isBlockDevice' | 'isCharacterDevice'
>;

/** One entry of a folder: its type, and its lstat unless that failed (gone, or a folder we may list but not search). */
export interface ListedEntry {
  readonly dirent: EntryKind;
  readonly stats?: EntryStats;
}

/** Which listing {@link listEntries} uses: `native` when the addon loaded. */
export type ListingKind = 'native' | 'javascript';

/** native/list_folder.c: the names, each followed by a NUL, and the stat columns. */
interface NativeFs {
  listFolder(path: string): [string, Float64Array];
}

const COLUMNS = 7;
const S_IFMT = 0o170000;
/** lstat's types, as {@link FolderEntries.format} gives them. */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
/** d_type values (dirent.h), for an entry whose lstat failed. */
const DT = { FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;

/**
 * One folder listed: each entry's name, and its lstat as columns of numbers rather than an
 * object per entry (a walk of 100,000 files then makes 100,000 names, not 300,000 objects to
 * collect). Entry `i` is asked by index; {@link FolderEntries.entry} makes an object of one.
 *
 * @example
 * ```ts
 * const listed = listFolder('/srv/photos')
 * for (let i = 0; i < listed.length; i++) if (listed.isFile(i)) console.log(listed.names[i], listed.size(i))
 * ```
 */
export class FolderEntries {
  constructor(
    /** The entries' names, "." and ".." left out, in directory order. */
    readonly names: readonly string[],
    /** Per entry: mode, size, mtimeMs, ino, uid, gid (NaN when its lstat failed), d_type. */
    private readonly columns: Float64Array,
  ) {}
  get length(): number {
    return this.names.length;
  }
  /** Whether entry `i` was lstat'ed: not when it is gone, or in a folder we may list but not search. */
  statted(i: number): boolean {
    return !Number.isNaN(this.columns[i * COLUMNS]!);
  }
  mode(i: number): number {
    return integer(this.columns[i * COLUMNS]!);
  }
  size(i: number): number {
    return integer(this.columns[i * COLUMNS + 1]!);
  }
  mtimeMs(i: number): number {
    return this.columns[i * COLUMNS + 2]!;
  }
  ino(i: number): number {
    return integer(this.columns[i * COLUMNS + 3]!);
  }
  uid(i: number): number {
    return integer(this.columns[i * COLUMNS + 4]!);
  }
  gid(i: number): number {
    return integer(this.columns[i * COLUMNS + 5]!);
  }
  /** The S_IFMT type of entry `i`: lstat's when it was statted, else the folder's d_type (0 if none). */
  format(i: number): number {
    const mode = this.columns[i * COLUMNS]!;
    return Number.isNaN(mode) ? formatOfDirentType(this.columns[i * COLUMNS + 6]!) : mode & S_IFMT;
  }
  isDirectory(i: number): boolean {
    return this.format(i) === S_IFDIR;
  }
  isFile(i: number): boolean {
    return this.format(i) === S_IFREG;
  }
  /** Entry `i` as an object: its type, and its stats unless its lstat failed. */
  entry(i: number): ListedEntry {
    const at = i * COLUMNS;
    const statted = this.statted(i);
    const c = this.columns;
    return statted
      ? new ListedObject(this.names[i]!, c[at]!, c[at + 1]!, c[at + 2]!, c[at + 3]!, c[at + 4]!, c[at + 5]!, this.format(i), true)
      : new ListedObject(this.names[i]!, 0, 0, 0, 0, 0, 0, this.format(i), false);
  }
}

/** An entry of a {@link FolderEntries} as an object: type and lstat in one, no Date made. */
class ListedObject implements EntryKind, EntryStats, ListedEntry {
  get dirent(): EntryKind {
    return this;
  }
  /** Itself, unless its lstat failed (then only its type, from the folder, is known). */
  readonly stats: EntryStats | undefined;
  constructor(
    readonly name: string,
    readonly mode: number,
    readonly size: number,
    readonly mtimeMs: number,
    readonly ino: number,
    readonly uid: number,
    readonly gid: number,
    /** The type from lstat's mode when known, else from the folder's d_type. */
    private readonly format: number,
    statted: boolean,
  ) {
    this.stats = statted ? this : undefined;
  }
  isDirectory(): boolean {
    return this.format === S_IFDIR;
  }
  isFile(): boolean {
    return this.format === S_IFREG;
  }
  isSymbolicLink(): boolean {
    return this.format === S_IFLNK;
  }
  isFIFO(): boolean {
    return this.format === 0o010000;
  }
  isSocket(): boolean {
    return this.format === 0o140000;
  }
  isBlockDevice(): boolean {
    return this.format === 0o060000;
  }
  isCharacterDevice(): boolean {
    return this.format === 0o020000;
  }
}

/**
 * An integral column as a small integer when it is one: read from a Float64Array, V8 would
 * otherwise keep it as a double, and every object field it goes into (a published file's size,
 * mode and inode) as a boxed number of its own, 16 octets and an object more each.
 */
function integer(value: number): number {
  const small = value | 0;
  return small === value ? small : value;
}

/** The S_IFMT type of a d_type, or 0 when the file system did not say. */
function formatOfDirentType(type: number): number {
  switch (type) {
    case DT.FIFO:
      return 0o010000;
    case DT.CHR:
      return 0o020000;
    case DT.DIR:
      return S_IFDIR;
    case DT.BLK:
      return 0o060000;
    case DT.REG:
      return S_IFREG;
    case DT.LNK:
      return S_IFLNK;
    case DT.SOCK:
      return 0o140000;
    default:
      return 0;
  }
}

/** The d_type of a Dirent, as readdir gives it to the native listing. */
function direntType(dirent: Dirent): number {
  if (dirent.isFile()) return DT.REG;
  if (dirent.isDirectory()) return DT.DIR;
  if (dirent.isSymbolicLink()) return DT.LNK;
  if (dirent.isFIFO()) return DT.FIFO;
  if (dirent.isSocket()) return DT.SOCK;
  if (dirent.isCharacterDevice()) return DT.CHR;
  if (dirent.isBlockDevice()) return DT.BLK;
  return 0;
}

let native: NativeFs | null | undefined;

/** The addon, loaded once; null when it is not built or FMQ_NATIVE=0. */
function nativeFs(): NativeFs | null {
  if (native === undefined) native = loadNativeAddon<NativeFs>('fmq_native.node');
  return native;
}

/** Which listing is in use here. */
export function listingKind(): ListingKind {
  return nativeFs() === null ? 'javascript' : 'native';
}

/** The folder's entries and the lstat of each, as columns; throws as readdirSync does. */
export function listFolder(physicalDir: string, kind: ListingKind = listingKind()): FolderEntries {
  const addon = kind === 'native' ? nativeFs() : null;
  return addon === null ? listWithNode(physicalDir) : nativeEntries(addon.listFolder(physicalDir));
}

function nativeEntries([joined, columns]: [string, Float64Array]): FolderEntries {
  const names = joined.split('\0');
  names.pop(); // after the last NUL
  return new FolderEntries(names, columns);
}

/** The folder's entries, each as an object with its lstat; throws as readdirSync does. */
export function listEntries(physicalDir: string, kind: ListingKind = listingKind()): ListedEntry[] {
  const listed = listFolder(physicalDir, kind);
  return Array.from({ length: listed.length }, (_, i) => listed.entry(i));
}

/** What the native listing gives, made with readdirSync and lstatSync. */
function listWithNode(physicalDir: string): FolderEntries {
  const prefix = physicalDir.endsWith('/') ? physicalDir : `${physicalDir}/`;
  const dirents = readdirSync(physicalDir, { withFileTypes: true });
  const columns = new Float64Array(dirents.length * COLUMNS);
  dirents.forEach((dirent, i) => {
    const stats = lstatOrUndefined(prefix + dirent.name);
    const row = [stats?.mode, stats?.size, stats?.mtimeMs, stats?.ino, stats?.uid, stats?.gid].map((value) => value ?? Number.NaN);
    columns.set([...row, direntType(dirent)], i * COLUMNS);
  });
  return new FolderEntries(
    dirents.map((dirent) => dirent.name),
    columns,
  );
}

/** lstat, or undefined when the entry is gone or cannot be looked at. */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/**
 * Whether the tree under `physicalDir` holds at least `count` entries (folders included),
 * `skip` left out with what is under it. Reads at most `count` entries, one at a time: a
 * folder of a million entries costs no more than a small one. A folder that cannot be read
 * counts as empty; `physicalDir` missing holds nothing.
 *
 * @example
 * ```ts
 * holdsAtLeast('/srv/inbox', 1000, (path) => path.endsWith('/.fmq')) // true for a big inbox
 * ```
 */
export function holdsAtLeast(physicalDir: string, count: number, skip: (physicalPath: string) => boolean = () => false): boolean {
  if (count <= 0) return true;
  let seen = 0;
  const pending = [physicalDir];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let handle: Dir;
    try {
      handle = opendirSync(dir);
    } catch {
      continue;
    }
    try {
      for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
        const path = `${dir}/${entry.name}`;
        if (skip(path)) continue;
        if (++seen >= count) return true;
        if (entry.isDirectory()) pending.push(path);
      }
    } catch {
      // Unreadable part way: what was counted stands.
    } finally {
      handle.closeSync();
    }
  }
  return false;
}
