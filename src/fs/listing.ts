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

interface NativeFs {
  listFolder(path: string): [string[], Float64Array];
}

const COLUMNS = 7;
const S_IFMT = 0o170000;
/** d_type values (dirent.h), for an entry whose lstat failed. */
const DT = { FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;

/**
 * An entry of the native listing: type and lstat in one object, no Date made, and its own
 * {@link ListedEntry} (a walk of 100,000 files then makes 100,000 objects here, not 200,000).
 */
class NativeEntry implements EntryKind, EntryStats, ListedEntry {
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
    return this.format === 0o040000;
  }
  isFile(): boolean {
    return this.format === 0o100000;
  }
  isSymbolicLink(): boolean {
    return this.format === 0o120000;
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

/** The S_IFMT type of a d_type, or 0 when the file system did not say. */
function formatOfDirentType(type: number): number {
  switch (type) {
    case DT.FIFO:
      return 0o010000;
    case DT.CHR:
      return 0o020000;
    case DT.DIR:
      return 0o040000;
    case DT.BLK:
      return 0o060000;
    case DT.REG:
      return 0o100000;
    case DT.LNK:
      return 0o120000;
    case DT.SOCK:
      return 0o140000;
    default:
      return 0;
  }
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

/** The folder's entries, each with its lstat; throws as readdirSync does. */
export function listEntries(physicalDir: string, kind: ListingKind = listingKind()): ListedEntry[] {
  const addon = kind === 'native' ? nativeFs() : null;
  return addon === null ? listWithNode(physicalDir) : listWithAddon(addon, physicalDir);
}

function listWithAddon(addon: NativeFs, physicalDir: string): ListedEntry[] {
  const [names, stats] = addon.listFolder(physicalDir);
  const entries: ListedEntry[] = new Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const at = i * COLUMNS;
    const mode = stats[at]!;
    if (Number.isNaN(mode)) {
      // lstat failed: the type as the folder gave it, no stats (the caller looks again).
      entries[i] = new NativeEntry(names[i]!, 0, 0, 0, 0, 0, 0, formatOfDirentType(stats[at + 6]!), false);
      continue;
    }
    entries[i] = new NativeEntry(names[i]!, mode, stats[at + 1]!, stats[at + 2]!, stats[at + 3]!, stats[at + 4]!, stats[at + 5]!, mode & S_IFMT, true);
  }
  return entries;
}

function listWithNode(physicalDir: string): ListedEntry[] {
  const prefix = physicalDir.endsWith('/') ? physicalDir : `${physicalDir}/`;
  return readdirSync(physicalDir, { withFileTypes: true }).map((dirent) => {
    const stats = lstatOrUndefined(prefix + dirent.name);
    return stats === undefined ? { dirent } : { dirent, stats };
  });
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
