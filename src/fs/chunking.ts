/**
 * Content-defined chunking (FastCDC's normalized gear hash) and the delta of one version of a
 * file against another, for delta transfer (spec/fmq_msg.xml, "DELTA"; issue 19).
 *
 * A chunk boundary depends only on the 32 octets before it, so an insertion or a deletion moves
 * the boundaries near it and no others: the chunks after it are the same octets at another
 * offset, found by their digest, as rsync's rolling checksum finds its blocks. Both ends cut with
 * the same parameters (the client names them in its signature) and the same gear table (fixed
 * here, and in the spec). Chunks are told apart by xxh3-64: fast, and only a hint; the whole
 * file assembled from them is checked by its SHA-1 before it takes its name.
 *
 * Memory is bounded at both ends: a file is read a window at a time, and the average chunk grows
 * with the file so that a signature holds about {@link TARGET_CHUNKS} chunks whatever its size.
 *
 * @packageDocumentation
 */
import { type FileHandle, open } from 'node:fs/promises'
import { createXXHash3, type IHasher } from 'hash-wasm'
import { deltaAddon } from './delta-native.js'

/** Chunks a signature aims at, whatever the file's size: its average chunk grows with the file. */
export const TARGET_CHUNKS = 4096
/** The smallest average chunk (2^13 octets): below it, a chunk's 12 octets of signature weigh too much. */
export const MIN_AVERAGE_BITS = 13
/** The largest average chunk (2^22, 4 MiB): a file of 16 GiB and more has more chunks instead. */
export const MAX_AVERAGE_BITS = 22
/** A signature holding more chunks than this is not sent (the file then comes whole). */
export const MAX_SIGNATURE_CHUNKS = 4 * TARGET_CHUNKS

/** How a file is cut: chunks average 2^bits octets, from a quarter of that to four times it. */
export interface ChunkParams {
  readonly bits: number
  readonly avg: number
  readonly min: number
  readonly max: number
  /** Stricter before the average, looser after: FastCDC's normalized chunking. */
  readonly maskSmall: number
  readonly maskLarge: number
}

/** One chunk of a file. */
export interface Chunk {
  readonly offset: number
  readonly length: number
  /** xxh3-64 of its octets. */
  readonly hash: bigint
}

/**
 * The parameters for a file of `size` octets: about {@link TARGET_CHUNKS} chunks.
 *
 * @example
 * ```ts
 * chunkParams(256 * 1024 * 1024).avg // 65536
 * ```
 */
export function chunkParams(size: number): ChunkParams {
  let bits = MIN_AVERAGE_BITS
  while (bits < MAX_AVERAGE_BITS && 2 ** bits * TARGET_CHUNKS < size) bits++
  return paramsOf(bits)
}

/** The parameters named by their average's bits (a signature names them so). */
export function paramsOf(bits: number): ChunkParams {
  if (!Number.isInteger(bits) || bits < MIN_AVERAGE_BITS || bits > MAX_AVERAGE_BITS) throw new RangeError(`chunk bits ${bits} out of range`)
  const avg = 2 ** bits
  return { bits, avg, min: avg / 4, max: avg * 4, maskSmall: highBits(bits + 1), maskLarge: highBits(bits - 1) }
}

/** A mask of the `count` high bits of 32: the gear hash's high bits hold its last 32 octets. */
function highBits(count: number): number {
  return count >= 32 ? -1 : ~(2 ** (32 - count) - 1) | 0
}

/**
 * The gear table: 256 values of xorshift32 from the seed 0x9e3779b9, in order. Fixed by the
 * spec: both ends must cut where the other does.
 */
const GEAR = (() => {
  const table = new Int32Array(256)
  let x = 0x9e3779b9 | 0
  for (let i = 0; i < 256; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    table[i] = x
  }
  return table
})()

/** The native gear loop (native/delta.c), given the table once; null without the addon. */
const native = (() => {
  const addon = deltaAddon()
  addon?.setGear(GEAR)
  return addon
})()

