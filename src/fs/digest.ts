/**
 * SHA-1 digests, the fingerprint FILEMQ's cache exchanges (`filename=SHA-1 in hex`). Files are
 * hashed as a stream, a buffer at a time, so size never matters for memory and the event loop
 * gets a turn between buffers.
 *
 * @packageDocumentation
 */

import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

import { RESUME_BLOCK } from '../protocol/extensions.js';

/** Default read size when hashing a file: large enough to keep syscalls rare. */
export const SHA1_READ_BYTES = 1024 * 1024;

/** Options of {@link sha1File} and {@link IncrementalSha1.fromFile}. */
export interface Sha1FileOptions {
  /** Stops hashing: the promise rejects with an `AbortError`. */
  signal?: AbortSignal;
  /** Read size in octets. Default {@link SHA1_READ_BYTES}. */
  highWaterMark?: number;
}

/**
 * A SHA-1 fed piece by piece, e.g. with the chunks of a file as they arrive, counting the
 * octets it has seen.
 *
 * @example
 * ```ts
 * const sha1 = new IncrementalSha1()
 * for (const chunk of chunks) sha1.update(chunk)
 * sha1.digest() // 'a9993e36...'
 * ```
 */
export class IncrementalSha1 {
  private readonly hash: Hash = createHash('sha1');
  private length = 0;
  private result: string | undefined;

  /**
   * A hash already fed with a file's current content, to continue as more of it arrives
   * (resuming a partial download).
   */
  static async fromFile(path: string, options: Sha1FileOptions = {}): Promise<IncrementalSha1> {
    const { signal, highWaterMark = SHA1_READ_BYTES } = options;
    signal?.throwIfAborted();
    const sha1 = new IncrementalSha1();
    const stream = createReadStream(path, signal === undefined ? { highWaterMark } : { highWaterMark, signal });
    for await (const chunk of stream as AsyncIterable<Buffer>) sha1.update(chunk);
    return sha1;
  }

  /** Octets fed so far. */
  get bytes(): number {
    return this.length;
  }

  /** Feeds more data. Throws once {@link IncrementalSha1.digest} has been called. */
  update(data: Uint8Array | string): this {
    if (this.result !== undefined) throw new Error('IncrementalSha1: update after digest');
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.hash.update(bytes);
    this.length += bytes.byteLength;
    return this;
  }

  /** The digest in lower-case hex. May be called again; later calls return the same value. */
  digest(): string {
    this.result ??= this.hash.digest('hex');
    return this.result;
  }
}

/**
 * The SHA-1 of a file's content in lower-case hex, read as a stream.
 *
 * @example
 * ```ts
 * const digest = await sha1File('/srv/photos/a.jpg', { signal: AbortSignal.timeout(60_000) })
 * ```
 */
export async function sha1File(path: string, options: Sha1FileOptions = {}): Promise<string> {
  return (await IncrementalSha1.fromFile(path, options)).digest();
}

/**
 * The SHA-1 of data in memory, in lower-case hex.
 *
 * @example
 * ```ts
 * sha1Hex('abc') // 'a9993e364706816aba3e25717850c26c9cd0d89d'
 * ```
 */
export function sha1Hex(data: Uint8Array | string): string {
  return createHash('sha1').update(data).digest('hex');
}

/**
 * The SHA-1 of a small file read synchronously (at most `maxBytes`, else undefined, as when it
 * cannot be read): for a check too short to be worth a turn of the event loop.
 *
 * @example
 * ```ts
 * sha1FileSync('/in/a.txt', 4 * 1024 * 1024) // 'a9993e36...' or undefined
 * ```
 */
export function sha1FileSync(path: string, maxBytes: number): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    if (fstatSync(fd).size > maxBytes) return undefined;
    const hash = createHash('sha1');
    const buffer = Buffer.allocUnsafe(Math.min(SHA1_READ_BYTES, maxBytes + 1));
    let total = 0;
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      total += read;
      if (total > maxBytes) return undefined;
      hash.update(buffer.subarray(0, read));
    }
    return hash.digest('hex');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const FIRST_READ_BYTES = 64 * 1024;

