/**
 * `track`: keep a folder an exact mirror of another, on one machine, with nothing but the
 * public API: a Server publishes SRC, a Client mirrors it into DST. The server runs in a
 * worker thread (server-thread.ts), so reading and hashing SRC and writing and verifying DST
 * use two cores; they talk over a private ipc socket in DST's state folder. It is also the
 * shortest complete example of the API:
 *
 * 1. `new Server({ stateDir })`, `publish(src)`, `bind(endpoint)` (in the worker);
 * 2. `new Client({ inbox: dst, resync: true, mirror: true })`, `connect`, `subscribe('/')`;
 * 3. wait for `synced`: our server says when it has sent everything it had for us, so the
 *    end of the first resynchronisation is known exactly, never guessed from silence.
 *
 * Both halves keep their state in DST's state folder (`DST/.fmq`), never in SRC.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events'
import { constants } from 'node:fs'
import { access, mkdir, mkdtemp, realpath, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { isAbsolute, join, relative, resolve, sep } from 'node:path'
import { Worker } from 'node:worker_threads'

import { Client, fsErrorWords, lockFolder, type FolderLock, type ClientEventMap, type ClientOptions, type ServerOptions, type SkippedEntry } from '../src/index.js'
import type { ServerThreadData, ServerThreadMessage } from './server-thread.js'
import { adoptServerThread, SERVER_THREAD_LIMITS, type ServerThreadStart } from './prewarm.js'

/** Options of {@link Track.start}. */
export interface TrackOptions {
  /** Keep files deleted in SRC (an add-only mirror). Default false: DST is exact. */
  keepDeleted: boolean
  /** More options for the server half (e.g. `exclude`, `include`). */
  server: Partial<ServerOptions>
  /** More options for the client half (e.g. `rateLimit`). */
  client: Partial<ClientOptions>
}

/** Why a track cannot start; `code` tells which. */
export class TrackError extends Error {
  override readonly name = 'TrackError'
  constructor(
    message: string,
    readonly code: 'ERR_FMQ_TRACK_SOURCE' | 'ERR_FMQ_TRACK_NESTED' | 'ERR_FMQ_TRACK_TARGET',
  ) {
    super(message)
  }
}

/**
 * An entry of SRC that DST does not get: one the server half cannot publish (unreadable, a
 * FIFO, socket or device, a name that is not UTF-8) or a name the client half refuses.
 */
export interface TrackSkipped {
  /** Relative to SRC, `/`-separated. */
  readonly path: string
  readonly reason: string
  /** `EACCES`, `ERR_FMQ_SPECIAL_FILE`, `ERR_FMQ_BAD_NAME`, `ERR_FMQ_REFUSED_NAME`... */
  readonly code: string
}

/**
 * The client's events, passed on, with `synced` each time DST mirrors SRC again; `error` also
 * carries the server half's; `skipped` says each entry DST does not get, once.
 */
export type TrackEvents = Omit<ClientEventMap, 'skipped'> & {
  skipped: [entry: TrackSkipped]
  /** A line of the server half's log: a rescan and why, an inotify limit reached (`warn`). */
  log: [level: 'info' | 'warn', text: string]
  /**
   * The server half stopped on an error (never an abort of the process): SRC is not followed
   * any more. The track is closed; the CLI exits 1.
   */
  failed: [error: Error]
}

/** What the server half says, once started. */
interface ServerThreadEvents {
  error(error: Error): void
  skipped(entry: SkippedEntry): void
  log(level: 'info' | 'warn', text: string): void
  failed(error: Error): void
}

/** Longest ipc endpoint path we use (the kernel's limit for a socket path is 107 octets). */
const MAX_SOCKET_PATH = 100

/** The server half, running in its worker thread. */
class ServerThread {
  private closing: Promise<void> | undefined

  private stopping = false

  private constructor(
    private readonly worker: Worker,
    readonly endpoint: string,
    private readonly scratch: string | undefined,
  ) {}

