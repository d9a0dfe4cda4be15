/**
 * Random trees and random changes to them, the same for the same seed: the differential
 * test's source of work. A change is planned from what the tree holds (a lstat snapshot,
 * so the plan never depends on timing), printed as plain JSON, then applied.
 *
 * Changes: create, overwrite (same size or not), append, truncate, chmod (files 600/640/644/
 * 700/755, folders 700/750/755: the owner can always read, write and enter), touch (mtime only),
 * rename and move of files, links and folders, delete (folders with what they hold), mkdir
 * (empty folders too), rmdir, symbolic links (relative, to a file or folder in the tree, to
 * nothing, and to `outside.txt` beside the tree), a file replaced by a folder and back; names
 * with a space, a leading space, a newline, a tab, a backslash, an emoji, `#`, `*` and `[`.
 * With aspects `files`, only what regular files need: plain names, no links, no modes of
 * folders; with `content`, not even chmod and touch.
 */
import { appendFile, chmod, mkdir, rename, rm, rmdir, symlink, truncate, utimes, writeFile } from 'node:fs/promises'
import { join, posix } from 'node:path'

import { Random } from '../fuzz/lib.js'
import type { Aspects, Snapshot } from './snapshot.js'

export type Change =
  | { op: 'create'; path: string; size: number; fill: number; mode: number }
  | { op: 'overwrite'; path: string; size: number; fill: number }
  | { op: 'append'; path: string; size: number; fill: number }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'touch'; path: string; mtimeMs: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'delete'; path: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'rmdir'; path: string }
  | { op: 'symlink'; path: string; target: string }

/** Which side a step restarts (kill -TERM, start again) once its changes are made. */
export type Restart = 'consumer' | 'server'

/** What lies beside the tree (in its parent folder) for links pointing outside it. */
export const OUTSIDE_FILE = 'outside.txt'

const PLAIN_NAMES = ['alpha', 'beta', 'gamma', 'notes', 'data', 'img', 'log', 'x']
const ODD_NAMES = ['with space', ' leading space', 'new\nline', 'tab\there', 'back\\slash', 'emoji 😀', 'hash#tag', 'star*', 'open[bracket']
const EXTENSIONS = ['', '.txt', '.bin', '.md']
const FILE_MODES = [0o644, 0o644, 0o600, 0o640, 0o700, 0o755]
const DIR_MODES = [0o755, 0o755, 0o750, 0o700]
/** Run as a user (RunOptions.asUser), also modes without owner write: a user's read-only files and folders. */
const USER_FILE_MODES = [...FILE_MODES, 0o444, 0o400]
const USER_DIR_MODES = [...DIR_MODES, 0o555, 0o500]
/** Touched mtimes fall in 2020–2026, with milliseconds. */
const TOUCH_FROM = 1_580_000_000_000
/** A tree grows no larger than this many entries: past it, deletions win. */
const MAX_ENTRIES = 60

/** Content of a file: `size` octets derived from `fill` (text-like, so diffs of small files can be read). */
export function content(size: number, fill: number): Buffer {
  const random = new Random(fill)
  const out = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) out[i] = i % 61 === 60 ? 10 : 32 + random.int(95)
  return out
}

type Action = 'create' | 'overwrite' | 'append' | 'truncate' | 'chmod' | 'touch' | 'rename' | 'move' | 'delete' | 'mkdir' | 'rmdir' | 'symlink' | 'replace'

const WEIGHTS: Record<Aspects, Array<[Action, number]>> = {
  all: [['create', 12], ['overwrite', 7], ['append', 5], ['truncate', 3], ['chmod', 7], ['touch', 5], ['rename', 6], ['move', 6], ['delete', 7], ['mkdir', 5], ['rmdir', 3], ['symlink', 6], ['replace', 2]],
  files: [['create', 12], ['overwrite', 7], ['append', 5], ['truncate', 3], ['chmod', 4], ['touch', 5], ['rename', 6], ['move', 6], ['delete', 7]],
  content: [['create', 12], ['overwrite', 7], ['append', 5], ['truncate', 3], ['rename', 6], ['move', 6], ['delete', 7]],
}

/** Plans changes for one tree, from one seed. */
export class ChangePlanner {
  private readonly random: Random

  private readonly fileModes: readonly number[]
  private readonly dirModes: readonly number[]

  /** @param readOnly - also modes without owner write (a run as a user who is not root). */
  constructor(
    readonly seed: number,
    readonly aspects: Aspects = 'all',
    readOnly = false,
  ) {
    this.random = new Random(seed)
    this.fileModes = readOnly ? USER_FILE_MODES : FILE_MODES
    this.dirModes = readOnly ? USER_DIR_MODES : DIR_MODES
  }

