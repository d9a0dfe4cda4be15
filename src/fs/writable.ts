/**
 * Writing into folders the mirror made read-only. A mirrored folder keeps its source's mode,
 * and a mode without owner write (0555, 0500) would refuse every later file, link or
 * deletion in it to a client that is not root. As rsync does, the client makes such a folder
 * of its own writable for the time of one operation and puts its mode back after.
 *
 * Nothing is looked at unless the operation is refused: root, and every folder with owner
 * write, cost nothing.
 *
 * @packageDocumentation
 */
import { chmodSync, readdirSync } from 'node:fs'
import { isAbsolute, join, relative, sep } from 'node:path'

import { lstatOrUndefinedSync as lstatOrUndefined } from './inbox.js'
import { isDenied } from './scan.js'

/** Owner write and search: what an operation on a folder's entries needs. */
const OWNER_WX = 0o300

/**
 * Runs `act`, a synchronous operation on `path` inside `root`. Refused (EACCES, EPERM), it is
 * run once more with the folders in its way made writable by their owner: those from `root`
 * down to `path`'s parent, and, when `path` is a folder (removed, say), those under it; each
 * only if this process owns it and it lacks owner write or search. Their modes are put back
 * afterwards, whatever the second try does. Refused for another reason, the error stands.
 *
 * @example
 * ```ts
 * withWritableFolders('/in', '/in/ro/a.txt', () => renameSync(temp, '/in/ro/a.txt'))
 * ```
 */
export function withWritableFolders<T>(root: string, path: string, act: () => T): T {
  try {
    return act()
  } catch (error) {
    if (!isDenied(error)) throw error
    const opened: Opened[] = []
    try {
      openFolders(root, path, opened)
      if (opened.length === 0) throw error
      return act()
    } finally {
      // Innermost first: a folder under one being put back is still reachable. Only the same
      // folder: one removed by the operation (and maybe replaced by a file) is left alone.
      for (const { folder, mode, ino } of opened.reverse()) {
        try {
          const now = lstatOrUndefined(folder)
          if (now?.isDirectory() === true && now.ino === ino) chmodSync(folder, mode)
        } catch {
          // Gone, or in a folder gone: nothing to put back.
        }
      }
    }
  }
}

/** A folder made writable, and the mode to put back. */
interface Opened {
  readonly folder: string
  readonly mode: number
  /** Which folder it was: the path may hold another entry after the operation. */
  readonly ino: number
}

/** Makes the folders in the way of `path` writable by their owner, each added to `opened` with its mode. */
function openFolders(root: string, path: string, opened: Opened[]): void {
  const open = (folder: string): void => {
    const stats = lstatOrUndefined(folder)
    if (stats === undefined || !stats.isDirectory() || stats.uid !== process.getuid?.()) return
    const mode = stats.mode & 0o7777
    if ((mode & OWNER_WX) === OWNER_WX) return
    chmodSync(folder, mode | OWNER_WX)
    opened.push({ folder, mode, ino: stats.ino })
  }
  const rel = relative(root, path)
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return
  const parts = rel.split(sep)
  let folder = root
  open(folder)
  for (const part of parts.slice(0, -1)) {
    folder = join(folder, part)
    open(folder)
  }
  // A folder itself (removed with its content): every folder under it too.
  const pending = lstatOrUndefined(path)?.isDirectory() === true ? [path] : []
  while (pending.length > 0) {
    const current = pending.pop()!
    open(current)
    let names: string[]
    try {
      names = readdirSync(current)
    } catch {
      continue
    }
    for (const name of names) {
      const child = join(current, name)
      if (lstatOrUndefined(child)?.isDirectory() === true) pending.push(child)
    }
  }
}

