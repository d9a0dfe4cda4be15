/**
 * Delta transfer (ours, issue 19; spec/fmq_msg.xml, "DELTA"): the names and formats both ends
 * share. A server that names DELTA offers a changed file of at least {@link DELTA_MIN} octets
 * by a CHEEZBURGER of operation {@link DELTA}; a client holding an older version asks again
 * with its signature (src/fs/chunking.ts), in parts of at most SIGNATURE_PART_CHUNKS chunks
 * (option PART on all but the last) when it is bigger; the server sends runs to copy from the old version
 * (headers `copy` and `length`) between chunks of content, and the client builds the new
 * version in its partial file and checks the whole by SHA-1 before it takes its name.
 *
 * @packageDocumentation
 */
import { DELTA, DELTA_MIN } from './generated/fmq_msg.js'
import { HEADER } from './extensions.js'
import { MAX_AVERAGE_BITS, MIN_AVERAGE_BITS } from '../fs/chunking.js'

export { DELTA, DELTA_MIN }
export { formatSignature, formatSignatureParts, parseSignature, SIGNATURE_PART_CHUNKS, SIGNATURE_PREFIX, SignatureParts, type Signature } from '../fs/chunking.js'

/** A delta is sent only when at least this share of the new version is copied; else the file goes whole. */
export const DELTA_WORTH = 1 / 8

/** The octets of one copy run at most: the client copies a run synchronously, so a run is short work. */
export const COPY_RUN_MAX = 8 * 1024 * 1024

/** A run of the old version to copy: where it starts in the old version, and its length. */
export interface CopyRun {
  readonly source: number
  readonly length: number
}

const DECIMAL = /^[0-9]{1,16}$/

/** The copy run a CHEEZBURGER's headers name; undefined on a chunk of content (or malformed headers). */
export function parseCopyRun(headers: ReadonlyMap<string, string>): CopyRun | undefined {
  const source = headers.get(HEADER.COPY)
  const length = headers.get(HEADER.LENGTH)
  if (source === undefined || length === undefined || !DECIMAL.test(source) || !DECIMAL.test(length)) return undefined
  const run = { source: Number(source), length: Number(length) }
  return Number.isSafeInteger(run.source) && Number.isSafeInteger(run.length) && run.length > 0 ? run : undefined
}

/** The headers of a copy run, added to `headers` (a first chunk's, or none). */
export function copyRunHeaders(run: CopyRun, headers: Map<string, string> = new Map()): Map<string, string> {
  headers.set(HEADER.COPY, String(run.source))
  headers.set(HEADER.LENGTH, String(run.length))
  return headers
}

/** The chunking bits a DELTA offer names; undefined when absent or out of range. */
export function parseChunking(headers: ReadonlyMap<string, string>): number | undefined {
  const bits = Number(headers.get(HEADER.CHUNKING))
  return Number.isInteger(bits) && bits >= MIN_AVERAGE_BITS && bits <= MAX_AVERAGE_BITS ? bits : undefined
}
