/**
 * Typed reading of a ZPL config, in the units the reference FileMQ reads its keys in, with
 * every problem pointing at the file and line. Errors throw {@link SettingsError}; doubtful
 * values (a heartbeat of 1000 seconds, most likely meant as milliseconds) are kept, as the
 * reference would read them, and reported as {@link ConfigWarning}s.
 *
 * Units (REFERENCE.md): version 1 reads `server/heartbeat`, `server/monitor` and
 * `client/heartbeat` as whole seconds (`atoi (value) * 1000`); version 2 reads
 * `server/timeout` in milliseconds.
 *
 * @packageDocumentation
 */
import type { ZplNode } from './zpl.js'

/** A setting is missing or has a value that cannot work; `line` points into `source` when known. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError'
  readonly code = 'ERR_FMQ_SETTINGS'

  constructor(
    readonly reason: string,
    readonly source?: string,
    readonly line = 0,
  ) {
    super(`${where(source, line)}${reason}`)
  }
}

/**
 * A config value that is accepted but is probably not what its author meant.
 *
 * @example
 * ```ts
 * String(new ConfigWarning('server/heartbeat is in seconds', 'server.cfg', 7)) // 'server.cfg:7: server/heartbeat is in seconds'
 * ```
 */
export class ConfigWarning {
  constructor(
    readonly reason: string,
    readonly source?: string,
    readonly line = 0,
  ) {}

  toString(): string {
    return `${where(this.source, this.line)}${this.reason}`
  }
}

function where(source: string | undefined, line: number): string {
  if (source === undefined) return line > 0 ? `line ${line}: ` : ''
  return line > 0 ? `${source}:${line}: ` : `${source}: `
}

/** Seconds at or above which a reference-unit heartbeat or monitor looks like milliseconds. */
export const IMPLAUSIBLE_SECONDS = 100
/** Milliseconds below which a timeout looks like seconds. */
export const IMPLAUSIBLE_MILLISECONDS = 100

/** Reads typed values from a config, pointing errors and warnings at the file and line. */
export class ConfigReader {
  /** Doubtful values met so far, in the order read. */
  readonly warnings: ConfigWarning[] = []

  constructor(
    readonly root: ZplNode,
    readonly source: string | undefined,
  ) {}

  string(path: string): string | undefined {
    return this.root.get(path)
  }

  line(path: string): number {
    return this.root.at(path)?.line ?? 0
  }

  warn(reason: string, line: number): void {
    this.warnings.push(new ConfigWarning(reason, this.source, line))
  }

  flag(path: string): boolean | undefined {
    const value = this.root.get(path)
    if (value === undefined) return undefined
    if (value === '1' || value === 'true' || value === 'yes') return true
    if (value === '0' || value === 'false' || value === 'no') return false
    throw new SettingsError(`${path} must be 1 or 0, got "${value}"`, this.source, this.line(path))
  }

  positive(path: string, unit = ''): number | undefined {
    const value = this.root.get(path)
    if (value === undefined) return undefined
    const parsed = Number(value)
    if (value.trim() === '' || !Number.isFinite(parsed) || parsed <= 0) {
      throw new SettingsError(`${path} must be a positive number${unit === '' ? '' : ` of ${unit}`}, got "${value}"`, this.source, this.line(path))
    }
    return parsed
  }

  /**
   * A key the reference reads in seconds (`atoi (value) * 1000`), in milliseconds. Fractions
   * are ours (0.5 = 500 ms; the reference would read 0). A value of IMPLAUSIBLE_SECONDS or more
   * is most likely milliseconds written by an older config of ours: read as the reference
   * would, and warned about.
   *
   * @example
   * ```ts
   * new ConfigReader(parseZpl('server\n    heartbeat = 1\n'), 'a.cfg').seconds('server/heartbeat') // 1000
   * ```
   */
  seconds(path: string): number | undefined {
    const seconds = this.positive(path, 'seconds')
    if (seconds === undefined) return undefined
    if (seconds >= IMPLAUSIBLE_SECONDS) {
      const name = path.slice(path.lastIndexOf('/') + 1)
      this.warn(
        `${path} = ${this.root.get(path)} is read in seconds, as the reference FileMQ reads it (${describeSeconds(seconds)}); ` +
          `if milliseconds were meant, write ${name} = ${formatNumber(seconds / 1000)}`,
        this.line(path),
      )
    }
    return seconds * 1000
  }

  /**
   * A key in milliseconds (the reference's `server/timeout`). A value under
   * IMPLAUSIBLE_MILLISECONDS is most likely seconds: read as milliseconds, and warned about.
   */
  milliseconds(path: string): number | undefined {
    const milliseconds = this.positive(path, 'milliseconds')
    if (milliseconds === undefined) return undefined
    if (milliseconds < IMPLAUSIBLE_MILLISECONDS) {
      const name = path.slice(path.lastIndexOf('/') + 1)
      this.warn(
        `${path} = ${this.root.get(path)} is read in milliseconds, as the reference FileMQ reads it; ` +
          `if seconds were meant, write ${name} = ${formatNumber(milliseconds * 1000)}`,
        this.line(path),
      )
    }
    return milliseconds
  }
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)))
}

function describeSeconds(seconds: number): string {
  if (seconds < 120) return `${formatNumber(seconds)} s`
  if (seconds < 7200) return `${formatNumber(seconds)} s, about ${Math.round(seconds / 60)} minutes`
  return `${formatNumber(seconds)} s, about ${Math.round(seconds / 3600)} hours`
}
