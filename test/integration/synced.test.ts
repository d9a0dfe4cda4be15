/**
 * SYNCED=1 (ours): the server marks each time it has sent everything it had queued for a
 * client, so the client knows exactly when it mirrors the server (what `--once` relies on),
 * after a resync, an empty one included, and after each burst of changes. In both versions.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
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
    let dir: string
    const closers: Array<() => Promise<void>> = []
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fmq-synced-'))
    })
    after(async () => {
      for (const close of closers.reverse()) await close()
      await rm(dir, { recursive: true, force: true })
    })

    async function pair(source: string, inbox: string): Promise<Client> {
      const server = new Server({ heartbeat: 200, stateDir: join(dir, `${inbox}-server-state`) })
      closers.push(() => server.close())
      await server.publish(source, '/')
      const at = await server.bind('tcp://127.0.0.1:*')
      await mkdir(inbox, { recursive: true })
      const client = new Client({ inbox, resync: true, mirror: true, versions: [version], heartbeat: 200 })
      client.on('error', () => undefined)
      closers.push(() => client.close())
      await client.connect(at)
      return client
    }

    test('the first mark comes once the whole tree is in the inbox', async () => {
      const source = join(dir, 'tree')
      const inbox = join(dir, 'tree-inbox')
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
      const source = join(dir, 'empty')
      await mkdir(source)
      const client = await pair(source, join(dir, 'empty-inbox'))
      const synced = marks(client)
      await client.subscribe('/')
      await synced.after(0, 30_000)
    })
  })
}
