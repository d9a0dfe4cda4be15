/**
 * What every `fmq` command shares: output flags, loading the config, checking directories,
 * and stopping on signals.
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, readFile, stat } from 'node:fs/promises'
import { type Command, InvalidArgumentError, Option } from 'commander'

import { fsErrorWords, loadZplFile, parseRate, type ZplNode } from '../../index.js'
import { CliError, EXIT, fail } from '../errors.js'
import type { Output } from '../output.js'

/** Commander's collector for repeatable options. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

/** `--json`, `-q`, `-v` on a command. */
export function withOutputFlags(command: Command): Command {
  return command
    .option('--json', 'one JSON object per line on stdout (events, warnings, errors)')
    .addOption(new Option('-q, --quiet', 'print errors only').conflicts('verbose'))
    .option('-v, --verbose', 'print more: connections, subscriptions, progress lines')
}

/** The config file, parsed, or undefined when none was given. */
export async function loadConfig(path: string | undefined): Promise<ZplNode | undefined> {
  return path === undefined ? undefined : loadZplFile(path)
}

/** Fails with a usage error unless `path` is a directory we can stat (and, with `list`, list). */
export async function checkDirectory(path: string, what: string, list = false): Promise<void> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => error)
  if (info instanceof Error) {
    const why = info.code === 'ENOENT' ? 'does not exist' : info.code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${fsErrorWords(info.code) ?? info.message})`
    throw new CliError(`${what} ${path} ${why}`, EXIT.USAGE)
  }
  if (!info.isDirectory()) throw new CliError(`${what} ${path} is not a directory`, EXIT.USAGE)
  // A folder we may not list: nothing could be published from it (one below it is merely skipped).
  if (!list) return
  const denied = await access(path, constants.R_OK | constants.X_OK).then(() => undefined, (error: NodeJS.ErrnoException) => error)
  if (denied !== undefined) throw new CliError(`${what} ${path} cannot be read (${fsErrorWords(denied.code) ?? denied.message})`, EXIT.USAGE)
}

/** Signals this close to the first are the first again (one Ctrl-C, delivered twice by a wrapper). */
const SAME_SIGNAL_MS = 250

/**
 * On SIGINT or SIGTERM: say so, close (the library says goodbye to its peers), exit 0. A
 * second signal while closing exits with 130 at once, or once `halt` resolved: what must
 * end before the process may (fmq track's server thread: a thread torn down with its ZeroMQ
 * sockets open aborts the whole process, exit 134).
 */
export function closeOnSignals(output: Output, close: () => Promise<void>, halt?: () => Promise<void>): void {
  let closing = false
  let first = 0
  const stop = (signal: NodeJS.Signals): void => {
    // Ctrl-C reaches every process of the terminal's group; a wrapper (npx, npm exec) also
    // forwards it to us: the same keypress twice, within milliseconds. Not a second Ctrl-C.
    if (closing && Date.now() - first < SAME_SIGNAL_MS) return
    if (closing) {
      if (halt === undefined) process.exit(EXIT.INTERRUPTED)
      void halt().finally(() => process.exit(EXIT.INTERRUPTED))
      return
    }
    closing = true
    first = Date.now()
    output.event({ type: 'closing', signal }, `${signal}: closing (again to quit at once)`)
    close().then(
      () => process.exit(EXIT.OK),
      (error: unknown) => fail(error),
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

/** Commander parser of `--bwlimit`: octets per second (parseRate). */
export function rate(value: string): number {
  try {
    return parseRate(value)
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message)
  }
}

/** Commander parser of `--rescan`: a positive number of seconds (fractions allowed), as `server/rescan`. */
export function seconds(value: string): number {
  const parsed = Number(value)
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive number of seconds')
  return parsed
}

/** What `--help` says of the rescans and the inotify limits (server and track). */
export const RESCAN_HELP = `
Changes are watched with one inotify watch per folder; events are hints and a rescan is the
truth: each folder is rescanned (from size, mtime and inode, no content read) every --rescan
seconds (default 3600), after a burst of events that may have
overflowed the kernel's queue (fs.inotify.max_queued_events), and when a folder is replaced
or the published folder goes. Out of inotify watches or instances, fmq warns once, naming the
sysctl to raise (fs.inotify.max_user_watches, fs.inotify.max_user_instances), and rescans the
folders it cannot watch every 10 s: nothing is missed, changes there just come later.
Where inotify sees nothing (NFS, SMB, FUSE), --poll SECONDS rescans instead of watching.`

/** Runs the hook once per mark; marks that come while it runs make it run once more after. */
export function hook(command: string, target: string, output: Output): () => void {
  let running = false
  let again = false
  const run = (): void => {
    if (running) {
      again = true
      return
    }
    running = true
    // The hook shares our stdout: what we printed before it ran comes first.
    output.flush()
    const child = spawn(command, { shell: true, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, FMQ_TARGET: target } })
    child.on('error', (error) => output.warn(`--on-synced: ${error.message}`))
    child.on('exit', (code) => {
      if (code !== 0) output.warn(`--on-synced command exited with ${code}`)
      running = false
      if (again) {
        again = false
        run()
      }
    })
  }
  return run
}

/** The first line of a password file. */
export async function readPasswordFile(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read password file ${path}: ${fsErrorWords(error.code) ?? error.message}`, EXIT.USAGE)
  })
  const line = text.split(/\r?\n/, 1)[0] ?? ''
  if (line === '') throw new CliError(`password file ${path} is empty (the password is its first line)`, EXIT.USAGE)
  return line
}
