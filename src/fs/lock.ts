/**
 * One writer per destination: a lock file in a state folder (`.fmq/lock`) naming the process
 * that holds it. Two mirrors writing one folder corrupt it, so a second `fmq track` or `fmq
 * client` on the same destination is refused at once; the lock of a process that died
 * (`kill -9`, a crash) is taken over.
 *
 * The file is made whole under a temporary name, then linked to its final name: `link`
 * fails when the name exists, atomically, and a reader never sees a half-written lock.
 *
 * @packageDocumentation
 */
import { readFileSync, unlinkSync } from 'node:fs'
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'

/** The lock file's name in a state folder. */
export const LOCK_FILE = 'lock'

/** Who holds a lock, as its file says. */
export interface LockOwner {
  readonly pid: number
  readonly host: string
  /** What runs there, e.g. `fmq track`. */
  readonly command: string
}

/**
 * The folder is locked by another live process.
 *
 * @example
 * ```ts
 * try { await lockFolder(stateDir, 'fmq client') } catch (error) {
 *   if (error instanceof FolderLockedError) console.error(`in use by pid ${error.owner.pid}`)
 * }
 * ```
 */
export class FolderLockedError extends Error {
  override readonly name = 'FolderLockedError'
  readonly code = 'ERR_FMQ_LOCKED'

  constructor(
    /** The state folder. */
    readonly path: string,
    readonly owner: LockOwner,
  ) {
    super(`${path} is in use by ${owner.command || 'another process'} (pid ${owner.pid}${owner.host === hostname() ? '' : ` on ${owner.host}`}): one writer per destination; stop it first`)
  }
}

/** A lock held by this process, released by {@link FolderLock.release} or when the process exits. */
export interface FolderLock {
  readonly path: string
  release(): Promise<void>
}

/** Whether the process `pid` of this host runs (one of another user's counts: EPERM). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(text) as Partial<LockOwner>
    if (typeof owner.pid !== 'number' || !Number.isSafeInteger(owner.pid) || owner.pid <= 0) return undefined
    return { pid: owner.pid, host: typeof owner.host === 'string' ? owner.host : '', command: typeof owner.command === 'string' ? owner.command : '' }
  } catch {
    return undefined
  }
}

/**
 * Takes the lock of `stateDir` (created if needed) for this process, or throws
 * {@link FolderLockedError} naming the live process that holds it. A lock whose process is
 * gone (on this host), or that is not a lock we wrote, is taken over.
 *
 * @example
 * ```ts
 * const lock = await lockFolder('/backup/photos/.fmq', 'fmq track')
 * try { ... } finally { await lock.release() }
 * ```
 */
export async function lockFolder(stateDir: string, command: string): Promise<FolderLock> {
  // The folder it lives in (the inbox, DST) first, with the usual mode: a recursive mkdir
  // gives its mode to every folder it makes, and the inbox came out 0700.
  await mkdir(dirname(stateDir), { recursive: true })
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  const path = join(stateDir, LOCK_FILE)
  const text = JSON.stringify({ pid: process.pid, host: hostname(), command } satisfies LockOwner) + '\n'
  const scratch = join(stateDir, `${LOCK_FILE}.${process.pid}.${Date.now()}`)
  await writeFile(scratch, text, { mode: 0o600 })
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(scratch, path)
        break
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw error
      }
      const held = await readFile(path, 'utf8').catch(() => undefined)
      if (held === undefined) continue // released meanwhile
      const owner = parseOwner(held)
      if (owner !== undefined && owner.host === hostname() && owner.pid === process.pid) throw new FolderLockedError(stateDir, owner)
      // Another host's process cannot be checked from here: its lock stands.
      if (owner !== undefined && (owner.host !== hostname() || alive(owner.pid))) throw new FolderLockedError(stateDir, owner)
      // Stale: its process is gone (or the file is not a lock). Taken over.
      await unlink(path).catch(() => undefined)
    }
  } finally {
    await unlink(scratch).catch(() => undefined)
  }
  let released = false
  // Ours only: a lock taken over by another after ours was removed by hand stays.
  const ours = (): boolean => {
    try {
      return readFileSync(path, 'utf8') === text
    } catch {
      return false
    }
  }
  const onExit = (): void => {
    if (released || !ours()) return
    try {
      unlinkSync(path)
    } catch {
      // gone already
    }
  }
  process.once('exit', onExit)
  return {
    path,
    async release() {
      if (released) return
      process.removeListener('exit', onExit)
      if (ours()) await unlink(path).catch(() => undefined)
      released = true
    },
  }
}
