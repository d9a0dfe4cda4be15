/**
 * A resync judged folder by folder (ICANHAZ option SUMS=1, spec/fmq_msg.xml SUMS): the client's
 * cache holds one sum per folder, compared with the sum of the folder as published
 * (folder-sums.ts). The same sum costs nothing; another sum is answered DIFFERS, and the client
 * asks again for that folder alone (FOLDER=1), judged entry by entry as any cache, a folder in
 * it that the client does not hold sent whole.
 *
 * @packageDocumentation
 */
import { compareVirtualPaths, covers } from '../fs/vpath.js'
import { sumKey } from '../protocol/extensions.js'
import type { Asked, Patch, Peer } from './peer.js'
import type { Publisher } from './publisher.js'

/** Queues a patch of a resync (or, in a dry run, says what it would do); `held`: the cache names the entry. */
export type PutPatch = (patch: Patch, held: boolean) => void

/**
 * Judges one ICANHAZ of a resync in sums, over the folders in the range of paths its keys span
 * (all that are left for the last part). Each summed folder that differs is answered DIFFERS:
 * asked again, its own entries are judged (those it lacks sent, those gone deleted, a folder
 * it lacks sent whole with its directory first, see {@link sendFolder}). Nothing else is sent
 * for a folder the cache does not sum: its parent's sum differs (it lists it, or not as a
 * folder), and the parent asked again sends it. The path itself has no parent here, and a
 * mount (or a folder above one) no directory a parent could send: not summed, they are sent
 * whole. The path summed and no longer published is asked again, so that what it holds goes.
 */
export function judgeFolders(publisher: Publisher, peer: Peer, asked: Asked, put: PutPatch): void {
  const { folders, ordered } = publisher.folders()
  for (const folder of folderRange(peer, asked, ordered)) {
    const entry = asked.cache.get(folder)
    if (entry?.kind === 'sum') {
      if (entry.digest !== folders.get(folder)!.sum) peer.enqueue({ operation: 'differs', virtualPath: folder })
    } else if (folder === asked.path || publisher.node(folder) === undefined) {
      // No parent sends these: the path itself, and a folder published only as the place of what
      // is in it (a mount, the folders above one), which no DIRECTORY stands for.
      sendFolder(publisher, folder, put)
    }
  }
  const root = asked.cache.get(asked.path)
  if (root?.kind === 'sum' && !folders.has(asked.path)) peer.enqueue({ operation: 'differs', virtualPath: asked.path })
}

/**
 * Everything under a folder the client does not hold (the folder's own directory is its
 * parent's to send, before this): each entry directly in it, and each folder in it whole after
 * its directory, in code point order.
 */
export function sendFolder(publisher: Publisher, folder: string, put: PutPatch): void {
  const { folders } = publisher.folders()
  for (const child of folders.get(folder)?.children ?? []) {
    if (publisher.get(child) !== undefined) {
      put({ operation: 'create', virtualPath: child }, false)
      continue
    }
    const node = publisher.node(child)
    if (node === undefined) continue
    put({ operation: 'node', virtualPath: child }, false)
    if (node.kind === 'dir') sendFolder(publisher, child, put)
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

/**
 * The folders this ICANHAZ judges: after the previous part's last key up to this part's last
 * key (a folder at its sum key), all that are left for the last part; the folders under the
 * path listed when the first part came.
 */
function folderRange(peer: Peer, asked: Asked, ordered: readonly string[]): readonly string[] {
  const parts = (peer.parts ??= {
    path: asked.path,
    listing: ordered.filter((folder) => folder === asked.path || covers(asked.path, folder)),
    at: 0,
    last: undefined,
  })
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
