/**
 * SYNCED=1 (ours): the server marks each time it has sent everything it had queued for a
 * client, so the client knows exactly when it mirrors the server (what `--once` relies on),
 * after a resync, an empty one included, and after each burst of changes. In both versions.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Client } from '../../src/index.js'
import { scratch } from '../fixtures/scratch.js'
import { sameTree, write } from '../fixtures/tree.js'

/** Counts a client's `synced` events; `after(n)` waits for the (n+1)th, or times out. */
function marks(client: Client): { count: () => number; after: (n: number, ms: number) => Promise<void> } {
  let count = 0
  const waiters = new Set<() => void>()
  client.on('synced', () => {
    count++
    for (const wake of waiters) wake()
  })
  return {
    count: () => count,
    after: (n, ms) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (count <= n) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no synced event after the ${n}th within ${ms} ms`))
        }, ms)
        waiters.add(check)
        check()
      }),
  }
}

/** Whether two trees are equal; a file vanishing while they are read counts as not yet. */
const mirrored = (a: string, b: string): Promise<boolean> => sameTree(a, b).catch(() => false)

for (const version of [2, 1] as const) {
  describe(`synced marks, version ${version}`, () => {
    const scratchpad = scratch('synced')
    const pair = (source: string, inbox: string): Promise<Client> => scratchpad.served(source, inbox, version)

    test('the first mark comes once the whole tree is in the inbox', async () => {
      const source = join(scratchpad.dir, 'tree')
      const inbox = join(scratchpad.dir, 'tree-inbox')
      const files: Record<string, string> = {}
      for (let i = 0; i < 200; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}\n`.repeat(i)
      await write(source, files)
      const client = await pair(source, inbox)
      const synced = marks(client)
      await client.subscribe('/')
      await synced.after(0, 60_000)
      assert.ok(await sameTree(source, inbox), 'the inbox mirrors the server when the first mark arrives')

      // A burst of changes: marked again once they are applied. A mark may follow the first
      // change before the others settled on the server, so look again at each mark.
      const seen = synced.count()
      await writeFile(join(source, 'new.txt'), 'new\n')
      await unlink(join(source, 'd3/f3.txt'))
      await writeFile(join(source, 'd1/f1.txt'), 'changed\n')
      await synced.after(seen, 60_000)
      for (;;) {
        const now = synced.count()
        if (await mirrored(source, inbox)) break
        await synced.after(now, 60_000)
      }
    })

    test('an empty folder is marked too: nothing to send is an answer', async () => {
      const source = join(scratchpad.dir, 'empty')
      await mkdir(source)
      const client = await pair(source, join(scratchpad.dir, 'empty-inbox'))
      const synced = marks(client)
      await client.subscribe('/')
      await synced.after(0, 30_000)
    })
  })
}
