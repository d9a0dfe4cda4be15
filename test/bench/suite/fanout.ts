/**
 * Section "fanout": one source, N receivers at once (`--clients`, default 10; `10,50` gives a
 * table for each). fmq: one `fmq server`, N `fmq client --once` started together, timed from the server's spawn (its indexing counts)
 * to the last client's exit. rsync: one daemon serving the source as a module (started
 * before timing: it has nothing to index), N concurrent pulls. Every inbox verified.
 *
 * @packageDocumentation
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'

import { type Dataset, dataset, mediumFiles } from './datasets.js'
import { type Exit, Proc, rssFile } from './proc.js'
import { RsyncDaemon } from './rsyncd.js'
import { type Context, fixed, median, mib, MiB, plural, type SectionResult, table } from './stats.js'
import { fmqClient, startFmqServer } from './tools.js'
import { verify } from './verify.js'

const DEFAULT_CLIENTS = [10]

interface FanoutRun {
  round: number
  /** Spawn of the server (fmq) or of the first pull (rsync) to the last exit. */
  totalMs: number
  slowestMs: number
  serverRssKiB: number | undefined
  maxClientRssKiB: number | undefined
  verified: boolean
  error?: string
}

const maxOf = (values: (number | undefined)[]): number | undefined => {
  const known = values.filter((value): value is number => value !== undefined)
  return known.length === 0 ? undefined : Math.max(...known)
}

async function settle(procs: Proc[]): Promise<Exit[]> {
  return Promise.all(procs.map((proc) => proc.exited))
}

export async function fanout(ctx: Context): Promise<SectionResult> {
  const data = await dataset(ctx.dir, mediumFiles(ctx.scale, 256, 'F'), ctx.scale, ctx.log)
  const parts: SectionResult[] = []
  for (const clients of ctx.clients ?? DEFAULT_CLIENTS) parts.push(await fanoutOf(ctx, data, clients))
  return {
    name: 'fanout',
    markdown: parts.map((part) => part.markdown).join('\n\n'),
    raw: { dataset: { files: data.files.length, bytes: data.bytes }, byClients: parts.map((part) => part.raw) },
    failures: parts.reduce((sum, part) => sum + part.failures, 0),
  }
}

async function fanoutOf(ctx: Context, data: Dataset, clients: number): Promise<SectionResult> {
  const fmq = ctx.tools.has('fmq-tcp') || ctx.tools.has('fmq-track')
  const tools = [...(fmq ? ['fmq'] : []), ...(ctx.tools.has('rsync') && ctx.rsync !== undefined ? ['rsync'] : [])]
  const rounds = Math.min(ctx.rounds, 3)
  const inboxes = Array.from({ length: clients }, (_, i) => join(ctx.work, `fanout-${i}`))
  const runs: Record<string, FanoutRun[]> = {}
  let failures = 0
  for (let round = 0; round < rounds; round++) {
    for (const tool of round % 2 === 0 ? tools : [...tools].reverse()) {
      for (const inbox of inboxes) await rm(inbox, { recursive: true, force: true })
      let run: FanoutRun
      try {
        run = tool === 'fmq' ? await fanoutFmq(ctx, data.root, inboxes, round) : await fanoutRsync(ctx, data.root, inboxes, round)
      } catch (error) {
        run = { round, totalMs: Number.NaN, slowestMs: Number.NaN, serverRssKiB: undefined, maxClientRssKiB: undefined, verified: false, error: (error as Error).message }
      }
      if (run.error === undefined) {
        const verdicts = await Promise.all(inboxes.map((inbox) => verify(inbox, data)))
        const bad = verdicts.findIndex((verdict) => !verdict.ok)
        run.verified = bad < 0
        if (bad >= 0) run.error = `inbox ${bad}: ${verdicts[bad]!.problems.join('; ')}`
      }
      if (!run.verified) failures++
      ;(runs[tool] ??= []).push(run)
      ctx.log(
        `fanout ${clients} round ${round + 1}/${rounds} ${tool}: total ${fixed(run.totalMs / 1000, 3)} s, slowest ${fixed(run.slowestMs / 1000, 3)} s, ${run.verified ? 'ok' : `FAILED (${run.error})`}`,
      )
    }
  }
  for (const inbox of inboxes) await rm(inbox, { recursive: true, force: true })

  const rows = tools.map((tool) => {
    const all = runs[tool] ?? []
    const good = all.filter((run) => run.verified)
    const ratios: number[] = []
    for (const run of good) {
      const other = runs.rsync?.find((r) => r.round === run.round && r.verified)
      if (other !== undefined) ratios.push(run.totalMs / other.totalMs)
    }
    const total = median(good.map((run) => run.totalMs / 1000))
    return [
      tool === 'fmq' ? `fmq server + ${clients} clients` : `rsync daemon + ${clients} pulls`,
      fixed(total, 3),
      fixed(median(good.map((run) => run.slowestMs / 1000)), 3),
      fixed((data.bytes * clients) / MiB / total, 1),
      mib(maxOf(all.map((run) => run.serverRssKiB))),
      mib(maxOf(all.map((run) => run.maxClientRssKiB))),
      ratios.length === 0 ? 'n/a' : fixed(median(ratios), 2),
      good.length === all.length ? `${good.length}/${all.length}` : `FAILED ${all.length - good.length}/${all.length}`,
    ]
  })
  const markdown = [
    `## Fan-out (one source, ${clients} receivers at once), ${plural(rounds, 'round')}`,
    '',
    `Dataset F: ${plural(data.files.length, 'file')}, ${(data.bytes / MiB).toFixed(1)} MiB; fmq timed from the server's spawn (indexing included), rsync from the first pull (the daemon started before).`,
    '',
    table(['setup', 'total s (median)', 'slowest receiver s', 'aggregate MiB/s', 'server peak RSS (MiB)', 'max client RSS (MiB)', '× rsync', 'verified'], rows),
  ].join('\n')
  return { name: 'fanout', markdown, raw: { dataset: { files: data.files.length, bytes: data.bytes }, clients: clients, runs }, failures }
}

