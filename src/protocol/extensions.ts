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
 * - ICANHAZ option `QUEUED=1`: before the next CHEEZBURGER after it queued files with content
 *   to send, the server sends a CHEEZBURGER of operation {@link QUEUED} (filename "/", empty
 *   chunk, no credit used) with headers `files` and `bytes`: what it queued since its last
 *   announcement. The client adds them up to know the whole transfer, as it grows.
 * - ICANHAZ option `DRYRUN=1` (with `RESYNC=1` and `ONCE=1`): the server sends, instead of
 *   anything, one CHEEZBURGER of operation {@link DRY_RUN} per entry a resync would send,
 *   header `action` (copy, update, delete) and `size`, then the SYNCED mark (rsync -n).
 * - ICANHAZ option `UNMATCHED=1`: a new subscription that matches nothing published is
 *   accepted, and said with a CHEEZBURGER of operation {@link UNMATCHED} (filename the path,
 *   header `published`: a JSON array of the published virtual paths).
 * - CHEEZBURGER headers on the first chunk of a file: `size`, `mtime` (ms since the epoch),
 *   `mode` (octal permission bits) and `sha1` (of the whole file); on a delete, `sha1` of
 *   the version deleted when known. A server that had no digest for the file hashes it as it
 *   sends it, and puts `size` and `sha1` on the final, empty chunk instead (one read, one hash).
 * - SUMS (FEATURES): ICANHAZ option `SUMS=1` with RESYNC=1: the cache sums each folder
 *   (`FOLDER/=sum:XXH128`, {@link folderSum}) instead of naming each entry; the server answers a
 *   folder whose sum differs with a CHEEZBURGER of operation {@link DIFFERS}, and the client
 *   asks again for that folder alone (`FOLDER=1`, with `ONCE=1`), its cache the folder's
 *   direct entries. See spec/fmq_msg.xml, SUMS.
 * - XXH128 (FEATURES): ICANHAZ option `XXH128=1` from a client that saw it named: the server
 *   puts header `xxh128` (the fast digest, fs/digest.ts `Xxh128Hash`) where it would put
 *   `sha1`, and no `sha1`; the client's cache values and resume prefixes may carry XXH128
 *   digests (32 hex digits) where SHA-1 ones (40) go. A value's length says which it is.
 *
 * @packageDocumentation
 */

import { type DigestAlgorithm, digestHex, prefixDigestOf } from '../fs/digest.js'
import { sortVirtualPaths } from '../fs/vpath.js'
import { ATTRIBUTES, DIFFERS, DIRECTORY, DRY_RUN, QUEUED, RESUME_BLOCK, SYMLINK, SYNCED, UNMATCHED } from './generated/fmq_msg.js'

/** Resume offsets are multiples of this (spec/fmq_msg.xml): the server keeps the digest of every such prefix. */
export { RESUME_BLOCK }
/** CHEEZBURGER operation: everything queued for the client was sent (ICANHAZ option SYNCED=1). */
export { SYNCED }
/** CHEEZBURGER operation: files and octets queued for the client since the last such (ICANHAZ option QUEUED=1). */
export { QUEUED }
/** CHEEZBURGER operation: what a resync would do with one entry, not done (ICANHAZ option DRYRUN=1). */
export { DRY_RUN }
/** CHEEZBURGER operation: a subscription matches nothing published (ICANHAZ option UNMATCHED=1). */
export { UNMATCHED }