  /** How many actions make the first tree. */
  initialActions(): number {
    return this.random.range(8, 16)
  }

  /** An action of the first tree: mostly folders and files. */
  initial(tree: Snapshot): Change[] {
    const roll = this.random.next()
    const action: Action = roll < 0.25 ? 'mkdir' : roll < 0.9 || this.aspects !== 'all' ? 'create' : 'symlink'
    return this.plan(action, tree)
  }

  /** How many actions a step makes (1 to 4), and whether it then restarts a side. */
  step(): { actions: number; restart: Restart | undefined } {
    const actions = this.random.chance(0.5) ? 1 : this.random.range(2, 4)
    const roll = this.random.next()
    return { actions, restart: roll < 0.12 ? 'consumer' : roll < 0.22 ? 'server' : undefined }
  }

  /** One random action on `tree`, as the changes that make it. */
  next(tree: Snapshot): Change[] {
    const weights = WEIGHTS[this.aspects]
    let action: Action = 'delete'
    if (tree.size < MAX_ENTRIES) {
      let roll = this.random.int(weights.reduce((sum, [, weight]) => sum + weight, 0))
      for (const [candidate, weight] of weights) {
        if ((roll -= weight) < 0) {
          action = candidate
          break
        }
      }
    }
    return this.plan(action, tree)
  }

  /** The changes of `action`, or of `create` when the tree has nothing it applies to. */
  private plan(action: Action, tree: Snapshot): Change[] {
    const r = this.random
    const all = [...tree]
    const files = all.filter(([, entry]) => entry.type === 'file').map(([path]) => path)
    const dirs = all.filter(([, entry]) => entry.type === 'dir').map(([path]) => path)
    const nonEmpty = all.filter(([, entry]) => entry.type === 'file' && entry.size > 0).map(([path]) => path)
    const emptyDirs = dirs.filter((dir) => !all.some(([path]) => path.startsWith(`${dir}/`)))
    const movable = all.filter(([, entry]) => this.aspects === 'all' || entry.type !== 'symlink').map(([path]) => path)
    const parent = (): string => (r.chance(0.3) || dirs.length === 0 ? '' : r.pick(dirs))
    const fresh = (dir: string, file: boolean): string => this.freshName(tree, dir, file)
    const size = (): number => {
      const roll = r.next()
      return roll < 0.1 ? 0 : roll < 0.4 ? r.range(1, 100) : roll < 0.8 ? r.range(100, 8000) : roll < 0.97 ? r.range(8000, 200_000) : r.range(1_000_000, 1_600_000)
    }
    const fill = (): number => r.int(0x100000000)
    const create = (): Change[] => [{ op: 'create', path: fresh(parent(), true), size: size(), fill: fill(), mode: this.aspects === 'all' ? r.pick(this.fileModes) : 0o644 }]

    switch (action) {
      case 'create':
        return create()
      case 'overwrite': {
        if (files.length === 0) return create()
        const path = r.pick(files)
        const same = r.chance(0.3) ? tree.get(path)!.size : size()
        return [{ op: 'overwrite', path, size: same, fill: fill() }]
      }
      case 'append':
        return files.length === 0 ? create() : [{ op: 'append', path: r.pick(files), size: r.range(1, 5000), fill: fill() }]
      case 'truncate': {
        if (nonEmpty.length === 0) return create()
        const path = r.pick(nonEmpty)
        return [{ op: 'truncate', path, size: r.chance(0.3) ? 0 : Math.floor(tree.get(path)!.size / 2) }]
      }
      case 'chmod': {
        const targets = this.aspects === 'all' ? [...files, ...dirs] : files
        if (targets.length === 0) return create()
        const path = r.pick(targets)
        const entry = tree.get(path)!
        const modes = (entry.type === 'dir' ? this.dirModes : this.fileModes).filter((mode) => mode !== entry.mode)
        return [{ op: 'chmod', path, mode: r.pick(modes) }]
      }
      case 'touch': {
        if (files.length === 0) return create()
        return [{ op: 'touch', path: r.pick(files), mtimeMs: TOUCH_FROM + r.int(200_000_000) * 1000 + r.int(1000) }]
      }
      case 'rename':
      case 'move': {
        if (movable.length === 0) return create()
        const from = r.pick(movable)
        const here = posix.dirname(from) === '.' ? '' : posix.dirname(from)
        // A folder never moves into itself.
        const into = action === 'rename' ? here : r.pick(['', ...dirs].filter((dir) => dir !== from && !dir.startsWith(`${from}/`)))
        return [{ op: 'rename', from, to: fresh(into, tree.get(from)!.type !== 'dir') }]
      }
      case 'delete': {
        if (all.length === 0) return create()
        // Mostly files and links; sometimes a whole folder.
        const leaves = all.filter(([, entry]) => entry.type !== 'dir').map(([path]) => path)
        const path = leaves.length > 0 && r.chance(0.8) ? r.pick(leaves) : r.pick(all.map(([path]) => path))
        return [{ op: 'delete', path }]
      }
      case 'mkdir': {
        const path = fresh(parent(), false)
        const mode = r.pick(this.dirModes)
        // Sometimes two levels at once, the inner one empty.
        return r.chance(0.3) ? [{ op: 'mkdir', path, mode }, { op: 'mkdir', path: fresh(path, false), mode: r.pick(this.dirModes) }] : [{ op: 'mkdir', path, mode }]
      }
      case 'rmdir':
        return emptyDirs.length === 0 ? this.plan('mkdir', tree) : [{ op: 'rmdir', path: r.pick(emptyDirs) }]
      case 'symlink': {
        const path = fresh(parent(), true)
        const from = posix.dirname(path)
        const roll = r.next()
        const candidates = all.filter(([, entry]) => entry.type !== 'symlink').map(([other]) => other)
        let target: string
        if (roll < 0.6 && candidates.length > 0) target = posix.relative(from, r.pick(candidates)) || '.' // a file or a folder of the tree (its own folder: '.')
        else if (roll < 0.8) target = posix.relative(from, `missing-${r.int(1000)}`) // dangling
        else target = `${'../'.repeat(from === '.' ? 1 : from.split('/').length + 1)}${OUTSIDE_FILE}` // leaves the tree
        return [{ op: 'symlink', path, target }]
      }
      case 'replace': {
        // A file becomes a folder of the same name (holding a file), or a folder a file.
        const candidates = all.filter(([, entry]) => entry.type !== 'symlink').map(([path]) => path)
        if (candidates.length === 0) return create()
        const path = r.pick(candidates)
        if (tree.get(path)!.type === 'dir') return [{ op: 'delete', path }, { op: 'create', path, size: size(), fill: fill(), mode: 0o644 }]
        return [{ op: 'delete', path }, { op: 'mkdir', path, mode: 0o755 }, { op: 'create', path: `${path}/inner.txt`, size: size(), fill: fill(), mode: 0o644 }]
      }
    }
  }

