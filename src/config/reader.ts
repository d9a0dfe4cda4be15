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
  ) {
    this.warnings.push(...checkKeys(root, source))
  }

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
   * are ours (0.5 = 500 ms, rounded to whole milliseconds; the reference would read 0). A value of IMPLAUSIBLE_SECONDS or more
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
    return Math.max(1, Math.round(seconds * 1000))
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

/**
 * Every key a config may hold, for any role (server, client, relay): the reference's
 * (REFERENCE.md) and ours. A config is often shared between roles, so a key of another role is
 * not an error; a key no role knows is a warning naming the nearest known one.
 */
export const KNOWN_KEYS: readonly string[] = Object.freeze([
  // The reference server's, then ours.
  'server',
  'server/monitor',
  'server/heartbeat',
  'server/timeout',
  'server/verbose',
  'server/state',
  'server/follow-outside',
  'server/rescan',
  'server/poll',
  'server/http',
  'publish',
  'publish/location',
  'publish/virtual',
  'bind',
  'bind/endpoint',
  'security',
  'security/echo',
  'security/anonymous',
  'security/plain',
  'security/plain/account',
  'security/plain/account/login',
  'security/plain/account/password',
  'security/plain/account/hash',
  'security/plain/account/group',
  'security/plain/login',
  'security/plain/password',
  'security/curve',
  'security/curve/keys',
  'security/curve/clients',
  // The reference client's, then ours.
  'client',
  'client/heartbeat',
  'client/inbox',
  'client/resync',
  'client/mirror',
  'client/state',
  'client/login',
  'client/password',
  'client/virtual',
  'client/curve',
  'client/curve/server-key',
  'client/curve/keys',
  'client/http',
  'connect',
  'connect/endpoint',
  'subscribe',
  'subscribe/path',
])

const KNOWN = new Set(KNOWN_KEYS)

/**
 * Warns about every key of `root` that no role knows, with its file:line and the nearest known
 * key; a key under an unknown section is not named again. An `account` section outside
 * `security/plain` is an error: its login would silently not exist.
 *
 * @example
 * ```ts
 * checkKeys(parseZpl('server\n    monitr = 1\n'), 'a.cfg').map(String)
 * // ['a.cfg:2: unknown key server/monitr (did you mean server/monitor?)']
 * ```
 */
export function checkKeys(root: ZplNode, source: string | undefined): ConfigWarning[] {
  const warnings: ConfigWarning[] = []
  const visit = (node: ZplNode, prefix: string): void => {
    for (const child of node.children) {
      const path = prefix === '' ? child.name : `${prefix}/${child.name}`
      if (KNOWN.has(path)) {
        visit(child, path)
        continue
      }
      if (child.name === 'account') {
        throw new SettingsError(`${path}: an account section belongs under security/plain (security/plain/account); as it stands, its login would not exist`, source, child.line)
      }
      const nearest = nearestKey(path)
      warnings.push(new ConfigWarning(`unknown key ${path}${nearest === undefined ? '' : ` (did you mean ${nearest}?)`}`, source, child.line))
    }
  }
  visit(root, '')
  return warnings
}

/** The known key nearest to `path` by edit distance, when near enough to be a likely typo or a misplaced key. */
export function nearestKey(path: string): string | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1)
  let best: string | undefined
  let bestScore = Infinity
  for (const known of KNOWN_KEYS) {
    const knownName = known.slice(known.lastIndexOf('/') + 1)
    // The whole path, or the last name alone (a key under the wrong section), whichever is closer.
    const score = Math.min(distance(path, known), distance(name, knownName) + 1)
    if (score < bestScore) {
      bestScore = score
      best = known
    }
  }
  return bestScore <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}
