/**
 * What the fault tests share: the scale knob (FMQ_FAULTS=long), a seeded random source
 * (FMQ_FAULTS_SEED, printed so a failure can be replayed), a mixed tree builder that keeps
 * every file's size and SHA-256, the SHA-256 comparison of a mirror with its source, a
 * server run as a child process (test/peers/server-process.ts: killed, restarted, asked for
 * its counters, its RSS sampled from /proc), and `fmq client` processes (FmqProcess).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { randomFile } from '../fixtures/tree.js'
import { FmqProcess, type FmqLine } from '../peers/fmq-process.js'

export const MiB = 1024 * 1024

/** `FMQ_FAULTS=long`: the full version (300 MiB trees, longer chaos); else the CI-sized one. */
export const LONG = process.env.FMQ_FAULTS === 'long'

/** The run's seed: FMQ_FAULTS_SEED to replay one, else a fresh one. Every failure message names it. */
export const SEED = process.env.FMQ_FAULTS_SEED !== undefined && process.env.FMQ_FAULTS_SEED !== '' ? Number(process.env.FMQ_FAULTS_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0

/** A small seeded generator (mulberry32): the same seed gives the same trees, kill points and faults. */
export class Random {
  private state: number
  constructor(seed: number) {
    this.state = seed >>> 0
  }
  /** In [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }
}

/** A generator for one test: the run's seed mixed with the test's name, so tests do not share draws. */
export function randomFor(name: string): Random {
  let h = SEED ^ 0x9e3779b9
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  return new Random(h)
}

/** Says how to replay a failure: wraps a test body so its error names the seed. */
export async function withSeed<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const wrapped = new Error(`${message}\n(replay with FMQ_FAULTS_SEED=${SEED}${LONG ? ' FMQ_FAULTS=long' : ''})`, { cause: error })
    if (error instanceof Error && error.stack) wrapped.stack = `${wrapped.message}\n${error.stack.split('\n').slice(1).join('\n')}`
    throw wrapped
  }
}

/** What a tree holds: relative path → size and SHA-256. */
export type Manifest = Map<string, { size: number; sha256: string }>

export async function sha256File(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { size, sha256: hash.digest('hex') }
}

/** Every regular file under root with its size and SHA-256, leaving out `.fmq` state folders. */
export async function manifestOf(root: string): Promise<Manifest> {
  const result: Manifest = new Map()
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath ?? entry.path, entry.name)
    const rel = relative(root, path)
    if (rel.split(sep).includes('.fmq')) continue
    result.set(rel, await sha256File(path))
  }
  return result
}

/** The differences between a mirror and its source (empty when they are equal), at most `limit` of them. */
export function differences(source: Manifest, mirror: Manifest, limit = 10): string[] {
  const out: string[] = []
  for (const [path, file] of source) {
    const got = mirror.get(path)
    if (got === undefined) out.push(`missing ${path}`)
    else if (got.sha256 !== file.sha256) out.push(`different ${path} (${got.size} of ${file.size} octets)`)
  }
  for (const path of mirror.keys()) if (!source.has(path)) out.push(`extra ${path}`)
  return out.slice(0, limit)
}

export const totalSize = (manifest: Manifest): number => [...manifest.values()].reduce((sum, file) => sum + file.size, 0)

/**
 * A mixed tree of about `bytes` octets: a few large files (a quarter to an eighth of the
 * whole each), medium ones, and many small ones (empty files included), nested up to four
 * folders deep. Returns its manifest.
 */
export async function buildTree(root: string, bytes: number, random: Random): Promise<Manifest> {
  await mkdir(root, { recursive: true })
  const folders = ['', 'a', 'a/b', 'a/b/c', 'a/b/c/d', 'media', 'media/raw', 'docs', 'docs/2024/q1', 'x/y']
  const sizes: number[] = []
  let left = bytes
  // Large files take about 60%, medium ones 30%, small ones the rest.
  for (let share = Math.floor(bytes * 0.6); share > 0 && left > 0; ) {
    const size = Math.min(left, random.int(Math.floor(bytes / 8), Math.floor(bytes / 4)), share)
    sizes.push(size)
    share -= size
    left -= size
  }
  for (let share = Math.floor(bytes * 0.3); share > 0 && left > 0; ) {
    const size = Math.min(left, random.int(64 * 1024, 3 * MiB), share)
    sizes.push(size)
    share -= size
    left -= size
  }
  while (left > 0) {
    const size = Math.min(left, random.next() < 0.05 ? 0 : random.int(1, 64 * 1024))
    sizes.push(size)
    left -= size
    if (size === 0) left -= 1 // an empty file still counts, so this ends
  }
  let n = 0
  for (const size of sizes) {
    const folder = random.pick(folders)
    const path = join(root, folder, `f${n++}-${size}.bin`)
    await mkdir(join(path, '..'), { recursive: true })
    if (size >= MiB) await randomFile(path, size)
    else await writeFile(path, randomBytes(size))
  }
  return manifestOf(root)
}

