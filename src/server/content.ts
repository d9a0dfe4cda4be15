/**
 * Reading the content of a file being sent. A small file is read whole, synchronously, the
 * moment its transfer starts: its open, stat, read and close cost microseconds each, while
 * an asynchronous call costs a thread-pool round trip, and a tree of small files is nothing
 * but those calls. A large file is read a chunk ahead of what is sent, asynchronously, so the
 * disk works while the previous chunk goes out, into memory with room for the rest of the
 * frame before it, so the chunk goes on the wire without a copy. That memory is used again
 * once the client acknowledged the chunk ({@link recycleChunk}): a fresh megabyte costs 256
 * page faults when first read into, and a spent one waits for the collector, which together
 * cost more than the read itself and kept tens of megabytes alive per client.
 *
 * @packageDocumentation
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs'
import { type FileHandle, open, stat } from 'node:fs/promises'
import { restoreHeadroom, withHeadroom } from '../protocol/wire.js'
import type { FileStat } from './file-index.js'

/** Files up to this size are read whole, synchronously, when their transfer starts. */
export const WHOLE_FILE_LIMIT = 256 * 1024

/** Full chunks' memory given back by {@link recycleChunk}, by length, ready to be read into again. */
const pool = new Map<number, Buffer[]>()

/**
 * Memory kept per chunk length: what a client's credit window keeps in flight (8 MiB by
 * default) and the chunk read ahead; more comes back only when a client's window is larger.
 */
const POOLED = 12

/** Memory for a chunk of `length` octets, with room for the frame before it: recycled when there is some. */
function chunkMemory(length: number): Buffer {
  const recycled = pool.get(length)?.pop()
  return recycled === undefined ? withHeadroom(length) : restoreHeadroom(recycled)
}

/**
 * Gives back the memory of a chunk read by {@link Content.take} and handed out whole
 * ({@link Content.drained}), once the client said it received it (peer.ts, on NOM): every
 * frame carrying it was written to the socket by then, so nothing reads it again.
 */
export function recycleChunk(memory: Buffer): void {
  let free = pool.get(memory.length)
  if (free === undefined) pool.set(memory.length, (free = []))
  if (free.length < POOLED) free.push(memory)
}

/** The content of one version of a file, handed out in order. */
export interface Content extends FileStat {
  /** Where sending starts: the offset asked for, or 0 when that is past the end. */
  readonly start: number
  /** The next `want` octets or fewer (a chunk boundary); empty when the file got shorter under us. */
  take(want: number): Buffer | Promise<Buffer>
  /**
   * The memory read into whose last octets the latest `take` handed out, once: it may be
   * read into again ({@link recycleChunk}) when the chunk is acknowledged. Undefined for
   * memory not worth recycling (a small file, a short read).
   */
  drained?(): Buffer | undefined
  /** Whether the file by its name is no longer the version read (written, truncated or replaced). */
  torn(): boolean | Promise<boolean>
  close(): Promise<void>
}

/**
 * Opens a file's content from `offset`: read whole when small, else read ahead by chunks.
 * Undefined when it cannot be opened now (gone, no permission): the watcher says what became of it.
 */
export async function openContent(path: string, offset: number, chunkSize: number, expectedSize: number): Promise<Content | undefined> {
  // Judged by the size the file was published with; the stat of the open file decides what is sent.
  if (expectedSize > WHOLE_FILE_LIMIT) return openChunked(path, offset, chunkSize)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    const info = fstatSync(fd)
    if (info.size > WHOLE_FILE_LIMIT) {
      closeSync(fd)
      return openChunked(path, offset, chunkSize) // it grew since
    }
    const data = Buffer.allocUnsafe(info.size)
    let read = 0
    while (read < info.size) {
      const n = readSync(fd, data, read, info.size - read, read)
      if (n === 0) break
      read += n
    }
    closeSync(fd)
    // One stat by name tells an in-place write (same inode, new size or mtime) and a replacement (new inode).
    const named = statOrUndefined(path)
    const torn = read !== info.size || named === undefined || !sameStat(named, info)
    return new WholeContent(data.subarray(0, read), info, offset <= read ? offset : 0, torn)
  } catch {
    try {
      closeSync(fd)
    } catch {
      // closed already
    }
    return undefined
  }
}