/** Which gear loop cuts here: native runs at about 2 GB/s, JavaScript at about 400 MB/s. */
export const cuttingKind: 'native' | 'javascript' = native === null ? 'javascript' : 'native'

/**
 * Where the chunk starting at `start` ends, within `data[start, end)`; -1 when the data runs out
 * before a boundary and more follows (`final` false).
 */
export function cutPoint(data: Uint8Array, start: number, end: number, params: ChunkParams, final: boolean): number {
  if (native !== null) return native.cut(data, start, end, params.min, params.avg, params.max, params.maskSmall, params.maskLarge, final)
  return cutPointJs(data, start, end, params, final)
}

/** {@link cutPoint} in JavaScript: where the addon is not built, and to test the addon against. */
export function cutPointJs(data: Uint8Array, start: number, end: number, params: ChunkParams, final: boolean): number {
  const { min, avg, max, maskSmall, maskLarge } = params
  if (end - start <= min) return final ? end : -1
  const gear = GEAR
  let hash = 0
  let i = start + min
  const normal = Math.min(start + avg, end)
  for (; i < normal; i++) {
    hash = ((hash << 1) + gear[data[i]!]!) | 0
    if ((hash & maskSmall) === 0) return i + 1
  }
  const limit = Math.min(start + max, end)
  for (; i < limit; i++) {
    hash = ((hash << 1) + gear[data[i]!]!) | 0
    if ((hash & maskLarge) === 0) return i + 1
  }
  if (limit === start + max) return limit
  return final ? end : -1
}

/**
 * hash-wasm's XXH3-64 (SIMD WebAssembly): about 3 GB/s on 64 KiB chunks here, against 1.5 GB/s
 * for @node-rs/xxhash's (which computes the same digests: the tests check one against the other).
 * Compiled at the first delta rather than at start-up: a WebAssembly compile is asynchronous,
 * and every thread of every process waited for it before running anything else.
 */
let xxh3Wasm: IHasher | undefined
let xxh3Loading: Promise<IHasher> | undefined

/** Resolves once {@link chunkHash} can run (at once after the first time). */
export async function chunkHashReady(): Promise<void> {
  xxh3Wasm ??= await (xxh3Loading ??= createXXHash3())
}

/**
 * The digest of a chunk: xxh3-64 with seed 0, as a number-8 (spec/fmq_msg.xml, DELTA).
 *
 * @example
 * ```ts
 * await chunkHashReady()
 * chunkHash(Buffer.from('abc')) // 0x78af5f94892f3950n
 * ```
 */
export function chunkHash(data: Uint8Array): bigint {
  if (xxh3Wasm === undefined) throw new Error('chunkHash: await chunkHashReady() first')
  xxh3Wasm.init()
  xxh3Wasm.update(data)
  const digest = xxh3Wasm.digest('binary')
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0)
}

/** Octets read at once: several of the largest chunks. */
const WINDOW = 16 * 1024 * 1024

/**
 * The chunks of an open file, in order, each with its octets (valid until the next is taken).
 * Reads `size` octets at most, a window at a time; stops early when the file is shorter.
 */
export async function* chunksOf(handle: FileHandle, size: number, params: ChunkParams): AsyncGenerator<Chunk & { readonly data: Uint8Array }> {
  await chunkHashReady()
  const buffer = Buffer.allocUnsafe(Math.max(WINDOW, 2 * params.max))
  let filled = 0 // octets of buffer holding file content
  let read = 0 // octets of the file read so far
  let at = 0 // offset in the file of buffer[0]
  let start = 0 // where the next chunk starts, in buffer
  for (;;) {
    // Less than the largest chunk left uncut: keep it at the front, fill the rest.
    if (read < size && filled - start < params.max) {
      if (start > 0) {
        buffer.copy(buffer, 0, start, filled)
        filled -= start
        at += start
        start = 0
      }
      const { bytesRead } = await handle.read(buffer, filled, Math.min(buffer.length - filled, size - read), read)
      if (bytesRead === 0) size = read // shorter than said
      filled += bytesRead
      read += bytesRead
      continue
    }
    if (start >= filled) return
    // A whole largest chunk is there, or the end of the file: a boundary is always found.
    const end = cutPoint(buffer, start, filled, params, read >= size)
    const data = buffer.subarray(start, end)
    yield { offset: at + start, length: end - start, hash: chunkHash(data), data }
    start = end
  }
}

