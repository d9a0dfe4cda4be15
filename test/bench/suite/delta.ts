/**
 * Section "delta" (issue 19): a large file the destination holds an older version of, changed
 * as logs, databases and edited files change, then synced again. Per change, each round:
 * `fmq client --resync --mirror --once` against an `fmq server` over the new version (its index
 * built beforehand, so the timing is the transfer's), into a copy of what an earlier `fmq
 * client` run left from the old version (the file and the client's state: its manifest knows
 * the file, as on the second day), and `rsync -a --stats` to a daemon on
 * 127.0.0.1 (rsync's delta mode: the destination is remote). Both destinations start from the
 * old version (same mtime), both are verified by SHA-1, and each tool says what went on the
 * wire: fmq the `sent` octets of its `delivered` events, rsync its "Total bytes sent".
 *
 * Before each timed run the file system is synced: the setup wrote the new version and a
 * copy of the old one (512 MiB at scale 1) just before, and without it their writeback fell on
 * whichever tool ran next (rsync's own times then ranged from 0.39 to 1.15 s in one run).
 *
 * Changes (the file is 256 MiB at scale 1, 1 MiB at least): 4 KiB overwritten in the middle
 * (same size: rsync's quick check and ours see only a new mtime), 8 MiB appended, 100 octets
 * inserted at the start, and a whole new file (no older version: as fast as before?). Last,
 * live: a file appended to 20 times while `fmq client` stays subscribed; what the appends cost
 * on the wire against the final size.
 *
 * @packageDocumentation
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFile, cp, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { content, FIXED_MTIME } from './datasets.js'
import { Proc, rssFile } from './proc.js'
import { RsyncDaemon } from './rsyncd.js'
import { measureStartup } from './startup.js'
import { type Context, fixed, median, MiB, octets, rotate, type SectionResult, table } from './stats.js'
import { fmqClient, startFmqServer } from './tools.js'

const CHANGES = ['overwrite', 'append', 'insert', 'new'] as const
type Change = (typeof CHANGES)[number]
const WHAT: Record<Change, string> = {
  overwrite: '4 KiB overwritten in the middle',
  append: '8 MiB appended',
  insert: '100 octets inserted at the start',
  new: 'a whole new file (nothing held)',
}
const TOOLS = ['fmq-tcp', 'rsync-daemon'] as const
type DeltaTool = (typeof TOOLS)[number]

interface Run {
  round: number
  ms: number
  /** Octets on the wire, as the tool says. */
  wire: number | undefined
  verified: boolean
  error?: string
}

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')

/** The new version of `old` for a change; an append of `tail` octets. */
function changed(change: Change, old: Buffer, tail: number): Buffer {
  switch (change) {
    case 'overwrite': {
      const data = Buffer.from(old)
      content('delta/patch', 4096).copy(data, Math.floor(old.length / 2))
      return data
    }
    case 'append':
      return Buffer.concat([old, content('delta/tail', tail)])
    case 'insert':
      return Buffer.concat([content('delta/head', 100), old])
    case 'new':
      return content('delta/new', old.length)
  }
}

/** Octets rsync's --stats says it sent. */
function rsyncSent(proc: Proc): number | undefined {
  for (const line of proc.lines) {
    const match = /^Total bytes sent:\s*([\d,]+)/.exec(String(line.text ?? ''))
    if (match) return Number(match[1]!.replace(/,/g, ''))
  }
  return undefined
}

/** Octets of content fmq's delivered events say travelled. */
const fmqSent = (proc: Proc): number => proc.lines.filter((line) => line.type === 'delivered').reduce((sum, line) => sum + Number(line.sent ?? line.size ?? 0), 0)

async function place(path: string, data: Buffer, mtime: Date): Promise<void> {
  await writeFile(path, data)
  await utimes(path, mtime, mtime)
}

