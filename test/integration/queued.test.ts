/**
 * QUEUED=1 (ours): the server announces the files it queued for a client and the octets of
 * content they take, before it sends them, so the client knows the whole transfer (a progress
 * display's totals) from the server's index: the sum of the announcements is the resync's
 * files and octets, less what the inbox already holds; a later change adds to it. In both versions.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Client, QueuedEvent } from '../../src/index.js'
import { scratch } from '../fixtures/scratch.js'
import { write } from '../fixtures/tree.js'

/** Resolves on the next event of `name` that `match` accepts, or rejects after `ms`. */
function next<T>(client: Client, name: 'synced' | 'delivered', ms: number, match: (event: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms)
    const on = (event: T): void => {
      if (!match(event)) return
      clearTimeout(timer)
      client.off(name, on as never)
      resolve(event)
    }
    client.on(name, on as never)
  })
}

for (const version of [2, 1] as const) {
  describe(`queued announcements, version ${version}`, () => {
    const scratchpad = scratch('queued')
    async function pair(source: string, inbox: string): Promise<{ client: Client; queued: QueuedEvent[] }> {
      const client = await scratchpad.served(source, inbox, version)
      const queued: QueuedEvent[] = []
      client.on('queued', (event) => queued.push(event))
      return { client, queued }
    }

    const sum = (events: readonly QueuedEvent[]) => events.reduce((total, event) => ({ files: total.files + event.files, bytes: total.bytes + event.bytes }), { files: 0, bytes: 0 })

    test('the announcements add up to the files and octets the resync sends; a change adds to them', async () => {
      const source = join(scratchpad.dir, `tree-${version}`)
      const inbox = join(scratchpad.dir, `inbox-${version}`)
      const files: Record<string, string | Buffer> = { 'big.bin': Buffer.alloc(3_000_000, 7) }
      let bytes = 3_000_000
      for (let i = 0; i < 40; i++) {
        const content = `file ${i}\n`.repeat(i)
        files[`d${i % 3}/f${i}.txt`] = content
        bytes += Buffer.byteLength(content)
      }
      await write(source, files)
      await write(inbox, { 'd0/f0.txt': '' }) // held already (empty, as published): not announced
      const { client, queued } = await pair(source, inbox)
      const delivered: number[] = []
      client.on('delivered', (event) => delivered.push(event.size))
      const synced = next(client, 'synced', 60_000)
      await client.subscribe('/')
      await synced
      assert.deepEqual(sum(queued), { files: 40, bytes }, 'every file the inbox lacked, with its octets')
      assert.equal(delivered.length, 40)
      assert.equal(delivered.reduce((a, b) => a + b, 0), bytes, 'as many octets as announced arrived')

      const before = sum(queued)
      const again = next(client, 'synced', 30_000)
      await writeFile(join(source, 'd1/new.txt'), 'twelve bytes')
      await again
      assert.deepEqual(sum(queued), { files: before.files + 1, bytes: before.bytes + 12 }, 'a change adds to the totals')
    })
  })
}