/** What a dry run says of an entry (header `action`). */
export const DRY_RUN_ACTIONS = ['copy', 'update', 'delete'] as const
export type DryRunAction = (typeof DRY_RUN_ACTIONS)[number]
/** CHEEZBURGER operations of a TREE=1 client: a directory, a symbolic link, new attributes of a file. */
export { ATTRIBUTES, DIRECTORY, SYMLINK }
/** CHEEZBURGER operation: a folder the client summed holds other entries (ICANHAZ option SUMS=1). */
export { DIFFERS }

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
  /** Ours: announce what is queued (CHEEZBURGER of operation QUEUED, headers files and bytes). */
  QUEUED: 'QUEUED',
  /** Ours, with RESYNC=1 and ONCE=1: say what a resync would send (operation DRY_RUN), send nothing. */
  DRYRUN: 'DRYRUN',
  /** Ours: say when a subscription matches nothing published (operation UNMATCHED, header published). */
  UNMATCHED: 'UNMATCHED',
  /** Ours: the client takes eof=1 on a chunk with content as the end of its file (no empty chunk after it). */
  EOFDATA: 'EOFDATA',
  /** Ours: a question (answered SRSLY "FEATURES ..."), not a subscription. */
  FEATURES: 'FEATURES',
  /** Ours (PARTS): this ICANHAZ carries a part of the cache; the next part follows once it is answered. */
  MORE: 'MORE',
  /** Ours: directories, symbolic links and attribute changes too; cache values say what each entry is. */
  TREE: 'TREE',
  /** Ours (XXH128): headers carry `xxh128` instead of `sha1`. */
  XXH128: 'XXH128',
  /** Ours (DELTA, version 2): a changed file may be offered as a delta (operation DELTA); see src/protocol/delta.ts. */
  DELTA: 'DELTA',
  /** Ours (DELTA), with ONCE=1: the signature of the version the client holds of the file asked for. */
  SIGNATURE: 'SIGNATURE',
  /** Ours (SUMS), with RESYNC=1: the cache sums folders (`FOLDER/=sum:XXH128`); a folder that differs is answered DIFFERS. */
  SUMS: 'SUMS',
  /** Ours (SUMS), with RESYNC=1 and ONCE=1: judge only the entries directly in the path (a folder asked again after DIFFERS). */
  FOLDER: 'FOLDER',
  /** Ours (DELTA), with SIGNATURE: a part of it, more to follow; the server keeps it and sends nothing for it. */
  PART: 'PART',
  /** Ours (BATCH, version 2): the client reads several messages in one ZeroMQ message, a frame each. */
  BATCH: 'BATCH',
} as const

/**
 * Files of at least this size whose content a TREE=1 client may hold under another name (a
 * rename, a copy) are offered by digest (operation ATTRIBUTES) instead of sent; the client
 * keeps deleted files of this size until the next SYNCED mark, in case they come back renamed.
 */
export const REFER_MIN = 128 * 1024

/** Extensions a server names in its answer to FEATURES=1. */
export const FEATURE = {
  PARTS: 'PARTS',
  TREE: 'TREE',
  /** With TREE: cache values "file:SIZE:MODE:MTIME", a file judged by size and mtime as rsync's quick check does. */
  QUICK: 'QUICK',
  DRYRUN: 'DRYRUN',
  /** The fast digest: ICANHAZ option XXH128=1, header xxh128, XXH128 cache values and resume prefixes. */
  XXH128: 'XXH128',
  /** A changed file as what differs from the version the client holds (src/protocol/delta.ts). */
  DELTA: 'DELTA',
  /** With PARTS, TREE and QUICK: a resync cache of one sum per folder (ICANHAZ option SUMS=1, operation DIFFERS). */
  SUMS: 'SUMS',
  /** With DELTA: a signature of more than 1024 chunks may come in parts (option PART=1). */
  SIGPARTS: 'SIGPARTS',
  /** Version 2: consecutive messages to a client that asked BATCH=1 may travel as the frames of one ZeroMQ message. */
  BATCH: 'BATCH',
} as const
export type Feature = (typeof FEATURE)[keyof typeof FEATURE]

/** The path a FEATURES=1 question asks for: under the state folder, which no server of ours publishes. */
export const FEATURES_PATH = '/.fmq/features'
const FEATURES_REASON = 'FEATURES'

/** The SRSLY reason answering FEATURES=1. */
export function formatFeatures(features: readonly Feature[]): string {
  return [FEATURES_REASON, ...features].join(' ')
}

/**
 * The extensions named in a SRSLY reason answering FEATURES=1; undefined when the reason is
 * not such an answer.
 */
export function parseFeatures(reason: string): Set<Feature> | undefined {
  const [first, ...names] = reason.split(' ')
  if (first !== FEATURES_REASON) return undefined
  const known = new Set<string>(Object.values(FEATURE))
  return new Set(names.filter((name): name is Feature => known.has(name)))
}

