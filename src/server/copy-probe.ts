/**
 * The copy check's first look. A new file that another published file's size matches may be
 * a copy of it (TREE=1: offered by digest, ATTRIBUTES, which the client copies from what it
 * holds), so it used to be hashed whole before its turn, then read again to be sent. Where
 * many files share a size (dataset B: 1,024 files of 1 MiB), that was every file hashed
 * for nothing. Now the first {@link PROBE_BYTES} of the file and of the others of its size
 * are compared first: a copy starts as its original does, so a file whose start no other
 * file of its size shares cannot be one, and goes without being hashed first.
 *
 * Only the copy case is probed: a touched file (its earlier digest is known) and a rename (a
 * file of that size was lately unpublished, its start no longer readable) are hashed as before.
 *
 * @packageDocumentation
 */
import { open } from 'node:fs/promises'

import { digestHex } from '../fs/digest.js'

/** Octets read from the start of a file to tell it from the others of its size. */
export const PROBE_BYTES = 64 * 1024

/**
 * Starts of other files read for one check at most (16 MiB): with more files of that size
 * not probed yet, the file is hashed whole as before, and the next check goes on where this
 * one stopped (the probes are kept). Thousands of files of one size then delay no file's turn
 * by more than this.
 */
export const PROBES_PER_CHECK = 256

/** The identity of a version of a file, as the index keys it. */
interface Version {
  readonly virtualPath: string
  readonly physicalPath: string
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
}

interface Probe {
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
  /** The XXH128 of the file's first octets; undefined when it could not be read. */
  readonly digest: Promise<string | undefined>
}

/** Published files by size, and the probes of those compared. */
export class CopyProbes {
  private readonly bySize = new Map<number, Set<string>>()
  private readonly probes = new Map<string, Probe>()

  /**
   * @param min - files under this size are never offered by digest: not kept.
   * @param current - the published file at a virtual path now.
   */
  constructor(
    private readonly min: number,
    private readonly current: (virtualPath: string) => Version | undefined,
  ) {}

  /** A file of this size is published at this path (`delta` 1), or no longer (-1). */
  published(virtualPath: string, size: number, delta: 1 | -1): void {
    if (size < this.min) return
    let paths = this.bySize.get(size)
    if (delta === 1) {
      if (paths === undefined) this.bySize.set(size, (paths = new Set()))
      paths.add(virtualPath)
      return
    }
    this.probes.delete(virtualPath)
    if (paths === undefined) return
    paths.delete(virtualPath)
    if (paths.size === 0) this.bySize.delete(size)
  }

  /**
   * Whether another published file of this size starts as this one does, so that it may be a
   * copy; true as well when a start cannot be read (the whole digest then decides).
   */
  async copyPossible(file: Version): Promise<boolean> {
    const paths = this.bySize.get(file.size)
    if (paths === undefined || paths.size < 2) return false
    const mine = await this.probe(file)
    if (mine === undefined) return true
    let read = 0
    for (const path of [...paths]) {
      if (path === file.virtualPath) continue
      const other = this.current(path)
      if (other === undefined || other.size !== file.size) continue
      if (!this.probed(other) && ++read > PROBES_PER_CHECK) return true
      const theirs = await this.probe(other)
      if (theirs === undefined || theirs === mine) return true
    }
    return false
  }

  private probed(file: Version): boolean {
    const known = this.probes.get(file.virtualPath)
    return known !== undefined && known.size === file.size && known.mtimeMs === file.mtimeMs && known.ino === file.ino
  }

  private probe(file: Version): Promise<string | undefined> {
    if (this.probed(file)) return this.probes.get(file.virtualPath)!.digest
    const digest = readStart(file.physicalPath, Math.min(PROBE_BYTES, file.size))
    this.probes.set(file.virtualPath, { size: file.size, mtimeMs: file.mtimeMs, ino: file.ino, digest })
    return digest
  }
}

/** The XXH128 of a file's first `length` octets; undefined when they cannot be read. */
async function readStart(path: string, length: number): Promise<string | undefined> {
  let handle
  try {
    handle = await open(path, 'r')
    const data = Buffer.allocUnsafe(length)
    let read = 0
    while (read < length) {
      const { bytesRead } = await handle.read(data, read, length - read, read)
      if (bytesRead === 0) return undefined // shorter than its size: changing
      read += bytesRead
    }
    return digestHex('xxh128', data)
  } catch {
    return undefined
  } finally {
    await handle?.close().catch(() => undefined)
  }
}
