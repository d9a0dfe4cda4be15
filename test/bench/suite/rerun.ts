/**
 * Section "rerun": a second run over a destination that is already a finished mirror of
 * dataset R (100,000 small files at scale 1, some empty folders), as a cron job or a second
 * `fmq track --once` makes it. Nothing changed, so the work is all comparing.
 *
 * Each destination is made once, untimed; then every round reruns each tool over its own:
 * `fmq track --once SRC DST`; `fmq client --resync --mirror --once` against an `fmq server`
 * that runs over SRC for the whole section (its index built before it starts, so it has
 * finished indexing); `rsync -a --delete` locally and to a daemon on 127.0.0.1 (also up for
 * the whole section). Every rerun has a time limit: one that hangs is killed and reported
 * FAILED with the limit, and that tool's later rounds are not run. Every destination is
 * verified after every rerun. Last, one file of SRC changes and `fmq track --once` (and
 * rsync) run again: exactly that one file should be sent. The file is put back afterwards,
 * as the source is the cached dataset.
 *
 * fmq runs with `--json` (no `-q`) so its `delivered` events count the files sent; rsync
 * with `--stats` ("Number of regular files transferred").
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto'
import { rm, stat, utimes, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'

import { content, type Dataset, dataset, FIXED_MTIME, pool, rerunTree } from './datasets.js'
import { type Exit, Proc, rssFile } from './proc.js'
import { RsyncDaemon } from './rsyncd.js'
import { measureStartup } from './startup.js'
import { type Context, fixed, median, octets, peakRss, plural, ratio, rotate, type SectionResult, table, type Timed } from './stats.js'
import { fmqClient, startFmqServer } from './tools.js'
import { checked } from './verify.js'

const RERUN_TOOLS = ['fmq-track', 'fmq-tcp', 'rsync', 'rsync-daemon'] as const
type RerunTool = (typeof RERUN_TOOLS)[number]

const WHAT: Record<RerunTool, string> = {
  'fmq-track': '`fmq track --once`',
  'fmq-tcp': '`fmq client --resync --mirror --once` (server up)',
  rsync: '`rsync -a --delete` (local)',
  'rsync-daemon': '`rsync -a --delete` to the daemon',
}

/** A rerun's limit: 30 s and 5 ms a file, far above a healthy rerun (rsync: about 0.25 s per 1,000 files here), so only a hang trips it. */
const rerunLimit = (files: number): number => 30_000 + 5 * files
/** The untimed first mirror's limit. */
const setupLimit = (files: number): number => 120_000 + 10 * files

interface Run extends Timed {
  /** Files sent: fmq's `delivered` events, rsync's "regular files transferred". */
  sent?: number
  /** Content octets of the files fmq delivered (fmq only). */
  sentBytes?: number
  /** How many of the dataset's empty folders the destination has. */
  emptyDirs?: number
  timedOut?: boolean
  /** Not run: the tool hung in an earlier round, or its first mirror failed. */
  skipped?: boolean
  error?: string
}

/** Waits for `proc`, SIGKILLing it after `ms`. */
async function limited(proc: Proc, ms: number): Promise<{ exit: Exit; timedOut: boolean }> {
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    void proc.stop('SIGKILL')
  }, ms)
  try {
    const exit = await proc.exited
    return { exit, timedOut }
  } finally {
    clearTimeout(timer)
  }
}

/** What a finished process says it sent. */
function sentBy(proc: Proc): { sent?: number; sentBytes?: number } {
  const delivered = proc.lines.filter((line) => line.type === 'delivered')
  if (proc.command !== 'rsync') return { sent: delivered.length, sentBytes: delivered.reduce((sum, line) => sum + Number(line.size ?? 0), 0) }
  for (const line of proc.lines) {
    const match = /^Number of regular files transferred:\s*([\d,]+)/.exec(String(line.text ?? ''))
    if (match) return { sent: Number(match[1]!.replace(/,/g, '')) }
  }
  return {}
}

/** Runs `proc` to its end or its limit: the time, RSS, what it sent and why it failed. */
async function finish(proc: Proc, what: string, ms: number, rssName: string): Promise<Omit<Run, 'round' | 'verified'>> {
  const { exit, timedOut } = await limited(proc, ms)
  const rss = { [rssName]: exit.rssKiB }
  const sent = sentBy(proc)
  if (timedOut) return { ms: exit.ms, rss, ...sent, timedOut, error: `${what} timed out after ${fixed(ms / 1000, 0)} s (killed; ${sent.sent ?? 'n/a'} files sent by then)` }
  const error = exit.code === 0 ? undefined : `${what} exited ${exit.code ?? exit.signal}: ${proc.tail(3)}`
  return { ms: exit.ms, rss, ...sent, ...(error === undefined ? {} : { error }) }
}

