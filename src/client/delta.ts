/**
 * The client's half of delta transfer (src/protocol/delta.ts): answering an offer (operation
 * DELTA) with the signature of the version the inbox holds, and copying the runs of a delta
 * from that version into the partial file of the new one. The old version is only ever read:
 * the new one is built beside it and takes its name only once its SHA-1 is checked, so a kill
 * leaves the old version, or the new one, never a mix.
 *
 * @packageDocumentation
 */
import { closeSync, openSync, readSync } from 'node:fs'
import type { Hash } from 'node:crypto'
import { chunkParams, formatSignatureParts, MAX_SIGNATURE_CHUNKS, SIGNATURE_PART_CHUNKS, signatureOf } from '../fs/chunking.js'
import { lstatOrUndefinedSync } from '../fs/inbox.js'
import { writeAll } from '../fs/io.js'
import { parseFileHeaders } from '../protocol/extensions.js'
import { DELTA_MIN, parseChunking, type CopyRun } from '../protocol/delta.js'
import type { Manifest } from './manifest.js'

/** What to do with an offer: nothing (the inbox holds that version), ask with a signature, or ask for the whole file. */
export type OfferAnswer = { readonly kind: 'held' } | { readonly kind: 'delta'; readonly bits: number } | { readonly kind: 'whole' }

/**
 * The answer to a DELTA offer for the file at `path` (virtual path `virtualPath`): judged by the
 * manifest's digest of it when its stat is the one recorded, else by whether a file is there at all.
 */
export function answerOffer(path: string, virtualPath: string, headers: ReadonlyMap<string, string>, manifest: Manifest | undefined): OfferAnswer {
  const announced = parseFileHeaders(headers)
  const bits = parseChunking(headers)
  const stats = lstatOrUndefinedSync(path)
  if (stats?.isFile() !== true || bits === undefined) return { kind: 'whole' }
  const held = manifest?.get(virtualPath.slice(1))
  if (held !== undefined && held.size === stats.size && held.mtimeMs === stats.mtimeMs && held.digest === (held.digest.length === 40 ? announced.sha1 : announced.xxh128)) return { kind: 'held' }
  return { kind: 'delta', bits }
}

/**
 * The chunking bits of a re-ask for a file offered by digest (ATTRIBUTES) that the inbox holds
 * another version of at its name: the server cuts with those of its size (as in a DELTA offer).
 * Undefined when there is no file there or the new version is too small for a delta.
 */
export function deltaBits(stats: { isFile(): boolean } | undefined, size: number | undefined): number | undefined {
  if (stats?.isFile() !== true || size === undefined || size < DELTA_MIN) return undefined
  return chunkParams(size).bits
}

/**
 * The signatures made for re-asks answering an offer (option SIGNATURE), by the pending ICANHAZ
 * they go with: its last part (the whole, when it fits in one), and the parts before it, which
 * go first, each in an ICANHAZ of its own with PART=1.
 */
export const signatures = new WeakMap<object, { readonly last: string; readonly before: readonly string[] }>()

/**
 * The option values of a re-ask with a signature: the signature of the file at `path` in parts
 * (src/fs/chunking.ts, formatSignatureParts), or undefined when there is none to give.
 */
export async function signatureValues(path: string, bits: number, inParts = true): Promise<{ readonly last: string; readonly before: readonly string[] } | undefined> {
  const signature = await signatureOf(path, bits).catch(() => undefined)
  if (signature === undefined) return undefined
  const parts = formatSignatureParts(signature, inParts ? SIGNATURE_PART_CHUNKS : MAX_SIGNATURE_CHUNKS)
  return { last: parts[parts.length - 1]!, before: parts.slice(0, -1) }
}

/** Octets copied at once. */
const COPY_BUFFER = 1024 * 1024
let copyBuffer: Buffer | undefined

/**
 * Copies a run of the old version at `oldPath` into the partial file `fd` at `offset`, feeding
 * `hash`. Synchronous, as the writer is: a run is at most COPY_RUN_MAX octets. Throws when the
 * old version is shorter than the run (it changed since its signature: the file is asked again).
 */
export function copyRun(oldPath: string, run: CopyRun, fd: number, offset: number, hash: { update(data: Uint8Array): unknown }): void {
  const buffer = (copyBuffer ??= Buffer.allocUnsafe(COPY_BUFFER))
  const source = openSync(oldPath, 'r')
  try {
    let done = 0
    while (done < run.length) {
      const want = Math.min(buffer.length, run.length - done)
      const read = readSync(source, buffer, 0, want, run.source + done)
      if (read === 0) throw new Error(`the old version of the file is shorter than the run at ${run.source + done}`)
      const data = buffer.subarray(0, read)
      writeAll(fd, data, offset + done)
      hash.update(data)
      done += read
    }
  } finally {
    closeSync(source)
  }
}
