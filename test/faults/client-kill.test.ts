/**
 * Scenario 1: `fmq client` killed with SIGKILL at random moments (10 times or more) while it
 * mirrors a mixed tree (large and small files, nested); after the last restart the mirror
 * equals the source by SHA-256, and a watcher on the inbox never saw a partial file under a
 * final name. Figures: kills survived, octets resent (the server's content counter minus the
 * tree), and what the last run still had to fetch.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { recordFigure } from './figures.js'
import { buildTree, differences, fmqClient, LONG, manifestOf, MiB, randomFor, receivedBytes, SEED, ServerProcess, totalSize, withSeed, type FmqProcess } from './harness.js'
import { TornWatcher } from './torn-watch.js'

const TREE = (LONG ? 300 : 30) * MiB
const KILLS = LONG ? 12 : 10
/** Paced so that every run is cut mid-transfer however fast the machine is (about a tenth of the tree a second). */
const BWLIMIT = LONG ? 40 * MiB : 6 * MiB

let dir: string
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-faults-kill-'))
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

test(`a client killed (SIGKILL) ${KILLS} times at random moments while mirroring ${TREE / MiB} MiB ends an exact mirror, never showing a torn file (seed ${SEED})`, async () =>
  withSeed(async () => {
    const random = randomFor('client-kill')
    const source = join(dir, 'source')
    const inbox = join(dir, 'inbox')
    const tree = await buildTree(source, TREE, random)
    const treeBytes = totalSize(tree)
    const server = new ServerProcess(source, 'tcp://127.0.0.1:*', { stateDir: join(dir, 'server-state') })
    closers.push(() => server.kill())
    const at = await server.at

    const watcher = TornWatcher.fromManifest(inbox, tree)
    await mkdir(inbox)
    await watcher.start()
    closers.push(() => watcher.stop())

    const kills: string[] = []
    let midTransfer = 0
    for (let run = 0; run < KILLS; run++) {
      const client: FmqProcess = fmqClient(at, inbox, ['--bwlimit', String(BWLIMIT)])
      closers.push(() => client.kill())
      // Where this run dies: right after the greeting, right after a file is put in place, or
      // once a random share of the tree has come in (in all, the runs cannot fetch it all).
      const kind = random.pick(['connected', 'delivered', 'bytes', 'bytes', 'bytes', 'bytes'] as const)
      const threshold = Math.floor(random.next() * (treeBytes / KILLS))
      let line
      if (kind === 'connected') line = client.waitFor((l) => l.type === 'connected' || l.type === 'synced', 120_000, 'the greeting')
      else if (kind === 'delivered') line = client.waitFor((l) => l.type === 'delivered' || l.type === 'synced', 120_000, 'a delivery')
      else line = client.waitFor((l) => l.type === 'synced' || receivedBytes(client.lines) >= threshold, 120_000, `${threshold} octets`)
      const reached = await line
      await client.kill('SIGKILL')
      if (reached.type !== 'synced') midTransfer++
      kills.push(`${kind}${kind === 'bytes' ? `≥${threshold}` : ''}: ${receivedBytes(client.lines)} octets in this run`)
    }
    const beforeLast = (await server.stats()).contentBytes

    const last = fmqClient(at, inbox, ['--once'])
    closers.push(() => last.kill())
    assert.equal(await last.exited, 0, `the last run exits 0 once synced; stderr: ${last.stderr.slice(-5).join(' | ')}`)
    const stats = await server.stats()
    await watcher.stop()

    const mirror = await manifestOf(inbox)
    assert.deepEqual(differences(tree, mirror), [], `the mirror equals the source (kills: ${kills.join('; ')})`)
    assert.deepEqual(watcher.torn, [], 'no file was ever seen torn under its final name')
    assert.ok(watcher.checked >= tree.size, `the watcher checked every file at least once (${watcher.checked} checks, ${tree.size} files)`)
    assert.ok(midTransfer >= KILLS - 1, `kills landed mid-transfer: ${midTransfer} of ${KILLS}`)

    recordFigure('client SIGKILLs survived (scenario 1)', kills.length)
    recordFigure('client SIGKILLs mid-transfer (scenario 1)', midTransfer)
    recordFigure('tree mirrored through the kills (scenario 1)', +(treeBytes / MiB).toFixed(1), 'MiB')
    recordFigure('octets resent over all runs (scenario 1)', +((stats.contentBytes - treeBytes) / MiB).toFixed(2), 'MiB')
    recordFigure('share of the tree resent (scenario 1)', +((100 * (stats.contentBytes - treeBytes)) / treeBytes).toFixed(1), '%')
    recordFigure('fetched by the last run (scenario 1)', +((stats.contentBytes - beforeLast) / MiB).toFixed(2), 'MiB')
    recordFigure('final-name checks by the inbox watcher (scenario 1)', watcher.checked)
  }))
