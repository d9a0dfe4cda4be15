/**
 * Section "mirror": each tool mirrors datasets A, B and C into an empty destination. Rounds
 * alternate (every tool on every dataset each round, the tool order rotated), every
 * destination is verified, and ratios are taken per round before their median.
 *
 * @packageDocumentation
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'

import { bigFile, dataset, type Dataset, mediumFiles, smallFiles } from './datasets.js'
import { type Context, fixed, median, mib, MiB, peakRss, plural, rate, ratio, rotate, type SectionResult, table, TOOLS } from './stats.js'
import { mirrorWith, type RunResult } from './tools.js'
import { checked } from './verify.js'

interface Round extends RunResult {
  round: number
  verified: boolean
}

export async function mirror(ctx: Context): Promise<SectionResult> {
  const tools = TOOLS.filter((tool) => ctx.tools.has(tool) && (tool !== 'rsync' || ctx.rsync !== undefined))
  const datasets: Dataset[] = []
  for (const spec of [bigFile(ctx.scale), mediumFiles(ctx.scale), smallFiles(ctx.scale)]) {
    if (ctx.datasets !== undefined && !ctx.datasets.includes(spec.name)) continue
    datasets.push(await dataset(ctx.dir, spec, ctx.scale, ctx.log))
  }
  const runs = new Map<string, Record<string, Round[]>>(datasets.map((data) => [data.name, {}]))
  const dst = join(ctx.work, 'dst')
  let failures = 0
  for (let round = 0; round < ctx.rounds; round++) {
    for (const data of datasets) {
      for (const tool of rotate(tools, round)) {
        await rm(dst, { recursive: true, force: true })
        const { verified, ...result } = await checked(tool, dst, data, () => mirrorWith(ctx, tool, data.root, dst))
        if (!verified) failures++
        const byTool = runs.get(data.name)!
        ;(byTool[tool] ??= []).push({ round, verified, ...result })
        const status = verified ? 'ok' : `FAILED (${result.error})`
        const rss = Object.entries(result.rss)
          .map(([name, kib]) => `${name} ${mib(kib)} MiB`)
          .join(', ')
        ctx.log(`mirror round ${round + 1}/${ctx.rounds} ${data.name} ${tool}: ${fixed(result.ms / 1000, 3)} s, RSS ${rss || 'n/a'}, ${status}`)
      }
    }
  }
  await rm(dst, { recursive: true, force: true })

  const rows: string[][] = []
  for (const data of datasets) {
    const byTool = runs.get(data.name)!
    for (const tool of TOOLS) {
      const all = byTool[tool]
      if (all === undefined) {
        if (tool === 'rsync' && ctx.tools.has('rsync')) rows.push([data.name, tool, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'skipped (no rsync)'])
        continue
      }
      const good = all.filter((run) => run.verified)
      const times = good.map((run) => run.ms / 1000)
      const med = median(times)
      const verified = good.length === all.length ? `${good.length}/${all.length}` : `FAILED ${all.length - good.length}/${all.length}`
      rows.push([
        data.name,
        tool,
        fixed(med, 3),
        fixed(Math.min(...times), 3),
        fixed(Math.max(...times), 3),
        fixed(data.bytes / MiB / med, 1),
        rate(data.files.length / med),
        peakRss(all),
        fixed(ratio(byTool, tool, 'rsync'), 2),
        fixed(ratio(byTool, tool, 'cp'), 2),
        verified,
      ])
    }
  }
  const legend = datasets.map((data) => `${data.name}: ${plural(data.files.length, 'file')}, ${(data.bytes / MiB).toFixed(1)} MiB`).join('; ')
  const markdown = [
    `## Mirror (initial copy into an empty destination), ${plural(ctx.rounds, 'round')}`,
    '',
    `Datasets — ${legend}. Ratios are the median of per-round ratios (lower is faster).`,
    '',
    table(
      ['dataset', 'tool', 'median s', 'min s', 'max s', 'MiB/s', 'files/s', 'peak RSS (MiB, per process)', '× rsync', '× cp', 'verified'],
      rows,
    ),
  ].join('\n')
  const raw = {
    datasets: datasets.map((data) => ({ name: data.name, files: data.files.length, bytes: data.bytes })),
    runs: Object.fromEntries(runs),
  }
  return { name: 'mirror', markdown, raw, failures }
}