/** CHEEZBURGER header names. */
export const HEADER = {
  SIZE: 'size',
  MTIME: 'mtime',
  MODE: 'mode',
  SHA1: 'sha1',
  /** XXH128=1 (ours): the fast digest of the whole file, where `sha1` would be. */
  XXH128: 'xxh128',
  /** SYMLINK: the link's text. */
  TARGET: 'target',
  /** On a SYNCED mark (ours): entries under the subscriptions that cannot be published, when any. */
  SKIPPED: 'skipped',
  /** On a QUEUED announcement (ours): files queued since the last, and the octets of content they take. */
  FILES: 'files',
  BYTES: 'bytes',
  /** On a DRY_RUN entry (ours): copy, update or delete. */
  ACTION: 'action',
  /** On an UNMATCHED notice (ours): the published virtual paths, a JSON array. */
  PUBLISHED: 'published',
  /** On a run of a delta (ours, DELTA=1): where in the client's old version its octets are, and how many. */
  COPY: 'copy',
  LENGTH: 'length',
  /** On a DELTA offer (ours): the chunking bits the client cuts its old version with. */
  CHUNKING: 'chunking',
} as const

/** The published paths an UNMATCHED notice names; empty when the header is missing or malformed. */
export function parsePublished(headers: ReadonlyMap<string, string>): string[] {
  try {
    const value: unknown = JSON.parse(headers.get(HEADER.PUBLISHED) ?? '[]')
    return Array.isArray(value) ? value.filter((path): path is string => typeof path === 'string') : []
  } catch {
    return []
  }
}

/** What a QUEUED announcement says; undefined when its headers are missing or malformed. */
export function parseQueued(headers: ReadonlyMap<string, string>): { files: number; bytes: number } | undefined {
  const files = Number(headers.get(HEADER.FILES))
  const bytes = Number(headers.get(HEADER.BYTES))
  if (!Number.isSafeInteger(files) || files < 0 || !Number.isSafeInteger(bytes) || bytes < 0) return undefined
  return { files, bytes }
}

/** What the CHEEZBURGER headers of a file announce; a header absent or malformed is undefined. */
export interface FileHeaders {
  readonly size: number | undefined
  /** Milliseconds since the epoch. */
  readonly mtimeMs: number | undefined
  /** Unix mode bits, as sent (the file-type bits may be there). */
  readonly mode: number | undefined
  /** SHA-1 of the whole file, lower-case hex. */
  readonly sha1: string | undefined
  /** XXH128 of the whole file, lower-case hex (to a client that asked XXH128=1). */
  readonly xxh128: string | undefined
}

/** The digest headers announce in the algorithm a client verifies with. */
export function announcedDigest(headers: FileHeaders, algorithm: DigestAlgorithm): string | undefined {
  return algorithm === 'sha1' ? headers.sha1 : headers.xxh128
}

/** The header carrying a digest of this algorithm. */
export function digestHeader(algorithm: DigestAlgorithm): string {
  return algorithm === 'sha1' ? HEADER.SHA1 : HEADER.XXH128
}

/**
 * One cache value: a whole file the client holds (with TREE=1 also its mode and mtime), the
 * prefix of one it is receiving, or (TREE=1) a directory or a symbolic link; with QUICK a
 * file by its size, mode and mtime alone, no digest ('stat'). A digest is SHA-1 (40 hex
 * digits) or, from a client that negotiated XXH128, XXH128 (32).
 */
export type CacheEntry =
  | { readonly kind: 'complete'; readonly digest: string; readonly mode?: number; readonly mtimeMs?: number }
  | { readonly kind: 'stat'; readonly size: number; readonly mode: number; readonly mtimeMs: number }
  | { readonly kind: 'partial'; readonly digest: string; readonly offset: number }
  | { readonly kind: 'dir'; readonly mode: number }
  | { readonly kind: 'link'; readonly target: string }
  | { readonly kind: 'sum'; readonly digest: string }

const SHA1 = /^[0-9a-f]{40}$/
const XXH128 = /^[0-9a-f]{32}$/
const DIGEST = /^(?:[0-9a-f]{40}|[0-9a-f]{32})$/
const PARTIAL = /^([0-9a-f]{40}|[0-9a-f]{32})@([0-9]{1,16})$/
const TREE_FILE = /^([0-9a-f]{40}|[0-9a-f]{32}):([0-7]{1,7}):([0-9]{1,15})$/
const TREE_DIR = /^dir:([0-7]{1,7})$/
const QUICK_FILE = /^file:([0-9]{1,16}):([0-7]{1,7}):([0-9]{1,15})$/
const QUICK_PREFIX = 'file:'
const LINK_PREFIX = 'link:'
const SUM_PREFIX = 'sum:'
const SUM = /^sum:([0-9a-f]{32})$/
const COLON = 0x3a

