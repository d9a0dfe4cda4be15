/**
 * The server thread of a track, started ahead of need: `fmq track` starts it before loading
 * anything else, so the thread's own start (a JavaScript realm, the server's modules) runs on
 * the other core while this one loads the client, rather than after it. The thread waits for
 * what to publish ({@link ServerThreadStart}); `ServerThread.start` (track.ts) adopts it. A
 * thread nobody adopts keeps nothing alive: the process exits as if it were not there.
 *
 * @packageDocumentation
 */
import { Worker } from 'node:worker_threads'

/** What a prewarmed thread is told to do: the data a thread started on demand gets as its workerData. */
export interface ServerThreadStart {
  readonly type: 'start'
  readonly data: unknown
}

/**
 * The server thread's heap: a young generation of 12 MiB (semi-spaces of 4 MiB, a quarter of
 * V8's default). A scan keeps nearly everything it makes (an entry per published file), so
 * each scavenge of a large young generation mostly copies survivors; small ones promote them
 * sooner, with fewer copies. Measured on a rerun over 100,000 files: about 0.2 s less on the
 * thread's critical path and 20 MiB less peak RSS (BENCHMARKS.md).
 */
export const SERVER_THREAD_LIMITS = { maxYoungGenerationSizeMb: 12 } as const

let waiting: Worker | undefined

/**
 * Starts the server thread now (once); from the compiled sources only (under tsx a thread is
 * started as track.ts starts it).
 */
export function prewarmServerThread(): void {
  if (waiting !== undefined || import.meta.url.endsWith('.ts')) return
  const worker = new Worker(new URL('./server-thread.js', import.meta.url), { resourceLimits: SERVER_THREAD_LIMITS })
  worker.unref()
  // Not adopted and failed meanwhile: the track starts one of its own.
  worker.once('error', () => {
    if (waiting === worker) waiting = undefined
  })
  waiting = worker
}

/** The thread started ahead, if any, now the caller's (kept alive as a started thread is). */
export function adoptServerThread(): Worker | undefined {
  const worker = waiting
  waiting = undefined
  worker?.ref()
  return worker
}
