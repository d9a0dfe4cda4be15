/**
 * What the `fmq` commands print. Three shapes of the same events: `--json` (one JSON object
 * per line, for programs), plain lines (stdout not a terminal: logs), and on a terminal plain
 * lines above a live progress bar. `-q` keeps errors only; `-v` adds connections,
 * subscriptions and progress lines. Errors and warnings go to stderr as `fmq: ...`.
 *
 * @packageDocumentation
 */
import cliProgress from 'cli-progress'

import { type ClientEventRecord, RefusedFileNameError } from '../index.js'

/** 0 = errors only (`-q`), 1 = normal, 2 = more (`-v`). */
export type Verbosity = 0 | 1 | 2

export interface OutputOptions {
  json: boolean
  verbosity: Verbosity
  /** Whether stdout is a terminal: then the client draws a progress bar. */
  tty: boolean
}

/** The output flags every command takes, as commander hands them over. */
export interface OutputFlags {
  json?: boolean
  quiet?: boolean
  verbose?: boolean
}

export function outputOptions(flags: OutputFlags, tty = process.stdout.isTTY === true): OutputOptions {
  return { json: flags.json === true, verbosity: flags.quiet ? 0 : flags.verbose ? 2 : 1, tty: tty && flags.json !== true }
}

/** A JSON event: a `type` and plain fields (serialised as they are). */
export type JsonEvent = { readonly type: string; readonly [field: string]: unknown } | { readonly type: string }

/** Prints events and lines according to the output options. */
export class Output {
  /** Where text lines go while a progress bar owns the terminal. */
  private logger: ((line: string) => void) | undefined

  constructor(readonly options: OutputOptions) {}

  /** An event: as JSON, or as `text` when its level is shown (`1` normal, `2` verbose only). */
  event(event: JsonEvent, text: string, level: 1 | 2 = 1): void {
    if (this.options.json) {
      if (this.options.verbosity > 0) this.write(JSON.stringify(event))
    } else if (this.options.verbosity >= level) {
      this.write(text)
    }
  }

  /** Something went wrong that we survive: stderr as text; in JSON an `error` event. */
  error(text: string, event?: JsonEvent): void {
    if (this.options.json) this.write(JSON.stringify(event ?? { type: 'error', error: text }))
    else this.stderr(`fmq: ${text}`)
  }

  /** A warning, shown unless `-q`. */
  warn(text: string): void {
    if (this.options.verbosity === 0) return
    if (this.options.json) this.write(JSON.stringify({ type: 'warning', message: text }))
    else this.stderr(`fmq: warning: ${text}`)
  }

  /** Routes text lines through a progress display (or back to stdout with undefined). */
  divert(logger: ((line: string) => void) | undefined): void {
    this.logger = logger
  }

  private write(line: string): void {
    if (this.logger !== undefined) this.logger(line)
    else process.stdout.write(line + '\n')
  }

  private stderr(line: string): void {
    if (this.logger !== undefined) this.logger(line)
    else process.stderr.write(line + '\n')
  }
}

/** An entry not mirrored, as a command reports it. */
export interface SkipRecord {
  /** Relative to the published folder or SRC; the virtual path for a name a client refused. */
  path: string
  reason: string
  code: string
  endpoint?: string
  /** The server's published folder the path is relative to, and the virtual path, for the JSON event. */
  location?: string
  virtualPath?: string
}

const CONTROL = /[\u0000-\u001f\u007f]/

/** A path for a text line: quoted when it holds a newline or another control character, or leading or trailing spaces, so a line stays one line and says where the name ends. */
export function shownPath(path: string): string {
  return CONTROL.test(path) || path.trim() !== path ? JSON.stringify(path) : path
}

/**
 * Entries not mirrored: each one line on stderr (`fmq: skipped PATH: REASON`, the path quoted
 * when it holds a newline or another control character, so it stays one line), in JSON a
 * `skipped` event with the running `count`. Shown even with `-q`: the copy is partial.
 */
export class SkipReport {
  count = 0

  /** Paths said, so that a file failing after its entry was skipped is not said twice. */
  private readonly said = new Set<string>()

  /**
   * @param relative - paths are relative to SRC (`fmq track`): a failed file's virtual path is
   *   shown without its leading `/`, as the skips of SRC are.
   */
  constructor(
    private readonly output: Output,
    private readonly relative = false,
  ) {}