/**
 * The cache value of a TREE=1 client for one entry of its inbox.
 *
 * @example
 * ```ts
 * formatTreeValue({ kind: 'dir', mode: 0o750 }) // 'dir:750'
 * ```
 */
export function formatTreeValue(entry: CacheEntry): string {
  switch (entry.kind) {
    case 'dir':
      return `dir:${(entry.mode & 0o7777).toString(8)}`
    case 'link':
      return `${LINK_PREFIX}${entry.target}`
    case 'partial':
      return formatPartialEntry(entry.digest, entry.offset)
    case 'stat':
      return statValue(entry.size, entry.mode, entry.mtimeMs)
    case 'sum':
      return `${SUM_PREFIX}${entry.digest}`
    case 'complete':
      return entry.mode === undefined || entry.mtimeMs === undefined
        ? entry.digest
        : `${entry.digest}:${(entry.mode & 0o7777).toString(8)}:${Math.trunc(entry.mtimeMs)}`
  }
}

/** The cache value of a file by its stat alone (QUICK and TREE): `formatTreeValue({ kind: 'stat', ... })` without the object. */
export function statValue(size: number, mode: number, mtimeMs: number): string {
  return `${QUICK_PREFIX}${size}:${(mode & 0o7777).toString(8)}:${Math.trunc(mtimeMs)}`
}

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
  // A link's text is taken as is: it may hold anything, upper case included.
  if (value.startsWith(LINK_PREFIX)) return { kind: 'link', target: value.slice(LINK_PREFIX.length) }
  if (value.startsWith(QUICK_PREFIX)) {
    const quick = QUICK_FILE.exec(value)
    if (quick === null) return undefined
    const size = Number(quick[1])
    return Number.isSafeInteger(size) ? { kind: 'stat', size, mode: Number.parseInt(quick[2]!, 8), mtimeMs: Number(quick[3]) } : undefined
  }
  if (value.startsWith(SUM_PREFIX)) {
    const sum = SUM.exec(value)
    return sum === null ? undefined : { kind: 'sum', digest: sum[1]! }
  }
  const lower = value.toLowerCase()
  // By length and the character after a digest first: a resync judges hundreds of thousands of these.
  // (An XXH128 prefix, 32 digits "@" 7, is 40 characters too: not a whole digest, read on.)
  if ((lower.length === 40 || lower.length === 32) && DIGEST.test(lower)) return { kind: 'complete', digest: lower }
  const file = lower.charCodeAt(40) === COLON || lower.charCodeAt(32) === COLON ? TREE_FILE.exec(lower) : null
  if (file !== null) return { kind: 'complete', digest: file[1]!, mode: Number.parseInt(file[2]!, 8), mtimeMs: Number(file[3]) }
  const dir = TREE_DIR.exec(lower)
  if (dir !== null) return { kind: 'dir', mode: Number.parseInt(dir[1]!, 8) }
  const partial = PARTIAL.exec(lower)
  if (partial === null) return undefined
  const offset = Number(partial[2])
  if (!Number.isSafeInteger(offset) || offset % RESUME_BLOCK !== 0) return undefined
  return { kind: 'partial', digest: partial[1]!, offset }
}

/**
 * SUMS: the sum of a folder's direct entries, each `[name, cache value]` as QUICK and TREE=1
 * caches give it ({@link formatTreeValue}: `file:SIZE:MODE:MTIME`, `dir:MODE`, `link:TARGET`),
 * in any order (sorted here, in code point order of the names): the XXH3-128 of each name, a
 * NUL, its value, a NUL. Neither a name nor a value holds a NUL, so no two listings sum alike
 * by construction. Both sides sum a folder so; the same sum is the same folder.
 *
 * @example
 * ```ts
 * folderSum([['b.txt', 'file:3:644:1700000000000'], ['a', 'dir:755']]) // 32 hex digits
 * ```
 */
export function folderSum(entries: ReadonlyArray<readonly [string, string]>): string {
  return sumOfLines(entries.map(([name, value]) => sumLine(name, value)))
}

/** SUMS: one entry of a folder as its sum takes it (see {@link folderSum}). */
export function sumLine(name: string, value: string): string {
  return `${name}\0${value}\0`
}

