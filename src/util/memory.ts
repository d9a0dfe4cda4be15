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
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Collect = (options: { type: 'minor' | 'major' }) => void

/** V8's collector, exposed at run time; undefined where that is refused (then chunks are freed as V8 sees fit). */
const collect: Collect | undefined = (() => {
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    return typeof gc === 'function' ? (gc as Collect) : undefined
  } catch {
    return undefined
  }
})()

/** Octets of chunks between two collections. */
export const CHUNK_COLLECT_BYTES = 4 * 1024 * 1024

let spent = 0

/**
 * Says that chunks of this many octets are done with (written, or sent); every
 * {@link CHUNK_COLLECT_BYTES} of them, the young generation is collected, which frees them.
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
  collect?.({ type: 'minor' })
}
