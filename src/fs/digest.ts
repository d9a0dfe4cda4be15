/**
 * SHA-1 digests, the fingerprint FILEMQ's cache exchanges (`filename=SHA-1 in hex`). Files are
 * hashed as a stream, a buffer at a time, so size never matters for memory and the event loop
 * gets a turn between buffers.
 *
 * @packageDocumentation
 */

import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

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
