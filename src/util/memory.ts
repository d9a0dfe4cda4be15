/**
 * Keeping memory flat while large chunks stream through. Every chunk is a buffer of up to a
 * megabyte outside V8's heap (a frame zeromq received, a read of a file); V8 frees one only
 * when it collects the small object that holds it, and with so few small objects allocated
 * it rarely does: measured here, a client receiving 1 GiB held some 70 MiB of spent chunk
 * buffers at a time, a server with ten clients well over 100 MiB. A young-generation
 * collection every few megabytes of chunks frees them for a fraction of a millisecond each
 * (the objects holding chunks all die young).
 *
 * @packageDocumentation
 */
import { loadNativeAddon } from './native-addon.js'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Collect = (options: { type: 'minor' | 'major' }) => void

/**
 * V8's collector, exposed at run time when first needed (a new context costs every thread a
 * few milliseconds at start-up, a rerun that sends nothing never needs it); undefined where
 * that is refused (then chunks are freed as V8 sees fit).
 */
let exposed: Collect | undefined | null = null
function collector(): Collect | undefined {
  if (exposed !== null) return exposed
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    exposed = typeof gc === 'function' ? (gc as Collect) : undefined
  } catch {
    exposed = undefined
  }
  return exposed
}

/** Octets of chunks between two collections. */
export const CHUNK_COLLECT_BYTES = 4 * 1024 * 1024

let spent = 0
/** Enough chunks were spent since the last collection: {@link chunksReleased} runs one. */
let due = false

/**
 * Says that chunks of this many octets are done with (written, or sent); every
 * {@link CHUNK_COLLECT_BYTES} of them, the next {@link chunksReleased} collects the young
 * generation, which frees them.
 *
 * @example
 * ```ts
 * writeSync(fd, chunk)
 * chunkSpent(chunk.length)
 * ```
 */
export function chunkSpent(octets: number): void {
  spent += octets
  if (spent < CHUNK_COLLECT_BYTES) return
  spent = 0
  due = true
}

/**
 * When chunks enough were spent, collects the young generation and resolves once the event
 * loop has run its immediates, where Node frees the external memory of the buffers found dead
 * (a ZeroMQ message's is freed by a callback Node defers to the loop); undefined otherwise. A
 * loop that always finds its next message waiting never reaches the immediates otherwise:
 * measured on a client receiving 1 GiB on a loaded machine, spent chunks piled up to over 300
 * MiB of RSS.
 *
 * The collection runs here, between two messages (or batches, BATCH=1), never in the middle of
 * one, where the frames of a batch not handled yet would survive it (see {@link batchHandled}).
 *
 * @example
 * ```ts
 * for await (const frames of socket) {
 *   handle(frames) // writes chunks, calls chunkSpent
 *   await chunksReleased()
 * }
 * ```
 */
export function chunksReleased(): Promise<void> | undefined {
  if (!due) return undefined
  due = false
  const collect = collector()
  if (collect === undefined) return undefined
  collect({ type: 'minor' })
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * A batch of messages (BATCH=1) was handled: its frames, held from its arrival to their turn,
 * are collected now, while young. Left to the collector, frames that wait through two
 * collections of a 1 MiB young generation go to the old one, where only a full collection
 * frees them: a client of C in batches of up to 128 peaked at 122–127 MiB of RSS, against 96
 * MiB with messages sent alone.
 */
export function batchHandled(): Promise<void> | undefined {
  due = true
  return chunksReleased()
}

/** Chunks up to this size stay in malloc's arenas (glibc's default threshold moves, from 128 KiB). */
export const ALLOCATOR_MMAP_THRESHOLD = 4 * 1024 * 1024

/** An arena keeps this much free memory at its top before giving it back: a few credit windows of chunks. */
export const ALLOCATOR_TRIM_THRESHOLD = 32 * 1024 * 1024

let tuned: boolean | undefined

/**
 * Tunes glibc's malloc for chunk-sized buffers (native/allocator.c): freed chunks stay in the
 * arena that will allocate the next ones, instead of going back to the system and faulting
 * in again; measured on `fmq track` of 1 GiB, 58,000 page faults became 30,000 and user+sys
 * CPU fell by a third, with the same peak RSS. Process-wide, so the CLI calls it, once; a
 * program embedding the library decides for itself. False where it cannot (no addon built,
 * another libc, `FMQ_NATIVE=0`).
 *
 * @example
 * ```ts
 * tuneAllocator() // before the first transfer
 * ```
 */
export function tuneAllocator(): boolean {
  if (tuned !== undefined) return tuned
  const addon = loadNativeAddon<{ tuneAllocator(mmap: number, trim: number): boolean }>('fmq_allocator.node')
  // Not built here: glibc's defaults.
  tuned = addon?.tuneAllocator(ALLOCATOR_MMAP_THRESHOLD, ALLOCATOR_TRIM_THRESHOLD) ?? false
  return tuned
}
