/**
 * `track`: keep a folder an exact mirror of another, on one machine, with nothing but the
 * public API: a Server publishes SRC, a Client mirrors it into DST, over an in-process
 * transport. It is also the shortest complete example of the API:
 *
 * 1. `new Server({ stateDir })`, `publish(src)`, `bind(endpoint)`;
 * 2. `new Client({ inbox: dst, resync: true, mirror: true })`, `connect`, `subscribe('/')`;
 * 3. wait for `synced`: our server says when it has sent everything it had for us, so the
 *    end of the first resynchronisation is known exactly, never guessed from silence.
 *
 * Both halves keep their state in DST's state folder (`DST/.fmq`), never in SRC.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events'
import { mkdir, realpath, stat } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve, sep } from 'node:path'

import { Client, type ClientEventMap, type ClientOptions, Server, type ServerOptions } from '../src/index.js'

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

/** The client's events, passed on, with `synced` each time DST mirrors SRC again. */
export type TrackEvents = ClientEventMap

let tracks = 0

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

  private constructor(
    readonly source: string,
    readonly target: string,
    private readonly server: Server,
    private readonly client: Client,
  ) {
    super()
    this.first = new Promise((resolve) => client.once('synced', () => resolve()))
    const forward = <K extends keyof ClientEventMap>(name: K): void => {
      client.on(name, ((payload: ClientEventMap[K][0]) => {
        if (name === 'error' && this.listenerCount('error') === 0) return
        ;(this.emit as (event: K, data: ClientEventMap[K][0]) => boolean)(name, payload)
      }) as never)
    }
    for (const name of ['delivered', 'deleted', 'progress', 'synced', 'error'] as const) forward(name)
  }

  /** Checks both folders, then starts the server and the client. */
  static async start(source: string, target: string, options: Partial<TrackOptions> = {}): Promise<Track> {
    const src = await realDirectory(source)
    if (inside(src, resolve(target)) || inside(resolve(target), src)) {
      throw new TrackError(`${target} and ${source} must not contain each other`, 'ERR_FMQ_TRACK_NESTED')
    }
    await mkdir(resolve(target), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
      throw new TrackError(`cannot create ${target}: ${error.code ?? error.message}`, 'ERR_FMQ_TRACK_TARGET')
    })
    const dst = await realpath(resolve(target))
    if (inside(src, dst) || inside(dst, src)) {
      throw new TrackError(`${target} and ${source} must not contain each other`, 'ERR_FMQ_TRACK_NESTED')
    }
    const stateDir = join(dst, '.fmq')
    const server = new Server({ ...options.server, stateDir })
    const client = new Client({
      ...options.client,
      inbox: dst,
      stateDir,
      resync: true,
      mirror: options.keepDeleted !== true,
      deletes: options.keepDeleted !== true,
    })
    const track = new Track(src, dst, server, client)
    try {
      await server.publish(src, '/')
      const endpoint = await server.bind(`inproc://fmq-track-${process.pid}-${++tracks}`)
      await client.connect(endpoint)
      await client.subscribe('/')
    } catch (error) {
      await track.close()
      throw error
    }
    return track
  }

  /** Resolves once DST first mirrors SRC (the server's first `synced` mark). */
  get firstSync(): Promise<void> {
    return this.first
  }

  /** Says goodbye to the server half and stops both; partial files stay for the next run. */
  async close(): Promise<void> {
    await this.client.close()
    await this.server.close()
  }
}

async function realDirectory(path: string): Promise<string> {
  try {
    const real = await realpath(resolve(path))
    if (!(await stat(real)).isDirectory()) throw new TrackError(`${path} is not a directory`, 'ERR_FMQ_TRACK_SOURCE')
    return real
  } catch (error) {
    if (error instanceof TrackError) throw error
    throw new TrackError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'ERR_FMQ_TRACK_SOURCE')
  }
}

/** Whether `path` is `folder` or inside it. */
function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path)
  return rel === '' || (rel.split(sep)[0] !== '..' && !isAbsolute(rel))
}
