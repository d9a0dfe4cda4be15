/**
 * Writing what one server sends into the inbox. File names are untrusted: every name goes
 * through the safe resolver (src/fs/inbox.ts) and is refused if it points into the client's
 * state directory. Content goes into a partial file under `<stateDir>/partial/`, written at
 * the expected offset only, and is renamed into place once the final, empty chunk arrives:
 * a file is never visible under its final name until it is complete, and a shorter new
 * version never keeps an old tail (both weak spots of the reference client).
 *
 * @packageDocumentation
 */
import { constants, type Stats } from 'node:fs'
import { chmod, copyFile, lstat, mkdir, open, rename, unlink, utimes, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'

import { sha1Hex } from '../fs/digest.js'
import { PathOutsideInboxError, UnsafeNameError } from '../fs/errors.js'
import { ensureParentDirs, inboxSegments, resolveInboxPathSafely } from '../fs/inbox.js'
import { isPathInside } from '../fs/mounts.js'
import { CREATE, DELETE, type Cheezburger } from '../protocol/generated/fmq_msg.js'
import { realStateDir } from './cache.js'
import {
  CreditOverrunError,
  InboxWriteError,
  OutOfOrderChunkError,
  RefusedFileNameError,
} from './errors.js'
import type { DeletedEvent, DeliveredEvent, ProgressEvent } from './events.js'

/** Name of the directory of partial files inside the state directory. */
export const PARTIAL_DIR = 'partial'
/** Progress is reported at most this often per file. */
const PROGRESS_INTERVAL_MS = 100

/** What the writer needs from its link. */
export interface WriterHost {
  readonly endpoint: string
  /** The inbox and state directory as they are now (`setInbox` may change them). */
  paths(): { inbox: string; stateDir: string }
  delivered(event: Omit<DeliveredEvent, 'endpoint'>): void
  deleted(event: Omit<DeletedEvent, 'endpoint'>): void
  progress(event: Omit<ProgressEvent, 'endpoint'>): void
  error(error: Error): void
}

/** A file being received. */
interface Incoming {
  /** The name as the server sends it: the key of every later chunk. */
  readonly name: string
  readonly virtualPath: string
  readonly tempPath: string
  readonly handle: FileHandle
  /** Octets written so far: where the next chunk must start. */
  offset: number
  readonly size: number | undefined
  readonly mtimeMs: number | undefined
  readonly mode: number | undefined
  lastProgress: number
}

/** The CHEEZBURGERs of one server, applied to the inbox. */
export class InboxWriter {
  private readonly files = new Map<string, Incoming>()
  /** Names whose current transfer was refused: their later chunks are dropped without a word. */
  private readonly refused = new Set<string>()

  constructor(private readonly host: WriterHost) {}

  /**
   * Applies one CHEEZBURGER. Never throws: every problem is reported through `host.error` and
   * affects only the file it concerns.
   *
   * @param creditLeft - octets of content the server was allowed to send before this chunk.
   */
  async store(message: Cheezburger, creditLeft: number): Promise<void> {
    try {
      if (message.operation === DELETE) await this.remove(message.filename)
      else if (message.operation === CREATE) await this.create(message, creditLeft)
      else this.host.error(new InboxWriteError(message.filename, { cause: new Error(`unknown operation ${message.operation}`) }))
    } catch (error) {
      // Only a bug gets here; keep the transfer going all the same.
      this.host.error(asError(error, message.filename))
    }
  }

  /** Closes the partial files of this conversation and forgets them; their content stays on disk. */
  async closeAll(): Promise<void> {
    const files = [...this.files.values()]
    this.files.clear()
    this.refused.clear()
    await Promise.all(files.map((file) => file.handle.close().catch(() => undefined)))
  }

  private async create(message: Cheezburger, creditLeft: number): Promise<void> {
    const { filename: name, chunk, offset } = message
    // Both versions end a file with an empty chunk (v1 with eof 0, v2 with eof 1).
    const last = chunk.length === 0 || message.eof === 1
    let file = this.files.get(name)

    if (offset === 0n) {
      // Offset 0 starts the file over: whatever we had of it is stale.
      this.refused.delete(name)
      if (file !== undefined) {
        await this.discard(file)
        file = undefined
      }
    } else if (this.refused.has(name)) {
      if (last) this.refused.delete(name)
      return
    }

    try {
      if (chunk.length > creditLeft) throw new CreditOverrunError(name, chunk.length, creditLeft, 'credit')
      if (file === undefined) {
        if (offset !== 0n) throw new OutOfOrderChunkError(name, 0, offset)
        file = await this.begin(name, message.headers)
      } else if (offset !== BigInt(file.offset)) {
        throw new OutOfOrderChunkError(name, file.offset, offset)
      }
      if (file.size !== undefined && file.offset + chunk.length > file.size) {
        throw new CreditOverrunError(name, chunk.length, file.size - file.offset, 'size')
      }
      if (chunk.length > 0) {
        await writeAll(file.handle, chunk, file.offset)
        file.offset += chunk.length
        const now = Date.now()
        if (!last && now - file.lastProgress >= PROGRESS_INTERVAL_MS) {
          file.lastProgress = now
          this.host.progress({
            virtualPath: file.virtualPath,
            bytes: file.offset,
            ...(file.size === undefined ? {} : { size: file.size }),
          })
        }
      }
      if (last) await this.finish(file)
    } catch (error) {
      const current = this.files.get(name)
      if (current !== undefined) await this.discard(current)
      if (!last) this.refused.add(name)
      this.host.error(asError(error, name))
    }
  }

  private async begin(name: string, headers: ReadonlyMap<string, string>): Promise<Incoming> {
    const virtualPath = (await this.target(name)).virtualPath
    const { stateDir } = this.host.paths()
    const partialDir = join(stateDir, PARTIAL_DIR)
    await mkdir(partialDir, { recursive: true, mode: 0o700 })
    // One partial per server and name; the name is hashed so no server text reaches the path.
    const tempPath = join(partialDir, `${sha1Hex(`${this.host.endpoint}\n${name}`)}.part`)
    const handle = await open(tempPath, 'w', 0o600)
    const file: Incoming = {
      name,
      virtualPath,
      tempPath,
      handle,
      offset: 0,
      size: header(headers, 'size', DECIMAL),
      mtimeMs: header(headers, 'mtime', DECIMAL),
      mode: header(headers, 'mode', OCTAL),
      // Throttled from the start: a small file is done before its first progress report.
      lastProgress: Date.now(),
    }
    this.files.set(name, file)
    return file
  }

  private async finish(file: Incoming): Promise<void> {
    await file.handle.close()
    this.files.delete(file.name)
    try {
      // Owner keeps read and write, so a later version can always replace the file; no
      // set-id or sticky bits from a server.
      if (file.mode !== undefined) await chmod(file.tempPath, (file.mode & 0o777) | 0o600)
      if (file.mtimeMs !== undefined) await utimes(file.tempPath, new Date(), new Date(file.mtimeMs))
      // Checked again at the end: a directory on the way may have changed since the first chunk.
      const { path } = await this.target(file.name)
      const finalPath = await ensureParentDirs(this.host.paths().inbox, path)
      await moveIntoPlace(file.tempPath, finalPath)
      this.host.delivered({ virtualPath: file.virtualPath, path: finalPath, size: file.offset })
    } catch (error) {
      await unlink(file.tempPath).catch(() => undefined)
      throw error
    }
  }

  private async remove(name: string): Promise<void> {
    const file = this.files.get(name)
    if (file !== undefined) await this.discard(file)
    this.refused.delete(name)
    try {
      const { path, virtualPath } = await this.target(name)
      const stats = await lstatOrUndefined(path)
      if (stats === undefined || !stats.isFile()) return
      await unlink(path)
      this.host.deleted({ virtualPath, path })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      this.host.error(asError(error, name))
    }
  }

  /** Where a server's name lands in the inbox, or RefusedFileNameError. */
  private async target(name: string): Promise<{ path: string; virtualPath: string }> {
    const { inbox, stateDir } = this.host.paths()
    let path: string
    let virtualPath: string
    try {
      virtualPath = '/' + inboxSegments(name).join('/')
      path = await resolveInboxPathSafely(inbox, name)
    } catch (error) {
      if (error instanceof UnsafeNameError) throw new RefusedFileNameError(name, 'unsafe', { cause: error })
      if (error instanceof PathOutsideInboxError) throw new RefusedFileNameError(name, 'outside-inbox', { cause: error })
      throw error
    }
    const real = await realStateDir(inbox, stateDir)
    if (path === real.stateDir || isPathInside(real.stateDir, path)) throw new RefusedFileNameError(name, 'state-dir')
    return { path, virtualPath }
  }

  private async discard(file: Incoming): Promise<void> {
    this.files.delete(file.name)
    await file.handle.close().catch(() => undefined)
    await unlink(file.tempPath).catch(() => undefined)
  }
}

/** Renames the complete file over its final name, atomically when both are on one file system. */
async function moveIntoPlace(tempPath: string, finalPath: string): Promise<void> {
  const existing = await lstatOrUndefined(finalPath)
  if (existing?.isDirectory()) {
    throw Object.assign(new Error(`EISDIR: a directory is in the way at ${finalPath}`), { code: 'EISDIR', path: finalPath })
  }
  try {
    await rename(tempPath, finalPath)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error
    // State directory on another file system: copy next to the target, then rename there.
    const sibling = join(dirname(finalPath), `.${basename(finalPath)}.${randomBytes(6).toString('hex')}.fmq-tmp`)
    await copyFile(tempPath, sibling, constants.COPYFILE_EXCL)
    try {
      await rename(sibling, finalPath)
    } catch (renameError) {
      await unlink(sibling).catch(() => undefined)
      throw renameError
    }
    await unlink(tempPath).catch(() => undefined)
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let written = 0
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, position + written)
    written += bytesWritten
  }
}

const DECIMAL = { pattern: /^[0-9]{1,15}$/, radix: 10 }
// Unix modes travel in octal ("644", "0644", "100644" with the file-type bits).
const OCTAL = { pattern: /^(?:0o)?[0-7]{1,7}$/, radix: 8 }

function header(headers: ReadonlyMap<string, string>, name: string, format: typeof DECIMAL): number | undefined {
  const value = headers.get(name)
  if (value === undefined || !format.pattern.test(value)) return undefined
  return Number.parseInt(value.replace(/^0o/, ''), format.radix)
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw error
  }
}

function asError(error: unknown, name: string): Error {
  if (
    error instanceof RefusedFileNameError ||
    error instanceof OutOfOrderChunkError ||
    error instanceof CreditOverrunError ||
    error instanceof InboxWriteError
  ) {
    return error
  }
  return new InboxWriteError(name, { cause: error })
}
