/**
 * A resync judged folder by folder (ICANHAZ option SUMS=1, spec/fmq_msg.xml SUMS): the client's
 * cache holds one sum per folder, compared with the sum of the folder as published
 * (folder-sums.ts). The same sum costs nothing; another sum is answered DIFFERS, and the client
 * asks again for that folder alone (FOLDER=1), judged entry by entry as any cache; a folder the
 * cache does not name is sent whole; with MIRROR=1 a summed folder no longer published is
 * deleted, with everything under it.
 *
 * @packageDocumentation
 */
import { compareVirtualPaths, covers } from '../fs/vpath.js'
import { sumKey } from '../protocol/extensions.js'
import type { Asked, PartedResync, Patch, Peer } from './peer.js'
import type { Publisher } from './publisher.js'

/** Queues a patch of a resync (or, in a dry run, says what it would do); `held`: the cache names the entry. */
export type PutPatch = (patch: Patch, held: boolean) => void

/**
 * Judges one ICANHAZ of a resync in sums: the folders in the range of paths its keys span
 * (all that are left for the last part), and the deletions its keys call for.
 */
export function judgeFolders(publisher: Publisher, peer: Peer, asked: Asked, put: PutPatch): void {
  const { folders, ordered } = publisher.folders()
  const parts = partsOf(peer, asked, ordered)
  const range = folderRange(peer, parts, asked)
  const { lacking, deleted } = parts as Required<PartedResync>
  // The path itself held as a file or a link where a folder is published now: deleted first (MIRROR=1).
  for (const [virtualPath, entry] of asked.cache) {
    if (entry.kind === 'sum' || entry.kind === 'partial') continue
    if (asked.mirror && folders.has(virtualPath) && !publisher.holdsBack(virtualPath)) put({ operation: 'delete', virtualPath }, true)
  }
  for (const folder of range) {
    const published = folders.get(folder)!
    const entry = asked.cache.get(folder)
    if (entry?.kind === 'sum') {
      if (entry.digest !== published.sum) peer.enqueue({ operation: 'differs', virtualPath: folder })
      continue
    }
    // Not held: its directory (unless its folder, not held either, brought it), then all in it.
    if (publisher.node(folder) !== undefined && !lacking.has(parentOf(folder))) put({ operation: 'node', virtualPath: folder }, false)
    lacking.add(folder)
    for (const child of published.children) {
      if (publisher.get(child) !== undefined) put({ operation: 'create', virtualPath: child }, false)
      else if (publisher.node(child) !== undefined) put({ operation: 'node', virtualPath: child }, false)
    }
  }
  for (const [virtualPath, entry] of asked.cache) {
    if (entry.kind !== 'sum' || folders.has(virtualPath)) continue
    if (virtualPath === asked.path) {
      // Nothing published here now: the folder is asked for again, so what it holds goes (or, without MIRROR, stays).
      peer.enqueue({ operation: 'differs', virtualPath })
      continue
    }
    if (!asked.mirror || !covers(asked.path, virtualPath)) continue
    // A file or a link now: its folder's sum differs, and that folder, asked again, replaces it.
    if (publisher.get(virtualPath) !== undefined || publisher.node(virtualPath) !== undefined) continue
    // Under an entry we could not read: not known to be gone, so not deleted.
    if (publisher.holdsBack(virtualPath) || insideAny(deleted, virtualPath)) continue
    deleted.add(virtualPath)
    put({ operation: 'delete', virtualPath }, true)
  }
}

/**
 * The entries a folder asked again (FOLDER=1) is judged over: those directly in it, in code
 * point order; none when it is no folder here (what the cache names of it is then deleted,
 * with MIRROR=1).
 */
export function folderEntries(publisher: Publisher, folder: string): readonly string[] {
  return publisher.folders().folders.get(folder)?.children ?? []
}

/**
 * Whether a cache entry of a folder asked again (FOLDER=1) is one that folder's judging may
 * delete: directly in it, and not a folder holding what is published (a mount's virtual
 * parents are no entries of their own).
 */
export function deletableInFolder(publisher: Publisher, folder: string, virtualPath: string): boolean {
  return parentOf(virtualPath) === folder && !publisher.folders().folders.has(virtualPath)
}

/** The parts state of a resync in sums: the folders under the path, in the order of their keys. */
function partsOf(peer: Peer, asked: Asked, ordered: readonly string[]): PartedResync {
  peer.parts ??= {
    path: asked.path,
    listing: ordered.filter((folder) => folder === asked.path || covers(asked.path, folder)),
    at: 0,
    last: undefined,
    lacking: new Set(),
    deleted: new Set(),
  }
  return peer.parts
}

/**
 * The folders this ICANHAZ judges: after the previous part's last key up to this part's last
 * key (a folder at its sum key), all that are left for the last part.
 */
function folderRange(peer: Peer, parts: PartedResync, asked: Asked): readonly string[] {
  let upTo: string | undefined
  for (const [virtualPath, entry] of asked.cache) {
    const key = entry.kind === 'sum' ? sumKey(virtualPath) : virtualPath
    if (parts.last !== undefined && compareVirtualPaths(key, parts.last) <= 0) throw new Error(`cache part keys out of order at ${key}`)
    if (upTo === undefined || compareVirtualPaths(key, upTo) > 0) upTo = key
  }
  const { listing } = parts
  const start = parts.at
  let end = start
  if (!asked.more) end = listing.length
  else while (end < listing.length && upTo !== undefined && compareVirtualPaths(sumKey(listing[end]!), upTo) <= 0) end++
  parts.at = end
  parts.last = upTo ?? parts.last
  if (!asked.more) peer.parts = undefined
  return listing.slice(start, end)
}

/** The folder a virtual path is in. */
export function parentOf(virtualPath: string): string {
  const at = virtualPath.lastIndexOf('/')
  return at <= 0 ? '/' : virtualPath.slice(0, at)
}

/** Whether a virtual path is inside one of these folders. */
function insideAny(folders: ReadonlySet<string>, virtualPath: string): boolean {
  for (let at = virtualPath.lastIndexOf('/'); at > 0; at = virtualPath.lastIndexOf('/', at - 1)) {
    if (folders.has(virtualPath.slice(0, at))) return true
  }
  return false
}
