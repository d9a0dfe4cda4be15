/**
 * Our server and our client together, over real sockets and real directories:
 * whole trees, live changes, late joiners, restarts, many small files, a killed server.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client, Server } from '../../src/index.js'
import { digests, sameTree, sha1, write } from '../fixtures/tree.js'

/** Resolves when `check` holds, re-checking on each client event; rejects after `ms`. */
function until(client: Client, check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let busy = false
    const timer = setTimeout(() => finish(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    const poll = setInterval(() => void probe(), 100)
    const names = ['delivered', 'deleted', 'connected', 'subscribed'] as const
    const onEvent = () => void probe()
    for (const name of names) client.on(name, onEvent)
    function finish(error?: Error) {
      clearTimeout(timer)
      clearInterval(poll)
      for (const name of names) client.off(name, onEvent)
      if (error) reject(error)
      else resolve()
    }
    async function probe() {
      if (busy) return
      busy = true
      try {
        if (await check()) finish()
      } catch {
        // a file vanished between listing and reading: look again at the next event
      } finally {
        busy = false
      }
    }
    void probe()
  })
}


for (const transport of ['tcp', 'ipc'] as const) {
  describe(`mirror over ${transport}`, () => {
    let dir: string
    const closers: Array<() => Promise<void>> = []
    const endpoint = () => (transport === 'tcp' ? 'tcp://127.0.0.1:*' : `ipc://${join(dir, `${Math.random().toString(36).slice(2)}.sock`)}`)
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fmq-mirror-'))
    })
    after(async () => {
      for (const close of closers.reverse()) await close()
      await rm(dir, { recursive: true, force: true })
    })

    async function server(source: string, options: ConstructorParameters<typeof Server>[0] = {}) {
      const s = new Server({ heartbeat: 200, ...options })
      closers.push(() => s.close())
      await s.publish(source, '/')
      return { server: s, at: await s.bind(endpoint()) }
    }

    async function client(inbox: string, at: string, options: ConstructorParameters<typeof Client>[0] = {}) {
      await mkdir(inbox, { recursive: true })
      const c = new Client({ inbox, resync: true, heartbeat: 200, ...options })
      c.on('error', () => undefined)
      closers.push(() => c.close())
      await c.connect(at)
      await c.subscribe('/')
      return c
    }

    test('a tree with nested folders, empty files, a 50 MiB file and 1,000 small files arrives byte-identical; changes follow', async () => {
      const source = join(dir, 'source')
      const inbox = join(dir, 'inbox')
      const files: Record<string, Buffer> = { 'empty': Buffer.alloc(0), 'a/b/c/empty2': Buffer.alloc(0), 'big/fifty.bin': randomBytes(50 * 1024 * 1024) }
      for (let i = 0; i < 1000; i++) files[`small/${i % 10}/${i}.txt`] = randomBytes(100 + (i % 900))
      await write(source, files)
      const { at } = await server(source)
      const c = await client(inbox, at)
      await until(c, () => sameTree(source, inbox), 60_000, 'the initial mirror')

      await write(source, { 'new/born.txt': Buffer.from('hello'), 'small/0/0.txt': Buffer.from('modified') })
      await unlink(join(source, 'small/1/1.txt'))
      await until(c, () => sameTree(source, inbox), 10_000, 'the changes')
    })

    test('a client restarted with half the files receives only the rest', async () => {
      const source = join(dir, 'half-source')
      const inbox = join(dir, 'half-inbox')
      const files: Record<string, Buffer> = {}
      for (let i = 0; i < 20; i++) files[`f${i}.bin`] = randomBytes(200_000)
      await write(source, files)
      const half: Record<string, Buffer> = {}
      for (let i = 0; i < 10; i++) half[`f${i}.bin`] = files[`f${i}.bin`]!
      await write(inbox, half)
      const { server: s, at } = await server(source)
      const c = await client(inbox, at)
      await until(c, () => sameTree(source, inbox), 20_000, 'the rest')
      assert.equal(s.stats.contentBytes, 10 * 200_000)
    })
  })
}

describe('mirror at scale and through a server crash', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-scale-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  test('20,000 files of 4 KiB all reach the inbox: none lost to a high-water mark', async () => {
    const source = join(dir, 'many')
    const inbox = join(dir, 'many-inbox')
    for (let d = 0; d < 100; d++) await mkdir(join(source, `d${d}`), { recursive: true })
    for (let i = 0; i < 20_000; i++) await writeFile(join(source, `d${i % 100}`, `f${i}`), randomBytes(4096))
    const s = new Server({})
    closers.push(() => s.close())
    await s.publish(source, '/')
    const at = await s.bind('tcp://127.0.0.1:*')
    await mkdir(inbox)
    const c = new Client({ inbox, resync: true })
    closers.push(() => c.close())
    let delivered = 0
    c.on('delivered', () => delivered++)
    await c.connect(at)
    await c.subscribe('/')
    await until(c, () => delivered >= 20_000, 300_000, '20,000 deliveries')
    assert.ok(await sameTree(source, inbox))
  })

  test('the server killed mid-transfer and started again: the client completes by itself', async () => {
    const source = join(dir, 'crash')
    const inbox = join(dir, 'crash-inbox')
    await write(source, { 'big.bin': randomBytes(40 * 1024 * 1024), 'small.txt': Buffer.from('small') })
    await mkdir(inbox)
    const script = fileURLToPath(new URL('../peers/server-process.ts', import.meta.url))
    const start = (endpoint: string) =>
      new Promise<{ child: ChildProcess; at: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, source, endpoint], { stdio: ['ignore', 'pipe', 'inherit'] })
        closers.push(async () => void child.kill('SIGKILL'))
        child.once('error', reject)
        child.stdout!.on('data', (data: Buffer) => {
          const match = /ready (\S+)/.exec(data.toString())
          if (match) resolve({ child, at: match[1]! })
        })
      })
    const first = await start('tcp://127.0.0.1:*')
    // Paced (40 MiB at 16 MiB/s), so the kill lands mid-transfer however fast the machine is.
    const c = new Client({ inbox, resync: true, heartbeat: 200, creditWindow: 2 * 1024 * 1024, rateLimit: 16 * 1024 * 1024 })
    c.on('error', () => undefined)
    closers.push(() => c.close())
    const progressed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no progress within 30 s')), 30_000)
      c.on('progress', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    await c.connect(first.at)
    await c.subscribe('/')
    await progressed
    first.child.kill('SIGKILL')
    await new Promise((resolve) => first.child.once('exit', resolve))
    await start(first.at)
    await until(c, () => sameTree(source, inbox), 60_000, 'the mirror after the restart')
  })
})
