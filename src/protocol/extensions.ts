/**
 * Our extensions to FILEMQ, carried in fields the reference peers already have and ignore
 * (ICANHAZ options and cache, CHEEZBURGER headers), so a reference peer on either side
 * still works: it simply does without them. spec/fmq_msg.xml and spec/fmq_msg.abnf
 * describe them; this file is their single implementation of names and formats.
 *
 * - ICANHAZ option `MIRROR=1` (with `RESYNC=1`): files named in the cache that the server no
 *   longer publishes are sent as deletes, so a client that was away ends an exact mirror.
 * - ICANHAZ option `ONCE=1` (with `RESYNC=1`): send what the path matches now, but do not
 *   subscribe to it (a client asking again for one file whose digest did not match).
 * - ICANHAZ cache value `SHA1@OFFSET`: "I hold the first OFFSET octets of this file, whose
 *   SHA-1 is SHA1; continue from there". OFFSET is a multiple of {@link RESUME_BLOCK}. The
 *   server continues at OFFSET when its file has that prefix, else sends the whole file;
 *   the reference server takes the value for a digest that does not match, and sends the
 *   whole file under RESYNC=1.
 * - ICANHAZ option `SYNCED=1`: the server sends a CHEEZBURGER of operation {@link SYNCED}
 *   (filename "/", empty chunk, no credit used) each time it has sent all it had queued for
 *   the client: after a subscription's resync, even an empty one, and after each burst of
 *   changes. A client then knows exactly when it mirrors the server. The mark carries a header
 *   `skipped` (a count) when entries under the client's subscriptions cannot be published
 *   (unreadable, FIFOs and other special files, names that are not UTF-8): the mirror is then
 *   partial, and the client can say so.
 * - CHEEZBURGER headers on the first chunk of a file: `size`, `mtime` (ms since the epoch),
 *   `mode` (octal permission bits) and `sha1` (of the whole file); on a delete, `sha1` of
 *   the version deleted when known. A server that had no digest for the file hashes it as it
 *   sends it, and puts `size` and `sha1` on the final, empty chunk instead (one read, one hash).
 *
 * @packageDocumentation
 */

import { RESUME_BLOCK, SYNCED } from './generated/fmq_msg.js'

/** Resume offsets are multiples of this (spec/fmq_msg.xml): the server keeps the digest of every such prefix. */
export { RESUME_BLOCK }
/** CHEEZBURGER operation: everything queued for the client was sent (ICANHAZ option SYNCED=1). */
export { SYNCED }

/** ICANHAZ option names. */
export const OPTION = {
  /** Reference: send everything under the path the cache does not hold. */
  RESYNC: 'RESYNC',
  /** Ours: also delete what the cache holds and the server no longer has. */
  MIRROR: 'MIRROR',
  /** Ours: send what the path matches now, without subscribing. */
  ONCE: 'ONCE',
  /** Ours: mark with a CHEEZBURGER of operation SYNCED each time all that was queued is sent. */
  SYNCED: 'SYNCED',
  /** Ours: the client takes eof=1 on a chunk with content as the end of its file (no empty chunk after it). */
  EOFDATA: 'EOFDATA',
} as const

/** CHEEZBURGER header names. */
export const HEADER = {
  SIZE: 'size',
  MTIME: 'mtime',
  MODE: 'mode',
  SHA1: 'sha1',
  /** On a SYNCED mark (ours): entries under the subscriptions that cannot be published, when any. */
  SKIPPED: 'skipped',
} as const

/** One cache value: a whole file the client holds, or the prefix of one it is receiving. */
export type CacheEntry =
  | { readonly kind: 'complete'; readonly sha1: string }
  | { readonly kind: 'partial'; readonly sha1: string; readonly offset: number }

const SHA1 = /^[0-9a-f]{40}$/
const PARTIAL = /^([0-9a-f]{40})@([0-9]{1,16})$/

/**
 * Reads a cache value; undefined for anything else (the entry is then just ignored, which
 * at worst sends a file again).
 *
 * @example
 * ```ts
 * parseCacheValue('a9993e364706816aba3e25717850c26c9cd0d89d@1048576') // { kind: 'partial', offset: 1048576, ... }
 * ```
 */
export function parseCacheValue(value: string): CacheEntry | undefined {
  const lower = value.toLowerCase()
  if (SHA1.test(lower)) return { kind: 'complete', sha1: lower }
  const partial = PARTIAL.exec(lower)
  if (partial === null) return undefined
  const offset = Number(partial[2])
  if (!Number.isSafeInteger(offset) || offset % RESUME_BLOCK !== 0) return undefined
  return { kind: 'partial', sha1: partial[1]!, offset }
}

/**
 * The cache value asking to resume a file at `offset`.
 *
 * @example
 * ```ts
 * formatPartialEntry('a9993e364706816aba3e25717850c26c9cd0d89d', 1048576) // 'a999...89d@1048576'
 * ```
 */
export function formatPartialEntry(sha1: string, offset: number): string {
  if (offset % RESUME_BLOCK !== 0) throw new RangeError(`resume offset ${offset} is not a multiple of ${RESUME_BLOCK}`)
  return `${sha1}@${offset}`
}

/** The largest resume offset at or below `length`. */
export function resumeOffset(length: number): number {
  return length - (length % RESUME_BLOCK)
}

/**
 * The SHA-1 (hex) of the prefix [0, offset) from a file's block digests (20 octets per
 * {@link RESUME_BLOCK}), or undefined when offset is not a block boundary inside the file.
 */
export function prefixDigest(blocks: Uint8Array, offset: number): string | undefined {
  if (offset <= 0 || offset % RESUME_BLOCK !== 0) return undefined
  const k = offset / RESUME_BLOCK
  if (k * 20 > blocks.length) return undefined
  return Buffer.from(blocks.buffer, blocks.byteOffset + (k - 1) * 20, 20).toString('hex')
}
