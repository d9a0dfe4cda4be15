/**
 * Content digests. SHA-1 is the fingerprint FILEMQ's cache exchanges (`filename=SHA-1 in hex`)
 * and what reference peers expect; XXH128 (below) is the fast digest our own peers negotiate
 * (FEATURES XXH128, spec/fmq_msg.xml), about sixteen times faster here. Files are hashed as a
 * stream, a buffer at a time, so size never matters for memory and the event loop gets a turn
 * between buffers.
 *
 * @packageDocumentation
 */

import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

import { xxh3 } from '@node-rs/xxhash';

// From the generated model, not extensions.ts, which builds on this module.
import { DIGEST_BLOCK, RESUME_BLOCK } from '../protocol/generated/fmq_msg.js';

/** The digests a peer may use: SHA-1 (40 hex digits, every peer) or XXH128 (32, ours, negotiated). */
export type DigestAlgorithm = 'sha1' | 'xxh128';

/** Hex digits of a digest of each algorithm: the length alone tells them apart. */
export const DIGEST_HEX_LENGTH = { sha1: 40, xxh128: 32 } as const satisfies Record<DigestAlgorithm, number>;

/** The algorithm of a digest in hex, told by its length; undefined for anything else. */
export function digestAlgorithm(hex: string): DigestAlgorithm | undefined {
  return hex.length === 40 ? 'sha1' : hex.length === 32 ? 'xxh128' : undefined;
}

/**
 * A digest fed piece by piece, of either algorithm: what a receiver verifies with, and what a
 * resumed file goes on from ({@link ContentHash.copy} keeps a prefix's state).
 */
export interface ContentHash {
  readonly algorithm: DigestAlgorithm;
  /** Octets fed so far. */
  readonly bytes: number;
  update(data: Uint8Array): this;
  /** The digest in lower-case hex; ends the hash. */
  digest(): string;
  /** An independent hash in the same state. */
  copy(): ContentHash;
}

class Sha1Hash implements ContentHash {
  readonly algorithm = 'sha1' as const;
  bytes = 0;
  constructor(private readonly hash: Hash = createHash('sha1')) {}
  update(data: Uint8Array): this {
    this.hash.update(data);
    this.bytes += data.byteLength;
    return this;
  }
  digest(): string {
    return this.hash.digest('hex');
  }
  copy(): ContentHash {
    const copy = new Sha1Hash(this.hash.copy());
    copy.bytes = this.bytes;
    return copy;
  }
}

const U64 = (1n << 64n) - 1n;
const LEAF_BYTES = 16;

function writeU128(value: bigint, target: Buffer, offset: number): void {
  target.writeBigUInt64BE(value >> 64n, offset);
  target.writeBigUInt64BE(value & U64, offset + 8);
}

function hex128(value: bigint): string {
  return value.toString(16).padStart(32, '0');
}

/**
 * XXH128 of a file, as our peers define it (spec/fmq_msg.xml, XXH128): content of at most
 * DIGEST_BLOCK octets is hashed as it is (XXH3-128, seed 0, the `xxhsum -H2` of the file);
 * longer content is cut into DIGEST_BLOCK blocks (the last may be shorter), each hashed so, and
 * the digest is the XXH3-128 of their 16-octet big-endian digests one after the other, with
 * the content's length as seed. Why a tree: the native binding hashes 128 bits in one shot
 * only, and the digest of every prefix ending at a block boundary (what a resume proves) is
 * the digest of the file cut there, from the blocks' digests alone, without reading again.
 */
export class Xxh128Hash implements ContentHash {
  readonly algorithm = 'xxh128' as const;
  bytes = 0;
  /** Digests of the complete blocks, 16 octets each; `leafCount` of them used. */
  private leaves: Buffer = Buffer.alloc(0);
  private leafCount = 0;
  /** Octets of the current block not hashed yet (copied: callers reuse their buffers). */
  private staged: Buffer | undefined;
  private stagedLength = 0;

  constructor(private readonly blockSize: number = DIGEST_BLOCK) {}

  update(data: Uint8Array): this {
    const block = this.blockSize;
    let at = 0;
    while (at < data.length) {
      // A whole block in the caller's buffer is hashed in place, with no copy.
      if (this.stagedLength === 0 && data.length - at >= block) {
        this.pushLeaf(xxh3.xxh128(data.subarray(at, at + block)));
        at += block;
        continue;
      }
      const take = Math.min(block - this.stagedLength, data.length - at);
      const need = this.stagedLength + take;
      if (this.staged === undefined || this.staged.length < need) {
        // Grown as needed: a file of a few KiB never takes a block-sized buffer.
        const grown = Buffer.allocUnsafe(Math.min(block, Math.max(need, 2 * (this.staged?.length ?? 0), 64 * 1024)));
        if (this.staged !== undefined) this.staged.copy(grown, 0, 0, this.stagedLength);
        this.staged = grown;
      }
      this.staged.set(data.subarray(at, at + take), this.stagedLength);
      this.stagedLength += take;
      at += take;
      if (this.stagedLength === block) {
        this.pushLeaf(xxh3.xxh128(this.staged.subarray(0, block)));
        this.stagedLength = 0;
      }
    }
    this.bytes += data.length;
    return this;
  }

