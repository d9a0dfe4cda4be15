/**
 * A client closing for a process about to exit (`close({ exiting: true })`, as `fmq client
 * --once` does) leaves its state database unclosed: no checkpoint, the write-ahead log beside
 * it. What it committed is all there for the next client on that state directory.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { DurableState } from '../../src/client/durable.js'

const stats = (): { bytesHashed: number; resumes: number; foldersAskedAgain: number } => ({ bytesHashed: 0, resumes: 0, foldersAskedAgain: 0 })

test('closed for an exit, the state database keeps its log and the next open sees every entry recorded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmq-durable-'))
  try {
    const first = new DurableState(dir, stats(), (error) => assert.fail(error))
    for (let i = 0; i < 500; i++) first.manifest.record({ path: `d/f${i}`, size: i, mtimeMs: 1_600_000_000_000 + i, digest: 'a'.repeat(32) })
    first.close({ exiting: true })
    assert.equal(first.open, false)
    first.close({ exiting: true }) // a second call does nothing
    // Not checkpointed: the log is still there (a close would have folded it in and removed it).
    assert.ok(existsSync(join(dir, 'fmq.db-wal')), 'the write-ahead log is left')

    const second = new DurableState(dir, stats(), (error) => assert.fail(error))
    try {
      assert.equal(second.manifest.entries().length, 500)
      assert.deepEqual(second.manifest.get('d/f499'), { path: 'd/f499', size: 499, mtimeMs: 1_600_000_000_499, digest: 'a'.repeat(32) })
    } finally {
      second.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
