/**
 * Section "tree": server start-up over dataset T (100,000 small files at scale 1), cold
 * (no index: every file read and hashed) and warm (the index present, the tree unchanged),
 * each start in a fresh process (tree-child.ts), the index in a scratch state folder.
 *
 * @packageDocumentation
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { dataset, tree } from './datasets.js'
import { Proc, rssFile } from './proc.js'
import { type Context, fixed, median, MiB, octets, type SectionResult, table } from './stats.js'
import type { Startup } from './startup.js'

const WARM_STARTS = 3
const CHILD = fileURLToPath(new URL('./tree-child.ts', import.meta.url))

async function startOnce(ctx: Context, root: string, state: string): Promise<Startup & { peakRssKiB: number | undefined }> {
  const proc = new Proc(process.execPath, ['--import', 'tsx', CHILD, root, state], { rssFile: rssFile(ctx.work, 'tree'), cwd: ctx.repo })
  const exit = await proc.exited
  const text = proc.lines.map((line) => (line.type === 'text' ? String(line.text) : JSON.stringify(line)))
  if (exit.code !== 0) throw new Error(`the start-up exited ${exit.code ?? exit.signal}: ${proc.tail(3)} ${text.join(' ')}`)
  const last = text.at(-1) ?? ''
  const json = last.startsWith('{') ? (JSON.parse(last) as Partial<Startup>) : undefined
  if (json === undefined || typeof json.ms !== 'number') throw new Error(`no result from the start-up: ${text.join(' ')} ${proc.tail(3)}`)
  return { ...(json as Startup), peakRssKiB: exit.rssKiB }
}

export async function treeStartup(ctx: Context): Promise<SectionResult> {
  const data = await dataset(ctx.dir, tree(ctx.scale), ctx.scale, ctx.log)
  const state = join(ctx.work, 'tree-state')
  await rm(state, { recursive: true, force: true })
  const starts: (Startup & { peakRssKiB: number | undefined; kind: string })[] = []
  let failures = 0
  try {
    for (let i = 0; i <= WARM_STARTS; i++) {
      const kind = i === 0 ? 'cold' : `warm ${i}`
      const start = await startOnce(ctx, data.root, state)
      starts.push({ kind, ...start })
      if (start.published !== data.files.length) {
        failures++
        ctx.log(`tree ${kind}: published ${start.published} files, expected ${data.files.length} — FAILED`)
      }
      ctx.log(`tree ${kind}: ${fixed(start.ms / 1000, 3)} s, hashed ${start.bytesHashed} octets in ${start.filesHashed} files, read ${start.rchar ?? 'n/a'} octets`)
    }
  } catch (error) {
    failures++
    ctx.log(`tree FAILED: ${(error as Error).message}`)
  } finally {
    await rm(state, { recursive: true, force: true })
  }
  const row = (kind: string, list: typeof starts): string[] => {
    if (list.length === 0) return [kind, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a']
    const pick = (get: (start: (typeof starts)[number]) => number | undefined): number | undefined => {
      const values = list.map(get).filter((value): value is number => value !== undefined)
      return values.length === 0 ? undefined : median(values)
    }
    return [
      kind,
      fixed(pick((start) => start.ms / 1000), 3),
      octets(pick((start) => start.bytesHashed)),
      fixed(pick((start) => start.filesHashed), 0),
      octets(pick((start) => start.rchar)),
      fixed(pick((start) => (start.peakRssKiB === undefined ? undefined : start.peakRssKiB / 1024)), 0),
      String(list[0]!.published),
    ]
  }
  const markdown = [
    `## Server start-up over a tree (cold: first index; warm: index present, tree unchanged)`,
    '',
    `Dataset T: ${data.files.length} files, ${(data.bytes / MiB).toFixed(1)} MiB. Warm is the median of ${WARM_STARTS} starts; read is rchar (index database included).`,
    '',
    table(
      ['start', 'seconds', 'hashed', 'files hashed', 'read', 'peak RSS (MiB)', 'published'],
      [row('cold', starts.slice(0, 1)), row(`warm (median of ${Math.max(0, starts.length - 1)})`, starts.slice(1))],
    ),
  ].join('\n')
  return { name: 'tree', markdown, raw: { dataset: { files: data.files.length, bytes: data.bytes }, starts }, failures }
}