  /** The 16-octet digests of the complete blocks so far (what the server indexes for resumes). */
  blocks(): Buffer {
    return Buffer.from(this.leaves.subarray(0, this.leafCount * LEAF_BYTES));
  }

  digest(): string {
    if (this.leafCount === 0) return hex128(xxh3.xxh128(this.staged === undefined ? Buffer.alloc(0) : this.staged.subarray(0, this.stagedLength)));
    if (this.stagedLength > 0) this.pushLeaf(xxh3.xxh128(this.staged!.subarray(0, this.stagedLength)));
    this.stagedLength = 0;
    return treeDigest(this.leaves.subarray(0, this.leafCount * LEAF_BYTES), this.bytes, this.blockSize);
  }

  copy(): ContentHash {
    const copy = new Xxh128Hash(this.blockSize);
    copy.bytes = this.bytes;
    copy.leaves = Buffer.from(this.leaves);
    copy.leafCount = this.leafCount;
    if (this.staged !== undefined) copy.staged = Buffer.from(this.staged);
    copy.stagedLength = this.stagedLength;
    return copy;
  }

  private pushLeaf(value: bigint): void {
    if ((this.leafCount + 1) * LEAF_BYTES > this.leaves.length) {
      const grown = Buffer.allocUnsafe(Math.max(LEAF_BYTES * 64, this.leaves.length * 2));
      this.leaves.copy(grown, 0, 0, this.leafCount * LEAF_BYTES);
      this.leaves = grown;
    }
    writeU128(value, this.leaves, this.leafCount * LEAF_BYTES);
    this.leafCount++;
  }
}

/** The XXH128 of content of `bytes` octets from its block digests (one block: that block's digest). */
function treeDigest(leaves: Uint8Array, bytes: number, blockSize: number): string {
  if (leaves.length === LEAF_BYTES && bytes <= blockSize) return Buffer.from(leaves.buffer, leaves.byteOffset, LEAF_BYTES).toString('hex');
  return hex128(xxh3.xxh128(leaves, BigInt(bytes)));
}

/**
 * The digest (hex) of the prefix [0, offset) of a file from the block digests its index keeps
 * (SHA-1: the 20-octet digest of every prefix; XXH128: the 16-octet digest of every block), or
 * undefined when offset is not a block boundary inside the file.
 */
export function prefixDigestOf(algorithm: DigestAlgorithm, blocks: Uint8Array, offset: number): string | undefined {
  if (offset <= 0 || offset % RESUME_BLOCK !== 0) return undefined;
  const k = offset / RESUME_BLOCK;
  if (algorithm === 'sha1') {
    if (k * 20 > blocks.length) return undefined;
    return Buffer.from(blocks.buffer, blocks.byteOffset + (k - 1) * 20, 20).toString('hex');
  }
  // DIGEST_BLOCK equals RESUME_BLOCK (the model says so): a resume prefix is whole blocks.
  if (k * LEAF_BYTES > blocks.length) return undefined;
  return treeDigest(blocks.subarray(0, k * LEAF_BYTES), offset, DIGEST_BLOCK);
}

/**
 * A new hash of either algorithm.
 *
 * @example
 * ```ts
 * const hash = createContentHash('xxh128')
 * for (const chunk of chunks) hash.update(chunk)
 * hash.digest() // 32 hex digits
 * ```
 */
export function createContentHash(algorithm: DigestAlgorithm): ContentHash {
  return algorithm === 'sha1' ? new Sha1Hash() : new Xxh128Hash();
}

/**
 * The digest of data in memory, in lower-case hex.
 *
 * @example
 * ```ts
 * digestHex('xxh128', 'abc') // '06b05ab6733a618578af5f94892f3950'
 * ```
 */
export function digestHex(algorithm: DigestAlgorithm, data: Uint8Array | string): string {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return createContentHash(algorithm).update(bytes).digest();
}

/**
 * The digest of a file's content, read as a stream, with the octets read.
 *
 * @example
 * ```ts
 * const { digest } = await hashFile('/in/a.txt', 'xxh128')
 * ```
 */
