/**
 * Where a file name sent by a server lands in a client's inbox, and how a complete file gets
 * there. The name is judged when its first chunk arrives (syntax, and never inside the
 * client's own state directory); the folders on its way are walked, made and checked again
 * when the complete file is put in place, since one may have changed in between.
 *
 * Refusals go through a callback: the caller says which error a refused name is (the client
 * reports a RefusedFileNameError), and this module stays free of client code.
 *
 * @packageDocumentation
 */
import { constants, copyFileSync, realpathSync, renameSync, utimesSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

import { PathOutsideInboxError, UnsafeNameError } from './errors.js';
import {
  ensureParentDirsSync,
  inboxSegments,
  lstatOrUndefinedSync,
  resolveInboxPath,
  resolveInboxPathSafelySync,
} from './inbox.js';
import { unlinkQuietly } from './io.js';
import { mtimeSeconds, removeEntry } from './tree.js';
import { isPathInside } from './mounts.js';
import { withWritableFolders } from './writable.js';

/** Why a name is refused: unsafe syntax, a way out of the inbox, or a name in the state directory. */
export type PlacementRefusal = 'unsafe' | 'outside-inbox' | 'state-dir';

/** Builds the error thrown for a refused name. */
export type RefuseName = (name: string, reason: PlacementRefusal, cause?: Error) => Error;

/** `realpath` of the inbox and of the state directory, for one pair of paths. */
export interface RealPaths {
  readonly inbox: string;
  readonly stateDir: string;
  readonly realInbox: string;
  readonly realStateDir: string;
}

/**
 * The names of one inbox. The real paths are resolved once per pair of paths (the client's
 * `setInbox` may change them), not once per file.
 *
 * @example
 * ```ts
 * const placement = new InboxPlacement(() => ({ inbox, stateDir }), (name, reason) => new Error(`${name}: ${reason}`))
 * placement.target('/photos/a.jpg').virtualPath // '/photos/a.jpg'
 * ```
 */
export class InboxPlacement {
  private real: RealPaths | undefined;
  /**
   * The last lexical target judged: a small file's name is judged when its one chunk arrives
   * and again as it is put in place, in the same breath; the answer is the same while the
   * real paths are (a name's syntax never changes).
   */
  private lastLexical: { readonly name: string; readonly real: RealPaths; readonly target: { path: string; virtualPath: string } } | undefined;

  /**
   * @param paths - the inbox and state directory as they are now.
   * @param refuse - the error a refused name throws.
   */
  constructor(
    private readonly paths: () => { inbox: string; stateDir: string },
    private readonly refuse: RefuseName,
  ) {}

  /**
   * Where a complete file goes, checked again at the end (a directory on the way may have
   * changed since the first chunk): the parents are made or checked one by one, and whatever
   * holds the name now must be neither a symbolic link nor a directory, unless `replace` (a
   * client mirroring the tree): then the link or directory that held the name goes.
   */
  destination(name: string, replace = false): string {
    const finalPath = this.parents(name, replace);
    const existing = lstatOrUndefinedSync(finalPath);
    if (replace && (existing?.isSymbolicLink() || existing?.isDirectory())) {
      removeEntry(finalPath);
      return finalPath;
    }
    if (existing?.isSymbolicLink()) {
      const root = this.realPaths().realInbox;
      const cause = new PathOutsideInboxError(finalPath, root, `${finalPath} is a symbolic link inside the inbox ${root}`);
      throw this.refuse(name, 'outside-inbox', cause);
    }
    if (existing?.isDirectory()) {
      throw Object.assign(new Error(`EISDIR: a directory is in the way at ${finalPath}`), { code: 'EISDIR', path: finalPath });
    }
    return finalPath;
  }

  /**
   * Where a name goes with its parents made or checked one by one; with `replace` (the tree's
   * operations) a file or link in a parent's place is replaced by a directory, else a link
   * there is refused. The name itself may hold anything, which the caller replaces or refuses.
   */
  parents(name: string, replace = true): string {
    const { path } = this.target(name, false);
    try {
      return ensureParentDirsSync(this.paths().inbox, path, this.realPaths().realInbox, replace);
    } catch (error) {
      if (error instanceof PathOutsideInboxError) throw this.refuse(name, 'outside-inbox', error);
      throw error;
    }
  }

  /**
   * Where a server's name lands in the inbox, or the refusal. `physical`: every component that
   * exists is checked with lstat (symbolic links refused); else the name is only checked
   * lexically, for a caller that checks the components itself.
   */
  target(name: string, physical = true): { path: string; virtualPath: string } {
    const last = this.lastLexical;
    if (!physical && last !== undefined && last.name === name && last.real === this.realPaths()) return last.target;
    let path: string;
    let virtualPath: string;
    let real: RealPaths;
    try {
      virtualPath = '/' + inboxSegments(name).join('/');
      real = this.realPaths();
      path = physical ? resolveInboxPathSafelySync(real.inbox, name, real.realInbox) : resolveInboxPath(real.realInbox, name);
    } catch (error) {
      if (error instanceof UnsafeNameError) throw this.refuse(name, 'unsafe', error);
      if (error instanceof PathOutsideInboxError) throw this.refuse(name, 'outside-inbox', error);
      throw error;
    }
    if (path === real.realStateDir || isPathInside(real.realStateDir, path)) throw this.refuse(name, 'state-dir');
    const target = { path, virtualPath };
    if (!physical) this.lastLexical = { name, real, target };
    return target;
  }

  /**
   * Runs a synchronous operation on a name's place; refused by a folder of ours without owner
   * write on the way (a mirrored mode 0555), once more with those folders opened for it
   * ({@link withWritableFolders}).
   */
  writable<T>(name: string, act: () => T): T {
    return withWritableFolders(this.realPaths().realInbox, this.target(name, false).path, act);
  }

  /** The real paths of the inbox and state directory, resolved again only when they change. */
  realPaths(): RealPaths {
    const { inbox, stateDir } = this.paths();
    const known = this.real;
    if (known !== undefined && known.inbox === inbox && known.stateDir === stateDir) return known;
    const resolved = realStateDirSync(inbox, stateDir);
    this.real = { inbox, stateDir, realInbox: resolved.inbox, realStateDir: resolved.stateDir };
    return this.real;
  }
}

/**
 * The real path of the state directory, as it will be seen from `realpath(inbox)`: the default
 * `<inbox>/.fmq` need not exist yet, so it is rebased rather than resolved. Synchronous, for the
 * inbox writer, which caches the answer ({@link InboxPlacement}).
 *
 * @example
 * ```ts
 * realStateDirSync('/home/me/inbox', '/home/me/inbox/.fmq') // { inbox: '/data/inbox', stateDir: '/data/inbox/.fmq' }
 * ```
 */
export function realStateDirSync(inbox: string, stateDir: string): { inbox: string; stateDir: string } {
  const inboxReal = realpathSync(inbox);
  const lexicalInbox = resolve(inbox);
  const lexicalState = resolve(stateDir);
  if (lexicalState === lexicalInbox) return { inbox: inboxReal, stateDir: inboxReal };
  if (isPathInside(lexicalInbox, lexicalState)) {
    return { inbox: inboxReal, stateDir: join(inboxReal, relative(lexicalInbox, lexicalState)) };
  }
  try {
    return { inbox: inboxReal, stateDir: realpathSync(lexicalState) };
  } catch {
    return { inbox: inboxReal, stateDir: lexicalState };
  }
}

/** The virtual path a server's name stands for (`"/"` + its safe segments), or undefined for an unsafe one. */
export function inboxVirtualPath(name: string): string | undefined {
  try {
    return '/' + inboxSegments(name).join('/');
  } catch {
    return undefined;
  }
}

/**
 * Renames the complete file over its final name, atomically when both are on one file system;
 * false when it had to be copied instead (its mtime is set again on the copy).
 */
export function moveIntoPlace(tempPath: string, finalPath: string, mtimeMs: number | undefined): boolean {
  try {
    renameSync(tempPath, finalPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
  }
  // State directory on another file system: copy next to the target, then rename there.
  const sibling = join(dirname(finalPath), `.${basename(finalPath)}.${randomBytes(6).toString('hex')}.fmq-tmp`);
  copyFileSync(tempPath, sibling, constants.COPYFILE_EXCL);
  try {
    // The copy keeps the mode but not the mtime.
    if (mtimeMs !== undefined) utimesSync(sibling, new Date(), mtimeSeconds(mtimeMs));
    renameSync(sibling, finalPath);
  } catch (renameError) {
    unlinkQuietly(sibling);
    throw renameError;
  }
  unlinkQuietly(tempPath);
  return false;
}

/**
 * The permission bits a file of an announced mode gets: the owner keeps read and write, so a
 * later version can always replace it; no set-id or sticky bits from a server.
 */
export function fileMode(mode: number): number {
  return (mode & 0o777) | 0o600;
}
