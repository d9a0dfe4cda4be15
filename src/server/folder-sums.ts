/**
 * The sum of every published folder (spec/fmq_msg.xml, SUMS): what a resync in sums compares
 * with a client's, folder by folder, so that a rerun over an unchanged mirror judges a thousand
 * folders rather than a hundred thousand files. Made in one pass over what is published when a
 * resync first asks, kept until anything published changes.
 *
 * @packageDocumentation
 */
import { sortByVirtualPath } from '../fs/vpath.js'
import { formatTreeValue, statValue, sumKey, sumLine, sumOfOrderedLines } from '../protocol/extensions.js'
import type { PublishedFile, PublishedNode } from './publisher.js'

/** One published folder: the sum of its direct entries and their virtual paths, in code point order. */
export interface SummedFolder {
  readonly sum: string
  readonly children: readonly string[]
}

/** Every published folder by virtual path, and the folders in code point order of their sum keys. */
export interface FolderListing {
  readonly folders: ReadonlyMap<string, SummedFolder>
  readonly ordered: readonly string[]
}

/**
 * The folders of what is published, summed. A folder is the root, a published directory, or
 * a folder that holds something published without being published itself (the virtual
 * folders above a mount, the mount itself): such a folder lists what is published in it, and
 * only that, so its sum differs from a client's, which then asks for it entry by entry.
 */
export class FolderSums {
  private listing: FolderListing | undefined

  /** Anything published changed: the sums are made again when next asked. */
  invalidate(): void {
    this.listing = undefined
  }

  /** The folders and their sums as published now. */
  get(files: ReadonlyMap<string, PublishedFile>, nodes: ReadonlyMap<string, PublishedNode>): FolderListing {
    this.listing ??= summed(files, nodes)
    return this.listing
  }
}

function summed(files: ReadonlyMap<string, PublishedFile>, nodes: ReadonlyMap<string, PublishedNode>): FolderListing {
  // Per folder, its entries (the published objects themselves: their values are made from them,
  // with no lookup by path); the sums are then made a folder at a time, so only one folder's
  // lines are held at once (a million files cost their paths, not their lines).
  const groups = new Map<string, Entry[]>()
  const group = (folder: string): Entry[] => {
    let children = groups.get(folder)
    if (children === undefined) {
      children = []
      groups.set(folder, children)
    }
    return children
  }
  // A scan publishes a folder's entries one after another: the folder of the previous path is
  // most often this one's too, recognised without cutting (and hashing) a new string per path.
  let lastPrefix = ''
  let lastChildren: Entry[] = []
  const add = (entry: Entry): void => {
    const virtualPath = entry.virtualPath
    if (lastPrefix !== '' && virtualPath.startsWith(lastPrefix) && virtualPath.indexOf('/', lastPrefix.length) === -1) {
      lastChildren.push(entry)
      return
    }
    const at = virtualPath.lastIndexOf('/')
    lastPrefix = virtualPath.slice(0, at + 1)
    lastChildren = group(at === 0 ? '/' : virtualPath.slice(0, at))
    lastChildren.push(entry)
  }
  for (const file of files.values()) add(file)
  for (const node of nodes.values()) {
    add(node)
    if (node.kind === 'dir') group(node.virtualPath)
  }
  // The folders above each one (a mount's virtual parents) are folders too, even with nothing published in them.
  for (const folder of [...groups.keys()]) {
    for (let at = folder.lastIndexOf('/'); at >= 0; at = folder.lastIndexOf('/', at - 1)) {
      const parent = at === 0 ? '/' : folder.slice(0, at)
      if (groups.has(parent)) break
      group(parent)
      if (at === 0) break
    }
  }
  const folders = new Map<string, SummedFolder>()
  for (const [folder, entries] of groups) {
    // In code point order of their paths, which in one folder is that of their names, and so
    // of their lines (sumOfLines): the lines are made in that order and joined as they come.
    sortByVirtualPath(entries, pathOf)
    const from = folder === '/' ? 1 : folder.length + 1
    let joined = ''
    const children: string[] = new Array(entries.length)
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k]!
      children[k] = entry.virtualPath
      joined += sumLine(entry.virtualPath.slice(from), valueOf(entry))
    }
    folders.set(folder, { sum: sumOfOrderedLines(joined), children })
  }
  return { folders, ordered: sortByVirtualPath([...folders.keys()], sumKey) }
}

/** A published file, directory or link. */
type Entry = PublishedFile | PublishedNode

const pathOf = (entry: Entry): string => entry.virtualPath

/** An entry's value in its folder's sum, as a client's cache gives it (formatTreeValue). */
function valueOf(entry: Entry): string {
  if (!('kind' in entry)) return statValue(entry.size, entry.mode, entry.mtimeMs)
  return formatTreeValue(entry.kind === 'dir' ? { kind: 'dir', mode: entry.mode } : { kind: 'link', target: entry.target ?? '' })
}