  add(entry: SkipRecord): void {
    this.said.add(entry.path)
    this.count++
    this.output.error(`skipped ${shownPath(entry.path)}: ${entry.reason}`, { type: 'skipped', ...entry, count: this.count })
  }

  /** Files that failed (could not be written, say), by virtual path, unless they came or went since. */
  private readonly failed = new Map<string, SkipRecord>()

  /** A file failed: not mirrored, unless it is delivered or deleted later ({@link SkipReport.settled}). */
  failedOn(entry: SkipRecord): void {
    const path = this.relative ? entry.path.replace(/^\/+/, '') : entry.path
    this.failed.set(path, { ...entry, path })
  }

  /** A file was delivered or deleted: an earlier failure of it is over. */
  settled(virtualPath: string): void {
    this.failed.delete(this.relative ? virtualPath.replace(/^\/+/, '') : virtualPath)
  }

  /** Says what failed for good and how many were skipped, if any; true when the run is partial. */
  summary(): boolean {
    // Said when they happened, as errors; said again as what the copy lacks.
    for (const entry of this.failed.values()) if (!this.said.has(entry.path)) this.add(entry)
    this.failed.clear()
    if (this.count === 0) return false
    const entries = this.count === 1 ? '1 entry' : `${this.count} entries`
    this.output.error(`partial transfer: ${entries} skipped`, { type: 'partial', skipped: this.count })
    return true
  }
}

/** One line per server event. */
export function announceListening(output: Output, endpoints: readonly string[]): void {
  for (const endpoint of endpoints) output.event({ type: 'listening', endpoint }, `listening on ${endpoint}`)
}

/** Octets as B, KiB, MiB... */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** Transfer counters behind the progress display: what is done, what is arriving, the rate. */
export class TransferTally {
  files = 0
  bytesDone = 0
  /** Octets received so far of each file in flight. */
  readonly inFlight = new Map<string, { bytes: number; size: number | undefined }>()
  current: string | undefined
  private readonly started: number

  constructor(private readonly now: () => number = Date.now) {
    this.started = now()
  }

  progress(virtualPath: string, bytes: number, size: number | undefined): void {
    this.inFlight.set(virtualPath, { bytes, size })
    this.current = virtualPath
  }

  delivered(virtualPath: string, size: number): void {
    this.inFlight.delete(virtualPath)
    this.files++
    this.bytesDone += size
    if (this.current === virtualPath) this.current = this.inFlight.keys().next().value
  }

  /** Octets received, whole files and parts. */
  get bytes(): number {
    let bytes = this.bytesDone
    for (const file of this.inFlight.values()) bytes += file.bytes
    return bytes
  }

  /** Octets per second since the start. */
  get rate(): number {
    const seconds = (this.now() - this.started) / 1000
    return seconds > 0 ? this.bytes / seconds : 0
  }
}

/**
 * Prints a client's events; on a terminal (not `--json`, not `-q`) also draws a live bar for
 * the file arriving: its bytes of its size, files and bytes done, rate, ETA.
 */
export class ClientView {
  readonly tally = new TransferTally()
  private readonly multibar: cliProgress.MultiBar | undefined
  private bar: cliProgress.SingleBar | undefined
  private stopped = false

  /** Entries not mirrored: refused names, and what a server said it skipped. */
  readonly skips: SkipReport

  /** @param options.relative - paths relative to SRC (`fmq track`), see {@link SkipReport}. */
  constructor(
    private readonly output: Output,
    options: { relative?: boolean } = {},
  ) {
    this.skips = new SkipReport(output, options.relative === true)
    const { tty, json, verbosity } = output.options
    if (tty && !json && verbosity > 0) {
      this.multibar = new cliProgress.MultiBar(
        {
          format: '{bar} {percentage}% {file} | {files} files, {done} | {rate}/s | ETA {eta}',
          hideCursor: true,
          clearOnComplete: true,
          stopOnComplete: false,
          barsize: 24,
          autopadding: true,
          stream: process.stdout,
        },
        cliProgress.Presets.shades_classic,
      )
      const multibar = this.multibar
      // Until the first bar is drawn, cli-progress holds logged lines back: write them now.
      output.divert((line) => (this.bar === undefined ? process.stdout.write(line + '\n') : multibar.log(line + '\n')))
    }
  }

