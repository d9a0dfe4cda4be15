/**
 * The server's half of delta transfer (src/protocol/delta.ts): the chunks of each new version,
 * cut once and shared by every client it goes to, and the content of a transfer sent as a plan
 * of runs to copy from the client's old version and octets to send.
 *
 * A version's chunks are cut when it is offered (operation DELTA), while the client cuts its
 * old version: both ends read at once, and the plan is only lookups when the signature comes.
 *
 * @packageDocumentation
 */
import { stat, type FileHandle, open } from 'node:fs/promises'
import { type Chunk, type DeltaPlan, type Segment, type Signature, chunkHash, chunkHashReady, chunkList, planDelta } from '../fs/chunking.js'
import { COPY_RUN_MAX, DELTA_WORTH } from '../protocol/delta.js'
import { withHeadroom } from '../protocol/wire.js'
import type { Content } from './content.js'
import type { FileStat } from './file-index.js'
import type { PublishedFile } from './publisher.js'

/** Versions whose chunks are kept: a few large files changing at once. */
const KEPT_VERSIONS = 8

const versionKey = (file: PublishedFile, bits: number): string => `${file.physicalPath}\0${file.size}\0${file.mtimeMs}\0${file.ino}\0${bits}`

/**
 * The chunks of published versions, by version and chunking: cut once however many clients a
 * version goes to. Undefined when the file is no longer that version (it changed: it is sent
 * again once stable) or cannot be read.
 */
export class VersionChunks {
  private readonly kept = new Map<string, Promise<Chunk[] | undefined>>()

  /** Starts cutting a version (an offer went out); its chunks are ready when the signature comes. */
  prepare(file: PublishedFile, bits: number): void {
    void this.of(file, bits)
  }

  of(file: PublishedFile, bits: number): Promise<Chunk[] | undefined> {
    const key = versionKey(file, bits)
    let chunks = this.kept.get(key)
    if (chunks === undefined) {
      chunks = cut(file, bits)
      this.kept.set(key, chunks)
      while (this.kept.size > KEPT_VERSIONS) this.kept.delete(this.kept.keys().next().value!)
    } else {
      // Most recently used last.
      this.kept.delete(key)
      this.kept.set(key, chunks)
    }
    return chunks
  }
}

async function cut(file: PublishedFile, bits: number): Promise<Chunk[] | undefined> {
  const handle = await open(file.physicalPath, 'r').catch(() => undefined)
  if (handle === undefined) return undefined
  try {
    if (!sameVersion(await handle.stat(), file)) return undefined
    return await chunkList(handle, bits, file.size)
  } catch {
    return undefined
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/** The part of a plan from `start` on (a partial file the client resumes holds what is before). */
function from(plan: DeltaPlan, start: number): DeltaPlan {
  if (start === 0) return plan
  const segments: Segment[] = []
  let at = 0
  let copied = 0
  let literal = 0
  for (const segment of plan.segments) {
    const end = at + segment.length
    if (end > start) {
      const skip = Math.max(0, start - at)
      const length = segment.length - skip
      if (segment.kind === 'copy') {
        segments.push({ kind: 'copy', source: segment.source + skip, length })
        copied += length
      } else {
        segments.push({ kind: 'literal', offset: segment.offset + skip, length })
        literal += length
      }
    }
    at = end
  }
  return { size: plan.size, segments, copied, literal }
}

const sameVersion = (a: FileStat, b: FileStat): boolean => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino

/** One step of a delta transfer: a run to copy, or octets of content. */
export type DeltaStep = { readonly kind: 'copy'; readonly source: number; readonly length: number } | { readonly kind: 'literal'; readonly data: Buffer }

/**
 * The content of a file sent as a delta: the plan's runs in order, copies at most
 * {@link COPY_RUN_MAX} each, content read where the plan says.
 */
export class DeltaContent implements Content {
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
  private segment = 0
  /** Octets of the current segment already stepped over. */
  private done = 0

  private constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    info: FileStat,
    readonly plan: DeltaPlan,
    /** Where sending starts: 0, or the offset of a partial file the client resumes. */
    readonly start: number,
  ) {
    this.size = info.size
    this.mtimeMs = info.mtimeMs
    this.ino = info.ino
  }

  /**
   * Opens the version of `file` published now and plans it against a client's signature;
   * undefined when the file changed, cannot be read, or has too little in common with the old
   * version for a delta to be worth it (it is then sent whole).
   */
  static async open(file: PublishedFile, signature: Signature, chunks: VersionChunks, start = 0): Promise<DeltaContent | undefined> {
    const cut = await chunks.of(file, signature.params.bits)
    if (cut === undefined) return undefined
    const handle = await open(file.physicalPath, 'r').catch(() => undefined)
    if (handle === undefined) return undefined
    try {
      const info = await handle.stat()
      if (!sameVersion(info, file)) throw new Error('changed')
      await chunkHashReady()
      const plan = await planDelta(cut, signature, async (offset, length) => {
        const buffer = Buffer.allocUnsafe(length)
        const { bytesRead } = await handle.read(buffer, 0, length, offset)
        return chunkHash(buffer.subarray(0, bytesRead))
      })
      if (plan.size !== info.size || start > info.size) throw new Error('changed')
      const rest = from(plan, start)
      if (rest.copied < (info.size - start) * DELTA_WORTH) throw new Error('not worth it')
      return new DeltaContent(handle, file.physicalPath, info, rest, start)
    } catch {
      await handle.close().catch(() => undefined)
      return undefined
    }
  }

  /** The next step: a copy run, or up to `want` octets of content; undefined at the end. */
  async step(want: number): Promise<DeltaStep | undefined> {
    const segment = this.plan.segments[this.segment]
    if (segment === undefined) return undefined
    const left = segment.length - this.done
    if (segment.kind === 'copy') {
      const length = Math.min(left, COPY_RUN_MAX)
      const step = { kind: 'copy' as const, source: segment.source + this.done, length }
      this.advance(length)
      return step
    }
    const length = Math.min(left, want)
    // Read where the frame will be: sent without a copy (wire.ts, withHeadroom).
    const buffer = withHeadroom(length)
    let filled = 0
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, segment.offset + this.done + filled)
      if (bytesRead === 0) break
      filled += bytesRead
    }
    this.advance(filled)
    return { kind: 'literal', data: buffer.subarray(0, filled) }
  }

  /** Whether the next step is content (which needs credit). */
  nextIsContent(): boolean {
    return this.plan.segments[this.segment]?.kind === 'literal'
  }

  private advance(octets: number): void {
    this.done += octets
    if (this.done >= this.plan.segments[this.segment]!.length) {
      this.segment++
      this.done = 0
    }
  }

  take(): Buffer {
    throw new Error('a delta is sent by steps')
  }

  async torn(): Promise<boolean> {
    const named = await stat(this.path).catch(() => undefined)
    return named === undefined || !sameVersion(named, this)
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined)
  }
}
