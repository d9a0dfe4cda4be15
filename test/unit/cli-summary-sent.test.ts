/**
 * What travelled, in the summary (delta transfer, issue 19): the tally adds up the `sent` of the
 * delivered events, and the summary line says it when it is less than what arrived.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { summaryText, TransferTally } from '../../src/cli/progress.js'

test('the summary says the octets sent when a delta or a resume sent less than arrived', () => {
  let now = 0
  const tally = new TransferTally(() => now)
  tally.delivered('/big.bin', 256 * 1024 * 1024, 74_650)
  tally.delivered('/new.txt', 1000)
  now = 2000
  const summary = tally.summary()
  assert.equal(summary.bytes, 256 * 1024 * 1024 + 1000)
  assert.equal(summary.sent, 74_650 + 1000)
  assert.equal(summaryText(summary, 0), 'done: 2 files transferred (256.0 MiB, 73.9 KiB sent), 0 deleted, 0 skipped, in 2.0 s (128.0 MiB/s)')
  assert.equal(
    summaryText({ files: 1, bytes: 1000, sent: 1000, deleted: 0, seconds: 1, rate: 1000 }, 0),
    'done: 1 file transferred (1000 B), 0 deleted, 0 skipped, in 1.0 s (1000 B/s)',
    'all of it sent: said as before',
  )
})