/** A large file, opened for asynchronous reads a chunk ahead. */
async function openChunked(path: string, offset: number, chunkSize: number): Promise<Content | undefined> {
  const handle = await open(path, 'r').catch(() => undefined)
  if (handle === undefined) return undefined
  const opened = await handle.stat().catch(() => undefined)
  if (opened === undefined) {
    await handle.close().catch(() => undefined)
    return undefined
  }
  return new ChunkedContent(handle, path, opened, offset <= opened.size ? offset : 0, chunkSize)
}

const sameStat = (a: FileStat, b: FileStat): boolean => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino

function statOrUndefined(path: string): FileStat | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/** All of a small file, in memory. */
class WholeContent implements Content {
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
  constructor(
    private data: Buffer,
    info: FileStat,
    readonly start: number,
    private readonly changed: boolean,
  ) {
    this.size = data.length
    this.mtimeMs = info.mtimeMs
    this.ino = info.ino
    this.data = data.subarray(start)
  }

  take(want: number): Buffer {
    const chunk = this.data.subarray(0, want)
    this.data = this.data.subarray(chunk.length)
    return chunk
  }

  torn(): boolean {
    return this.changed
  }

  async close(): Promise<void> {}
}

/** A large file, read one chunk ahead of what is sent. */
class ChunkedContent implements Content {
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
  /** Read but not handed out yet, starting at `position`. */
  private buffered: Buffer = Buffer.alloc(0)
  private position: number
  private ahead: Promise<Buffer> | undefined
  /** The full chunk memory `buffered` is in, while it is not all handed out. */
  private memory: Buffer | undefined
  /** Memory all handed out by the latest `take`. */
  private spent: Buffer | undefined

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    info: FileStat,
    readonly start: number,
    private readonly chunkSize: number,
  ) {
    this.size = info.size
    this.mtimeMs = info.mtimeMs
    this.ino = info.ino
    this.position = start
    this.ahead = this.read(start)
  }

  async take(want: number): Promise<Buffer> {
    this.spent = undefined
    if (this.buffered.length === 0) {
      this.buffered = await (this.ahead ?? this.read(this.position))
      this.ahead = undefined
      // Only full chunks are recycled: a file's tail is of a length seldom asked again.
      this.memory = this.buffered.length === this.chunkSize ? this.buffered : undefined
    }
    const chunk = this.buffered.subarray(0, want)
    this.buffered = this.buffered.subarray(chunk.length)
    this.position += chunk.length
    if (this.buffered.length === 0) {
      this.spent = this.memory
      this.memory = undefined
    }
    // The disk reads the next chunk while this one goes out.
    if (this.buffered.length === 0 && this.position < this.size && chunk.length > 0) this.ahead = this.read(this.position)
    return chunk
  }

  drained(): Buffer | undefined {
    const spent = this.spent
    this.spent = undefined
    return spent
  }

  async torn(): Promise<boolean> {
    const named = await stat(this.path).catch(() => undefined)
    return named === undefined || !sameStat(named, this)
  }

  async close(): Promise<void> {
    await this.ahead?.catch(() => undefined)
    this.ahead = undefined
    await this.handle.close().catch(() => undefined)
  }

  /** Reads the chunk at `position`; a failure is seen by the `take` that awaits it, never unhandled. */
  private read(position: number): Promise<Buffer> {
    const reading = this.readAt(position)
    reading.catch(() => undefined)
    return reading
  }

  private async readAt(position: number): Promise<Buffer> {
    const length = Math.min(this.chunkSize, this.size - position)
    if (length <= 0) return Buffer.alloc(0)
    // Read where the frame will be: the chunk is sent without a copy (wire.ts, withHeadroom).
    const buffer = chunkMemory(length)
    let filled = 0
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, position + filled)
      if (bytesRead === 0) break
      filled += bytesRead
    }
    return buffer.subarray(0, filled)
  }
}
