/**
 * How the `fmq` command fails: every error becomes one line on stderr (`fmq: ...`) and an
 * exit code, never a stack trace. The library throws typed errors; only this file decides
 * what they mean to a shell.
 *
 * @packageDocumentation
 */
import {
  AccessRefusedError,
  AccountConfigError,
  CurveKeyError,
  FolderLockedError,
  fsErrorWords,
  InvalidClientOptionError,
  InvalidServerOptionError,
  RelayConfigError,
  ServerConfigError,
  SettingsError,
  ZplFileError,
  ZplSyntaxError,
} from '../index.js'

/** Exit codes, documented in `fmq --help`. */
export const EXIT = {
  /** Done, or stopped by SIGINT/SIGTERM after saying goodbye. */
  OK: 0,
  /** A runtime failure: port in use, server unreachable (with --once), I/O error. */
  FAILURE: 1,
  /** Bad usage or configuration: unknown flag, bad endpoint, missing directory, malformed config, a locked destination, a subscription that matches nothing (--once). */
  USAGE: 2,
  /** Every server refused our credentials. */
  ACCESS_DENIED: 3,
  /** With --once: done, but some entries were skipped (unreadable, special files, names that cannot travel), as rsync's 23. */
  PARTIAL: 23,
  /** A second SIGINT/SIGTERM while closing. */
  INTERRUPTED: 130,
} as const
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** The help text that documents {@link EXIT}. */
export const EXIT_HELP = `
Exit codes:
  0    done, or stopped cleanly by Ctrl-C / SIGTERM
  1    runtime failure (port in use, server unreachable with --once, I/O error)
  2    usage or configuration error (bad flag, endpoint, directory or config file,
       a destination another fmq writes to, a subscription that matches nothing with --once)
  3    access denied (wrong login or password)
  23   partial transfer (--once): done, but entries were skipped, each named on stderr
       (unreadable file or folder, FIFO, socket or device, a name that cannot travel)
  130  a second Ctrl-C / SIGTERM while closing`

/** An error the CLI itself raises, with the exit code it stands for. */
export class CliError extends Error {
  override readonly name = 'CliError'
  readonly code = 'ERR_FMQ_CLI'

  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.USAGE,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** Node/libzmq error codes and what they mean for an endpoint. */
const ENDPOINT_CODES: Record<string, [text: string, exitCode: ExitCode]> = {
  EADDRINUSE: ['address already in use (is another server running on that port?)', EXIT.FAILURE],
  EADDRNOTAVAIL: ['address not available on this host', EXIT.FAILURE],
  EACCES: ['permission denied', EXIT.FAILURE],
  EINVAL: ['invalid endpoint', EXIT.USAGE],
  EPROTONOSUPPORT: ['unknown transport', EXIT.USAGE],
  ENODEV: ['no such network interface', EXIT.USAGE],
}

/** The bind or connect failure of one endpoint, as a CliError that names it. */
export function endpointError(verb: 'bind' | 'connect to', endpoint: string, error: unknown): CliError {
  const code = (error as { code?: unknown } | undefined)?.code
  const known = typeof code === 'string' ? ENDPOINT_CODES[code] : undefined
  const detail = known?.[0] ?? (error instanceof Error ? error.message : String(error))
  return new CliError(`cannot ${verb} ${endpoint}: ${detail}`, known?.[1] ?? EXIT.FAILURE, { cause: error })
}

/** What a Node system call was doing, for "cannot ... PATH: why". */
const SYSCALL_WORDS: Record<string, string> = {
  mkdir: 'cannot create folder',
  open: 'cannot open',
  scandir: 'cannot list',
  opendir: 'cannot list',
  rename: 'cannot rename',
  unlink: 'cannot delete',
  rmdir: 'cannot delete',
  copyfile: 'cannot copy',
  symlink: 'cannot make link',
}

/** One line and an exit code for anything thrown. */
export function describeError(error: unknown): { message: string; exitCode: ExitCode } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode }
  if (error instanceof ZplSyntaxError || error instanceof SettingsError || error instanceof AccountConfigError || error instanceof CurveKeyError) {
    return { message: `${error.message}`, exitCode: EXIT.USAGE }
  }
  if (error instanceof ZplFileError) {
    const code = (error.cause as { code?: string } | undefined)?.code
    const why = code !== undefined ? (fsErrorWords(code) ?? code) : String(error.cause)
    return { message: `cannot read config ${error.path}: ${why}`, exitCode: EXIT.USAGE }
  }
  if (error instanceof RelayConfigError || error instanceof InvalidClientOptionError || error instanceof InvalidServerOptionError || error instanceof ServerConfigError) return { message: error.message, exitCode: EXIT.USAGE }
  // Another fmq writes there: a usage error, as a second rsync to one folder would be.
  if (error instanceof FolderLockedError) return { message: error.message, exitCode: EXIT.USAGE }
  if (error instanceof AccessRefusedError) return { message: error.message, exitCode: EXIT.ACCESS_DENIED }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const path = (error as { path?: unknown }).path
    const words = fsErrorWords(code)
    if (typeof path === 'string' && words !== undefined) {
      // Never a bare ENOENT: what was done, to which path, why.
      const syscall = (error as { syscall?: unknown }).syscall
      const doing = typeof syscall === 'string' ? SYSCALL_WORDS[syscall] : undefined
      return { message: doing === undefined ? `${path}: ${words}` : `${doing} ${path}: ${words}`, exitCode: EXIT.FAILURE }
    }
    return { message: error.message, exitCode: EXIT.FAILURE }
  }
  return { message: String(error), exitCode: EXIT.FAILURE }
}

/** Prints the error as one line and exits with its code. */
export function fail(error: unknown): never {
  const { message, exitCode } = describeError(error)
  process.stderr.write(`fmq: ${message.split('\n')[0]}\n`)
  process.exit(exitCode)
}
