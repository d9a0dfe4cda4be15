/**
 * Content digests. SHA-1 is the fingerprint FILEMQ's cache exchanges (`filename=SHA-1 in hex`)
 * and what reference peers expect; XXH128 (below) is the fast digest our own peers negotiate
 * (FEATURES XXH128, spec/fmq_msg.xml), more than three times faster here. Files are hashed as a
 * stream, a buffer at a time, so size never matters for memory and the event loop gets a turn
 * between buffers.
 *
 * @packageDocumentation
 */

import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

import { createXXHash128, type IHasher } from 'hash-wasm';

import { loadNativeAddon } from '../util/native-addon.js';

// From the generated model, not extensions.ts, which builds on this module.
import { RESUME_BLOCK } from '../protocol/generated/fmq_msg.js';

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

/**
 * One WebAssembly XXH3-128 serves every XXH128 hash of this thread: each hash keeps its own
 * state (580 octets), loaded into the instance only when another hash used it last, so one
 * file hashed at a time (the common case) never switches. Compiled only where the native
 * addon is missing (started as this module loads, see {@link digestsReady}) or when asked for.
 */
let wasm: IHasher | undefined;
let wasmLoading: Promise<IHasher> | undefined;
let INITIAL_STATE: Uint8Array;
let owner: Xxh128Hash | undefined;

/** Compiles hash-wasm's XXH3-128 (once); {@link Xxh128Hash} runs once it resolves. */
export async function xxh128WasmReady(): Promise<void> {
  if (wasm !== undefined) return;
  const loaded = await (wasmLoading ??= createXXHash128());
  if (wasm === undefined) {
    loaded.init();
    INITIAL_STATE = loaded.save();
    wasm = loaded;
  }
}

function loadedWasm(): IHasher {
  if (wasm === undefined) throw new Error('XXH128 in WebAssembly is not compiled yet: await digestsReady() (the native addon is not built)');
  return wasm;
}

/**
 * XXH128 of content, as our peers define it (spec/fmq_msg.xml, XXH128): XXH3-128 with seed 0,
 * what `xxhsum -H2` prints. Through hash-wasm, whose streaming XXH3-128 runs at about 6 GB/s
 * here against 1.75 GB/s for Node's SHA-1 (BENCHMARKS.md, "Digest").
 */
export class Xxh128Hash implements ContentHash {
  readonly algorithm = 'xxh128' as const;
  bytes = 0;
  /** The state while another hash holds the instance. */
  private saved: Uint8Array;
  private result: string | undefined;

  /** Throws until {@link xxh128WasmReady} resolved. */
  constructor() {
    loadedWasm();
    this.saved = INITIAL_STATE;
  }

  update(data: Uint8Array): this {
    if (this.result !== undefined) throw new Error('Xxh128Hash: update after digest');
    const wasm = this.activate();
    wasm.update(data);
    this.bytes += data.byteLength;
    return this;
  }

  digest(): string {
    if (this.result === undefined) {
      this.result = this.activate().digest('hex');
      owner = undefined; // the instance's state is spent
    }
    return this.result;
  }

  copy(): ContentHash {
    const copy = new Xxh128Hash();
    copy.bytes = this.bytes;
    if (this.result !== undefined) {
      copy.result = this.result;
      return copy;
    }
    if (owner === this) copy.saved = loadedWasm().save();
    else copy.saved = this.saved;
    return copy;
  }

  /** The instance, holding this hash's state. */
  private activate(): IHasher {
    const wasm = loadedWasm();
    if (owner === this) return wasm;
    if (owner !== undefined) owner.saved = wasm.save();
    wasm.load(this.saved);
    owner = this;
    return wasm;
  }
}

/** native/xxh128.c: XXH3-128 over the caller's memory (an opaque state per hash). */
interface Xxh128Addon {
  readonly stateBytes: number;
  reset(state: Buffer): void;
  update(state: Buffer, data: Uint8Array): void;
  digest(state: Buffer): string;
  copy(from: Buffer, to: Buffer): void;
}

const native = loadNativeAddon<Xxh128Addon>('fmq_xxh128.node');

/**
 * {@link Xxh128Hash} through the native addon (native/xxh128.c, built where Debian's
 * libxxhash-dev is installed): it hashes the data where it lies, where hash-wasm copies every
 * 16 KiB into WebAssembly memory first. Measured (`npm run bench:digest`): BENCHMARKS.md.
 * Same digests (test/unit/fs-digest-xxh128.test.ts holds one against the other).
 */
class NativeXxh128Hash implements ContentHash {
  readonly algorithm = 'xxh128' as const;
  bytes = 0;
  private result: string | undefined;

  /** The XXH3 state, in memory of ours (Node's pool: no allocation of its own for a small file). */
  private readonly state: Buffer;

  constructor(
    private readonly addon: Xxh128Addon,
    from?: Buffer,
  ) {
    this.state = Buffer.allocUnsafe(addon.stateBytes);
    if (from === undefined) addon.reset(this.state);
    else addon.copy(from, this.state);
  }

