/**
 * When a client may already hold a file's content, so that the server offers it by digest
 * (operation ATTRIBUTES, TREE=1) rather than sending it: a file touched (same size, and the
 * SHA-1 it had before), renamed (a file of that size was lately unpublished) or copied (another
 * published file has that size). Sizes are cheap to keep and make a file worth reading for its
 * digest before it is sent; the digest then decides (file-index.ts, `contentElsewhere`).
 *
 * @packageDocumentation
 */

/** Sizes and earlier digests remembered, each (oldest forgotten first). */
const MAX_REMEMBERED = 10_000

export class LikelyHeld {
  /** Published files per size. */
  private readonly sizes = new Map<number, number>()
  /** Sizes of files lately unpublished, oldest first. */
  private readonly removedSizes = new Set<number>()
  /** The SHA-1 a file had before a change that kept its size. */
  private readonly previous = new Map<string, string>()

  /** A file of this size is published (`delta` 1) or no longer (-1, `removed`: gone, not replaced). */
  published(size: number, delta: 1 | -1, removed = false): void {
    const count = (this.sizes.get(size) ?? 0) + delta
    if (count > 0) this.sizes.set(size, count)
    else this.sizes.delete(size)
    if (removed) remember(this.removedSizes, size)
  }

  /** A file was unpublished while the server was down: its content may be back under another name. */
  removed(size: number): void {
    remember(this.removedSizes, size)
  }

  /** A new version of a published file: `before` is the SHA-1 it had when its size did not change. */
  changed(virtualPath: string, before: string | undefined): void {
    this.previous.delete(virtualPath)
    if (before === undefined) return
    this.previous.set(virtualPath, before)
    if (this.previous.size > MAX_REMEMBERED) this.previous.delete(this.previous.keys().next().value!)
  }

  /** The SHA-1 a touched file had, if it kept its size. */
  before(virtualPath: string): string | undefined {
    return this.previous.get(virtualPath)
  }

  /**
   * Whether the only reason to hash it first is another published file of its size (a copy),
   * which a look at its start may rule out (copy-probe.ts).
   */
  copyOnly(virtualPath: string, size: number): boolean {
    return !this.previous.has(virtualPath) && !this.removedSizes.has(size) && (this.sizes.get(size) ?? 0) > 1
  }

  /** Whether a file of this size is worth hashing before it is sent: a rename or a copy is likely. */
  worthHashing(virtualPath: string, size: number): boolean {
    return this.previous.has(virtualPath) || this.removedSizes.has(size) || (this.sizes.get(size) ?? 0) > 1
  }
}

function remember<T>(set: Set<T>, value: T): void {
  set.delete(value)
  set.add(value)
  if (set.size > MAX_REMEMBERED) set.delete(set.values().next().value!)
}
