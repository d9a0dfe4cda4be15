/**
 * Scenario 6: a large source file modified, truncated or deleted while a paced `fmq client`
 * process is receiving it. The client never ends with a mix of versions, and never shows
 * one under the final name: it ends with the newest version, or without the file. (The
 * server test 'a file modified while it is being sent...' covers the modification at the
 * protocol level with an in-memory peer; these take truncation and deletion too, end to end.)
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { until } from '../fixtures/until.js'
import { recordFigure } from './figures.js'
import { fmqClient, type FmqLine, LONG, manifestOf, MiB, randomFor, receivedBytes, SEED, ServerProcess, sha256File, withSeed } from './harness.js'
import { TornWatcher } from './torn-watch.js'

const SIZE = (LONG ? 96 : 24) * MiB
/** The file takes about three seconds to send, so every change lands while it is in flight. */
const BWLIMIT = Math.floor(SIZE / 3)

let dir: string
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-faults-changes-'))
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

const CHANGES = {
  /** Rewritten in place with new content of another size. */
  modified: async (path: string): Promise<void> => writeFile(path, randomBytes(SIZE - 3 * MiB + 17)),
  /** Cut to a random share of its length (what stays is the old content's prefix). */
  truncated: async (path: string, share: number): Promise<void> => truncate(path, Math.floor(SIZE * share)),
  deleted: async (path: string): Promise<void> => unlink(path),
} as const

describe('a source file changed while it is sent', () => {
  for (const [kind, change] of Object.entries(CHANGES)) {
    test(`${kind} mid-transfer: the client ends with the ${kind === 'deleted' ? 'deletion' : 'newest version'}, never a mix (seed ${SEED})`, async () =>
      withSeed(async () => {
        const random = randomFor(`source-${kind}`)
        const source = join(dir, `${kind}-source`)
        const inbox = join(dir, `${kind}-inbox`)
        await mkdir(source)
        await mkdir(inbox)
        const path = join(source, 'moving.bin')
        await writeFile(join(source, 'steady.txt'), 'a file nobody touches\n')
        await writeFile(path, randomBytes(SIZE))
        const old = await sha256File(path)
        const server = new ServerProcess(source, 'tcp://127.0.0.1:*', { stateDir: join(dir, `${kind}-state`) })
        closers.push(() => server.kill())
        const at = await server.at

        // Whatever appears under the final name must be one whole version: the old or the new.
        const versions = [old]
        const watcher = new TornWatcher(inbox, (rel) => (rel === 'moving.bin' ? versions : rel === 'steady.txt' ? [{ size: 22, sha256: '' }] : []))
        const client = fmqClient(at, inbox, ['--bwlimit', String(BWLIMIT)])
        closers.push(() => client.kill())
        const share = 0.1 + 0.7 * random.next()
        await client.waitFor((l) => l.type === 'progress' && l.virtualPath === '/moving.bin' && (l.bytes as number) >= share * SIZE, 60_000, `${(share * 100).toFixed(0)}% of the file`)
        await watcher.start()
        closers.push(() => watcher.stop())
        const sentBefore = receivedBytes(client.lines)
        await change(path, 0.2 + 0.6 * random.next())
        const newest = kind === 'deleted' ? undefined : await sha256File(path)
        if (newest !== undefined) versions.push(newest)

        const matches = async (): Promise<boolean> => {
          const got = await stat(join(inbox, 'moving.bin')).then(
            () => sha256File(join(inbox, 'moving.bin')),
            () => undefined,
          )
          return newest === undefined ? got === undefined : got?.sha256 === newest.sha256
        }
        // Settled: the newest state in the inbox, and a synced mark after the last word about the
        // file (nothing more of it on its way), then checked once more.
        const lastIndex = (match: (line: FmqLine) => boolean): number => {
          for (let i = client.lines.length - 1; i >= 0; i--) if (match(client.lines[i]!)) return i
          return -1
        }
        const settled = (): boolean => lastIndex((l) => l.type === 'synced') > lastIndex((l) => l.virtualPath === '/moving.bin')
        await until(async () => settled() && (await matches()), 120_000, `the inbox to hold the ${kind === 'deleted' ? 'deletion' : 'newest version'}, then a synced mark`)
        assert.ok(await matches(), 'the inbox still holds the newest state after the synced mark')
        await watcher.stop()

        const mirror = await manifestOf(inbox)
        assert.deepEqual([...mirror.keys()].sort(), newest === undefined ? ['steady.txt'] : ['moving.bin', 'steady.txt'])
        assert.deepEqual(
          watcher.torn.filter((t) => t.path === 'moving.bin'),
          [],
          'moving.bin was never seen under its final name as anything but a whole version',
        )
        recordFigure(`file ${kind} at ${(share * 100).toFixed(0)}% of the transfer: ended right (scenario 6)`, 'yes')
        recordFigure(`received before the change (${kind}, scenario 6)`, +(sentBefore / MiB).toFixed(1), 'MiB')
      }))
  }
})