  /** Starts the worker; resolves once SRC is published and the endpoint bound. */
  static async start(
    source: string,
    stateDir: string,
    options: Partial<ServerOptions>,
    on: ServerThreadEvents,
  ): Promise<ServerThread> {
    let socket = join(stateDir, 'track.sock')
    let scratch: string | undefined
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
      scratch = await mkdtemp(join(tmpdir(), 'fmq-track-')) // mode 0700: as private as the state folder
      socket = join(scratch, 'track.sock')
    }
    const data: ServerThreadData = { source, endpoint: `ipc://${socket}`, options: { ...options, stateDir } }
    // The thread `fmq track` started ahead (prewarm.ts) is told what to do; else one starts now.
    const adopted = adoptServerThread()
    adopted?.postMessage({ type: 'start', data } satisfies ServerThreadStart)
    const worker = adopted ?? (import.meta.url.endsWith('.ts')
      ? // From the sources (tests, tsx): a worker thread does not inherit tsx's loader, so it registers it first.
        new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => { register(); return import(${JSON.stringify(new URL('./server-thread.ts', import.meta.url).href)}) })`,
          { eval: true, workerData: data, resourceLimits: SERVER_THREAD_LIMITS },
        )
      : new Worker(new URL('./server-thread.js', import.meta.url), { workerData: data, resourceLimits: SERVER_THREAD_LIMITS }))
    let failed = false
    let thread: ServerThread | undefined
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    const withCode = (message: { message: string; code?: string }): Error =>
      Object.assign(new Error(message.message), message.code === undefined ? {} : { code: message.code })
    // Once started, the end of the thread is a failure unless we asked for it.
    const stopped = (error: Error): void => {
      if (thread === undefined || thread.stopping) return
      thread.stopping = true
      on.failed(error)
    }
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        worker.on('message', (message: ServerThreadMessage) => {
          if (message.type === 'ready') resolve(message.endpoint)
          else if (message.type === 'failed') {
            failed = true
            reject(withCode(message))
            stopped(withCode(message))
          } else if (message.type === 'error') on.error(withCode(message))
          else if (message.type === 'skipped') on.skipped(message.entry)
          else if (message.type === 'log') on.log(message.level, message.text)
        })
        worker.on('error', (error) => {
          reject(error)
          stopped(error)
        })
        worker.once('exit', (code) => {
          reject(new Error(`the server thread stopped (exit code ${code})`))
          stopped(new Error(`the server half stopped (exit code ${code})`))
        })
      })
      thread = new ServerThread(worker, endpoint, scratch)
      return thread
    } catch (error) {
      // A server that failed closed itself and its thread ends on its own (see server-thread.ts).
      if (failed) await exited
      else await worker.terminate()
      if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
      throw error
    }
  }

  /**
   * Closes the server at once (no goodbye to wait for) and ends the thread, or gives up after
   * `ms`: for a process about to exit, which must not while the thread's sockets are open.
   */
  halt(ms: number): Promise<void> {
    return Promise.race([this.close(), new Promise<void>((resolve) => setTimeout(resolve, ms).unref())])
  }

  /** Closes the server (its index flushed) and ends the thread. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.stopping = true
      this.worker.once('exit', () => resolve())
      this.worker.postMessage({ type: 'close' })
    }).then(async () => {
      if (this.scratch !== undefined) await rm(this.scratch, { recursive: true, force: true })
    })
    return this.closing
  }
}

/**
 * A running mirror of SRC into DST.
 *
 * @example
 * ```ts
 * const track = await Track.start('./photos', '/backup/photos')
 * await track.firstSync // DST mirrors SRC now; later changes keep following
 * await track.close()
 * ```
 */
export class Track extends EventEmitter<TrackEvents> {
  private readonly first: Promise<void>
  private server: ServerThread | undefined
  /** Events of the client before start() resolved, passed on once the caller had a turn to listen. */
  private held: Array<() => void> | undefined = []
  private readonly skips: TrackSkipped[] = []
  /** DST's state folder, ours until closed. */
  private lock: FolderLock | undefined

  private constructor(
    readonly source: string,
    readonly target: string,
    private readonly client: Client,
  ) {
    super()
    // On the synced event passed on, so that every event before it reached the caller first.
    this.first = new Promise((resolve) => this.once('synced', () => resolve()))
    const forward = <K extends keyof ClientEventMap>(name: K): void => {
      client.on(name, ((payload: ClientEventMap[K][0]) => {
        // Files may arrive before start() resolves (a cache in parts is answered part by part):
        // held until the caller could listen.
        if (this.held !== undefined) {
          this.held.push(() => this.pass(name, payload))
          return
        }
        this.pass(name, payload)
      }) as never)
    }
    for (const name of ['delivered', 'deleted', 'progress', 'queued', 'planned', 'synced', 'error'] as const) forward(name)
    client.on('skipped', ({ virtualPath, reason, code }) => this.skip({ path: virtualPath.replace(/^\/+/, ''), reason, code }))
  }

  /**
   * Every entry skipped so far, also those met before `start` resolved (SRC's first scan),
   * which no listener could hear: read this once, then listen to `skipped`.
   */
  get skipped(): readonly TrackSkipped[] {
    return this.skips
  }

  private skip(entry: TrackSkipped): void {
    this.skips.push(entry)
    this.emit('skipped', entry)
  }

  /** Checks both folders, then starts the server and the client. */
  static async start(source: string, target: string, options: Partial<TrackOptions> = {}): Promise<Track> {
    const src = await realDirectory(source)
    nested(source, src, target, resolve(target))
    await mkdir(resolve(target), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
      throw new TrackError(`cannot create DST ${target}: ${fsErrorWords(error.code) ?? error.message}`, 'ERR_FMQ_TRACK_TARGET')
    })
    const dst = await realpath(resolve(target))
    nested(source, src, target, dst)
    const stateDir = join(dst, '.fmq')
    // One writer per destination: a second track of DST is refused, naming the first.
    const lock = await lockFolder(stateDir, 'fmq track')
    let client: Client
    try {
      client = new Client({
        ...options.client,
        inbox: dst,
        stateDir,
        resync: true,
        mirror: options.keepDeleted !== true,
        deletes: options.keepDeleted !== true,
        // Both versions are on this machine: reading the old one costs more than the copy it
        // saves (rsync copies whole locally too).
        delta: false,
      })
    } catch (error) {
      await lock.release()
      throw error
    }
    const track = new Track(src, dst, client)
    track.lock = lock
    // DST is read while the server thread reads SRC: the two walks of a rerun overlap.
    const prepared = client.prepare('/').catch(() => undefined) // its failure is the connection's to report
    try {
      track.server = await ServerThread.start(src, stateDir, options.server ?? {}, {
        // Held, as the client's, until the caller had a turn to listen (the first scan's warnings).
        error: (error) => track.later(() => track.pass('error', { error })),
        skipped: ({ path, reason, code }) => track.skip({ path, reason, code }),
        log: (level, text) => track.later(() => track.emit('log', level, text)),
        failed: (error) =>
          track.later(() => {
            void track.close().finally(() => {
              if (track.listenerCount('failed') > 0) track.emit('failed', error)
              else track.pass('error', { error })
            })
          }),
      })
      await prepared
      await client.connect(track.server.endpoint)
      await client.subscribe('/')
    } catch (error) {
      await track.close()
      throw error
    }
    // After the caller's continuation (a microtask), which attaches its listeners.
    setImmediate(() => {
      const held = track.held ?? []
      track.held = undefined
      for (const pass of held) pass()
    })
    return track
  }

  /** Runs at once, or once the caller could listen when start() has not resolved yet. */
  private later(action: () => void): void {
    if (this.held !== undefined) this.held.push(action)
    else action()
  }

  private pass<K extends keyof ClientEventMap>(name: K, payload: ClientEventMap[K][0]): void {
    if (name === 'error' && this.listenerCount('error') === 0) return
    ;(this.emit as (event: K, data: ClientEventMap[K][0]) => boolean)(name, payload)
  }

  /** Resolves once DST first mirrors SRC (the server's first `synced` mark). */
  get firstSync(): Promise<void> {
    return this.first
  }

  /**
   * Stops the server half now, without waiting for the client's goodbye (at most `ms`), so the
   * process may exit: call it before `process.exit` if `close()` could not be awaited.
   */
  async halt(ms = 2000): Promise<void> {
    await this.server?.halt(ms)
  }

  /**
   * Says goodbye to the server half and stops both; partial files stay for the next run. With
   * `exiting` (process.exit follows), DST's state database is left to the process's end
   * (Client.close says why).
   */
  async close(options: { readonly exiting?: boolean } = {}): Promise<void> {
    await this.client.close(options)
    await this.server?.close()
    await this.lock?.release()
  }
}

async function realDirectory(path: string): Promise<string> {
  try {
    const real = await realpath(resolve(path))
    if (!(await stat(real)).isDirectory()) throw new TrackError(`SRC ${path} is not a directory`, 'ERR_FMQ_TRACK_SOURCE')
    // Listed and searched: a folder below SRC that is not is skipped, SRC itself cannot be.
    await access(real, constants.R_OK | constants.X_OK)
    return real
  } catch (error) {
    if (error instanceof TrackError) throw error
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new TrackError(`SRC ${path} does not exist`, 'ERR_FMQ_TRACK_SOURCE')
    throw new TrackError(`cannot read SRC ${path}: ${fsErrorWords(code) ?? (error as Error).message}`, 'ERR_FMQ_TRACK_SOURCE')
  }
}

/** Refuses SRC and DST that are one folder, or one inside the other, in words naming both. */
function nested(source: string, src: string, target: string, dst: string): void {
  if (src === dst) throw new TrackError(`SRC and DST are the same folder (${source === target ? source : `${source} and ${target}`})`, 'ERR_FMQ_TRACK_NESTED')
  if (inside(src, dst)) throw new TrackError(`DST ${target} is inside SRC ${source}: choose a folder outside it`, 'ERR_FMQ_TRACK_NESTED')
  if (inside(dst, src)) throw new TrackError(`SRC ${source} is inside DST ${target}: choose a folder outside it`, 'ERR_FMQ_TRACK_NESTED')
}

/** Whether `path` is `folder` or inside it. */
function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path)
  return rel === '' || (rel.split(sep)[0] !== '..' && !isAbsolute(rel))
}