export async function delta(ctx: Context): Promise<SectionResult> {
  // 256 MiB and 8 MiB appended at scale 1; at least 1 MiB and 256 KiB (the smoke test's scale).
  const size = Math.max(MiB, Math.round((256 * MiB * ctx.scale) / MiB) * MiB)
  const tail = Math.max(256 * 1024, Math.round((8 * MiB * ctx.scale) / 65536) * 65536)
  WHAT.append = `${octets(tail)} appended`
  const old = content('delta/old', size)
  const newMtime = new Date(FIXED_MTIME.getTime() + 86_400_000)
  const root = join(ctx.work, 'delta')
  const daemon = ctx.tools.has('rsync') && ctx.rsync !== undefined ? await RsyncDaemon.start(ctx.work, [{ name: 'bench', path: root, readOnly: false }]) : undefined
  const tools = TOOLS.filter((tool) => (tool === 'rsync-daemon' ? daemon !== undefined : ctx.tools.has('fmq-tcp')))
  const runs: Record<Change, Partial<Record<DeltaTool, Run[]>>> = { overwrite: {}, append: {}, insert: {}, new: {} }
  let failures = 0
  // fmq's destination as a client that mirrored the old version leaves it: the file and the
  // client's state (its manifest knows the file, as on the second day); copied for each round.
  const template = tools.includes('fmq-tcp') ? await mirrorOld(ctx, root, old) : undefined
  try {
    for (const change of CHANGES) {
      const fresh = changed(change, old, tail)
      const expected = sha1(fresh)
      const src = join(root, `${change}-src`)
      await rm(src, { recursive: true, force: true })
      await mkdir(src, { recursive: true })
      await place(join(src, 'big.bin'), fresh, newMtime)
      // The server's index holds the new version before it starts: the timing is the transfer's.
      const state = join(root, `${change}-state`)
      await rm(state, { recursive: true, force: true })
      await measureStartup(src, state)
      const server = tools.includes('fmq-tcp') ? await startFmqServer(ctx, src, state) : undefined
      try {
        for (let round = 0; round < ctx.rounds; round++) {
          for (const tool of rotate(tools, round)) {
            const dst = join(root, `${change}-${tool}`)
            await rm(dst, { recursive: true, force: true })
            if (change !== 'new' && tool === 'fmq-tcp') await cp(template!, dst, { recursive: true, preserveTimestamps: true })
            await mkdir(dst, { recursive: true })
            if (change !== 'new' && tool !== 'fmq-tcp') await place(join(dst, 'big.bin'), old, FIXED_MTIME)
            // What the setup wrote goes to disk now, not during the run.
            spawnSync('sync')
            let proc: Proc
            if (tool === 'fmq-tcp') proc = fmqClient(ctx, server!.endpoint, dst, ['--mirror'], true)
            else proc = new Proc('rsync', ['-a', '--stats', `${src}/`, daemon!.url('bench', `${change}-${tool}/`)], { rssFile: rssFile(ctx.work, 'rsync') })
            const exit = await proc.exited
            const got = await readFile(join(dst, 'big.bin')).catch(() => Buffer.alloc(0))
            const verified = exit.code === 0 && sha1(got) === expected
            const run: Run = {
              round,
              ms: exit.ms,
              wire: tool === 'fmq-tcp' ? fmqSent(proc) : rsyncSent(proc),
              verified,
              ...(verified ? {} : { error: exit.code === 0 ? 'the destination is not the new version' : `exited ${exit.code ?? exit.signal}: ${proc.tail(3)}` }),
            }
            if (!verified) failures++
            ;(runs[change][tool] ??= []).push(run)
            ctx.log(`delta ${change} round ${round + 1}/${ctx.rounds} ${tool}: ${fixed(run.ms / 1000, 3)} s, ${octets(run.wire)} on the wire, ${verified ? 'ok' : `FAILED (${run.error})`}`)
          }
        }
      } finally {
        await server?.proc.stop('SIGTERM')
      }
    }
  } finally {
    await daemon?.stop()
  }
  const appends = tools.includes('fmq-tcp') ? await liveAppends(ctx, root, size) : undefined
  if (appends !== undefined && !appends.verified) failures++

  const rows = CHANGES.map((change) => {
    const cell = (tool: DeltaTool): string => {
      const list = runs[change][tool] ?? []
      const ok = list.filter((run) => run.verified)
      if (list.length === 0) return 'n/a'
      if (ok.length === 0) return 'FAILED'
      return `${fixed(median(ok.map((run) => run.ms)) / 1000, 3)} s, ${octets(median(ok.map((run) => run.wire ?? Number.NaN)))}`
    }
    const ratios: number[] = []
    for (const run of runs[change]['fmq-tcp'] ?? []) {
      const other = runs[change]['rsync-daemon']?.find((r) => r.round === run.round)
      if (run.verified && other?.verified) ratios.push(run.ms / other.ms)
    }
    return [WHAT[change], cell('fmq-tcp'), cell('rsync-daemon'), ratios.length === 0 ? 'n/a' : `${fixed(median(ratios), 2)}×`]
  })
  const markdown = [
    `## Delta transfer (${octets(size)} file, ${ctx.rounds} rounds; median time and octets on the wire)`,
    '',
    table(['change', 'fmq client (tcp, server up)', 'rsync -a to the daemon', 'fmq / rsync'], rows),
    '',
    appends === undefined
      ? ''
      : `Live appends: a ${octets(appends.initial)} file appended to ${appends.count} times (${octets(appends.step)} each) while subscribed: ${octets(appends.sent)} on the wire for a final ${octets(appends.final)} (${fixed(appends.sent / appends.final, 2)}× the final size; sent whole each time it would be ${octets(appends.whole)}), ${appends.verified ? 'verified' : 'FAILED'}.`,
  ].join('\n')
  return { name: 'delta', markdown, raw: { size, runs, appends }, failures }
}

