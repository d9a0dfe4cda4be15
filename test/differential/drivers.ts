/**
 * The fmq side of the differential test, as real child processes of the CLI (through tsx,
 * from the sources): `fmq track SRC DST` live; `fmq server` + `fmq client --resync --mirror`
 * live over ipc; and `fmq track SRC DST --once` run again after each step.
 *
 * A live driver is synced when a `synced` event printed after the change finds DST equal
 * to what is expected: events that come before fmq has seen every part of the change are
 * looked past, up to a timeout. Restarts are `kill -TERM` (fmq says goodbye and exits 0)
 * and the same command again.
 */
import { join } from 'node:path'

import { FmqProcess } from '../peers/fmq-process.js'
import type { Restart } from './changes.js'

export const MODES = ['track', 'server-client', 'once'] as const
export type Mode = (typeof MODES)[number]

/** Where a driver works: the source, its mirror, and a folder of its own for sockets and state. */
export interface Folders {
  src: string
  dst: string
  work: string
  /** The user fmq runs as (root's runs as a user); undefined: this process's. */
  uid?: number
}

/** An fmq child process of a run, as the run's user. */
function fmqAs(folders: Folders, args: readonly string[]): FmqProcess {
  return new FmqProcess(args, folders.uid === undefined ? {} : { uid: folders.uid })
}

/** Where the output stood before a change: synced events after it count. */
export interface Mark {
  process: FmqProcess | undefined
  index: number
}

export interface SyncOutcome {
  ok: boolean
  /** Why not: no synced event, none that matched, or fmq exited. */
  why: string
}

export interface Driver {
  readonly mode: Mode
  start(): Promise<void>
  mark(): Mark
  /** Waits until fmq says it is synced and `matches()` holds, for at most `ms`. */
  sync(mark: Mark, matches: () => Promise<boolean>, ms: number): Promise<SyncOutcome>
  restart(side: Restart): Promise<void>
  close(): Promise<void>
  /** The last lines fmq printed (stdout events and stderr), for a failure report. */
  tail(): string
}

/** How long fmq may take to say goodbye after SIGTERM. */
const STOP_MS = 15_000
/** How long a server may take to bind. */
const START_MS = 30_000

/** The exit code of `process`, or `late` if it is still running after `ms`. */
async function exitWithin(process: FmqProcess, ms: number): Promise<number | null | 'late'> {
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([process.exited, new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)))])
  clearTimeout(timer)
  return code
}

/** SIGTERM, then the exit, which must be 0 (README: stopped by SIGTERM after saying goodbye). */
async function stop(process: FmqProcess, what: string): Promise<void> {
  if (process.child.exitCode !== null || process.child.signalCode !== null) return
  process.child.kill('SIGTERM')
  const code = await exitWithin(process, STOP_MS)
  if (code === 'late') {
    await process.kill('SIGKILL')
    throw new Error(`${what} did not exit within ${STOP_MS} ms of SIGTERM; stderr: ${process.stderr.slice(-5).join(' | ')}`)
  }
  if (code !== 0) throw new Error(`${what} exited with ${code} after SIGTERM (0 expected); stderr: ${process.stderr.slice(-5).join(' | ')}`)
}

function tailOf(process: FmqProcess | undefined, label: string): string {
  if (process === undefined) return ''
  const lines = process.lines.slice(-8).map((line) => `    ${label} stdout: ${JSON.stringify(line)}`)
  const errors = process.stderr.slice(-5).map((line) => `    ${label} stderr: ${line}`)
  return [...lines, ...errors].join('\n')
}

/** Looks at each `synced` event of `consumer` after `from` until `matches()` holds or `ms` pass. */
async function syncedEvents(consumer: FmqProcess, from: number, matches: () => Promise<boolean>, ms: number): Promise<SyncOutcome> {
  const deadline = Date.now() + ms
  let seen = 0
  let next = from
  for (;;) {
    const left = deadline - Date.now()
    if (left <= 0) break
    const start = next
    let line
    try {
      line = await consumer.waitFor((candidate) => candidate.type === 'synced' && consumer.lines.indexOf(candidate) >= start, left, 'a synced event')
    } catch (error) {
      const message = (error as Error).message
      if (message.startsWith('fmq exited')) return { ok: false, why: message }
      break
    }
    seen++
    next = consumer.lines.indexOf(line) + 1
    if (await matches()) return { ok: true, why: '' }
  }
  return { ok: false, why: seen === 0 ? `no synced event within ${ms} ms` : `${seen} synced event(s) within ${ms} ms, none with DST as rsync has it` }
}

