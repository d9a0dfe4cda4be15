/**
 * Section "latency": `fmq track SRC DST` running; files of 4 KiB written into SRC one at a
 * time, each awaited at DST (woken by fs.watch on DST, with a poll as a safety net for a
 * missed event) before the next. Also counts any sighting of a file under its final name at
 * DST with content other than the source's: fmq renames complete files into place, so it
 * must stay 0.
 *
 * @packageDocumentation
 */
import { type FSWatcher, watch } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

import { content } from './datasets.js'
import { Proc, rssFile } from './proc.js'
import { type Context, fixed, mib, quantile, type SectionResult, table } from './stats.js'

const SIZE = 4096
const TIMEOUT_MS = 10_000
/** A poll now and then, in case fs.watch misses an event; the watch does the real waking. */
const SAFETY_POLL_MS = 50

/** Files written: 100 at scale ≥ 0.05, at least 20 below. */
export function latencyFiles(scale: number): number {
  return Math.max(20, Math.min(100, Math.round(2000 * scale)))
}

/** Waits until `path` holds `expected`; counts sightings of other content under that name. */
function arrival(watcher: EventTarget, path: string, expected: Buffer): Promise<{ ms: number; wrong: number } | { timeout: true; wrong: number }> {
  return new Promise((resolve) => {
    let wrong = 0
    let checking = false
    let again = false
    let finished = false
    const check = async (): Promise<void> => {
      if (finished) return
      if (checking) {
        again = true
        return
      }
      checking = true
      try {
        do {
          again = false
          let data: Buffer | undefined
          try {
            data = await readFile(path)
          } catch {
            data = undefined // not there yet
          }
          if (data !== undefined) {
            if (data.equals(expected)) return finish({ ms: performance.now(), wrong })
            wrong++
          }
        } while (again && !finished)
      } finally {
        checking = false
      }
    }
    const wake = (): void => void check()
    const poll = setInterval(wake, SAFETY_POLL_MS)
    const timer = setTimeout(() => finish({ timeout: true, wrong }), TIMEOUT_MS)
    const finish = (value: { ms: number; wrong: number } | { timeout: true; wrong: number }): void => {
      if (finished) return
      finished = true
      clearInterval(poll)
      clearTimeout(timer)
      watcher.removeEventListener('change', wake)
      resolve(value)
    }
    watcher.addEventListener('change', wake)
    wake()
  })
}

export async function latency(ctx: Context): Promise<SectionResult> {
  const src = join(ctx.work, 'latency-src')
  const dst = join(ctx.work, 'latency-dst')
  await rm(src, { recursive: true, force: true })
  await rm(dst, { recursive: true, force: true })
  await mkdir(src, { recursive: true })
  // Something to mirror at start, so the first sync is a real one.
  await writeFile(join(src, 'seed.bin'), content('seed.bin', SIZE))
  const track = new Proc(ctx.cli, ['track', src, dst, '--json'], { rssFile: rssFile(ctx.work, 'fmq-track-latency') })
  const count = latencyFiles(ctx.scale)
  const latencies: number[] = []
  let wrong = 0
  let timeouts = 0
  let watcher: FSWatcher | undefined
  try {
    await track.waitFor((line) => line.type === 'synced', 60_000, 'fmq track to sync')
    const changes = new EventTarget()
    watcher = watch(dst, () => changes.dispatchEvent(new Event('change')))
    for (let i = 0; i < count; i++) {
      const name = `f${String(i).padStart(3, '0')}.bin`
      const data = content(name, SIZE)
      await writeFile(join(src, name), data)
      const written = performance.now()
      const seen = await arrival(changes, join(dst, name), data)
      wrong += seen.wrong
      if ('timeout' in seen) {
        timeouts++
        ctx.log(`latency ${name}: not at DST after ${TIMEOUT_MS} ms`)
      } else latencies.push(seen.ms - written)
    }
  } finally {
    watcher?.close()
    if (track.running) await track.stop('SIGTERM')
  }
  const exit = await track.exited
  await rm(src, { recursive: true, force: true })
  await rm(dst, { recursive: true, force: true })
  const failures = timeouts + wrong + (exit.code === 0 ? 0 : 1)
  const ms = (value: number): string => fixed(value, 1)
  ctx.log(
    `latency: ${latencies.length}/${count} arrived, p50 ${ms(quantile(latencies, 0.5))} ms, p99 ${ms(quantile(latencies, 0.99))} ms, ${wrong} wrong sightings, track exit ${exit.code ?? exit.signal}`,
  )
  const markdown = [
    `## Change latency (fmq track, one file of 4 KiB at a time)`,
    '',
    `${count} files written into SRC one after another; time from the end of the write until the same content is at DST.`,
    '',
    table(
      ['files', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'timeouts (10 s)', 'wrong content seen at DST', 'track peak RSS (MiB)', 'track exit'],
      [
        [
          String(count),
          ms(quantile(latencies, 0.5)),
          ms(quantile(latencies, 0.9)),
          ms(quantile(latencies, 0.99)),
          ms(Math.max(...latencies)),
          String(timeouts),
          String(wrong),
          mib(exit.rssKiB),
          String(exit.code ?? exit.signal),
        ],
      ],
    ),
  ].join('\n')
  return { name: 'latency', markdown, raw: { count, latenciesMs: latencies, timeouts, wrong, rssKiB: exit.rssKiB, exit: exit.code }, failures }
}
