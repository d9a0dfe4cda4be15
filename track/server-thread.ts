/**
 * The server half of a track, in a worker thread of its own: reading, hashing and sending
 * SRC then runs on one core while the client half writes and verifies DST on another.
 * It publishes SRC, binds a private endpoint (an ipc socket in DST's state folder, mode
 * 0700), says where, and closes when told. Only the public API is used.
 *
 * @packageDocumentation
 */
import { unlink } from 'node:fs/promises'
import { type MessagePort, parentPort, workerData } from 'node:worker_threads'

// The server's own entry point (src/index.ts re-exports it): this thread loads the server alone,
// not the client, relay and observers it never uses.
import { Server, type ServerOptions, type SkippedEntry } from '../src/server/index.js'
import type { ServerThreadStart } from './prewarm.js'

/** What the track gives the thread. */
export interface ServerThreadData {
  readonly source: string
  readonly endpoint: string
  readonly options: Partial<ServerOptions>
}

/** What the thread tells the track. */
export type ServerThreadMessage =
  | { readonly type: 'ready'; readonly endpoint: string }
  | { readonly type: 'failed'; readonly message: string; readonly code?: string }
  | { readonly type: 'error'; readonly message: string; readonly code?: string }
  | { readonly type: 'skipped'; readonly entry: SkippedEntry }
  | { readonly type: 'log'; readonly level: 'info' | 'warn'; readonly text: string }
  | { readonly type: 'closed' }

const port = parentPort
if (port === null) throw new Error('track/server-thread runs as a worker thread only')
// A function, not top-level awaits: the bundle (scripts/bundle.mjs) is CommonJS.
void serve(port)

async function serve(port: MessagePort): Promise<void> {
  // Started ahead (prewarm.ts): what to publish comes as the first message.
  const data =
    (workerData as ServerThreadData | undefined) ??
    (await new Promise<ServerThreadData>((resolve) => port.once('message', (message: ServerThreadStart) => resolve(message.data as ServerThreadData))))
  const tell = (message: ServerThreadMessage): void => port.postMessage(message)
  const codeOf = (error: unknown): { code?: string } => {
    const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
    return typeof code === 'string' ? { code } : {}
  }

  const server = new Server(data.options)
  server.on('error', (error) => tell({ type: 'error', message: error.message, ...codeOf(error) }))
  // Plain data, so it crosses to the track's thread as it is.
  server.on('skipped', (entry) => tell({ type: 'skipped', entry }))
  server.on('log', (level, text) => tell({ type: 'log', level, text }))
  port.on('message', (message: { type: string }) => {
    if (message.type !== 'close') return
    void server.close().finally(() => {
      tell({ type: 'closed' })
      port.close()
    })
  })

  /**
   * The thread must never end with its ZeroMQ sockets open: a thread torn down so (an uncaught
   * error ends it) aborts the whole process (`terminate called after throwing an instance of
   * 'Napi::Error'`, exit 134, from a socket's finalizer). An error nothing caught is told to the
   * track as a failure, the server closed, and the thread left to end by itself.
   */
  let failing = false
  const fail = (error: unknown): void => {
    if (failing) return
    failing = true
    const message = error instanceof Error ? error.message : String(error)
    void server
      .close()
      .catch(() => undefined)
      .finally(() => {
        tell({ type: 'failed', message: `the server half failed: ${message}`, ...codeOf(error) })
        port.close()
      })
  }
  process.on('uncaughtException', fail)
  process.on('unhandledRejection', fail)

  try {
    await server.publish(data.source, '/')
    // A socket file left by a run that was killed would refuse the bind.
    if (data.endpoint.startsWith('ipc://')) await unlink(data.endpoint.slice('ipc://'.length)).catch(() => undefined)
    tell({ type: 'ready', endpoint: await server.bind(data.endpoint) })
  } catch (error) {
    // Closed here, and the thread left to end by itself: terminating a thread whose ZeroMQ
    // sockets are open aborts the whole process (a Napi::Error thrown in a finalizer).
    if (!failing) {
      failing = true
      await server.close().catch(() => undefined)
      tell({ type: 'failed', message: (error as Error).message, ...codeOf(error) })
      port.close()
    }
  }
}
