/**
 * Durable state end to end, with real processes: a client killed with SIGKILL in the middle
 * of a big file resumes it; a corrupted partial file is never promoted; a client that was
 * away while files were deleted ends an exact mirror (MIRROR=1); a tree of relays carries
 * files and deletions from an origin to every leaf.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
import { digests, randomFile, sameTree, sha1, write } from '../fixtures/tree.js'
import { until } from '../fixtures/until.js'
import { FmqProcess } from '../peers/fmq-process.js'

const MiB = 1024 * 1024
/** The resume test's file: 1 GiB as the issue asks, smaller with FMQ_RESUME_MIB for a quick run. */
const RESUME_SIZE = Number(process.env.FMQ_RESUME_MIB ?? 1024) * MiB

/** Octets of the one partial file in an inbox's state folder (0 when there is none yet), and its path. */
async function partial(inbox: string): Promise<{ path: string; size: number }> {
  const folder = join(inbox, '.fmq', 'partial')
  const name = (await readdir(folder).catch(() => [] as string[])).find((entry) => entry.endsWith('.part'))
  if (name === undefined) return { path: '', size: 0 }
  const path = join(folder, name)
  return { path, size: (await stat(path).catch(() => ({ size: 0 }))).size }
}

describe('durable state', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-durable-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })

  async function server(source: string, state: string): Promise<{ server: Server; at: string }> {
    const s = new Server({ heartbeat: 200, stateDir: state })
    closers.push(() => s.close())
    await s.publish(source, '/')
    return { server: s, at: await s.bind('tcp://127.0.0.1:*') }
  }

  function client(args: string[]): FmqProcess {
    const child = new FmqProcess(['client', ...args])
    closers.push(() => child.kill())
    return child
  }

  const delivered = (path: string) => (line: { type: string; virtualPath?: unknown }) => line.type === 'delivered' && line.virtualPath === path

  test(`a client killed (SIGKILL) halfway through a ${RESUME_SIZE / MiB} MiB file resumes it: the server sends at most 55% after the restart`, async (t) => {
    const source = join(dir, 'resume-source')
    const inbox = join(dir, 'resume-inbox')
    await mkdir(source)
    await randomFile(join(source, 'big.bin'), RESUME_SIZE)
    const { server: s, at } = await server(source, join(dir, 'resume-state'))
    await s.publisher.whenIndexed()

    // Paced (the whole file in about 4 s), so the kill lands near half however fast the machine is.
    const first = client(['-C', at, '-i', inbox, '--resync', '--bwlimit', String(Math.ceil(RESUME_SIZE / 4))])
    await until(async () => (await partial(inbox)).size >= RESUME_SIZE / 2, 600_000, 'half of the file written by the client')
    await first.kill('SIGKILL')
    const before = s.stats.contentBytes

    const second = client(['-C', at, '-i', inbox, '--resync'])
    await second.waitFor(delivered('/big.bin'), 600_000, 'the file delivered after the restart')
    const sent = s.stats.contentBytes - before
    const share = sent / RESUME_SIZE
    t.diagnostic(`resume: ${sent} of ${RESUME_SIZE} octets (${(share * 100).toFixed(1)}%) sent after the restart; ${before} before the kill`)
    console.log(`# resume: ${sent} of ${RESUME_SIZE} octets (${(share * 100).toFixed(1)}%) sent after the restart`)
    assert.ok(share <= 0.55, `sent ${(share * 100).toFixed(1)}% of the file after the restart`)
    assert.equal(await sha1(join(inbox, 'big.bin')), await sha1(join(source, 'big.bin')))
    await second.kill('SIGTERM')
  })

  test('a partial file corrupted while the client was down is not resumed: the file is sent again whole and arrives intact', async () => {
    const size = 24 * MiB
    const source = join(dir, 'corrupt-source')
    const inbox = join(dir, 'corrupt-inbox')
    await mkdir(source)
    await randomFile(join(source, 'data.bin'), size)
    const { server: s, at } = await server(source, join(dir, 'corrupt-state'))
    await s.publisher.whenIndexed()

    const first = client(['-C', at, '-i', inbox, '--resync'])
    await until(async () => (await partial(inbox)).size >= 3 * MiB, 120_000, 'three MiB of the partial file on disk')
    await first.kill('SIGKILL')
    const handle = await open((await partial(inbox)).path, 'r+')
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, 1000)
    byte[0] = byte[0]! ^ 0xff
    await handle.write(byte, 0, 1, 1000)
    await handle.close()
    const before = s.stats.contentBytes

    const second = client(['-C', at, '-i', inbox, '--resync'])
    await second.waitFor(delivered('/data.bin'), 120_000, 'the file delivered after the restart')
    assert.ok(s.stats.contentBytes - before >= size, 'the whole file was sent again')
    assert.equal(await sha1(join(inbox, 'data.bin')), await sha1(join(source, 'data.bin')))
  })

  for (const restartServer of [false, true]) {
    test(`a client away while files were deleted${restartServer ? ' (and the server restarted)' : ''} ends with exactly the server's tree (MIRROR=1)`, async () => {
      const name = restartServer ? 'mirror-restart' : 'mirror'
      const source = join(dir, `${name}-source`)
      const inbox = join(dir, `${name}-inbox`)
      const state = join(dir, `${name}-state`)
      const files: Record<string, string> = {}
      for (let i = 0; i < 20; i++) files[`f${i}.txt`] = `file ${i}\n`
      for (let i = 0; i < 5; i++) files[`deep/nested/n${i}.txt`] = `nested ${i}\n`
      await write(source, files)
      let { server: s, at } = await server(source, state)

      const mirror = async (): Promise<Client> => {
        const c = new Client({ inbox, resync: true, mirror: true, heartbeat: 200 })
        c.on('error', () => undefined)
        closers.push(() => c.close())
        await c.connect(at)
        await c.subscribe('/')
        return c
      }
      let c = await mirror()
      await until(() => sameTree(source, inbox), 60_000, 'the first mirror')
      await c.close()

      const removed = new Set<string>()
      s.publisher.on('removed', (path) => removed.add(path))
      if (restartServer) await s.close()
      await unlink(join(source, 'f3.txt'))
      await unlink(join(source, 'f7.txt'))
      await unlink(join(source, 'deep/nested/n1.txt'))
      await writeFile(join(source, 'f5.txt'), 'changed while away\n')
      await writeFile(join(source, 'new.txt'), 'new while away\n')
      if (restartServer) ({ server: s, at } = await server(source, state))
      else await until(() => ['/f3.txt', '/f7.txt', '/deep/nested/n1.txt'].every((path) => removed.has(path)), 10_000, 'the server to see the deletions')

      c = await mirror()
      await until(() => sameTree(source, inbox), 60_000, 'the mirror after the deletions')
      const left = await digests(inbox)
      assert.equal(left.has('f3.txt'), false)
      assert.equal(left.has('deep/nested/n1.txt'), false)
      await c.close()
    })
  }

  test('origin → 2 relays → 4 leaves, separate processes: a file reaches every leaf complete and verified, and so do its modification and its deletion', async () => {
    const origin = join(dir, 'tree-origin')
    await mkdir(origin)
    const originServer = new FmqProcess(['server', '-p', origin, '-b', 'tcp://127.0.0.1:*', '--state', join(dir, 'tree-origin-state')])
    closers.push(() => originServer.kill())
    const originAt = await originServer.endpoint()

    // One relay from the command line, one from a ZPL config.
    const config = join(dir, 'tree-relay1.cfg')
    await writeFile(
      config,
      ['client', `    inbox = "${join(dir, 'tree-relay1')}"`, 'connect', `    endpoint = ${originAt}`, 'subscribe', '    path = /', 'bind', '    endpoint = tcp://127.0.0.1:*', ''].join('\n'),
    )
    const relays = [
      new FmqProcess(['relay', '-u', originAt, '-i', join(dir, 'tree-relay0'), '-b', 'tcp://127.0.0.1:*']),
      new FmqProcess(['relay', '-c', config]),
    ]
    for (const relay of relays) closers.push(() => relay.kill())
    const relayAt = await Promise.all(relays.map((relay) => relay.endpoint()))
    const leaves = [0, 1, 2, 3].map((i) => client(['-C', relayAt[i % 2]!, '-i', join(dir, `tree-leaf${i}`), '--resync', '--mirror']))
    const subscribed = (line: { type: string }) => line.type === 'subscribed'
    await Promise.all([...relays, ...leaves].map((node) => node.waitFor(subscribed, 30_000, 'a subscription')))

    await writeFile(join(origin, 'report.bin'), randomBytes(5 * MiB + 123))
    await write(origin, { 'docs/readme.txt': 'hello, tree\n' })
    for (const leaf of leaves) {
      await leaf.waitFor(delivered('/report.bin'), 60_000, 'report.bin at a leaf')
      await leaf.waitFor(delivered('/docs/readme.txt'), 60_000, 'readme.txt at a leaf')
    }
    for (let i = 0; i < 4; i++) assert.ok(await sameTree(origin, join(dir, `tree-leaf${i}`)), `leaf ${i} mirrors the origin`)

    // A modification travels the same way.
    const marks = leaves.map((leaf) => leaf.lines.length)
    await writeFile(join(origin, 'docs/readme.txt'), 'hello again, tree: a longer second version\n')
    for (const [i, leaf] of leaves.entries()) {
      await leaf.waitFor((line) => delivered('/docs/readme.txt')(line) && leaf.lines.indexOf(line) >= marks[i]!, 60_000, 'the new readme.txt at a leaf')
    }
    for (let i = 0; i < 4; i++) assert.ok(await sameTree(origin, join(dir, `tree-leaf${i}`)), `leaf ${i} has the modified file`)

    await unlink(join(origin, 'report.bin'))
    const deleted = (line: { type: string; virtualPath?: unknown }) => line.type === 'deleted' && line.virtualPath === '/report.bin'
    for (const leaf of leaves) await leaf.waitFor(deleted, 60_000, 'the deletion at a leaf')
    for (let i = 0; i < 4; i++) assert.ok(await sameTree(origin, join(dir, `tree-leaf${i}`)), `leaf ${i} mirrors the origin after the deletion`)
  })
})