async function fanoutFmq(ctx: Context, src: string, inboxes: string[], round: number): Promise<FanoutRun> {
  const state = join(ctx.work, 'fanout-state')
  await rm(state, { recursive: true, force: true })
  const server = await startFmqServer(ctx, src, state)
  try {
    const clients = inboxes.map((inbox) => fmqClient(ctx, server.endpoint, inbox))
    const exits = await settle(clients)
    const serverExit = await server.proc.stop('SIGTERM')
    const failed = exits.findIndex((exit) => exit.code !== 0)
    return {
      round,
      totalMs: Math.max(...clients.map((client, i) => client.started + exits[i]!.ms)) - server.proc.started,
      slowestMs: Math.max(...exits.map((exit) => exit.ms)),
      serverRssKiB: serverExit.rssKiB,
      maxClientRssKiB: maxOf(exits.map((exit) => exit.rssKiB)),
      verified: false,
      ...(failed >= 0 ? { error: `fmq client ${failed} exited ${exits[failed]!.code ?? exits[failed]!.signal}: ${clients[failed]!.tail(3)}` } : {}),
    }
  } finally {
    if (server.proc.running) await server.proc.stop('SIGKILL')
    await rm(state, { recursive: true, force: true })
  }
}

async function fanoutRsync(ctx: Context, src: string, inboxes: string[], round: number): Promise<FanoutRun> {
  const daemon = await RsyncDaemon.start(ctx.work, [{ name: 'src', path: src, readOnly: true }])
  try {
    const pulls = inboxes.map((inbox) => new Proc('rsync', ['-a', daemon.url('src'), `${inbox}/`], { rssFile: rssFile(ctx.work, 'rsync-pull') }))
    const exits = await settle(pulls)
    const daemonRss = await daemon.stop()
    const failed = exits.findIndex((exit) => exit.code !== 0)
    const first = Math.min(...pulls.map((pull) => pull.started))
    return {
      round,
      totalMs: Math.max(...pulls.map((pull, i) => pull.started + exits[i]!.ms)) - first,
      slowestMs: Math.max(...exits.map((exit) => exit.ms)),
      serverRssKiB: daemonRss,
      maxClientRssKiB: maxOf(exits.map((exit) => exit.rssKiB)),
      verified: false,
      ...(failed >= 0 ? { error: `rsync pull ${failed} exited ${exits[failed]!.code ?? exits[failed]!.signal}: ${pulls[failed]!.tail(3)}` } : {}),
    }
  } finally {
    if (daemon.proc.running) await daemon.stop()
  }
}
