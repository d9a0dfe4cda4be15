/**
 * The `cache` of an ICANHAZ: what the inbox already holds under a subscription, as
 * `name=SHA-1 in hex` (from the manifest, manifest.ts), so that a resyncing server skips those
 * files, and the partial files the client offers to resume (partials.ts); and how much of it
 * the wire can carry.
 *
 * @packageDocumentation
 */
import { realStateDirSync } from '../fs/placement.js'
import { resolveCacheKey, sortVirtualPaths } from '../fs/vpath.js'
import type { ProtocolVersion } from '../protocol/generated/fmq_msg.js'

/** A version-1 dictionary holds at most 255 entries (1-octet count)... */
const V1_MAX_ENTRIES = 255
/** ...of at most 255 octets each, `name=value` (1-octet string length). */
const V1_MAX_ENTRY = 255
/** Hash keys are 1-octet strings in version 2 as well. */
const MAX_KEY = 255
/**
 * Octets of cache in one part (MORE=1): well under the 64 KiB our server accepts in a message,
 * with room for the path and options.
 */
const PART_OCTETS = 48 * 1024
/** Files whose cache entries surely fill a part: with at least this many, a client asks FEATURES=1 on its own first. */
export const PART_ENTRIES = 1000

/**
 * The real path of the state directory, as it will be seen from `realpath(inbox)`: the default
 * `<inbox>/.fmq` need not exist yet, so it is rebased rather than resolved.
 */
export async function realStateDir(inbox: string, stateDir: string): Promise<{ inbox: string; stateDir: string }> {
  return realStateDirSync(inbox, stateDir);
}

/**
 * One ICANHAZ cache from the entries offering partial files (`/virtual/path=SHA1@OFFSET`) and
 * those naming complete files (manifest.ts). Partial entries come first, so that a version-1
 * dictionary cut down by {@link fitCache} keeps them, and a partial entry wins over a
 * complete one naming the same file.
 *
 * @example
 * ```ts
 * mergeCache('/', new Map([['/big.bin', 'ab12...@1048576']]), new Map([['big.bin', 'cd34...'], ['a', 'ef56...']]))
 * // Map { '/big.bin' => 'ab12...@1048576', 'a' => 'ef56...' }
 * ```
 */
export function mergeCache(
  subscription: string,
  partial: ReadonlyMap<string, string>,
  complete: ReadonlyMap<string, string>,
): Map<string, string> {
  if (partial.size === 0) return new Map(complete)
  const cache = new Map(partial)
  for (const [key, digest] of complete) {
    const virtualPath = resolveCacheKey(subscription, key)
    if (virtualPath !== undefined && partial.has(virtualPath)) continue
    if (!cache.has(key)) cache.set(key, digest)
  }
  return cache
}

/**
 * The entries of a cache the wire can carry in a version: version 1 dictionaries hold at most
 * 255 entries of at most 255 octets (`name=value`, no `=` in the name); version 2 hash keys
 * are at most 255 octets. Entries left out are harmless: the server just sends those files
 * again.
 *
 * @example
 * ```ts
 * fitCache(bigCache, 1).size // <= 255
 * ```
 */
export function fitCache(cache: ReadonlyMap<string, string>, version: ProtocolVersion): Map<string, string> {
  const fitted = new Map<string, string>()
  for (const [name, digest] of cache) {
    const keyBytes = Buffer.byteLength(name, 'utf8')
    if (keyBytes > MAX_KEY) continue
    if (version === 1) {
      if (fitted.size >= V1_MAX_ENTRIES) break
      if (name.includes('=') || keyBytes + 1 + Buffer.byteLength(digest, 'utf8') > V1_MAX_ENTRY) continue
    }
    fitted.set(name, digest)
  }
  return fitted
}

/**
 * A cache cut into parts for a server that takes it in parts (ICANHAZ option MORE=1): every key
 * a full virtual path, all keys in code point order, each part small enough for one message
 * (version 1: at most 255 entries of at most 255 octets). Always at least one part, the last
 * possibly empty. Entries the wire cannot carry are left out: those files are sent again.
 *
 * @example
 * ```ts
 * splitCache('/photos', new Map([['b.jpg', 'ab...'], ['a.jpg', 'cd...']]), 2) // [Map { '/photos/a.jpg' => 'cd...', '/photos/b.jpg' => 'ab...' }]
 * ```
 */
export function splitCache(subscription: string, cache: ReadonlyMap<string, string>, version: ProtocolVersion): Map<string, string>[] {
  const absolute = new Map<string, string>()
  for (const [key, value] of cache) {
    const virtualPath = resolveCacheKey(subscription, key)
    if (virtualPath !== undefined && !absolute.has(virtualPath)) absolute.set(virtualPath, value)
  }
  const keys = sortVirtualPaths([...absolute.keys()])
  const parts: Map<string, string>[] = [new Map()]
  let octets = 0
  for (const key of keys) {
    const value = absolute.get(key)!
    const keyBytes = Buffer.byteLength(key, 'utf8')
    const valueBytes = Buffer.byteLength(value, 'utf8')
    if (keyBytes > MAX_KEY) continue
    if (version === 1 && (key.includes('=') || keyBytes + 1 + valueBytes > V1_MAX_ENTRY)) continue
    const cost = 1 + keyBytes + 4 + valueBytes
    let part = parts[parts.length - 1]!
    if (part.size > 0 && (octets + cost > PART_OCTETS || (version === 1 && part.size >= V1_MAX_ENTRIES))) {
      part = new Map()
      parts.push(part)
      octets = 0
    }
    part.set(key, value)
    octets += cost
  }
  return parts
}

/** Whether a cache fits in one message to our server (the size of one part). */
export function fitsOneMessage(cache: ReadonlyMap<string, string>): boolean {
  let octets = 0
  for (const [key, value] of cache) {
    octets += 1 + Buffer.byteLength(key, 'utf8') + 4 + Buffer.byteLength(value, 'utf8')
    if (octets > PART_OCTETS) return false
  }
  return true
}
