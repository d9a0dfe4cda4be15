/**
 * Child processes of the benchmark suite: each timed from spawn to exit, its peak resident
 * memory taken by GNU time (`/usr/bin/time -f %M`, KiB) or, without it, by polling VmHWM in
 * /proc, its `--json` lines parsed as they come. Every child is its own process group and is
 * killed when the suite exits, however it exits, so nothing lingers.
 *
 * @packageDocumentation
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'

const GNU_TIME = '/usr/bin/time'

/** Whether GNU time is there to measure peak RSS; checked once. */
export const HAVE_GNU_TIME = existsSync(GNU_TIME)

const live = new Set<ChildProcess>()
const cleanups: (() => void)[] = []

/** Runs `cleanup` (synchronous) when the suite exits, however it exits, after the children are killed. */
export function atExit(cleanup: () => void): void {
  cleanups.push(cleanup)
}

/** Kills every child still running: their whole process groups. */
export function killAll(): void {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  live.clear()
}

process.on('exit', () => {
  killAll()
  for (const cleanup of cleanups.splice(0)) {
    try {
      cleanup()
    } catch {
      // best effort on the way out
    }
  }
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`bench: ${signal}: stopping every child and removing the scratch folder`)
    killAll()
    process.exit(130)
  })
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** Wall milliseconds from spawn to exit. */
  ms: number
  /** Peak resident set size in KiB, when it could be measured. */
  rssKiB: number | undefined
}

export interface JsonLine {
  type: string
  [field: string]: unknown
}

export interface RunOptions {
  /** Where GNU time writes its report; required to measure RSS with it. */
  rssFile: string
  cwd?: string
}

/** The last number in GNU time's output file (a signalled command has a line before it). */
export async function readTimeFile(file: string): Promise<number | undefined> {
  try {
    const numbers = (await readFile(file, 'utf8')).match(/\d+/g)
    return numbers === null ? undefined : Number(numbers.at(-1))
  } catch {
    return undefined
  }
}

function vmHwm(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s*(\d+)\s*kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

/** The pids whose parent is `ppid` (from /proc/PID/stat). */
function childrenOf(ppid: number): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The second field, the command name in parentheses, may itself hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[1]) === ppid) found.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return found
}

/** One measured child process. */
export class Proc {
  readonly child: ChildProcess
  readonly lines: JsonLine[] = []
  readonly stderr: string[] = []
  readonly exited: Promise<Exit>
  readonly started = performance.now()
  private readonly waiters = new Set<() => void>()
  private hwm = 0
  private target: number | undefined

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    private readonly options: RunOptions,
  ) {
    const wrapped = HAVE_GNU_TIME ? [GNU_TIME, '-f', '%M', '-o', options.rssFile, command, ...args] : [command, ...args]
    this.child = spawn(wrapped[0]!, wrapped.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: options.cwd })
    live.add(this.child)
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as unknown
        this.lines.push(typeof parsed === 'object' && parsed !== null && 'type' in parsed ? (parsed as JsonLine) : { type: 'text', text: line })
      } catch {
        this.lines.push({ type: 'text', text: line })
      }
      for (const wake of this.waiters) wake()
    })
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.stderr.push(line)
      if (this.stderr.length > 200) this.stderr.shift()
    })
    const poll = HAVE_GNU_TIME ? undefined : setInterval(() => this.sample(), 50)
    this.exited = new Promise((resolve, reject) => {
      this.child.once('error', (error) => {
        if (poll) clearInterval(poll)
        live.delete(this.child)
        reject(error)
      })
      this.child.once('exit', (code, signal) => {
        const ms = performance.now() - this.started
        if (poll) clearInterval(poll)
        live.delete(this.child)
        // The pipes may still hold lines: let them drain before anyone reads `lines`.
        setImmediate(() => {
          void (HAVE_GNU_TIME ? readTimeFile(this.options.rssFile) : Promise.resolve(this.hwm || undefined)).then((rssKiB) =>
            resolve({ code, signal, ms, rssKiB }),
          )
        })
      })
    })
  }

  private sample(): void {
    if (this.child.pid === undefined) return
    const value = vmHwm(this.child.pid)
    if (value !== undefined && value > this.hwm) this.hwm = value
  }

  /** The pid of the measured program itself (below GNU time when it wraps it). */
  private programPid(): number | undefined {
    const pid = this.child.pid
    if (pid === undefined || !HAVE_GNU_TIME) return pid
    if (this.target === undefined) this.target = childrenOf(pid)[0]
    return this.target
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /**
   * Sends `signal` to the program (not to GNU time, which would die and leave it orphaned
   * and unmeasured), and waits for the exit.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 30_000): Promise<Exit> {
    if (this.running) {
      const pid = await waitUntil(() => this.programPid() ?? (this.running ? undefined : -1), 5_000, 'the program under GNU time').catch(() => undefined)
      try {
        if (pid !== undefined && pid > 0) process.kill(pid, signal)
        else if (this.child.pid !== undefined) process.kill(-this.child.pid, signal)
      } catch {
        // gone meanwhile
      }
    }
    const timer = setTimeout(() => {
      try {
        if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, ms)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** The first line (from the start) that matches, waiting for it up to `ms`. */
  waitFor(match: (line: JsonLine) => boolean, ms: number, what: string): Promise<JsonLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(match)
        if (found === undefined) return
        done()
        resolve(found)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; stderr: ${this.tail()}`))
      }, ms)
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
      // A process that ends cannot print it any more.
      void this.exited.then(
        (exit) => {
          if (!this.waiters.has(check)) return
          check()
          if (!this.waiters.has(check)) return
          done()
          reject(new Error(`${this.command} exited (${exit.code ?? exit.signal}) before ${what}; stderr: ${this.tail()}`))
        },
        () => undefined,
      )
    })
  }

  /**
   * Why the program failed, in a line: its last `--json` error event, else the first stderr
   * line naming an error (a Node stack ends in braces and a version line, which say
   * nothing), else the last lines of stderr.
   */
  tail(count = 3): string {
    const event = [...this.lines].reverse().find((line) => line.type === 'error')
    if (event !== undefined) return String(event.error ?? event.message ?? JSON.stringify(event))
    const named = this.stderr.find((line) => /error|denied|fail|fatal/i.test(line))
    if (named !== undefined) return named.trim()
    return this.stderr
      .filter((line) => line.trim() !== '')
      .slice(-count)
      .join(' | ')
  }
}

/** Runs a command to its end. */
export async function run(command: string, args: readonly string[], options: RunOptions): Promise<Exit & { proc: Proc }> {
  const proc = new Proc(command, args, options)
  return { ...(await proc.exited), proc }
}

/**
 * Polls `probe` until it returns a value other than undefined, up to `ms`: for conditions
 * nothing announces (a port accepting, a file growing).
 */
export async function waitUntil<T>(probe: () => T | undefined | Promise<T | undefined>, ms: number, what: string, every = 10): Promise<T> {
  const deadline = performance.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, every))
  }
}

/** A file name for GNU time's report in `dir`. */
let rssFiles = 0
export function rssFile(dir: string, label: string): string {
  return join(dir, `rss-${label}-${++rssFiles}.txt`)
}