/** `fmq track SRC DST`, one process; both restarts restart it. */
class TrackDriver implements Driver {
  readonly mode = 'track'
  private process: FmqProcess | undefined

  constructor(private readonly folders: Folders) {}

  async start(): Promise<void> {
    this.process = fmqAs(this.folders, ['track', this.folders.src, this.folders.dst])
  }

  mark(): Mark {
    return { process: this.process, index: this.process?.lines.length ?? 0 }
  }

  sync(mark: Mark, matches: () => Promise<boolean>, ms: number): Promise<SyncOutcome> {
    return syncedEvents(this.process!, mark.process === this.process ? mark.index : 0, matches, ms)
  }

  async restart(): Promise<void> {
    if (this.process !== undefined) await stop(this.process, 'fmq track')
    await this.start()
  }

  async close(): Promise<void> {
    await this.process?.kill('SIGKILL')
  }

  tail(): string {
    return tailOf(this.process, 'track')
  }
}

/** `fmq server -p SRC=/` on an ipc socket (its state outside SRC) and `fmq client --resync --mirror`. */
class ServerClientDriver implements Driver {
  readonly mode = 'server-client'
  private server: FmqProcess | undefined
  private client: FmqProcess | undefined
  private readonly endpoint: string

  constructor(private readonly folders: Folders) {
    this.endpoint = `ipc://${join(folders.work, 'server.sock')}`
  }

  async start(): Promise<void> {
    await this.startServer()
    this.startClient()
  }

  private async startServer(): Promise<void> {
    this.server = fmqAs(this.folders, ['server', '-p', `${this.folders.src}=/`, '-b', this.endpoint, '--anonymous', '--state', join(this.folders.work, 'server-state')])
    await this.server.endpoint(START_MS)
  }

  private startClient(): void {
    this.client = fmqAs(this.folders, ['client', '-C', this.endpoint, '-s', '/', '-i', this.folders.dst, '--resync', '--mirror'])
  }

  mark(): Mark {
    return { process: this.client, index: this.client?.lines.length ?? 0 }
  }

  sync(mark: Mark, matches: () => Promise<boolean>, ms: number): Promise<SyncOutcome> {
    return syncedEvents(this.client!, mark.process === this.client ? mark.index : 0, matches, ms)
  }

  async restart(side: Restart): Promise<void> {
    if (side === 'server') {
      await stop(this.server!, 'fmq server')
      await this.startServer()
    } else {
      await stop(this.client!, 'fmq client')
      this.startClient()
    }
  }

  async close(): Promise<void> {
    await this.client?.kill('SIGKILL')
    await this.server?.kill('SIGKILL')
  }

  tail(): string {
    return [tailOf(this.server, 'server'), tailOf(this.client, 'client')].filter((part) => part !== '').join('\n')
  }
}

/** `fmq track SRC DST --once`, run again after each step: synced is its exit with 0. */
class OnceDriver implements Driver {
  readonly mode = 'once'
  private last: FmqProcess | undefined

  constructor(private readonly folders: Folders) {}

  async start(): Promise<void> {}

  mark(): Mark {
    return { process: undefined, index: 0 }
  }

  async sync(_mark: Mark, matches: () => Promise<boolean>, ms: number): Promise<SyncOutcome> {
    const run = (this.last = fmqAs(this.folders, ['track', this.folders.src, this.folders.dst, '--once']))
    const code = await exitWithin(run, ms)
    if (code === 'late') {
      await run.kill('SIGKILL')
      return { ok: false, why: `fmq track --once did not exit within ${ms} ms` }
    }
    if (code !== 0) return { ok: false, why: `fmq track --once exited with ${code}` }
    return (await matches()) ? { ok: true, why: '' } : { ok: false, why: 'fmq track --once exited 0 with DST not as rsync has it' }
  }

  async restart(): Promise<void> {} // every step starts a fresh process

  async close(): Promise<void> {
    await this.last?.kill('SIGKILL')
  }

  tail(): string {
    return tailOf(this.last, 'track --once')
  }
}

export function driver(mode: Mode, folders: Folders): Driver {
  switch (mode) {
    case 'track':
      return new TrackDriver(folders)
    case 'server-client':
      return new ServerClientDriver(folders)
    case 'once':
      return new OnceDriver(folders)
  }
}