/** A destination made by `fmq client` from a server publishing the old version (untimed). */
async function mirrorOld(ctx: Context, root: string, old: Buffer): Promise<string> {
  const src = join(root, 'old-src')
  const state = join(root, 'old-state')
  const template = join(root, 'old-template')
  for (const path of [src, state, template]) await rm(path, { recursive: true, force: true })
  await mkdir(src, { recursive: true })
  await place(join(src, 'big.bin'), old, FIXED_MTIME)
  await measureStartup(src, state)
  const server = await startFmqServer(ctx, src, state)
  try {
    const exit = await fmqClient(ctx, server.endpoint, template, ['--mirror']).exited
    if (exit.code !== 0 || sha1(await readFile(join(template, 'big.bin'))) !== sha1(old)) throw new Error('the first mirror of the old version failed')
  } finally {
    await server.proc.stop('SIGTERM')
  }
  return template
}

interface Appends {
  initial: number
  step: number
  count: number
  final: number
  sent: number
  whole: number
  verified: boolean
}

/** A file appended to 20 times while `fmq client` stays subscribed: what travels, against the final size. */
async function liveAppends(ctx: Context, root: string, size: number): Promise<Appends> {
  const count = 20
  const initial = Math.max(512 * 1024, size / 16)
  const step = Math.max(256 * 1024, size / 64)
  const src = join(root, 'appends-src')
  const dst = join(root, 'appends-fmq')
  const state = join(root, 'appends-state')
  for (const path of [src, dst, state]) await rm(path, { recursive: true, force: true })
  await mkdir(src, { recursive: true })
  await mkdir(dst, { recursive: true })
  let data = content('delta/log', initial)
  await writeFile(join(src, 'log.bin'), data)
  const server = await startFmqServer(ctx, src, state)
  const client = new Proc(ctx.cli, ['client', '-C', server.endpoint, '-s', '/', '-i', dst, '--resync', '--json'], { rssFile: rssFile(ctx.work, 'fmq-client') })
  let whole = initial
  try {
    const deliveredOf = (length: number): Promise<unknown> =>
      client.waitFor((line) => line.type === 'delivered' && line.size === length, 120_000, `the version of ${length} octets`)
    await deliveredOf(initial)
    for (let i = 0; i < count; i++) {
      const tail = content(`delta/log-${i}`, step)
      await appendFile(join(src, 'log.bin'), tail)
      data = Buffer.concat([data, tail])
      whole += data.length
      await deliveredOf(data.length)
    }
  } finally {
    await client.stop('SIGTERM')
    await server.proc.stop('SIGTERM')
  }
  const sent = fmqSent(client)
  const got = await readFile(join(dst, 'log.bin')).catch(() => Buffer.alloc(0))
  const verified = sha1(got) === sha1(data)
  ctx.log(`delta live appends: ${octets(sent)} on the wire for a final ${octets(data.length)}, ${verified ? 'ok' : 'FAILED'}`)
  return { initial, step, count, final: data.length, sent, whole, verified }
}
