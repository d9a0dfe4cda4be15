/**
 * One mirror of a source folder into an empty destination, by each tool: fmq track (one
 * process), fmq server + fmq client over tcp (two processes, timed from the server's spawn:
 * its indexing counts), cp -a, and rsync pushing to a daemon on 127.0.0.1.
 *
 * @packageDocumentation
 */
import { rm } from 'node:fs/promises'
import { join, relative } from 'node:path'

import { type Exit, Proc, rssFile } from './proc.js'
import { RsyncDaemon } from './rsyncd.js'
import type { Context, Tool } from './stats.js'

/** One timed run. */
export interface RunResult {
  ms: number
  /** Peak RSS in KiB per process of the run (undefined when not measured). */
  rss: Record<string, number | undefined>
  /** Why the run failed, when it did (exit status, timeout, verification). */
  error?: string
}

/** The limit for any one run: generous, so only a hang trips it. */
const RUN_TIMEOUT_MS = 30 * 60_000

function exitError(what: string, exit: Exit, proc: Proc): string | undefined {
  if (exit.code === 0) return undefined
  return `${what} exited ${exit.code ?? exit.signal}: ${proc.tail(3)}`
}

async function guarded(proc: Proc, what: string): Promise<Exit> {
  const timer = setTimeout(() => void proc.stop('SIGKILL'), RUN_TIMEOUT_MS)
  try {
    return await proc.exited
  } catch (error) {
    throw new Error(`${what} did not start: ${(error as Error).message}`)
  } finally {
    clearTimeout(timer)
  }
}

/** An fmq server over `src` on a kernel-picked port, state in `state`; resolves once listening. */
export async function startFmqServer(ctx: Context, src: string, state: string): Promise<{ proc: Proc; endpoint: string }> {
  const proc = new Proc(ctx.cli, ['server', '-p', `${src}=/`, '-b', 'tcp://127.0.0.1:0', '--state', state, '--json'], {
    rssFile: rssFile(ctx.work, 'fmq-server'),
  })
  try {
    const line = await proc.waitFor((l) => l.type === 'listening', 120_000, 'the server to listen')
    return { proc, endpoint: line.endpoint as string }
  } catch (error) {
    await proc.stop('SIGKILL')
    throw error
  }
}

/**
 * fmq's flags for a timed run: `--json -q` prints only error events (one per line, for the
 * report), not an event per file: rsync and cp run quiet too, and the bench process would
 * otherwise spend a core parsing tens of thousands of lines while fmq runs.
 */
const QUIET = ['--json', '-q'] as const

/**
 * `fmq client --once` into `inbox`; with `events`, `--json` without `-q` (a line per file
 * delivered or deleted: the rerun section counts them, and a rerun should print none).
 */
export function fmqClient(ctx: Context, endpoint: string, inbox: string, extra: readonly string[] = [], events = false): Proc {
  return new Proc(ctx.cli, ['client', '-C', endpoint, '-s', '/', '-i', inbox, '--resync', '--once', ...(events ? ['--json'] : QUIET), ...extra], {
    rssFile: rssFile(ctx.work, 'fmq-client'),
  })
}

/** Mirrors `src` into `dst` (which must not exist) with `tool`. */
export async function mirrorWith(ctx: Context, tool: Tool, src: string, dst: string): Promise<RunResult> {
  switch (tool) {
    case 'fmq-track': {
      const proc = new Proc(ctx.cli, ['track', src, dst, '--once', ...QUIET], { rssFile: rssFile(ctx.work, 'fmq-track') })
      const exit = await guarded(proc, 'fmq track')
      return { ms: exit.ms, rss: { track: exit.rssKiB }, error: exitError('fmq track', exit, proc) }
    }
    case 'fmq-tcp': {
      const state = join(ctx.work, 'server-state')
      await rm(state, { recursive: true, force: true })
      const server = await startFmqServer(ctx, src, state)
      try {
        const client = fmqClient(ctx, server.endpoint, dst)
        const exit = await guarded(client, 'fmq client')
        const ms = client.started + exit.ms - server.proc.started
        const serverExit = await server.proc.stop('SIGTERM')
        const error = exitError('fmq client', exit, client) ?? exitError('fmq server', serverExit, server.proc)
        return { ms, rss: { server: serverExit.rssKiB, client: exit.rssKiB }, error }
      } finally {
        if (server.proc.running) await server.proc.stop('SIGKILL')
        await rm(state, { recursive: true, force: true })
      }
    }
    case 'cp': {
      const proc = new Proc('cp', ['-a', src, dst], { rssFile: rssFile(ctx.work, 'cp') })
      const exit = await guarded(proc, 'cp')
      return { ms: exit.ms, rss: { cp: exit.rssKiB }, error: exitError('cp', exit, proc) }
    }
    case 'rsync': {
      // The module is the work folder; the destination is named relative to it.
      const daemon = await RsyncDaemon.start(ctx.work, [{ name: 'bench', path: ctx.work, readOnly: false }])
      try {
        const target = relative(ctx.work, dst)
        if (target.startsWith('..')) throw new Error(`rsync destination ${dst} is outside ${ctx.work}`)
        const proc = new Proc('rsync', ['-a', `${src}/`, daemon.url('bench', `${target}/`)], { rssFile: rssFile(ctx.work, 'rsync') })
        const exit = await guarded(proc, 'rsync')
        const daemonRss = await daemon.stop()
        return { ms: exit.ms, rss: { client: exit.rssKiB, daemon: daemonRss }, error: exitError('rsync', exit, proc) }
      } finally {
        if (daemon.proc.running) await daemon.stop()
      }
    }
  }
}
