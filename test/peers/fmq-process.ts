/**
 * `fmq` run as a real child process (through tsx, from the sources), its `--json` lines
 * parsed as they come, so tests wait for the events they expect, each with a timeout.
 * With FMQ_TEST_CLI=bin, the child is the built command instead (package.json's bin, the
 * bundle `npm run build` makes): `FMQ_TEST_CLI=bin node --import tsx --test ...` runs the same
 * tests against what `npm link` installs.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../src/cli/fmq.ts', import.meta.url))
const BIN = fileURLToPath(new URL(`../../${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { bin: { fmq: string } }).bin.fmq}`, import.meta.url))

/** Which `fmq`: the sources through tsx, or the built bin. */
export type FmqCli = 'sources' | 'bin'

/** How to start `fmq`: by default the sources through tsx, or the built bin with FMQ_TEST_CLI=bin. */
export function fmqCommand(cli: FmqCli = process.env.FMQ_TEST_CLI === 'bin' ? 'bin' : 'sources'): string[] {
  return cli === 'bin' ? [process.execPath, BIN] : [process.execPath, '--import', 'tsx', CLI]
}

/** How the child runs. */
export interface FmqProcessOptions {
  /** Run as this user and group (with `setpriv`; the test must be root): what it may not read, it then meets. */
  uid?: number
  /** `--json` (default true): lines parsed as events; else plain text lines. */
  json?: boolean
  /** Which `fmq` (default: see {@link fmqCommand}). */
  cli?: FmqCli
}

export interface FmqLine {
  type: string
  [field: string]: unknown
}

export class FmqProcess {
  readonly child: ChildProcess
  readonly lines: FmqLine[] = []
  readonly stderr: string[] = []
  private readonly waiters = new Set<() => void>()
  readonly exited: Promise<number | null>

  constructor(args: readonly string[], options: FmqProcessOptions = {}) {
    const command = [...fmqCommand(options.cli), ...args, ...(options.json === false ? [] : ['--json'])]
    const asUser = options.uid === undefined ? [] : ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups']
    const [file, ...rest] = [...asUser, ...command]
    this.child = spawn(file!, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as FmqLine)
      } catch {
        this.lines.push({ type: 'text', text: line })
      }
      for (const wake of this.waiters) wake()
    })
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line))
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
  }

  /** The first line (from the start) that matches, waiting for it up to `ms`. */
  waitFor(match: (line: FmqLine) => boolean, ms: number, what: string): Promise<FmqLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(match)
        if (found === undefined) return
        done()
        resolve(found)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; stderr: ${this.stderr.slice(-5).join(' | ')}`))
      }, ms)
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
      // A process that ends cannot print it any more.
      void this.exited.then((code) => {
        if (!this.waiters.has(check)) return
        done()
        const said = this.lines.slice(-5).map((line) => JSON.stringify(line)).join(' | ')
        reject(new Error(`fmq exited (${code}) before ${what}; stderr: ${this.stderr.slice(-5).join(' | ')}; last lines: ${said}`))
      })
    })
  }

  /** The endpoint a server or relay reported it listens on. */
  async endpoint(ms = 20_000): Promise<string> {
    return (await this.waitFor((line) => line.type === 'listening', ms, 'the listening endpoint')).endpoint as string
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    await this.exited
  }
}

/** The fmq processes one test file starts, killed together when it ends. */
export class FmqProcesses {
  private readonly started: FmqProcess[] = []

  start(args: readonly string[], options: FmqProcessOptions = {}): FmqProcess {
    const child = new FmqProcess(args, options)
    this.started.push(child)
    return child
  }

  async killAll(): Promise<void> {
    for (const child of this.started) await child.kill()
  }
}