/** How many of `data`'s empty folders are folders under `root`. */
async function emptyDirsAt(root: string, data: Dataset): Promise<number> {
  const found = await pool(data.emptyDirs, 16, async (path) => (await stat(join(root, path)).catch(() => undefined))?.isDirectory() === true)
  return found.filter(Boolean).length
}

/** Where each tool's mirror lives, and the long-lived processes some reruns talk to. */
interface Setup {
  dst: Record<RerunTool, string>
  server?: { proc: Proc; endpoint: string }
  daemon?: RsyncDaemon
}

/** One run of `tool` over its destination, verified against `expected`; `limit` in ms. */
async function rerunWith(ctx: Context, setup: Setup, tool: RerunTool, src: string, limit: number, quiet = false): Promise<Omit<Run, 'round' | 'verified'>> {
  const dst = setup.dst[tool]
  const json = quiet ? ['--json', '-q'] : ['--json']
  switch (tool) {
    case 'fmq-track':
      return finish(new Proc(ctx.cli, ['track', src, dst, '--once', ...json], { rssFile: rssFile(ctx.work, 'fmq-track') }), 'fmq track', limit, 'track')
    case 'fmq-tcp': {
      if (setup.server === undefined) throw new Error('no fmq server')
      const client = quiet ? fmqClient(ctx, setup.server.endpoint, dst, ['--mirror']) : fmqClient(ctx, setup.server.endpoint, dst, ['--mirror'], true)
      return finish(client, 'fmq client', limit, 'client')
    }
    case 'rsync':
      return finish(new Proc('rsync', ['-a', '--delete', '--stats', `${src}/`, `${dst}/`], { rssFile: rssFile(ctx.work, 'rsync') }), 'rsync', limit, 'rsync')
    case 'rsync-daemon': {
      if (setup.daemon === undefined) throw new Error('no rsync daemon')
      const target = relative(ctx.work, dst)
      const proc = new Proc('rsync', ['-a', '--delete', '--stats', `${src}/`, setup.daemon.url('bench', `${target}/`)], { rssFile: rssFile(ctx.work, 'rsync') })
      return finish(proc, 'rsync', limit, 'client')
    }
  }
}

/** A run, then its verdict: the destination verified, nothing written into the source. */
async function measured(ctx: Context, setup: Setup, tool: RerunTool, data: Dataset, round: number, limit: number): Promise<Run> {
  const dst = setup.dst[tool]
  const run: Run = { round, ...(await checked(tool, dst, data, () => rerunWith(ctx, setup, tool, data.root, limit))) }
  if (run.verified) run.emptyDirs = await emptyDirsAt(dst, data)
  return run
}

/** The changed-file check: one file of SRC rewritten, one rerun per tool, then the file put back. */
interface Changed {
  path: string
  /** Octets added to the file. */
  grew: number
  runs: Partial<Record<RerunTool, Run>>
}

async function changeOne(ctx: Context, setup: Setup, tools: readonly RerunTool[], data: Dataset, limit: number): Promise<Changed> {
  const file = data.files[Math.floor(data.files.length / 2)]!
  const path = join(data.root, file.path)
  const original = content(file.path, file.size)
  // Longer than before: were the bench killed before the file is put back, the cache's size check would catch it.
  const changed = Buffer.concat([original, Buffer.from('changed by the rerun section\n')])
  const expected: Dataset = {
    ...data,
    files: data.files.map((entry) => (entry === file ? { path: file.path, size: changed.length, sha1: createHash('sha1').update(changed).digest('hex') } : entry)),
  }
  const result: Changed = { path: file.path, grew: changed.length - original.length, runs: {} }
  try {
    await writeFile(path, changed)
    for (const tool of tools) {
      const run = await measured(ctx, setup, tool, expected, 0, limit)
      result.runs[tool] = run
      const sent = run.sent === 1 ? '1 file sent' : `${run.sent ?? 'n/a'} files sent, 1 expected`
      ctx.log(`rerun, one file changed, ${tool}: ${fixed(run.ms / 1000, 3)} s, ${sent}, ${run.verified ? 'ok' : `FAILED (${run.error})`}`)
    }
  } finally {
    await writeFile(path, original)
    await utimes(path, FIXED_MTIME, FIXED_MTIME)
  }
  return result
}

