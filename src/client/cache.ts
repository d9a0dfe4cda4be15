/**
 * The `cache` of an ICANHAZ: what the inbox already holds under a subscription, as
 * `name=SHA-1 in hex` (from the manifest, manifest.ts), so that a resyncing server skips those
 * files, and the partial files the client offers to resume (partials.ts); and how much of it
 * the wire can carry.
 *
 * @packageDocumentation
 */
import { readlinkSync, type Stats } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import { relative, sep } from 'node:path'

import { PathOutsideInboxError, UnsafeNameError } from '../fs/errors.js'
import { resolveInboxPathSafely } from '../fs/inbox.js'
import { isPathInside } from '../fs/mounts.js'
import { realStateDirSync } from '../fs/placement.js'
import { type FolderEntries, listFolder, S_IFDIR, S_IFLNK, S_IFREG } from '../fs/listing.js'
import { scanFolders, type ScannedNode } from '../fs/scan.js'
import { resolveCacheKey, sortByVirtualPath } from '../fs/vpath.js'
import { cacheOrderKey, folderSum, formatTreeValue, statValue, sumKey } from '../protocol/extensions.js'
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
  const parts = new CacheParts(version)
  // A folder's sum (SUMS) goes where its key, the folder and "/", goes.
  for (const key of sortByVirtualPath([...absolute.keys()], (path) => cacheOrderKey(path, absolute.get(path)!))) parts.add(key, absolute.get(key)!)
  return parts.parts
}

/**
 * Parts of a cache cut as its entries come, in code point order of their virtual paths (see
 * {@link splitCache}).
 *
 * @example
 * ```ts
 * const cut = new CacheParts(2)
 * cut.add('/photos/a.jpg', 'file:3:644:1700000000000')
 * cut.parts // [Map { '/photos/a.jpg' => 'file:3:644:1700000000000' }]
 * ```
 */
export class CacheParts {
  /** The parts so far: at least one, the last one filling. */
  readonly parts: Map<string, string>[] = [new Map()]
  private octets = 0

  constructor(private readonly version: ProtocolVersion) {}

  /** Adds the next entry (its path after every path added before), unless the wire cannot carry it. */
  add(virtualPath: string, value: string): void {
    const keyBytes = Buffer.byteLength(virtualPath, 'utf8')
    const valueBytes = Buffer.byteLength(value, 'utf8')
    if (keyBytes > MAX_KEY) return
    if (this.version === 1 && (virtualPath.includes('=') || keyBytes + 1 + valueBytes > V1_MAX_ENTRY)) return
    const cost = 1 + keyBytes + 4 + valueBytes
    let part = this.parts[this.parts.length - 1]!
    if (part.size > 0 && (this.octets + cost > PART_OCTETS || (this.version === 1 && part.size >= V1_MAX_ENTRIES))) {
      part = new Map()
      this.parts.push(part)
      this.octets = 0
    }
    part.set(virtualPath, value)
    this.octets += cost
  }

  /** Takes the parts that are full (all but the one filling). */
  takeFull(): Map<string, string>[] {
    return this.parts.splice(0, this.parts.length - 1)
  }
}

/** Octets of parts a {@link CacheStream} holds before its walk waits for them to be taken. */
const STREAM_BUFFER_OCTETS = 32 * 1024 * 1024

/**
 * A cache in parts as a walk of the inbox cuts them, taken one at a time as they go out: the
 * walk runs ahead (so it overlaps with the server's start) up to a bound of parts waiting,
 * then waits, so a client holds a bounded part of a cache however big the inbox.
 *
 * @example
 * ```ts
 * const stream = quickCache('/in', '/in/.fmq', '/', 2)
 * for (let next = await stream.take(); ; next = await stream.take()) { send(next.part, next.more); if (!next.more) break }
 * ```
 */
export class CacheStream {
  private readonly ready: Map<string, string>[] = []
  private done = false
  private failure: unknown
  private wakeTaker: (() => void) | undefined
  private wakeWalk: (() => void) | undefined

  /** @param walk - cuts the cache: `cut` for each entry in order, `await pace()` now and then. */
  constructor(
    version: ProtocolVersion,
    walk: (cut: CacheParts, pace: () => Promise<void>) => Promise<void>,
    private readonly maxBuffered = Math.max(2, Math.floor(STREAM_BUFFER_OCTETS / PART_OCTETS)),
  ) {
    const cut = new CacheParts(version)
    const pace = async (): Promise<void> => {
      this.ready.push(...cut.takeFull())
      this.wake()
      while (this.ready.length >= this.maxBuffered) await new Promise<void>((resolve) => (this.wakeWalk = resolve))
    }
    walk(cut, pace).then(
      () => {
        this.ready.push(...cut.parts.splice(0))
        this.done = true
        this.wake()
      },
      (error: unknown) => {
        this.failure = error
        this.done = true
        this.wake()
      },
    )
  }

