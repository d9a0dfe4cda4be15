/**
 * What a person sees of `fmq track` on a terminal, read from a real pseudo-terminal (tmux):
 * mid-way through a paced transfer one line shows the overall percentage (moving), octets
 * done of the total, files done of the total, the rate with its unit and an ETA as h:mm:ss,
 * with no per-file lines; `--once` ends with a summary; a rerun with nothing to do says "in
 * sync"; live mode says "in sync" with the time of the last change; `-v` shows per-file lines.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { sameTree, write } from '../fixtures/tree.js'
import { hasTmux, TmuxScreen } from '../peers/tmux-screen.js'
import { scratch } from '../fixtures/scratch.js'
import { fmqCommand } from '../peers/fmq-process.js'

const fmq = (...args: string[]): string[] => [...fmqCommand(), ...args]

/** The progress line: bar, percentage, octets of the total, files of the total, rate, ETA. */
const PROGRESS = /\[[#-]{20}\]\s+(\d+)% ([\d.]+ (?:B|KiB|MiB)) of 3\.8 MiB \| (\d+)\/40 files \| [\d.]+ (?:B|KiB|MiB)\/s \| ETA \d+:\d\d:\d\d/

describe('fmq track on a terminal', { skip: hasTmux() ? false : 'tmux is not installed (apt-get install tmux)' }, () => {
  const scratchpad = scratch('cli-progress')
  async function terminal(args: string[]): Promise<TmuxScreen> {
    const screen = await TmuxScreen.start(fmq(...args), { cwd: process.cwd() })
    scratchpad.later(() => screen.close())
    return screen
  }

  test('a paced --once: the whole transfer on one line, moving; a summary at the end; a rerun says in sync', async () => {
    const src = join(scratchpad.dir, 'src')
    const dst = join(scratchpad.dir, 'dst')
    const files: Record<string, Buffer> = {}
    for (let i = 0; i < 40; i++) files[`d${i % 4}/f${i}.bin`] = randomBytes(100_000)
    await write(src, files)
    const screen = await terminal(['track', src, dst, '--once', '--bwlimit', '1M'])

    const midway = (text: string): number | undefined => {
      const match = PROGRESS.exec(text)
      const percent = match === null ? undefined : Number(match[1])
      return percent !== undefined && percent > 0 && percent < 100 ? percent : undefined
    }
    const first = await screen.waitFor((text) => midway(text) !== undefined, 30_000, 'the progress line mid-way')
    const percent = midway(first)!
    const later = await screen.waitFor((text) => (midway(text) ?? 0) > percent, 30_000, 'the percentage to move on')
    for (const shown of [first, later]) {
      assert.doesNotMatch(shown, /delivered/, 'no per-file lines on a terminal')
      assert.equal(shown.split('\n').filter((line) => PROGRESS.test(line)).length, 1, `one progress line, redrawn:\n${shown}`)
    }

    assert.equal(await screen.exitCode(60_000), 0)
    const end = await screen.screen()
    assert.match(end, /done: 40 files transferred \(3\.8 MiB\), 0 deleted, 0 skipped, in [\d.:]+ s? ?\([\d.]+ (?:KiB|MiB)\/s\)/)
    assert.doesNotMatch(end, /ETA/, 'the progress line is gone once done')
    assert.ok(await sameTree(src, dst))

    const rerun = await terminal(['track', src, dst, '--once'])
    assert.equal(await rerun.exitCode(60_000), 0)
    assert.match(await rerun.screen(), /in sync: nothing to transfer \(0 files\), 0 deleted, 0 skipped/)
  })

  test('live: "in sync", then the time of the last change; Ctrl-C exits 0; -v shows per-file lines', async () => {
    const src = join(scratchpad.dir, 'live-src')
    const dst = join(scratchpad.dir, 'live-dst')
    await write(src, { 'a.txt': 'a\n' })
    await write(dst, { 'a.txt': 'a\n' })
    const screen = await terminal(['track', src, dst])
    await screen.waitFor(/in sync \| nothing to transfer/, 30_000, '"in sync" with nothing to transfer')
    await writeFile(join(src, 'b.txt'), 'twelve bytes')
    await screen.waitFor(/in sync \| last change \d\d:\d\d:\d\d \| 1 file transferred \(12 B\), 0 deleted/, 30_000, '"in sync" after the change')
    await screen.keys('C-c')
    assert.equal(await screen.exitCode(30_000), 0)

    const verbose = await terminal(['track', src, join(scratchpad.dir, 'verbose-dst'), '--once', '-v'])
    assert.equal(await verbose.exitCode(60_000), 0)
    const shown = await verbose.screen()
    assert.match(shown, /delivered \/a\.txt \(2 B\)/)
    assert.match(shown, /done: 2 files transferred/)
  })
})