/** What a client holds of a file: its chunks, as the server matches them. */
export interface Signature {
  /** The size of the version the client holds. */
  readonly size: number
  readonly params: ChunkParams
  readonly chunks: readonly Chunk[]
}

/**
 * The chunks of the first `size` octets of an open file (all of it by default), cut with the
 * parameters of `bits` (the other end's choice). Undefined when there would be more than
 * `limit` of them.
 */
export async function chunkList(handle: FileHandle, bits: number, size?: number, limit = Number.POSITIVE_INFINITY): Promise<Chunk[] | undefined> {
  const params = paramsOf(bits)
  const length = size ?? (await handle.stat()).size
  if (native?.chunksOfFile !== undefined) return unpackChunks(await native.chunksOfFile(handle.fd, length, params.min, params.avg, params.max, params.maskSmall, params.maskLarge, Math.min(limit, 2 ** 31)))
  const chunks: Chunk[] = []
  for await (const { offset, length: octets, hash } of chunksOf(handle, length, params)) {
    chunks.push({ offset, length: octets, hash })
    if (chunks.length > limit) return undefined
  }
  return chunks
}

/** Chunk lists the native cut made, with their packing: a signature of them is that packing in base64. */
const packedLists = new WeakMap<readonly Chunk[], Buffer>()

/** The chunks the native cut packed (12 octets each, as in a signature), in order from offset 0. */
function unpackChunks(packed: Buffer | undefined): Chunk[] | undefined {
  if (packed === undefined) return undefined
  const chunks: Chunk[] = []
  packedLists.set(chunks, packed)
  let offset = 0
  for (let at = 0; at < packed.length; at += ENTRY) {
    const length = packed.readUInt32BE(at)
    chunks.push({ offset, length, hash: packed.readBigUInt64BE(at + 4) })
    offset += length
  }
  return chunks
}

/**
 * The signature of the file at `path`, cut with the parameters of `bits`; undefined when it
 * would hold more than {@link MAX_SIGNATURE_CHUNKS} chunks.
 *
 * @example
 * ```ts
 * const signature = await signatureOf('inbox/big.log', 16)
 * ```
 */
export async function signatureOf(path: string, bits: number): Promise<Signature | undefined> {
  const handle = await open(path, 'r')
  try {
    const chunks = await chunkList(handle, bits, undefined, MAX_SIGNATURE_CHUNKS)
    if (chunks === undefined) return undefined
    const last = chunks[chunks.length - 1]
    return { size: last === undefined ? 0 : last.offset + last.length, params: paramsOf(bits), chunks }
  } finally {
    await handle.close()
  }
}

const ENTRY = 12

/**
 * Chunks in one part of a signature sent in parts (option PART, spec/fmq_msg.xml "DELTA"):
 * 1024 chunks are 12 KiB, 16 KiB of option text, so no ICANHAZ carries more however big the
 * file, and the parts go under the same window as a cache's (a few unanswered at most).
 */
export const SIGNATURE_PART_CHUNKS = 1024

/** The base64 of 12 octets a chunk (length as number-4, xxh3-64 as number-8, network order). */
function packChunks(chunks: readonly Chunk[]): string {
  const packed = Buffer.allocUnsafe(chunks.length * ENTRY)
  chunks.forEach((chunk, index) => {
    packed.writeUInt32BE(chunk.length, index * ENTRY)
    packed.writeBigUInt64BE(chunk.hash, index * ENTRY + 4)
  })
  return packed.toString('base64')
}