const SERVER_SCRIPT = fileURLToPath(new URL('../peers/server-process.ts', import.meta.url))

/** A server in a child process (test/peers/server-process.ts), publishing `source` under "/". */
export class ServerProcess {
  readonly child: ChildProcess
  readonly at: Promise<string>
  readonly exited: Promise<number | null>
  private statsWaiters: Array<(stats: ServerStats) => void> = []

  constructor(source: string, endpoint: string, options: Record<string, unknown> = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', SERVER_SCRIPT, source, endpoint], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, FMQ_TEST_SERVER_OPTIONS: JSON.stringify(options) },
    })
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
    this.at = new Promise((resolve, reject) => {
      this.child.once('error', reject)
      void this.exited.then((code) => reject(new Error(`the server process exited (${code}) before it was ready`)))
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        const ready = /^ready (\S+)/.exec(line)
        if (ready) resolve(ready[1]!)
        const stats = /^stats (.*)$/.exec(line)
        if (stats) for (const wake of this.statsWaiters.splice(0)) wake(JSON.parse(stats[1]!) as ServerStats)
      })
    })
    this.at.catch(() => undefined)
  }

  get pid(): number {
    return this.child.pid!
  }

  /** The server's counters, asked for on stdin. */
  stats(ms = 10_000): Promise<ServerStats> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not report its stats')), ms)
      this.statsWaiters.push((stats) => {
        clearTimeout(timer)
        resolve(stats)
      })
      this.child.stdin!.write('stats\n')
    })
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    await this.exited
  }
}

export interface ServerStats {
  contentBytes: number
  files: number
  bytesHashed: number
  filesHashed: number
}

/** Resident set size of a process in octets (VmRSS in /proc/PID/status), undefined once it is gone. */
export async function rssOf(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined)
  const match = status === undefined ? null : /^VmRSS:\s+(\d+) kB/m.exec(status)
  return match ? Number(match[1]) * 1024 : undefined
}

/** Samples a process's RSS every `everyMs` until stopped; keeps the highest and every sample. */
export class RssSampler {
  max = 0
  readonly samples: number[] = []
  private readonly timer: NodeJS.Timeout
  constructor(pid: number, everyMs = 50) {
    this.timer = setInterval(() => {
      void rssOf(pid).then((rss) => {
        if (rss === undefined) return
        this.samples.push(rss)
        if (rss > this.max) this.max = rss
      })
    }, everyMs)
  }
  stop(): void {
    clearInterval(this.timer)
  }
}

/** `fmq client` as a child process (--json), mirroring "/" of `at` into `inbox`. */
export function fmqClient(at: string, inbox: string, extra: readonly string[] = []): FmqProcess {
  return new FmqProcess(['client', '-C', at, '-i', inbox, '--mirror', ...extra])
}

/**
 * A client config setting what flags cannot: the heartbeat a test needs to see a dead link soon,
 * given in ms and written in the config's unit, seconds (a fraction, which is ours).
 */
export async function clientConfig(path: string, heartbeat: number): Promise<string> {
  await writeFile(path, ['client', `    heartbeat = ${heartbeat / 1000}`, ''].join('\n'))
  return path
}

/** Octets of content a client's lines show it has received: delivered files plus the parts of those in flight. */
export function receivedBytes(lines: readonly FmqLine[]): number {
  let done = 0
  const inFlight = new Map<string, number>()
  for (const line of lines) {
    if (line.type === 'progress') inFlight.set(line.virtualPath as string, line.bytes as number)
    else if (line.type === 'delivered') {
      inFlight.delete(line.virtualPath as string)
      done += line.size as number
    }
  }
  for (const bytes of inFlight.values()) done += bytes
  return done
}

export { FmqProcess, type FmqLine }
