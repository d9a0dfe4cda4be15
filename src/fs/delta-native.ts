/**
 * The native half of delta transfer (native/delta.c, built as build/fmq_delta.node by
 * `npm run build`): the gear-hash loop of content-defined chunking, and with Debian's
 * libxxhash-dev the chunks of a whole file, cut and hashed on a thread of libuv's pool.
 * Optional: without it (not built, not Linux, or FMQ_NATIVE=0) the JavaScript loop runs, and
 * cuts at the same places.
 *
 * @packageDocumentation
 */
import { loadNativeAddon } from '../util/native-addon.js'

/** The addon's functions (native/delta.c says what each does). */
export interface DeltaAddon {
  setGear(table: Int32Array): void
  cut(data: Uint8Array, start: number, end: number, min: number, avg: number, max: number, maskSmall: number, maskLarge: number, final: boolean): number
  /** Absent when the addon was built without xxhash.h. */
  chunksOfFile?(fd: number, size: number, min: number, avg: number, max: number, maskSmall: number, maskLarge: number, limit: number): Promise<Buffer | undefined>
}

let addon: DeltaAddon | null | undefined

/** The addon, loaded once; null when it is not built or FMQ_NATIVE=0. */
export function deltaAddon(): DeltaAddon | null {
  if (addon === undefined) addon = loadNativeAddon<DeltaAddon>('fmq_delta.node')
  return addon
}