  /** Reports one event. */
  show(event: ClientEventRecord): void {
    const { output } = this
    switch (event.type) {
      case 'delivered':
        this.skips.settled(event.virtualPath)
        this.tally.delivered(event.virtualPath, event.size)
        output.event(event, `delivered ${shownPath(event.virtualPath)} (${formatBytes(event.size)})`)
        this.redraw()
        break
      case 'deleted':
        this.skips.settled(event.virtualPath)
        output.event(event, `deleted ${shownPath(event.virtualPath)}`)
        break
      case 'progress':
        this.tally.progress(event.virtualPath, event.bytes, event.size)
        output.event(event, `receiving ${shownPath(event.virtualPath)}: ${formatBytes(event.bytes)}${event.size === undefined ? '' : ` of ${formatBytes(event.size)}`}`, 2)
        this.redraw()
        break
      case 'connected':
        output.event(event, `connected to ${event.endpoint} (protocol version ${event.version})`, 2)
        break
      case 'subscribed':
        output.event(event, `subscribed to ${event.path} on ${event.endpoint}`, 2)
        break
      case 'disconnected':
        output.event(event, `disconnected from ${event.endpoint}: ${event.reason}`, event.reason === 'closed' ? 2 : 1)
        break
      case 'access-denied':
        output.error(`${event.endpoint} refused access: ${event.reason || 'no reason given'}`, { ...event })
        break
      case 'skipped':
        this.skips.add({ path: event.virtualPath, reason: event.reason, code: event.code, ...(event.endpoint === undefined ? {} : { endpoint: event.endpoint }) })
        break
      case 'error': {
        // A refused name is also a 'skipped' event, which says it.
        if (event.error instanceof RefusedFileNameError) break
        const code = (event.error as { code?: unknown }).code
        // A file that could not be written (or came wrong, with no retry left): the copy lacks it.
        const { virtualPath, retrying } = event.error as { virtualPath?: unknown; retrying?: unknown }
        if (typeof virtualPath === 'string' && retrying !== true) {
          const path = virtualPath.startsWith('/') ? virtualPath : `/${virtualPath}`
          const cause = event.error.cause instanceof Error ? event.error.cause.message : event.error.message
          this.skips.failedOn({ path, reason: `not written: ${cause}`, code: typeof code === 'string' ? code : 'ERR_FMQ_INBOX_WRITE' })
        }
        output.error(`${event.endpoint === undefined ? '' : `${event.endpoint}: `}${event.error.message}`, {
          type: 'error',
          ...(event.endpoint === undefined ? {} : { endpoint: event.endpoint }),
          error: event.error.message,
          ...(code === undefined ? {} : { code }),
        })
        break
      }
      default: {
        // Events added to the client later: shown as JSON, and as a line with -v.
        const record = event as { type: string; endpoint?: unknown }
        output.event({ ...record }, `${record.type}${typeof record.endpoint === 'string' ? ` (${record.endpoint})` : ''}`, 2)
      }
    }
  }

  /** Stops drawing; text lines go straight to stdout again. */
  stop(): void {
    if (this.multibar === undefined || this.stopped) return
    this.stopped = true
    // Lines logged since the last redraw are written by a redraw only.
    if (this.bar !== undefined) this.multibar.update()
    this.multibar.stop()
    this.output.divert(undefined)
  }

  private redraw(): void {
    if (this.multibar === undefined || this.stopped) return
    const { tally } = this
    const current = tally.current === undefined ? undefined : tally.inFlight.get(tally.current)
    const total = current?.size ?? current?.bytes ?? 0
    const value = current?.bytes ?? 0
    const rate = tally.rate
    const payload = {
      file: tally.current ?? '(waiting)',
      files: tally.files,
      done: formatBytes(tally.bytes),
      rate: formatBytes(Math.round(rate)),
      eta: current?.size === undefined || rate === 0 ? '--' : formatDuration((current.size - current.bytes) / rate),
    }
    if (this.bar === undefined) this.bar = this.multibar.create(Math.max(total, 1), value, payload)
    else {
      this.bar.setTotal(Math.max(total, 1))
      this.bar.update(value, payload)
    }
  }
}