/**
 * A signature as one option value: `cdc1:SIZE:BITS:` then base64 of 12 octets a chunk (length
 * as number-4, xxh3-64 as number-8, network order); offsets follow from the lengths.
 *
 * @example
 * ```ts
 * formatSignature(signature) // 'cdc1:1048576:13:AAAg...'
 * ```
 */
export function formatSignature(signature: Signature): string {
  return `${SIGNATURE_PREFIX}${signature.size}:${signature.params.bits}:${packChunks(signature.chunks)}`
}

/**
 * A signature as the option values of its parts, in order, each of at most `perPart` chunks and
 * in the form of a whole one (`cdc1:SIZE:BITS:CHUNKS`, SIZE always the whole's): one value when it
 * fits in one part. The parts but the last go with PART=1.
 *
 * @example
 * ```ts
 * formatSignatureParts(signature).length // Math.ceil(chunks / 1024), 1 at least
 * ```
 */
export function formatSignatureParts(signature: Signature, perPart = SIGNATURE_PART_CHUNKS): string[] {
  const parts: string[] = []
  const packed = packedLists.get(signature.chunks)
  for (let at = 0; at === 0 || at < signature.chunks.length; at += perPart) {
    const chunks = packed === undefined ? packChunks(signature.chunks.slice(at, at + perPart)) : packed.subarray(at * ENTRY, (at + perPart) * ENTRY).toString('base64')
    parts.push(`${SIGNATURE_PREFIX}${signature.size}:${signature.params.bits}:${chunks}`)
  }
  return parts
}

export const SIGNATURE_PREFIX = 'cdc1:'
const SIGNATURE = /^cdc1:([0-9]{1,16}):([0-9]{1,2}):([A-Za-z0-9+/]*={0,2})$/

/** One option value of a signature: the whole's size and chunking, and its chunks from `offset` on. */
interface SignaturePart {
  readonly size: number
  readonly params: ChunkParams
  readonly chunks: Chunk[]
}

/** Reads one value of a signature whose first chunk is at `offset`; undefined when malformed. */
function parsePart(value: string, offset: number, room: number): SignaturePart | undefined {
  if (!value.startsWith(SIGNATURE_PREFIX)) return undefined
  const match = SIGNATURE.exec(value)
  if (match === null) return undefined
  const size = Number(match[1])
  let params: ChunkParams
  try {
    params = paramsOf(Number(match[2]))
  } catch {
    return undefined
  }
  const packed = Buffer.from(match[3]!, 'base64')
  if (packed.length % ENTRY !== 0 || packed.length / ENTRY > room || !Number.isSafeInteger(size)) return undefined
  const chunks: Chunk[] = []
  for (let at = 0; at < packed.length; at += ENTRY) {
    const length = packed.readUInt32BE(at)
    if (length === 0 || length > params.max || offset + length > size) return undefined
    chunks.push({ offset, length, hash: packed.readBigUInt64BE(at + 4) })
    offset += length
  }
  return { size, params, chunks }
}

/** Reads a signature from one option value; undefined when it is not one, or is malformed. */
export function parseSignature(value: string): Signature | undefined {
  const part = parsePart(value, 0, MAX_SIGNATURE_CHUNKS)
  if (part === undefined) return undefined
  const last = part.chunks[part.chunks.length - 1]
  return (last === undefined ? 0 : last.offset + last.length) === part.size ? part : undefined
}

/**
 * A signature received in parts (option PART, spec/fmq_msg.xml "DELTA"), for one file: the
 * parts in order, each of the same size and chunking, at most {@link MAX_SIGNATURE_CHUNKS}
 * chunks in all (memory stays bounded); the last one makes the whole. A part that does not fit
 * spoils the lot: the file then comes whole.
 */
