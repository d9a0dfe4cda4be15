/**
 * The `cache` of an ICANHAZ: what the inbox already holds under a subscription, as
 * `name=SHA-1 in hex`, so that a resyncing server skips those files. Hashing streams each file
 * (src/fs/digest.ts) and the walk is asynchronous, so a big inbox never blocks the event loop.
 *
 * @packageDocumentation
 */
import { realpath, stat } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'

import fg from 'fast-glob'

import { sha1File } from '../fs/digest.js'
import { PathOutsideInboxError, UnsafeNameError } from '../fs/errors.js'
import { resolveInboxPathSafely } from '../fs/inbox.js'
import { isPathInside } from '../fs/mounts.js'
import { scanMount } from '../fs/scan.js'
import type { ProtocolVersion } from '../protocol/generated/fmq_msg.js'

/** A version-1 dictionary holds at most 255 entries (1-octet count)... */
const V1_MAX_ENTRIES = 255
/** ...of at most 255 octets each, `name=value` (1-octet string length). */
const V1_MAX_ENTRY = 255
/** Hash keys are 1-octet strings in version 2 as well. */
const MAX_KEY = 255

/**
 * The real path of the state directory, as it will be seen from `realpath(inbox)`: the default
 * `<inbox>/.fmq` need not exist yet, so it is rebased rather than resolved.
 */
export async function realStateDir(inbox: string, stateDir: string): Promise<{ inbox: string; stateDir: string }> {
  const inboxReal = await realpath(inbox)
  const lexicalInbox = resolve(inbox)
  const lexicalState = resolve(stateDir)
  if (lexicalState === lexicalInbox) return { inbox: inboxReal, stateDir: inboxReal }
  if (isPathInside(lexicalInbox, lexicalState)) {
    return { inbox: inboxReal, stateDir: join(inboxReal, relative(lexicalInbox, lexicalState)) }
  }
  try {
    return { inbox: inboxReal, stateDir: await realpath(lexicalState) }
  } catch {
    return { inbox: inboxReal, stateDir: lexicalState }
  }
}

/**
 * SHA-1 of every regular file under the subscription's part of the inbox, keyed relative to
 * the subscribed path (REFERENCE: a relative key is joined to the subscription). Symbolic links
 * and the state directory are left out; a subscription naming a single file gets its absolute
 * virtual path as key. A part of the inbox that does not exist gives an empty cache.
 *
 * @example
 * ```ts
 * await computeCache('/in', '/in/.fmq', '/photos') // Map { '2024/a.jpg' => 'a9993e36...' }
 * ```
 */
export async function computeCache(
  inbox: string,
  stateDir: string,
  subscription: string,
  signal?: AbortSignal,
): Promise<Map<string, string>> {
  const cache = new Map<string, string>()
  let root: string
  let state: string
  try {
    state = (await realStateDir(inbox, stateDir)).stateDir
    root = subscription === '/' ? await realpath(inbox) : await resolveInboxPathSafely(inbox, subscription)
  } catch (error) {
    if (error instanceof UnsafeNameError || error instanceof PathOutsideInboxError || isMissing(error)) return cache
    throw error
  }
  let rootStats
  try {
    rootStats = await stat(root)
  } catch (error) {
    if (isMissing(error)) return cache
    throw error
  }
  if (root === state || isPathInside(state, root)) return cache
  if (rootStats.isFile()) {
    cache.set(subscription, await sha1File(root, signal === undefined ? {} : { signal }))
    return cache
  }
  if (!rootStats.isDirectory()) return cache

  const exclude = isPathInside(root, state) ? [fg.escapePath(relative(root, state).split(sep).join('/')) + '/**'] : []
  const scan = scanMount(root, { portableLinks: false, followSymlinks: false, exclude, ...(signal === undefined ? {} : { signal }) })
  for await (const file of scan) {
    if (isPathInside(state, file.physicalPath)) continue
    try {
      cache.set(file.relativePath, await sha1File(file.physicalPath, signal === undefined ? {} : { signal }))
    } catch (error) {
      if (!isMissing(error)) throw error // a file that vanished meanwhile is simply not cached
    }
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

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