export async function rerun(ctx: Context): Promise<SectionResult> {
  const data = await dataset(ctx.dir, rerunTree(ctx.scale), ctx.scale, ctx.log)
  const tools = RERUN_TOOLS.filter((tool) =>
    tool.startsWith('rsync') ? ctx.tools.has('rsync') && ctx.rsync !== undefined : ctx.tools.has(tool as 'fmq-track' | 'fmq-tcp'),
  )
  const limit = rerunLimit(data.files.length)
  const folder = join(ctx.work, 'rerun')
  const state = join(ctx.work, 'rerun-server-state')
  const setup: Setup = {
    dst: { 'fmq-track': join(folder, 'track'), 'fmq-tcp': join(folder, 'inbox'), rsync: join(folder, 'rsync'), 'rsync-daemon': join(folder, 'rsyncd') },
  }
  const runs: Partial<Record<RerunTool, Run[]>> = {}
  let failures = 0
  /** Why a tool is out: its first mirror failed, or a rerun hung. */
  const out = new Map<RerunTool, string>()
  /** The tools whose first mirror failed: no destination to rerun over. */
  const unmirrored = new Set<RerunTool>()
  const fail = (tool: RerunTool, reason: string): void => {
    out.set(tool, `first mirror failed: ${reason}`)
    unmirrored.add(tool)
    failures++
  }
  /** Peak RSS of the processes up for the whole section (first mirror included). */
  const longLived: Partial<Record<RerunTool, Record<string, number | undefined>>> = {}
  let changed: Changed | undefined
  try {
    // The first mirrors, untimed; the server's index is built in this process first, so the
    // `fmq server` started over it has nothing left to index.
    if (tools.includes('fmq-tcp')) {
      try {
        await measureStartup(data.root, state)
        setup.server = await startFmqServer(ctx, data.root, state)
      } catch (error) {
        fail('fmq-tcp', `the server did not start: ${(error as Error).message}`)
      }
    }
    if (tools.includes('rsync-daemon')) {
      try {
        setup.daemon = await RsyncDaemon.start(ctx.work, [{ name: 'bench', path: ctx.work, readOnly: false }])
      } catch (error) {
        fail('rsync-daemon', (error as Error).message)
      }
    }
    for (const tool of tools.filter((t) => !out.has(t))) {
      await rm(setup.dst[tool], { recursive: true, force: true })
      const started = performance.now()
      const first = await checked(tool, setup.dst[tool], data, () => rerunWith(ctx, setup, tool, data.root, setupLimit(data.files.length), true))
      const error = first.verified ? undefined : first.error
      if (error !== undefined) fail(tool, error)
      ctx.log(`rerun: first mirror by ${tool} (untimed) in ${fixed((performance.now() - started) / 1000, 1)} s, ${error === undefined ? 'ok' : `FAILED (${error})`}`)
    }

    for (let round = 0; round < ctx.rounds; round++) {
      for (const tool of rotate(tools, round)) {
        const list = (runs[tool] ??= [])
        const reason = out.get(tool)
        if (reason !== undefined) {
          list.push({ round, ms: Number.NaN, rss: {}, verified: false, skipped: true, error: `not run: ${reason}` })
          continue
        }
        const run = await measured(ctx, setup, tool, data, round, limit)
        list.push(run)
        if (!run.verified) failures++
        if (run.timedOut) out.set(tool, `timed out in round ${round + 1}`)
        const rss = Object.entries(run.rss).map(([name, kib]) => `${name} ${kib === undefined ? 'n/a' : Math.round(kib / 1024)} MiB`)
        ctx.log(
          `rerun round ${round + 1}/${ctx.rounds} ${tool}: ${fixed(run.ms / 1000, 3)} s, ${run.sent ?? 'n/a'} files sent, RSS ${rss.join(', ') || 'n/a'}, ${run.verified ? 'ok' : `FAILED (${run.error})`}`,
        )
      }
    }

    // Stopped before SRC changes, so neither sees the change.
    if (setup.server !== undefined) longLived['fmq-tcp'] = { 'server (section)': (await setup.server.proc.stop('SIGTERM')).rssKiB }
    if (setup.daemon !== undefined) longLived['rsync-daemon'] = { 'daemon (section)': await setup.daemon.stop() }
    const changers = tools.filter((tool): tool is 'fmq-track' | 'rsync' => (tool === 'fmq-track' || tool === 'rsync') && !unmirrored.has(tool))
    if (changers.length > 0) {
      changed = await changeOne(ctx, setup, changers, data, limit)
      for (const run of Object.values(changed.runs)) if (!run.verified || run.sent !== 1) failures++
    }
  } catch (error) {
    failures++
    ctx.log(`rerun FAILED: ${(error as Error).stack ?? String(error)}`)
  } finally {
    if (setup.server?.proc.running) await setup.server.proc.stop('SIGKILL')
    if (setup.daemon?.proc.running) await setup.daemon.stop()
    await rm(folder, { recursive: true, force: true })
    await rm(state, { recursive: true, force: true })
  }

  const seconds = (list: readonly Run[]): number[] => list.filter((run) => run.verified).map((run) => run.ms / 1000)
  const sentColumn = (list: readonly Run[]): string => {
    const counts = [...new Set(list.filter((run) => run.sent !== undefined && !run.timedOut).map((run) => run.sent!))].sort((a, b) => a - b)
    return counts.length === 0 ? 'n/a' : counts.join(', ')
  }
  const verdict = (list: readonly Run[]): string => {
    const good = list.filter((run) => run.verified).length
    if (good === list.length && list.length > 0) return `${good}/${list.length}`
    const failed = list.find((run) => !run.verified && !run.skipped) ?? list.find((run) => !run.verified)
    const skipped = list.filter((run) => run.skipped).length
    return `FAILED ${list.length - good}/${list.length}${skipped > 0 ? ` (${skipped} not run)` : ''}: ${failed?.error ?? 'n/a'}`
  }
  const rows = tools.map((tool) => {
    const list = runs[tool] ?? []
    const times = seconds(list)
    const empty = list.find((run) => run.emptyDirs !== undefined)?.emptyDirs
    return [
      tool,
      WHAT[tool],
      fixed(median(times), 3),
      fixed(times.length === 0 ? undefined : Math.min(...times), 3),
      fixed(times.length === 0 ? undefined : Math.max(...times), 3),
      [peakRss(list), ...(longLived[tool] ? [peakRss([{ rss: longLived[tool] }])] : [])].filter((cell) => cell !== 'n/a').join(' / ') || 'n/a',
      sentColumn(list),
      empty === undefined ? 'n/a' : `${empty}/${data.emptyDirs.length}`,
      fixed(ratio(runs, tool, 'rsync'), 2),
      fixed(ratio(runs, tool, 'rsync-daemon'), 2),
      verdict(list),
    ]
  })
  const changedRows = Object.entries(changed?.runs ?? {}).map(([tool, run]) => [
    tool,
    run.timedOut ? `timed out (${fixed(limit / 1000, 0)} s)` : fixed(run.ms / 1000, 3),
    run.timedOut ? `${run.sent ?? 'n/a'} when killed` : `${run.sent ?? 'n/a'}`,
    octets(run.sentBytes),
    run.sent === 1 ? 'yes' : 'NO',
    run.verified ? 'ok' : `FAILED: ${run.error}`,
  ])
  const markdown = [
    `## Rerun over a finished mirror (nothing changed), ${plural(ctx.rounds, 'round')}`,
    '',
    `Dataset R: ${plural(data.files.length, 'file')} of 200 to 4,295 octets (${octets(data.bytes)}), 100 per folder two levels deep, ${plural(data.emptyDirs.length, 'empty folder')}. ` +
      `Each tool's destination is mirrored once, untimed, then rerun each round; fmq-tcp's server runs over SRC for the whole section, started after its index was built. ` +
      `Each rerun is killed after ${fixed(limit / 1000, 0)} s (a hang: that tool's later rounds are not run). "files sent" is fmq's \`delivered\` events, rsync's "regular files transferred"; ` +
      `verification covers files (paths, sizes, SHA-1), the empty folders are counted apart. Ratios are the median of per-round ratios (lower is faster).`,
    '',
    table(
      ['tool', 'rerun', 'median s', 'min s', 'max s', 'peak RSS (MiB, per process)', 'files sent on rerun', 'empty folders at DST', '× rsync', '× rsync daemon', 'verified'],
      rows,
    ),
    '',
    `### One changed file, then a rerun`,
    '',
    changed === undefined
      ? 'Not run (no tool left to run it).'
      : [
          `\`${changed.path}\` rewritten (${plural(changed.grew, 'octet')} longer), then one rerun per tool; exactly one file should be sent. The file is put back afterwards.`,
          '',
          table(['tool', 'seconds', 'files delivered on rerun', 'content sent', 'only that file', 'verified'], changedRows),
        ].join('\n'),
  ].join('\n')
  const raw = {
    dataset: { files: data.files.length, bytes: data.bytes, emptyDirs: data.emptyDirs.length },
    limitMs: limit,
    runs,
    longLived,
    changed,
  }
  return { name: 'rerun', markdown, raw, failures }
}
