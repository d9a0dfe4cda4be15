/**
 * Partial files too small to resume have no row: those a kill -9 left behind are removed when
 * the client opens its state again, while recorded ones stay to be resumed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DurableState } from '../../src/client/durable.js'

test('opening the client state removes orphan partial files and keeps recorded ones', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'fmq-sweep-'))
  try {
    const folder = join(stateDir, 'partial')
    await mkdir(folder)
    const recorded = join(folder, 'aaaa.part')
    const orphan = join(folder, 'bbbb.part')
    const other = join(folder, 'notes.txt')
    const first = new DurableState(stateDir, { bytesHashed: 0, resumes: 0, foldersAskedAgain: 0 }, () => undefined)
    for (const path of [recorded, orphan, other]) await writeFile(path, 'x')
    first.partials.record({ endpoint: 'tcp://a:1', name: '/big.bin', temp: recorded, size: 5e6, mtimeMs: undefined, mode: undefined, digest: undefined })
    first.close()

    const second = new DurableState(stateDir, { bytesHashed: 0, resumes: 0, foldersAskedAgain: 0 }, () => undefined)
    second.close()
    await access(recorded)
    await access(other)
    await assert.rejects(access(orphan), { code: 'ENOENT' })
  } finally {
    await rm(stateDir, { recursive: true, force: true })
  }
})