/** Options of {@link hashFileWithBlocks}. */
export interface BlockHashOptions {
  /** Octets per block: a prefix digest is kept at every multiple. Default {@link RESUME_BLOCK}. */
  blockSize?: number;
  /** Stops hashing between reads: the promise rejects with the signal's reason (an `AbortError`). */
  signal?: AbortSignal;
  /**
   * Asked between reads: a promise makes the hashing wait for it (to give way to more urgent
   * work); a rejection ends the hashing with that error.
   */
  pause?: () => Promise<void> | undefined;
  /** Read size in octets. Default {@link SHA1_READ_BYTES}. */
  highWaterMark?: number;
}

/** What {@link hashFileWithBlocks} found. */
export interface BlockDigests {
  /** SHA-1 of the whole content, lower-case hex. */
  sha1: string;
  /**
   * The 20-octet SHA-1 of every prefix `[0, k × blockSize)`, for k = 1 .. floor(bytes / blockSize),
   * one after the other.
   */
  blocks: Buffer;
  /** Octets actually read: the size of the content hashed, whatever a stat said before. */
  bytes: number;
}

/**
 * A SHA-1 that also keeps the digest of every prefix ending at a block boundary, fed with
 * chunks of any size: a chunk straddling a boundary is split there, and the running hash is
 * copied (not restarted) at each one, so the whole file is still read once.
 */
export class BlockHasher {
  private readonly hash: Hash = createHash('sha1');
  private readonly prefixes: Buffer[] = [];
  private length = 0;

  constructor(private readonly blockSize: number = RESUME_BLOCK) {}

  update(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const toBoundary = this.blockSize - (this.length % this.blockSize);
      const end = Math.min(chunk.length, start + toBoundary);
      this.hash.update(chunk.subarray(start, end));
      this.length += end - start;
      if (this.length % this.blockSize === 0) this.prefixes.push(this.hash.copy().digest());
      start = end;
    }
  }

  finish(): BlockDigests {
    return { sha1: this.hash.digest('hex'), blocks: Buffer.concat(this.prefixes), bytes: this.length };
  }
}

/**
 * The SHA-1 of a file and of every prefix ending at a block boundary (what a client resuming
 * a partial download proves it holds; see `prefixDigest` in protocol/extensions.ts), in one
 * read pass. Reads are asynchronous, a buffer at a time, so the event loop gets a turn
 * between them. Given an open handle, it reads from offset 0 and leaves the handle open.
 *
 * @example
 * ```ts
 * const { sha1, blocks, bytes } = await hashFileWithBlocks('/srv/iso/big.iso')
 * blocks.subarray(0, 20).toString('hex') // SHA-1 of the first RESUME_BLOCK octets
 * ```
 */
export async function hashFileWithBlocks(file: string | FileHandle, options: BlockHashOptions = {}): Promise<BlockDigests> {
  const { blockSize = RESUME_BLOCK, signal, pause, highWaterMark = SHA1_READ_BYTES } = options;
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0) throw new RangeError(`block size ${blockSize} is not a positive integer`);
  signal?.throwIfAborted();
  const handle = typeof file === 'string' ? await open(file, 'r') : file;
  try {
    const hasher = new BlockHasher(blockSize);
    // Small first, so a tree of small files does not allocate a large buffer per file.
    let buffer = Buffer.allocUnsafe(Math.min(highWaterMark, FIRST_READ_BYTES));
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      signal?.throwIfAborted();
      const paused = pause?.();
      if (paused !== undefined) await paused;
      if (bytesRead === 0) break;
      hasher.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
      if (bytesRead === buffer.length && buffer.length < highWaterMark) buffer = Buffer.allocUnsafe(highWaterMark);
    }
    return hasher.finish();
  } finally {
    if (typeof file === 'string') await handle.close();
  }
}