  /** A name not yet in `dir`: plain, or (aspects `all`) one of the odd ones. */
  private freshName(tree: Snapshot, dir: string, file: boolean): string {
    const r = this.random
    const odd = this.aspects === 'all' && r.chance(0.3)
    const base = r.pick(odd ? ODD_NAMES : PLAIN_NAMES)
    const extension = file ? r.pick(EXTENSIONS) : ''
    for (let n = 0; ; n++) {
      const name = `${base}${n === 0 ? '' : `-${n}`}${extension}`
      const path = dir === '' ? name : `${dir}/${name}`
      if (!tree.has(path)) return path
    }
  }
}

/** Makes `change` in the tree at `root`. */
export async function apply(root: string, change: Change): Promise<void> {
  const at = (path: string): string => join(root, ...path.split('/'))
  switch (change.op) {
    case 'create':
      await writeFile(at(change.path), content(change.size, change.fill))
      await chmod(at(change.path), change.mode) // exact, whatever the umask
      return
    case 'overwrite':
      return writeFile(at(change.path), content(change.size, change.fill))
    case 'append':
      return appendFile(at(change.path), content(change.size, change.fill))
    case 'truncate':
      return truncate(at(change.path), change.size)
    case 'chmod':
      return chmod(at(change.path), change.mode)
    case 'touch':
      return utimes(at(change.path), change.mtimeMs / 1000, change.mtimeMs / 1000)
    case 'rename':
      return rename(at(change.from), at(change.to))
    case 'delete':
      return rm(at(change.path), { recursive: true })
    case 'mkdir':
      await mkdir(at(change.path))
      await chmod(at(change.path), change.mode)
      return
    case 'rmdir':
      return rmdir(at(change.path))
    case 'symlink':
      return symlink(change.target, at(change.path))
  }
}

/** A change in one line (JSON, so odd names show as they are). */
export function describeChange(change: Change): string {
  const { op, ...rest } = change
  const fields = Object.entries(rest).map(([key, value]) => `${key}=${key === 'mode' ? (value as number).toString(8) : JSON.stringify(value)}`)
  return `${op} ${fields.join(' ')}`
}