  /**
   * The next part, and whether more follow (the last may be empty); rejects if the walk
   * failed (what was taken stands: the server sends what the parts did not hold).
   */
  async take(): Promise<{ part: Map<string, string>; more: boolean }> {
    // One part is kept back until the next exists or the walk ends: the last part says so.
    while (!this.done && this.ready.length < 2) await new Promise<void>((resolve) => (this.wakeTaker = resolve))
    if (this.failure !== undefined) throw this.failure
    const part = this.ready.shift() ?? new Map<string, string>()
    const wake = this.wakeWalk
    this.wakeWalk = undefined
    wake?.()
    return { part, more: !this.done || this.ready.length > 0 }
  }

  /** Every part still to come, as one cache (for a peer that takes it whole). */
  async rest(): Promise<Map<string, string>[]> {
    const parts: Map<string, string>[] = []
    for (;;) {
      const { part, more } = await this.take()
      parts.push(part)
      if (!more) return parts
    }
  }

  private wake(): void {
    const wake = this.wakeTaker
    this.wakeTaker = undefined
    wake?.()
  }
}

/** The entries of parts as one cache (keys are virtual paths, which a cache may hold as they are). */
export function joinParts(parts: readonly ReadonlyMap<string, string>[]): Map<string, string> {
  const cache = new Map<string, string>()
  for (const part of parts) for (const [key, value] of part) cache.set(key, value)
  return cache
}

/** Where a subscription's cache is read: the inbox's real path, the state folder's, the subscribed entry's, its stat. */
export interface CacheRoot {
  readonly inbox: string
  readonly stateDir: string
  readonly root: string
  readonly stats: Stats
  /** The subscribed entry relative to the inbox, `"/"`-separated (`""` for the inbox itself). */
  readonly prefix: string
}

/**
 * The subscribed part of the inbox a cache describes; undefined when there is nothing to
 * describe (it does not exist, is unsafe, or is the state folder or inside it).
 */
export async function cacheRoot(inbox: string, stateDir: string, subscription: string): Promise<CacheRoot | undefined> {
  let real: { inbox: string; stateDir: string }
  let root: string
  let stats: Stats
  try {
    real = await realStateDir(inbox, stateDir)
    root = subscription === '/' ? await realpath(inbox) : await resolveInboxPathSafely(inbox, subscription)
    stats = await stat(root)
  } catch (error) {
    if (error instanceof UnsafeNameError || error instanceof PathOutsideInboxError || isMissing(error)) return undefined
    throw error
  }
  if (root === real.stateDir || isPathInside(real.stateDir, root)) return undefined
  return { ...real, root, stats, prefix: relative(real.inbox, root).split(sep).join('/') }
}

/**
 * The subscribed folder a walk starts from; undefined when there is none to walk, a file there
 * cut as its one QUICK entry.
 */
async function folderRoot(inbox: string, stateDir: string, subscription: string, cut: CacheParts): Promise<CacheRoot | undefined> {
  const at = await cacheRoot(inbox, stateDir, subscription)
  if (at?.stats.isFile() === true) cut.add(subscription, statValue(at.stats.size, at.stats.mode, at.stats.mtimeMs))
  return at?.stats.isDirectory() === true ? at : undefined
}

/**
 * What the inbox holds under a subscription, for a server that named QUICK: files by size, mode
 * and mtime (`file:SIZE:MODE:MTIME`), directories and links as a TREE=1 cache has them, cut in
 * parts as the walk finds them in code point order. Nothing is read but the folders and the
 * stats: neither the files nor the manifest. The walk starts at once.
 *
 * @example
 * ```ts
 * const first = await quickCache('/in', '/in/.fmq', '/photos', 2).take()
 * ```
 */
export function quickCache(inbox: string, stateDir: string, subscription: string, version: ProtocolVersion, signal?: AbortSignal): CacheStream {
  return new CacheStream(version, async (cut, pace) => {
    const at = await folderRoot(inbox, stateDir, subscription, cut)
    if (at === undefined) return
    const base = subscription === '/' ? '/' : `${subscription}/`
    const { exclude, inState } = stateLeftOut(at.root, at.stateDir)
    // One run of a folder: its nodes (as they are met) and files (as the run ends), put in order.
    const run: Array<[string, string]> = []
    const onNode = (node: ScannedNode): void => {
      if (inState(node.physicalPath)) return
      run.push([node.relativePath, formatTreeValue(node.kind === 'dir' ? { kind: 'dir', mode: node.mode } : { kind: 'link', target: node.target ?? '' })])
    }
    for await (const files of scanFolders(at.root, {
      sorted: true,
      portableLinks: false,
      followSymlinks: false,
      exclude,
      onNode,
      ...(signal === undefined ? {} : { signal }),
    })) {
      for (const file of files) {
        if (!inState(file.physicalPath)) run.push([file.relativePath, statValue(file.size, file.mode, file.mtimeMs)])
      }
      sortByVirtualPath(run, ([key]) => key)
      for (const [key, value] of run) cut.add(base + key, value)
      run.length = 0
      await pace()
    }
  })
}

