/**
 * What the `fmq` commands print. Three shapes of the same events: `--json` (one JSON object
 * per line, for programs and log pipelines: `time`, `level`, then the event), plain lines (stdout not a terminal: logs), and on a terminal one
 * line for the whole transfer, redrawn (./progress.ts), with per-file lines only with `-v`.
 * `-q` keeps errors only; `-v` adds connections, subscriptions and progress lines. Errors
 * and warnings go to stderr as `fmq: ...`. `--once` ends with a summary line.
 *
 * @packageDocumentation
 */
import cliProgress from 'cli-progress'

import { type ClientEventRecord, RefusedFileNameError } from '../index.js'

import { type DryRunSummary, formatBytes, progressLine, summaryText, TransferTally, type TransferSummary } from './progress.js'

export { formatBytes }

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
      if (this.options.verbosity > 0) this.json('info', event)
    } else if (this.options.verbosity >= level) {
      this.write(text)
    }
  }

  /** Something went wrong that we survive: stderr as text; in JSON an `error` event. */
  error(text: string, event?: JsonEvent): void {
    if (this.options.json) this.json('error', event ?? { type: 'error', error: text })
    else this.stderr(`fmq: ${text}`)
  }

  /** A warning, shown unless `-q`; in JSON `event`, or a `warning` event. */
  warn(text: string, event?: JsonEvent): void {
    if (this.options.verbosity === 0) return
    if (this.options.json) this.json('warn', event ?? { type: 'warning', message: text })
    else this.stderr(`fmq: warning: ${text}`)
  }

  /** Writes the stdout lines gathered this turn now (before a child that shares stdout runs). */
  flush(): void {
    stdoutLines.flush()
  }

  /** Routes text lines through a progress display (or back to stdout with undefined). */
  divert(logger: ((line: string) => void) | undefined): void {
    this.logger = logger
  }

  /** One JSON line: when and how grave first, for a log pipeline; the event's own fields win. */
  private json(level: 'info' | 'warn' | 'error', event: JsonEvent): void {
    this.write(JSON.stringify({ time: new Date().toISOString(), level, ...event }))
  }

  private write(line: string): void {
    if (this.logger !== undefined) this.logger(line)
    else stdoutLines.add(line)
  }

  private stderr(line: string): void {
    if (this.logger !== undefined) return this.logger(line)
    // In the order they happened, when both streams go to one terminal or file.
    stdoutLines.flush()
    process.stderr.write(line + '\n')
  }
}

/**
 * Lines for stdout, written together at the end of the event loop's turn (or once 64 KiB
 * gather): a burst of 20,000 small files is a few hundred writes, not 20,000. Written at exit
 * too, so nothing printed is lost.
 */
class PendingLines {
  private text = ''
  private scheduled = false
  private exiting = false

  add(line: string): void {
    this.text += line + '\n'
    if (this.text.length >= 65_536) this.flush()
    else if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => {
        this.scheduled = false
        this.flush()
      })
    }
    if (!this.exiting) {
      this.exiting = true
      process.once('exit', () => this.flush())
    }
  }

  flush(): void {
    if (this.text === '') return
    const text = this.text
    this.text = ''
    process.stdout.write(text)
  }
}

