/**
 * Scenario 5: the client's disk fills up. The inbox (and the state folder in it) is a small
 * tmpfs that holds a bit more than half the tree next to a filler file the test put there;
 * the client must say ENOSPC clearly (an error line naming the file), promote nothing torn,
 * keep running, and once the test deletes the filler, finish by itself without a restart.
 * Needs root (or CAP_SYS_ADMIN) to mount; skipped with a message otherwise.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { randomFile } from '../fixtures/tree.js'
import { recordFigure } from './figures.js'
import { buildTree, differences, fmqClient, LONG, manifestOf, MiB, randomFor, SEED, ServerProcess, totalSize, withSeed } from './harness.js'
import { TornWatcher } from './torn-watch.js'

const run = promisify(execFile)
const TREE = (LONG ? 64 : 12) * MiB

let dir: string
let mounted: string | undefined
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-faults-disk-'))
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  if (mounted !== undefined) await run('umount', ['-l', mounted]).catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

/** Mounts a tmpfs of `bytes` at `path`; the reason when this machine does not let us. */
async function mountTmpfs(path: string, bytes: number): Promise<string | undefined> {
  await mkdir(path, { recursive: true })
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', path])
    mounted = path
    return undefined
  } catch (error) {
    return `cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): ${((error as { stderr?: string }).stderr ?? String(error)).trim()}`
  }
}

test(`a client whose disk fills up says ENOSPC, naming the file, promotes nothing torn, and completes once space is freed, without a restart (seed ${SEED})`, async (t) =>
  withSeed(async () => {
    const random = randomFor('disk-full')
    const source = join(dir, 'source')
    const tree = await buildTree(source, TREE, random)
    const treeBytes = totalSize(tree)
    const disk = join(dir, 'disk')
    // Room for the tree and its largest partial file; the filler leaves a bit more than half the tree free.
    const largest = Math.max(...[...tree.values()].map((file) => file.size))
    const size = Math.ceil((treeBytes + largest + 4 * MiB) / MiB) * MiB
    const fillerSize = size - Math.floor(treeBytes * 0.55)
    const refused = await mountTmpfs(disk, size)
    if (refused !== undefined) {
      t.skip(refused)
      return
    }
    const filler = join(disk, 'filler.bin')
    await randomFile(filler, fillerSize)
    const inbox = join(disk, 'inbox')
    await mkdir(inbox)

    const server = new ServerProcess(source, 'tcp://127.0.0.1:*', { stateDir: join(dir, 'server-state') })
    closers.push(() => server.kill())
    const at = await server.at
    const watcher = TornWatcher.fromManifest(inbox, tree)
    await watcher.start()
    closers.push(() => watcher.stop())
    const client = fmqClient(at, inbox)
    closers.push(() => client.kill())

    const full = await client.waitFor((l) => l.type === 'error' && l.code === 'ENOSPC', 120_000, 'an error line with code ENOSPC')
    const message = String(full.error)
    assert.match(message, /\/[^ ]*f\d+-\d+\.bin/, `the error names the file: ${message}`)
    // Still running, still reporting, nothing torn so far.
    assert.equal(client.child.exitCode, null, 'the client did not exit')
    const errorsWhileFull = client.lines.filter((l) => l.type === 'error').length

    await unlink(filler)
    const mark = client.lines.length
    const freedAt = Date.now()
    await client.waitFor((l) => l.type === 'synced' && client.lines.indexOf(l) >= mark, 300_000, 'a synced mark after space was freed')
    const recovered = Date.now() - freedAt
    // Files delivered after the mark may come with later marks: wait until nothing is missing.
    const mirror = await manifestOf(inbox)
    await watcher.stop()
    assert.equal(client.child.exitCode, null, 'the client is still running')

    assert.deepEqual(differences(tree, mirror), [], 'the mirror equals the source')
    assert.deepEqual(watcher.torn, [], 'no corrupt or partial file was ever promoted to a final name')
    recordFigure('ENOSPC error lines while the disk was full (scenario 5)', errorsWhileFull)
    recordFigure('first ENOSPC line (scenario 5)', message)
    recordFigure('from freeing space to a complete mirror (scenario 5)', recovered, 'ms')
  }))