export class SignatureParts {
  private chunks: Chunk[] = []
  private offset = 0
  private first: SignaturePart | undefined
  private spoiled = false

  constructor(readonly path: string) {}

  /** Adds a part with more to follow (PART=1). */
  add(value: string): void {
    if (this.spoiled) return
    const part = parsePart(value, this.offset, MAX_SIGNATURE_CHUNKS - this.chunks.length)
    if (part === undefined || (this.first !== undefined && (part.size !== this.first.size || part.params.bits !== this.first.params.bits))) {
      this.spoil()
      return
    }
    this.first ??= part
    for (const chunk of part.chunks) this.chunks.push(chunk)
    this.offset += part.chunks.reduce((sum, chunk) => sum + chunk.length, 0)
  }

  /** Adds the last part: the whole signature, or undefined when a part did not fit. */
  finish(value: string): Signature | undefined {
    this.add(value)
    if (this.spoiled || this.first === undefined || this.offset !== this.first.size) return undefined
    return { size: this.first.size, params: this.first.params, chunks: this.chunks }
  }

  private spoil(): void {
    this.spoiled = true
    this.chunks = []
  }
}

/** One step of making the new version: octets the client has (at `source` in its old version), or octets sent. */
export type Segment = { readonly kind: 'copy'; readonly source: number; readonly length: number } | { readonly kind: 'literal'; readonly offset: number; readonly length: number }

/** How to make a new version from an old one: its segments in order, and what they take from each side. */
export interface DeltaPlan {
  readonly size: number
  readonly segments: readonly Segment[]
  /** Octets copied from the client's old version. */
  readonly copied: number
  /** Octets that must travel. */
  readonly literal: number
}

/**
 * The plan for sending a new version, cut into `chunks` (with the signature's parameters), to a
 * client whose old version has `signature`: its chunks found in the old version are copied, the
 * rest sent. A chunk not found whole is tried once more as starting with the old chunk that
 * followed the last one found (`prefixHash` reads the new version's octets for that): the old
 * version's last chunk, cut short by its end, starts the chunk that an append made longer, so
 * an append costs the appended octets only.
 */
export async function planDelta(chunks: readonly Chunk[], signature: Signature, prefixHash: (offset: number, length: number) => Promise<bigint>): Promise<DeltaPlan> {
  const byHash = new Map<bigint, number>()
  signature.chunks.forEach((chunk, index) => {
    if (!byHash.has(chunk.hash)) byHash.set(chunk.hash, index)
  })
  const old = signature.chunks
  const segments: Segment[] = []
  let copied = 0
  let literal = 0
  let next = 0 // the old chunk after the last one found
  const copy = (source: number, length: number): void => {
    const last = segments[segments.length - 1]
    if (last?.kind === 'copy' && last.source + last.length === source) segments[segments.length - 1] = { ...last, length: last.length + length }
    else segments.push({ kind: 'copy', source, length })
    copied += length
  }
  const send = (offset: number, length: number): void => {
    const last = segments[segments.length - 1]
    if (last?.kind === 'literal' && last.offset + last.length === offset) segments[segments.length - 1] = { ...last, length: last.length + length }
    else segments.push({ kind: 'literal', offset, length })
    literal += length
  }
  let size = 0
  for (const chunk of chunks) {
    size = chunk.offset + chunk.length
    const found = byHash.get(chunk.hash)
    if (found !== undefined && old[found]!.length === chunk.length) {
      copy(old[found]!.offset, chunk.length)
      next = found + 1
      continue
    }
    const following = old[next]
    if (following !== undefined && following.length < chunk.length && (await prefixHash(chunk.offset, following.length)) === following.hash) {
      copy(following.offset, following.length)
      send(chunk.offset + following.length, chunk.length - following.length)
      next++
      continue
    }
    send(chunk.offset, chunk.length)
  }
  return { size, segments, copied, literal }
}