const stdoutLines = new PendingLines()

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

  /**
   * Says what failed for good, then (given `transfer`) the summary line of the run (`summary`
   * event), then how many were skipped, if any; true when the run is partial.
   *
   * @param elsewhere - entries skipped that were not named here (a server's count on its synced marks).
   */
  summary(transfer?: TransferSummary | DryRunSummary, elsewhere = 0): boolean {
    // Said when they happened, as errors; said again as what the copy lacks.
    for (const entry of this.failed.values()) if (!this.said.has(entry.path)) this.add(entry)
    this.failed.clear()
    if (transfer !== undefined) {
      const skipped = this.count + elsewhere
      this.output.event({ type: 'summary', ...transfer, skipped }, summaryText(transfer, skipped))
    }
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

/**
 * Prints a client's events. On a terminal (not `--json`, not `-q`) one line redrawn in place
 * shows the whole transfer ({@link progressLine}), and per-file lines are shown with `-v`
 * only; elsewhere one line per event.
 */
export class ClientView {
  readonly tally = new TransferTally()
  private readonly multibar: cliProgress.MultiBar | undefined
  private bar: cliProgress.SingleBar | undefined
  private stopped = false
  /** Per-file lines: always in a log, with -v on a terminal (the progress line says it all). */
  private readonly fileLevel: 1 | 2

  /** Entries not mirrored: refused names, and what a server said it skipped. */
  readonly skips: SkipReport

  /** What a dry run would do (`planned` events). */
  private readonly plan = { copy: 0, update: 0, delete: 0, bytes: 0 }
  private readonly dryRun: boolean

  /**
   * @param options.relative - paths relative to SRC (`fmq track`), see {@link SkipReport}.
   * @param options.dryRun - a dry run: what would be done is listed, no progress is drawn.
   */
  constructor(
    private readonly output: Output,
    options: { relative?: boolean; dryRun?: boolean } = {},
  ) {
    this.skips = new SkipReport(output, options.relative === true)
    this.dryRun = options.dryRun === true
    const { tty, json, verbosity } = output.options
    this.fileLevel = tty && !json ? 2 : 1
    if (tty && !json && verbosity > 0 && !this.dryRun) {
      const tally = this.tally
      this.multibar = new cliProgress.MultiBar(
        {
          // Our numbers, cli-progress's drawing: redrawn in place, lines logged above.
          format: () => progressLine(tally),
          hideCursor: true,
          clearOnComplete: true,
          stopOnComplete: false,
          linewrap: false,
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
        this.tally.delivered(event.virtualPath, event.size, event.sent)
        output.event(
          event,
          `delivered ${shownPath(event.virtualPath)} (${formatBytes(event.size)}${event.sent < event.size ? `, ${formatBytes(event.sent)} sent` : ''})`,
          this.fileLevel,
        )
        this.redraw()
        break
      case 'deleted':
        this.skips.settled(event.virtualPath)
        this.tally.removed()
        output.event(event, `deleted ${shownPath(event.virtualPath)}`, this.fileLevel)
        this.redraw()
        break
      case 'progress':
        this.tally.progress(event.virtualPath, event.bytes, event.size)
        output.event(event, `receiving ${shownPath(event.virtualPath)}: ${formatBytes(event.bytes)}${event.size === undefined ? '' : ` of ${formatBytes(event.size)}`}`, 2)
        this.redraw()
        break
      case 'queued':
        this.tally.queued(event.files, event.bytes, event.endpoint)
        output.event(event, `queued ${event.files} files (${formatBytes(event.bytes)}) on ${event.endpoint}`, 2)
        this.redraw()
        break
      case 'unmatched': {
        const published = event.published.length === 0 ? 'nothing' : event.published.join(', ')
        output.warn(`subscription ${shownPath(event.path)} matches nothing published on ${event.endpoint} (it publishes ${published})`, event)
        break
      }
      case 'planned':
        this.plan[event.action]++
        if (event.action !== 'delete') this.plan.bytes += event.size ?? 0
        output.event(event, `would ${event.action} ${shownPath(event.virtualPath)}${event.size === undefined || event.action === 'delete' ? '' : ` (${formatBytes(event.size)})`}`)
        break
      case 'synced':
        this.tally.synced(event.endpoint)
        output.event(event, `in sync with ${event.endpoint}`, 2)
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
        // Said once: many errors name their endpoint already.
        const named = event.endpoint === undefined || event.error.message.includes(event.endpoint)
        output.error(`${named ? '' : `${event.endpoint}: `}${event.error.message}`, {
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

  /**
   * Ends a `--once` run: stops drawing, says what failed, the summary line (`summary` event)
   * and how many were skipped; true when the run is partial.
   *
   * @param elsewhere - entries the servers said they skipped (their synced marks).
   */
  finish(elsewhere = 0): boolean {
    this.stop()
    const seconds = this.tally.summary().seconds
    return this.skips.summary(this.dryRun ? { dryRun: true, ...this.plan, seconds } : this.tally.summary(), elsewhere)
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
    // One bar, whose line progressLine draws from the tally at each of cli-progress's redraws.
    if (this.bar === undefined) this.bar = this.multibar.create(1, 0)
    else this.bar.update(0)
  }
}