/** SUMS: the sum of a folder's entries as {@link sumLine} gives them, in any order (sorted here: a NUL sorts before any character of a name, so lines sort as their names do). */
export function sumOfLines(lines: string[]): string {
  return sumOfOrderedLines(sortVirtualPaths(lines).join(''))
}

/** SUMS: {@link sumOfLines} of lines already in code point order, given joined. */
export function sumOfOrderedLines(joined: string): string {
  return digestHex('xxh128', joined)
}

/**
 * SUMS: the cache key of a folder's sum, the folder's virtual path and `"/"` (`"/"` for the
 * root), so that the keys of a depth-first walk come in code point order.
 */
export function sumKey(folder: string): string {
  return folder === '/' ? '/' : `${folder}/`
}

/**
 * Where an entry of a cache goes in the code point order of cache parts: a folder's sum at
 * {@link sumKey}, any other entry at its virtual path.
 */
export function cacheOrderKey(virtualPath: string, value: string): string {
  return value.startsWith(SUM_PREFIX) ? sumKey(virtualPath) : virtualPath
}

/**
 * The cache value asking to resume a file at `offset`.
 *
 * @example
 * ```ts
 * formatPartialEntry('a9993e364706816aba3e25717850c26c9cd0d89d', 1048576) // 'a999...89d@1048576'
 * ```
 */
export function formatPartialEntry(digest: string, offset: number): string {
  if (offset % RESUME_BLOCK !== 0) throw new RangeError(`resume offset ${offset} is not a multiple of ${RESUME_BLOCK}`)
  return `${digest}@${offset}`
}

/** The largest resume offset at or below `length`. */
export function resumeOffset(length: number): number {
  return length - (length % RESUME_BLOCK)
}

/**
 * The digest (hex) of the prefix [0, offset) from a file's block digests (SHA-1: 20 octets per
 * {@link RESUME_BLOCK} prefix; XXH128: 16 per block), or undefined when offset is not a block
 * boundary inside the file.
 */
export function prefixDigest(blocks: Uint8Array, offset: number, algorithm: DigestAlgorithm = 'sha1'): string | undefined {
  return prefixDigestOf(algorithm, blocks, offset)
}

const DECIMAL = { pattern: /^[0-9]{1,15}$/, radix: 10 }
// Unix modes travel in octal ("644", "0644", "100644" with the file-type bits).
const OCTAL = { pattern: /^(?:0o)?[0-7]{1,7}$/, radix: 8 }

/**
 * Reads the headers a server puts on the first chunk of a file (or, size and SHA-1, on its
 * final chunk). A malformed value is left out rather than refused: the header only adds checks,
 * and a reference server sends none.
 *
 * @example
 * ```ts
 * parseFileHeaders(new Map([['size', '5'], ['mode', '100644'], ['sha1', 'A9993E...']]))
 * // { size: 5, mtimeMs: undefined, mode: 0o100644, sha1: 'a9993e...' }
 * ```
 */
export function parseFileHeaders(headers: ReadonlyMap<string, string>): FileHeaders {
  return {
    size: header(headers, HEADER.SIZE, DECIMAL),
    mtimeMs: header(headers, HEADER.MTIME, DECIMAL),
    mode: header(headers, HEADER.MODE, OCTAL),
    sha1: sha1Header(headers),
    xxh128: xxh128Header(headers),
  }
}

function header(headers: ReadonlyMap<string, string>, name: string, format: typeof DECIMAL): number | undefined {
  const value = headers.get(name)
  if (value === undefined || !format.pattern.test(value)) return undefined
  return Number.parseInt(value.replace(/^0o/, ''), format.radix)
}

/** The `sha1` header in lower-case hex; undefined when absent or malformed. */
function sha1Header(headers: ReadonlyMap<string, string>): string | undefined {
  const sha1 = headers.get(HEADER.SHA1)?.toLowerCase()
  return sha1 !== undefined && SHA1.test(sha1) ? sha1 : undefined
}

/** The `xxh128` header in lower-case hex; undefined when absent or malformed. */
function xxh128Header(headers: ReadonlyMap<string, string>): string | undefined {
  const xxh128 = headers.get(HEADER.XXH128)?.toLowerCase()
  return xxh128 !== undefined && XXH128.test(xxh128) ? xxh128 : undefined
}