/**
 * What the inbox holds under a subscription, for a server that named SUMS: one sum per folder
 * (spec/fmq_msg.xml, SUMS), keyed by the folder's virtual path and "/", as a depth-first walk in
 * code point order meets them, cut in parts. A file at the subscription's path is one QUICK
 * entry, as {@link quickCache} gives it. Nothing is read but the folders, their entries' stats
 * and the links' texts. A folder that cannot be listed is left out (the server then sends what
 * it holds, and the writes report what fails).
 *
 * @example
 * ```ts
 * const first = await sumsCache('/in', '/in/.fmq', '/', 2).take() // Map { '/' => 'sum:…', '/a/' => 'sum:…', … }
 * ```
 */
export function sumsCache(inbox: string, stateDir: string, subscription: string, version: ProtocolVersion, signal?: AbortSignal): CacheStream {
  return new CacheStream(version, async (cut, pace) => {
    const at = await folderRoot(inbox, stateDir, subscription, cut)
    if (at === undefined) return
    const { inState } = stateLeftOut(at.root, at.stateDir)
    // Depth first, each folder's sub-folders in code point order of their names and "/": the keys then come in order.
    const pending: Array<{ physical: string; virtual: string }> = [{ physical: at.root, virtual: subscription }]
    while (pending.length > 0) {
      signal?.throwIfAborted()
      const { physical, virtual } = pending.pop()!
      const listed = folderValues(physical, inState)
      if (listed === undefined) continue
      cut.add(sumKey(virtual), formatTreeValue({ kind: 'sum', digest: folderSum(listed.values) }))
      const base = virtual === '/' ? '/' : `${virtual}/`
      for (const name of sortByVirtualPath(listed.folders, (folder) => `${folder}/`).reverse()) pending.push({ physical: `${physical}/${name}`, virtual: base + name })
      await pace()
    }
  })
}

/**
 * The entries directly in one folder of the inbox, for a server that named SUMS and answered
 * DIFFERS for it: QUICK and TREE=1 values (files by size, mode and mtime, directories,
 * links), keyed by virtual path, in code point order, cut in parts. Nothing when the folder is
 * not one (the server then deletes nothing it holds).
 */
export function folderCache(inbox: string, stateDir: string, folder: string, version: ProtocolVersion): CacheStream {
  return new CacheStream(version, async (cut) => {
    const at = await cacheRoot(inbox, stateDir, folder)
    if (at === undefined || !at.stats.isDirectory()) return
    const listed = folderValues(at.root, stateLeftOut(at.root, at.stateDir).inState)
    if (listed === undefined) return
    const base = folder === '/' ? '/' : `${folder}/`
    for (const [name, value] of sortByVirtualPath(listed.values, ([entry]) => entry)) cut.add(base + name, value)
  })
}

/**
 * A folder's entries as a TREE=1 QUICK cache has them (`[name, value]`: files, directories and
 * links; nothing else is mirrored), and the names of its sub-folders; undefined when it cannot
 * be listed.
 */
function folderValues(physical: string, inState: (physical: string) => boolean): { values: Array<[string, string]>; folders: string[] } | undefined {
  let listed: FolderEntries
  try {
    listed = listFolder(physical)
  } catch {
    return undefined
  }
  const values: Array<[string, string]> = []
  const folders: string[] = []
  for (let i = 0; i < listed.length; i++) {
    if (!listed.statted(i)) continue
    const name = listed.names[i]!
    const format = listed.format(i)
    if (format === S_IFDIR) {
      if (inState(`${physical}/${name}`)) continue
      values.push([name, formatTreeValue({ kind: 'dir', mode: listed.mode(i) })])
      folders.push(name)
    } else if (format === S_IFREG) {
      if (!inState(`${physical}/${name}`)) values.push([name, statValue(listed.size(i), listed.mode(i), listed.mtimeMs(i))])
    } else if (format === S_IFLNK) {
      try {
        values.push([name, formatTreeValue({ kind: 'link', target: readlinkSync(`${physical}/${name}`) })])
      } catch {
        // Gone meanwhile: as if it were not there.
      }
    }
  }
  return { values, folders }
}

/**
 * The state folder left out of a walk of `root` when it is inside it: an exclude glob that
 * keeps the walk out of it, and a test for entries found in it all the same.
 */
export function stateLeftOut(root: string, state: string): { exclude: string[]; inState: (physical: string) => boolean } {
  if (!isPathInside(root, state)) return { exclude: [], inState: () => false }
  return {
    exclude: [`${escapeGlob(relative(root, state).split(sep).join('/'))}/**`],
    inState: (physical) => physical === state || physical.startsWith(`${state}/`),
  }
}

/** A path as a glob that matches only it: every character a glob gives a meaning escaped. */
function escapeGlob(path: string): string {
  return path.replace(/[\\*?[\]{}()!@+|]/g, '\\$&')
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
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
