/**
 * Delta transfer (DELTA) under kills: `fmq client` holds an old version of a large file, the
 * server publishes a new one that differs in many places (so its delta takes a while at a
 * paced rate), and the client is killed with SIGKILL at random moments while it builds the new
 * version. After every kill the inbox holds the old version or the new one, octet for octet,
 * never anything else; the last run ends with the new one. Figures: kills, octets of content
 * the server sent for the new version (a delta, plus the rest of a resumed partial file).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { recordFigure } from './figures.js'
import { fmqClient, MiB, randomFor, SEED, ServerProcess, withSeed } from './harness.js'
import { until } from '../fixtures/until.js'

const SIZE = 48 * MiB
const KILLS = 6
/** Changed: 4 KiB every 2 MiB, so the delta holds about 24 runs of content among its copies. */
const STRIDE = 2 * MiB
/** Paced so a delta of a few MiB takes seconds: kills land while runs are being copied. */
const BWLIMIT = 512 * 1024

let dir: string
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-faults-delta-'))
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')

test(`a client killed (SIGKILL) ${KILLS} times while it builds a delta keeps the old version or gets the new one, never a mix (seed ${SEED})`, async () =>
  withSeed(async () => {
    const random = randomFor('delta-kill')
    const source = join(dir, 'source')
    const inbox = join(dir, 'inbox')
    await mkdir(source)
    await mkdir(inbox)
    const old = Buffer.alloc(SIZE)
    for (let at = 0; at < SIZE; at += 4) old.writeUInt32LE((random.next() * 2 ** 32) >>> 0, at)
    await writeFile(join(source, 'big.bin'), old)
    const server = new ServerProcess(source, 'tcp://127.0.0.1:*', { stateDir: join(dir, 'server-state'), settle: 50 })
    closers.push(() => server.kill())
    const at = await server.at

    // The old version, mirrored in full.
    const first = fmqClient(at, inbox)
    closers.push(() => first.kill())
    await first.waitFor((line) => line.type === 'synced', 60_000, 'the first mirror')
    await first.kill('SIGTERM')
    assert.equal(sha1(await readFile(join(inbox, 'big.bin'))), sha1(old))

    // The new version: 4 KiB changed every 2 MiB, and 100 octets inserted at the start.
    const changed = Buffer.from(old)
    for (let offset = STRIDE / 2; offset < SIZE; offset += STRIDE) for (let i = 0; i < 4096; i++) changed[offset + i] = (random.next() * 256) & 255
    const fresh = Buffer.concat([Buffer.alloc(100, 7), changed])
    await writeFile(join(dir, 'big.tmp'), fresh)
    await rename(join(dir, 'big.tmp'), join(source, 'big.bin'))
    const before = (await server.stats()).contentBytes
    // The server hashed the new version: a client that comes back is offered a delta at once.
    await until(async () => (await server.stats()).bytesHashed >= 2 * SIZE, 60_000, 'the server to hash the new version')

    const versions = new Map([
      [sha1(old), 'old'],
      [sha1(fresh), 'new'],
    ])
    const kills: string[] = []
    for (let run = 0; run < KILLS; run++) {
      const client = fmqClient(at, inbox, ['--bwlimit', String(BWLIMIT)])
      closers.push(() => client.kill())
      await client.waitFor((line) => line.type === 'connected', 30_000, 'the greeting')
      // Somewhere in the delta: its runs of content come at BWLIMIT, its copies between them.
      const delay = 200 + Math.floor(random.next() * 2500)
      const done = client.waitFor((line) => line.type === 'synced', delay, 'the end').then(
        () => true,
        () => false,
      )
      const finished = await done
      await client.kill()
      const held = versions.get(sha1(await readFile(join(inbox, 'big.bin'))))
      assert.ok(held !== undefined, `after kill ${run + 1} (at ${delay} ms) the inbox holds neither the old version nor the new one`)
      // Killed while building: a partial file of the new version is there beside the old one.
      const partials = (await readdir(join(inbox, '.fmq', 'partial'), { recursive: true }).catch(() => [])).length
      kills.push(`${delay} ms: ${held}${finished ? ' (finished)' : ''}${partials > 0 ? ', a partial file' : ''}`)
      if (held === 'new') break
    }

    const last = fmqClient(at, inbox)
    closers.push(() => last.kill())
    await last.waitFor((line) => line.type === 'synced', 120_000, 'the last run')
    await last.kill('SIGTERM')
    assert.equal(sha1(await readFile(join(inbox, 'big.bin'))), sha1(fresh), 'the last run ends with the new version')
    const sent = (await server.stats()).contentBytes - before
    recordFigure('delta: client kills while building the new version', `${kills.length} (${kills.join(', ')})`)
    recordFigure('delta: content sent for the new version, kills included', `${sent} of ${fresh.length}`, 'octets')
    // A delta is about 24 × a chunk; a kill may leave a partial file whose rest then comes whole.
    assert.ok(sent < fresh.length, `the new version took ${sent} octets of content, more than the file (${fresh.length})`)
  }))