  update(data: Uint8Array): this {
    if (this.result !== undefined) throw new Error('Xxh128Hash: update after digest');
    this.addon.update(this.state, data);
    this.bytes += data.byteLength;
    return this;
  }

  digest(): string {
    this.result ??= this.addon.digest(this.state);
    return this.result;
  }

  copy(): ContentHash {
    const copy = new NativeXxh128Hash(this.addon, this.state);
    copy.bytes = this.bytes;
    copy.result = this.result;
    return copy;
  }
}

/** Which XXH3-128 hashes here: the native addon's, else hash-wasm's. */
export const xxh128Kind: 'native' | 'webassembly' = native === null ? 'webassembly' : 'native';

// Without the addon, the WebAssembly one compiles from now on: it is ready long before the first
// file is hashed, and the entry points (Server.publish and bind, Client.connect) await it.
if (native === null) void xxh128WasmReady().catch(() => undefined);

/**
 * Resolves once every digest can be computed here: at once with the native XXH128, after
 * hash-wasm's compiles without it. Entry points await it; code after them hashes synchronously.
 */
export async function digestsReady(): Promise<void> {
  if (native === null) await xxh128WasmReady();
}

/** Octets of a prefix digest as the index keeps them, per algorithm. */
const PREFIX_BYTES = { sha1: 20, xxh128: 16 } as const satisfies Record<DigestAlgorithm, number>;

/**
 * The digest (hex) of the prefix [0, offset) of a file from the prefix digests its index keeps
 * (the digest of every prefix [0, k × RESUME_BLOCK), 20 octets each for SHA-1, 16 for XXH128),
 * or undefined when offset is not a block boundary inside the file.
 */
export function prefixDigestOf(algorithm: DigestAlgorithm, blocks: Uint8Array, offset: number): string | undefined {
  if (offset <= 0 || offset % RESUME_BLOCK !== 0) return undefined;
  const k = offset / RESUME_BLOCK;
  const width = PREFIX_BYTES[algorithm];
  if (k * width > blocks.length) return undefined;
  return Buffer.from(blocks.buffer, blocks.byteOffset + (k - 1) * width, width).toString('hex');
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
  if (algorithm === 'sha1') return new Sha1Hash();
  return native === null ? new Xxh128Hash() : new NativeXxh128Hash(native);
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
   * The digest of every prefix `[0, k × blockSize)`, for k = 1 .. floor(bytes / blockSize), one
   * after the other: 20 octets each for SHA-1, 16 for XXH128 ({@link prefixDigestOf} reads them).
   */
  blocks: Buffer;
  /** Octets actually read: the size of the content hashed, whatever a stat said before. */
  bytes: number;
}

/**
 * A digest that also keeps the digest of every prefix ending at a block boundary, fed with
 * chunks of any size: a chunk straddling a boundary is split there, and the running hash is
 * copied (not restarted) at each one, so the whole file is still read and hashed once.
 */
export class BlockHasher {
  private readonly hash: ContentHash;
  private readonly prefixes: Buffer[] = [];
  private length = 0;

  constructor(
    private readonly blockSize: number = RESUME_BLOCK,
    readonly algorithm: DigestAlgorithm = 'sha1',
  ) {
    this.hash = createContentHash(algorithm);
  }

  update(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const toBoundary = this.blockSize - (this.length % this.blockSize);
      const end = Math.min(chunk.length, start + toBoundary);
      this.hash.update(chunk.subarray(start, end));
      this.length += end - start;
      if (this.length % this.blockSize === 0) this.prefixes.push(Buffer.from(this.hash.copy().digest(), 'hex'));
      start = end;
    }
  }

  finish(): BlockDigests {
    return { algorithm: this.algorithm, digest: this.hash.digest(), blocks: Buffer.concat(this.prefixes), bytes: this.length };
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
  let large: Buffer | undefined;
  try {
    const hasher = new BlockHasher(blockSize, algorithm);
    // Small first, so a tree of small files does not allocate a large buffer per file.
    let buffer: Buffer = Buffer.allocUnsafe(Math.min(highWaterMark, FIRST_READ_BYTES));
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      signal?.throwIfAborted();
      const paused = pause?.();
      if (paused !== undefined) await paused;
      if (bytesRead === 0) break;
      hasher.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
      if (bytesRead === buffer.length && buffer.length < highWaterMark) {
        large = takeReadBuffer(highWaterMark);
        buffer = large;
      }
    }
    return hasher.finish();
  } finally {
    if (large !== undefined) spareReadBuffer = large;
    if (typeof file === 'string') await handle.close();
  }
}

/**
 * The large read buffer of the last file hashed, kept for the next one: a server indexing a
 * tree of 1 MiB files allocated a megabyte per file, and held tens of them until collected.
 */
let spareReadBuffer: Buffer | undefined;

function takeReadBuffer(length: number): Buffer {
  const spare = spareReadBuffer;
  if (spare !== undefined && spare.length === length) {
    spareReadBuffer = undefined;
    return spare;
  }
  return Buffer.allocUnsafe(length);
}
