/**
 * The numbers behind what a person sees of a transfer: {@link TransferTally} counts files and
 * octets done, the totals our server announces (QUEUED=1, `queued` events) as they grow, the
 * recent rate; {@link progressLine} makes one terminal line of them, {@link summaryText} the
 * line that ends `--once`. The drawing (redraw in place, lines logged above) is cli-progress's.
 *
 * @packageDocumentation
 */

/** Octets as B, KiB, MiB... */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${units[unit]}`
}

/** Seconds as h:mm:ss (rsync's `--info=progress2` way); `-:--:--` when not known. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-:--:--'
  const s = Math.ceil(seconds)
  return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
}

/** A count with thousands separators: 2,030. */
export function formatCount(count: number): string {
  // As toLocaleString('en-US') writes it, without loading the locale data (~30 ms at the first call).
  if (!Number.isSafeInteger(count)) return count.toLocaleString('en-US')
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/** `1 file`, `2,030 files`. */
function files(count: number): string {
  return count === 1 ? '1 file' : `${formatCount(count)} files`
}

/** A duration for a summary: 0.4 s, 12.3 s, 0:02:05. */
export function formatSeconds(seconds: number): string {
  return seconds < 60 ? `${seconds.toFixed(1)} s` : formatEta(seconds)
}

/** The clock time of `ms` (since the epoch), local, hh:mm:ss. */
function clock(ms: number): string {
  const at = new Date(ms)
  return [at.getHours(), at.getMinutes(), at.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

/** The rate is over this last stretch of time: recent, not since the start. */
const RATE_WINDOW_MS = 5000

/** What a `--once` run did, for its summary line and `summary` event. */
export interface TransferSummary {
  files: number
  bytes: number
  /**
   * Octets of content that travelled for the files delivered: `bytes` when all went whole, less
   * for resumed files and deltas (DELTA); absent when no delivered event said.
   */
  sent?: number
  deleted: number
  seconds: number
  /** Octets per second over the whole run. */
  rate: number
}

/**
 * Transfer counters: files and octets done, the totals announced by the server (`queued`),
 * files in flight, deletions, the recent rate. Octets done never go back: a file sent again
 * from its start keeps what it had counted (the server announced it again, so the total grew
 * as much).
 */
export class TransferTally {
  /** Files delivered, and their octets. */
  files = 0
  bytesDone = 0
  /** Octets of content that travelled for them (delivered events' `sent`). */
  bytesSent = 0
  deleted = 0
  /** The whole transfer as the server announced it; `known` once it said anything. */
  totalFiles = 0
  totalBytes = 0
  known = false
  /** All of it is in place (the last event was a synced mark). */
  inSync = false
  /** When a file last arrived or went. */
  lastChange: number | undefined
  /** Octets received so far of each file in flight. */
  readonly inFlight = new Map<string, { bytes: number; size: number | undefined }>()
  current: string | undefined
  readonly started: number
  /** Octets of files sent again from the start: counted once already. */
  private resent = 0
  private readonly samples: Array<{ at: number; done: number }> = []

  constructor(private readonly now: () => number = Date.now) {
    this.started = now()
  }

  /** Servers that queued files since their last synced mark. */
  private readonly busy = new Set<string>()

  /** The server (`endpoint`) queued `files` more files of `bytes` octets. */
  queued(files: number, bytes: number, endpoint = ''): void {
    this.known = true
    this.totalFiles += files
    this.totalBytes += bytes
    if (files === 0) return
    this.inSync = false
    this.busy.add(endpoint)
  }

  progress(virtualPath: string, bytes: number, size: number | undefined): void {
    const before = this.inFlight.get(virtualPath)
    // Sent again from its start (it changed): what it had is kept, the total grew by as much.
    if (before !== undefined && bytes < before.bytes) this.resent += before.bytes
    this.inFlight.set(virtualPath, { bytes, size })
    this.current = virtualPath
    this.inSync = false
    this.sample()
  }

  /** A file of `size` octets arrived, `sent` of them over the wire (less for a resume or a delta). */
  delivered(virtualPath: string, size: number, sent = size): void {
    this.inFlight.delete(virtualPath)
    this.files++
    this.bytesDone += size
    this.bytesSent += sent
    this.lastChange = this.now()
    if (this.current === virtualPath) this.current = this.inFlight.keys().next().value
    this.sample()
  }

  removed(): void {
    this.deleted++
    this.lastChange = this.now()
  }

  /**
   * A server (`endpoint`) sent all it had. Once every server did, everything is in place: the
   * totals are what was done, and the next changes add to them.
   */
  synced(endpoint = ''): void {
    this.busy.delete(endpoint)
    if (this.busy.size > 0) return
    this.inSync = true
    this.totalFiles = this.files
    this.totalBytes = this.bytes
    this.inFlight.clear()
    this.current = undefined
  }

  /** Octets received: whole files, files sent again, and parts in flight. */
  get bytes(): number {
    let bytes = this.bytesDone + this.resent
    for (const file of this.inFlight.values()) bytes += file.bytes
    return bytes
  }

  /** Octets per second over the last few seconds (since the start, early on). */
  get rate(): number {
    const now = this.now()
    this.sample(now)
    const first = this.samples[0]!
    const span = now - first.at
    if (span >= 1000) return (this.bytes - first.done) / (span / 1000)
    const seconds = (now - this.started) / 1000
    return seconds > 0 ? this.bytes / seconds : 0
  }

  /** Octets per second over the whole run. */
  get averageRate(): number {
    const seconds = (this.now() - this.started) / 1000
    return seconds > 0 ? this.bytesDone / seconds : 0
  }

  summary(): TransferSummary {
    const seconds = (this.now() - this.started) / 1000
    return { files: this.files, bytes: this.bytesDone, sent: this.bytesSent, deleted: this.deleted, seconds, rate: this.averageRate }
  }

  private sample(at = this.now()): void {
    const samples = this.samples
    const last = samples[samples.length - 1]
    if (last !== undefined && at - last.at < 200) last.done = Math.max(last.done, this.bytes)
    else samples.push({ at, done: this.bytes })
    while (samples.length > 2 && at - samples[1]!.at >= RATE_WINDOW_MS) samples.shift()
  }
}

const BAR_WIDTH = 20

/**
 * One line of the whole transfer: the overall percentage of octets with a bar, octets done of
 * the total, files done of the total, the recent rate, the ETA as h:mm:ss, and the file in
 * flight; "in sync" with the time of the last change once everything is in place. Without
 * totals (a reference server announces none), what is done and the rate.
 *
 * @example
 * ```ts
 * progressLine(tally) // '[#########-----------]  45% 135.0 MiB of 300.0 MiB | 912/2,030 files | 43.7 MiB/s | ETA 0:00:03 | /photos/a.jpg'
 * ```
 */
export function progressLine(tally: TransferTally): string {
  if (tally.inSync) {
    if (tally.lastChange === undefined) return 'in sync | nothing to transfer'
    return `in sync | last change ${clock(tally.lastChange)} | ${files(tally.files)} transferred (${formatBytes(tally.bytesDone)}), ${formatCount(tally.deleted)} deleted`
  }
  const done = tally.bytes
  const rate = tally.rate
  const current = tally.current === undefined ? '' : ` | ${tally.current}`
  if (!tally.known) return `${formatBytes(done)} | ${formatCount(tally.files)} files | ${formatBytes(rate)}/s${current}`
  // Never past the total, never back: a total that grows moves the percentage down only as it should.
  const total = Math.max(tally.totalBytes, done)
  const fraction = total === 0 ? (tally.files >= tally.totalFiles ? 1 : 0) : done / total
  const filled = Math.round(fraction * BAR_WIDTH)
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`
  const percent = `${String(Math.floor(fraction * 100)).padStart(3)}%`
  const eta = rate > 0 ? formatEta((total - done) / rate) : formatEta(NaN)
  const count = `${formatCount(tally.files)}/${formatCount(Math.max(tally.totalFiles, tally.files))} files`
  return `${bar} ${percent} ${formatBytes(done)} of ${formatBytes(total)} | ${count} | ${formatBytes(rate)}/s | ETA ${eta}${current}`
}

