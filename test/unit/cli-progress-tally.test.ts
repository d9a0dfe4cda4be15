/**
 * The numbers of the progress line (src/cli/progress.ts), on a clock the test moves: totals
 * from the server's announcements as they grow, octets done that never go back when a file is
 * sent again, a rate over the last seconds (not since the start), the ETA as h:mm:ss, "in
 * sync", and the summary line.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { formatEta, progressLine, summaryText, TransferTally } from '../../src/cli/progress.js'

function clock(): { now: () => number; advance: (ms: number) => void } {
  let at = 1_000_000
  return { now: () => at, advance: (ms) => (at += ms) }
}

const percentOf = (line: string): number => Number(/(\d+)%/.exec(line)![1])

describe('TransferTally and the progress line', () => {
  test('totals from queued announcements; a file sent again never makes the line go back', () => {
    const time = clock()
    const tally = new TransferTally(time.now)
    tally.queued(2, 2000)
    time.advance(1000)
    tally.progress('/a', 500, 1000)
    let line = progressLine(tally)
    assert.match(line, /25% 500 B of 2\.0 KiB \| 0\/2 files/)
    const seen = [percentOf(line)]
    time.advance(1000)
    tally.progress('/a', 900, 1000)
    seen.push(percentOf(progressLine(tally)))
    // /a changed while it was sent: sent again from its start, announced again.
    tally.queued(1, 1000)
    time.advance(500)
    tally.progress('/a', 100, 1000)
    seen.push(percentOf(progressLine(tally)))
    time.advance(1000)
    tally.delivered('/a', 1000)
    tally.progress('/b', 1000, 1000)
    tally.delivered('/b', 1000)
    line = progressLine(tally)
    seen.push(percentOf(line))
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]! - 15, `the percentage stays put as the total grows: ${seen.join(', ')}`)
    assert.match(line, /2\/3 files/)
    assert.ok(tally.bytes >= 2900, 'octets done never go back')
    tally.synced()
    assert.match(progressLine(tally), /^in sync \| last change \d\d:\d\d:\d\d \| 2 files transferred \(2\.0 KiB\), 0 deleted$/)
    // The next change adds to what was done.
    tally.queued(1, 100)
    assert.match(progressLine(tally), /2\/3 files/)
  })

  test('the rate is recent, the ETA h:mm:ss; without announcements, no total', () => {
    const time = clock()
    const tally = new TransferTally(time.now)
    // Fast at first, then slow: the rate shown is the slow one.
    tally.progress('/big', 10_000_000, 100_000_000)
    for (let i = 0; i < 20; i++) {
      time.advance(500)
      tally.progress('/big', 10_000_000 + (i + 1) * 50_000, 100_000_000)
    }
    assert.ok(Math.abs(tally.rate - 100_000) < 1000, `recent rate ${tally.rate}`)
    assert.doesNotMatch(progressLine(tally), /%|ETA/, 'no total known: no percentage, no ETA')
    assert.match(progressLine(tally), /^10\.5 MiB \| 0 files \| 97\.7 KiB\/s \| \/big$/)
    tally.queued(1, 100_000_000)
    assert.match(progressLine(tally), /ETA 0:14:50 \| \/big$/)
    assert.equal(formatEta(3 * 3600 + 62), '3:01:02')
    assert.equal(formatEta(Infinity), '-:--:--')
  })

  test('two servers: in sync once both said so', () => {
    const tally = new TransferTally(clock().now)
    tally.queued(1, 10, 'tcp://a')
    tally.queued(2, 20, 'tcp://b')
    tally.delivered('/a', 10)
    tally.synced('tcp://a')
    assert.doesNotMatch(progressLine(tally), /in sync/)
    assert.match(progressLine(tally), /1\/3 files/)
    tally.delivered('/b1', 10)
    tally.delivered('/b2', 10)
    tally.synced('tcp://b')
    assert.match(progressLine(tally), /^in sync \| last change .* 3 files transferred \(30 B\)/)
  })

  test('summary lines', () => {
    assert.equal(summaryText({ files: 0, bytes: 0, deleted: 0, seconds: 0.42, rate: 0 }, 0), 'in sync: nothing to transfer (0 files), 0 deleted, 0 skipped, in 0.4 s')
    assert.equal(
      summaryText({ files: 2030, bytes: 300 * 1024 * 1024, deleted: 3, seconds: 125, rate: 2.4 * 1024 * 1024 }, 1),
      'done: 2,030 files transferred (300.0 MiB), 3 deleted, 1 skipped, in 0:02:05 (2.4 MiB/s)',
    )
  })
})