export async function hashFile(path: string, algorithm: DigestAlgorithm, options: Sha1FileOptions = {}): Promise<{ digest: string; bytes: number }> {
  const { signal, highWaterMark = SHA1_READ_BYTES } = options;
  signal?.throwIfAborted();
  const hash = createContentHash(algorithm);
  const stream = createReadStream(path, signal === undefined ? { highWaterMark } : { highWaterMark, signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) hash.update(chunk);
  return { bytes: hash.bytes, digest: hash.digest() };
}

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
  return digestFileSync(path, maxBytes, 'sha1');
}

/** {@link sha1FileSync} in either algorithm. */
export function digestFileSync(path: string, maxBytes: number, algorithm: DigestAlgorithm): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    if (fstatSync(fd).size > maxBytes) return undefined;
    const hash = createContentHash(algorithm);
    const buffer = Buffer.allocUnsafe(Math.min(SHA1_READ_BYTES, maxBytes + 1));
    let total = 0;
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      total += read;
      if (total > maxBytes) return undefined;
      hash.update(buffer.subarray(0, read));
    }
    return hash.digest();
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
  /** Default 'sha1'. */
  algorithm?: DigestAlgorithm;
}

/** What {@link hashFileWithBlocks} found. */
export interface BlockDigests {
  readonly algorithm: DigestAlgorithm;
  /** Digest of the whole content, lower-case hex. */
  digest: string;
  /**
   * SHA-1: the 20-octet SHA-1 of every prefix `[0, k × blockSize)`; XXH128: the 16-octet XXH128
   * of every block `[(k - 1) × blockSize, k × blockSize)`; for k = 1 .. floor(bytes / blockSize),
   * one after the other ({@link prefixDigestOf} reads either).
   */
  blocks: Buffer;
  /** Octets actually read: the size of the content hashed, whatever a stat said before. */
  bytes: number;
}

/**
 * A digest that also keeps what proves every prefix ending at a block boundary, fed with
 * chunks of any size. SHA-1: a chunk straddling a boundary is split there, and the running
 * hash is copied (not restarted) at each one, so the whole file is still read once. XXH128:
 * the digests of the blocks, which its digest is made of anyway.
 */
export class BlockHasher {
  private readonly hash: Hash | undefined;
  private readonly xxh: Xxh128Hash | undefined;
  private readonly prefixes: Buffer[] = [];
  private length = 0;

  constructor(
    private readonly blockSize: number = RESUME_BLOCK,
    readonly algorithm: DigestAlgorithm = 'sha1',
  ) {
    if (algorithm === 'sha1') this.hash = createHash('sha1');
    else this.xxh = new Xxh128Hash(blockSize);
  }

  update(chunk: Buffer): void {
    if (this.xxh !== undefined) {
      this.xxh.update(chunk);
      this.length += chunk.length;
      return;
    }
    const hash = this.hash!;
    let start = 0;
    while (start < chunk.length) {
      const toBoundary = this.blockSize - (this.length % this.blockSize);
      const end = Math.min(chunk.length, start + toBoundary);
      hash.update(chunk.subarray(start, end));
      this.length += end - start;
      if (this.length % this.blockSize === 0) this.prefixes.push(hash.copy().digest());
      start = end;
    }
  }

  finish(): BlockDigests {
    if (this.xxh !== undefined) {
      const blocks = this.xxh.blocks();
      return { algorithm: 'xxh128', digest: this.xxh.digest(), blocks, bytes: this.length };
    }
    return { algorithm: 'sha1', digest: this.hash!.digest('hex'), blocks: Buffer.concat(this.prefixes), bytes: this.length };
  }
}

/**
 * The digest of a file and what proves every prefix ending at a block boundary (what a client
 * resuming a partial download proves it holds; see {@link prefixDigestOf}), in one
 * read pass. Reads are asynchronous, a buffer at a time, so the event loop gets a turn
 * between them. Given an open handle, it reads from offset 0 and leaves the handle open.
 *
 * @example
 * ```ts
 * const { digest, blocks, bytes } = await hashFileWithBlocks('/srv/iso/big.iso')
 * blocks.subarray(0, 20).toString('hex') // SHA-1 of the first RESUME_BLOCK octets
 * ```
 */
export async function hashFileWithBlocks(file: string | FileHandle, options: BlockHashOptions = {}): Promise<BlockDigests> {
  const { blockSize = RESUME_BLOCK, signal, pause, highWaterMark = SHA1_READ_BYTES, algorithm = 'sha1' } = options;
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0) throw new RangeError(`block size ${blockSize} is not a positive integer`);
  signal?.throwIfAborted();
  const handle = typeof file === 'string' ? await open(file, 'r') : file;
  try {
    const hasher = new BlockHasher(blockSize, algorithm);
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