/** What a dry run (`--dry-run`) found to do, for its summary line and `summary` event. */
export interface DryRunSummary {
  dryRun: true
  copy: number
  update: number
  delete: number
  /** Octets the copies and updates would transfer. */
  bytes: number
  seconds: number
}

/** The line that ends `--once`: what was transferred, deleted and skipped, in how long, how fast. */
export function summaryText(summary: TransferSummary | DryRunSummary, skipped: number): string {
  if ('dryRun' in summary) {
    const what = summary.copy + summary.update + summary.delete === 0
      ? 'in sync, nothing to do'
      : `${formatCount(summary.copy)} to copy, ${formatCount(summary.update)} to update (${formatBytes(summary.bytes)}), ${formatCount(summary.delete)} to delete`
    return `dry run: ${what}, ${formatCount(skipped)} skipped; nothing written`
  }
  const counts = `${formatCount(summary.deleted)} deleted, ${formatCount(skipped)} skipped, in ${formatSeconds(summary.seconds)}`
  if (summary.files === 0 && summary.deleted === 0) return `in sync: nothing to transfer (0 files), ${counts}`
  // What travelled, said when it is less than what arrived (resumes, deltas).
  const sent = summary.sent !== undefined && summary.sent < summary.bytes ? `, ${formatBytes(summary.sent)} sent` : ''
  return `done: ${files(summary.files)} transferred (${formatBytes(summary.bytes)}${sent}), ${counts} (${formatBytes(summary.rate)}/s)`
}
