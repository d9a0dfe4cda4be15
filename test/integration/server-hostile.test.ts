/**
 * Hostile peers against a real server: a crowd of connections that say OHAI and go silent,
 * subscriptions that try to leave a mount, credentials sent where none were asked for, and
 * many connections guessing one password.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Server } from '../../src/server/index.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { ReferenceClient } from '../peers/reference-client.js'
import { Dealer } from 'zeromq'
import { codecs } from '../../src/protocol/generated/fmq_codecs.js'

const CROWD = fileURLToPath(new URL('../peers/silent-crowd.ts', import.meta.url))
const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')

let dir: string
const servers: Server[] = []
const clients: ReferenceClient[] = []
const children: ChildProcess[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-hostile-'))
})
after(async () => {
  for (const child of children) child.kill('SIGKILL')
  for (const c of clients) await c.close()
  for (const s of servers) await s.close()
  await rm(dir, { recursive: true, force: true })
})

async function serve(options: ConstructorParameters<typeof Server>[0], mounts: Array<[string, string]>) {
  const server = new Server({ heartbeat: 200, ...options })
  servers.push(server)
  for (const [location, virtual] of mounts) await server.publish(location, virtual)
  return { server, at: await server.bind('tcp://127.0.0.1:*') }
}

async function client(at: string, options: ConstructorParameters<typeof ReferenceClient>[0]) {
  const peer = new ReferenceClient(options)
  clients.push(peer)
  await peer.connect(at)
  return peer
}

/** Polls `check` on a timer until it holds; fails after `ms`. */
async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('2,000 connections that say OHAI and go silent: memory stays bounded, a good client is served meanwhile, the crowd is forgotten', async () => {
  const source = join(dir, 'crowd')
  const files: Record<string, Buffer> = { 'big.bin': randomBytes(3_000_000) }
  for (let i = 0; i < 30; i++) files[`small/f${i}`] = randomBytes(5000)
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(source, name, '..'), { recursive: true })
    await writeFile(join(source, name), content)
  }
  const { server, at } = await serve({ maxSilence: 3000 }, [[source, '/']])
  const before = process.memoryUsage().rss
  const crowd = spawn(process.execPath, ['--import', 'tsx', CROWD, at, '2000'], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(crowd)
  const ready = new Promise<string>((resolve, reject) => {
    createInterface({ input: crowd.stdout! }).on('line', (line) => line.startsWith('ready ') && resolve(line))
    crowd.once('exit', (code) => reject(new Error(`the crowd exited with ${code}`)))
  })
  // The good client starts while the crowd arrives.
  const good = await client(at, { version: 2 })
  await good.hello()
  await good.until(() => good.last(MessageId.OHAI_OK) !== undefined, 20_000, 'OHAI-OK for the good client')
  await good.subscribe('/', { RESYNC: '1' })
  assert.equal(await ready, 'ready 2000', 'every one of the crowd was answered')
  assert.ok(server.stats.clients >= 2001, `${server.stats.clients} clients held`)
  const grown = (process.memoryUsage().rss - before) / 2 ** 20
  // About 31 KiB per connection, mostly libzmq's buffers: 2,000 cost about 60 MiB.
  assert.ok(grown < 200, `RSS grew by ${grown.toFixed(0)} MiB for 2,000 silent connections`)
  await good.until(() => good.files.size === Object.keys(files).length, 30_000, 'the good client completing')
  for (const [name, content] of Object.entries(files)) assert.equal(sha1(good.files.get(`/${name}`)!), sha1(content), name)
  // After maxSilence the silent ones are forgotten; the good client, which says HUGZ, stays.
  await eventually(() => server.stats.clients === 1, 20_000, 'the silent crowd expiring')
  crowd.kill('SIGTERM')
})

test('subscriptions that try to leave the mount are refused or match nothing; nothing outside it is ever sent', async () => {
  const root = join(dir, 'escape')
  const mount = join(root, 'pub')
  await mkdir(join(mount, 'inner'), { recursive: true })
  await writeFile(join(mount, 'inner', 'ok.txt'), 'inside')
  await writeFile(join(root, 'secret.txt'), 'SECRET-OUTSIDE-THE-MOUNT')
  await symlink(join(root, 'secret.txt'), join(mount, 'link-out.txt'))
  await symlink(root, join(mount, 'dir-out'))
  const { at } = await serve({}, [[mount, '/pub']])
  const hostile = [
    '/pub/../secret.txt', '/../secret.txt', '/pub/..', '/pub/inner/../../secret.txt', '..', '../..',
    'pub', '', '\\..\\secret.txt', '/pub/%2e%2e/secret.txt', '/pub/..%2fsecret.txt', '//pub/../..',
    '/pub/./../', '/pub/\u0000/../..', '/pub/dir-out', '/pub/link-out.txt', `/pub/${'../'.repeat(50)}`,
  ]
  for (const path of hostile) {
    const peer = await client(at, { version: 2 })
    await peer.hello()
    await peer.until(() => peer.last(MessageId.OHAI_OK) !== undefined, 5000, 'OHAI-OK')
    await peer.subscribe(path, { RESYNC: '1' })
    await peer.until(
      () => peer.last(MessageId.SRSLY) !== undefined || peer.last(MessageId.ICANHAZ_OK) !== undefined || peer.last(MessageId.RTFM) !== undefined,
      5000, `an answer to ICANHAZ ${JSON.stringify(path)}`)
    // A subscription taken is harmless only if it covers nothing outside: ask for a sign of
    // life, so anything it would have sent is here before we look.
    await peer.send({ id: MessageId.HUGZ })
    await peer.until(() => peer.last(MessageId.HUGZ_OK) !== undefined || peer.last(MessageId.RTFM) !== undefined, 5000, 'HUGZ-OK')
    for (const message of peer.received) {
      if (message.id !== MessageId.CHEEZBURGER) continue
      assert.ok(!message.chunk.toString().includes('SECRET'), `${JSON.stringify(path)} got ${message.filename}`)
      assert.ok(!message.filename.includes('..') && !message.filename.includes('secret'), `${JSON.stringify(path)} got ${message.filename}`)
    }
  }
  // The mount itself still serves what is inside it, and not the links that leave it.
  const fine = await client(at, { version: 2 })
  await fine.hello()
  await fine.until(() => fine.last(MessageId.OHAI_OK) !== undefined, 5000, 'OHAI-OK')
  await fine.subscribe('/pub', { RESYNC: '1' })
  await fine.until(() => fine.files.has('/pub/inner/ok.txt'), 5000, 'the file inside')
  await fine.send({ id: MessageId.HUGZ })
  await fine.until(() => fine.last(MessageId.HUGZ_OK) !== undefined, 5000, 'HUGZ-OK')
  assert.deepEqual([...fine.files.keys()], ['/pub/inner/ok.txt'])
})

test('PLAIN credentials from a client that was never sent ORLY get RTFM and open nothing', async () => {
  const source = join(dir, 'no-orly')
  await mkdir(source, { recursive: true })
  await writeFile(join(source, 'private.txt'), 'for alice only')
  const accounts = [{ login: 'alice', password: 'wonderland' }]
  const { at } = await serve({ anonymous: false, plain: true, accounts, loginDelay: 50 }, [[source, '/']])
  const yarly = { id: MessageId.YARLY, mechanism: 'PLAIN', response: Buffer.from('\0alice\0wonderland') } as const
  // Before any OHAI: RTFM, and the ICANHAZ that follows is refused too.
  const early = await client(at, { version: 2 })
  await early.send(yarly)
  await early.until(() => early.last(MessageId.RTFM) !== undefined, 5000, 'RTFM for YARLY before OHAI')
  await early.send({ id: MessageId.ICANHAZ, path: '/', options: new Map([['RESYNC', '1']]), cache: new Map() })
  await early.until(() => early.received.filter((m) => m.id === MessageId.RTFM).length >= 2, 5000, 'RTFM for ICANHAZ')
  // On an anonymous server, after OHAI-OK: YARLY is out of place.
  const { at: open } = await serve({}, [[source, '/']])
  const late = await client(open, { version: 2 })
  await late.hello()
  await late.until(() => late.last(MessageId.OHAI_OK) !== undefined, 5000, 'OHAI-OK')
  await late.send(yarly)
  await late.until(() => late.last(MessageId.RTFM) !== undefined, 5000, 'RTFM for YARLY after OHAI-OK')
  for (const peer of [early]) assert.equal(peer.received.some((m) => m.id === MessageId.OHAI_OK || m.id === MessageId.CHEEZBURGER), false)
})

test('many connections guessing one password: each attempt is answered, the password is checked about once per cooldown', async () => {
  const source = join(dir, 'guess')
  await mkdir(source, { recursive: true })
  const accounts = [{ login: 'alice', password: 'correct horse battery staple' }]
  // Short delays keep the test short; the shape (base, doubling, ceiling 5× base) is the default's.
  const { at } = await serve({ anonymous: false, plain: true, accounts, loginDelay: 100 }, [[source, '/']])
  const started = Date.now()
  let checked = 0
  let refused = 0
  const guesser = async (id: number): Promise<void> => {
    for (let attempt = 0; Date.now() - started < 3000; attempt++) {
      const peer = new ReferenceClient({ version: 2, login: 'alice', password: `guess-${id}-${attempt}` })
      await peer.connect(at)
      await peer.hello()
      await peer.until(() => peer.last(MessageId.SRSLY) !== undefined, 10_000, 'SRSLY')
      const srsly = peer.last(MessageId.SRSLY)
      if (srsly?.id === MessageId.SRSLY && srsly.reason === '') checked++
      else if (srsly?.id === MessageId.SRSLY && /too many failed logins/.test(srsly.reason)) refused++
      else assert.fail(`unexpected answer ${JSON.stringify(srsly)}`)
      await peer.close()
    }
  }
  await Promise.all(Array.from({ length: 16 }, (_, id) => guesser(id)))
  const seconds = (Date.now() - started) / 1000
  // Cooldowns of 100, 200, 400, then 500 ms: about 3 + (seconds - 0.7) / 0.5 checks at most.
  const bound = 3 + Math.ceil((seconds - 0.7) / 0.5) + 1
  assert.ok(checked <= bound, `${checked} passwords checked in ${seconds.toFixed(1)} s by 16 connections (bound ${bound})`)
  assert.ok(refused > checked, `${refused} attempts refused unchecked`)
  // Once the guessing stops and the cooldown has passed, the owner gets in.
  await eventually(() => Date.now() - started > seconds * 1000 + 600, 5000, 'the cooldown')
  const owner = await client(at, { version: 2, login: 'alice', password: 'correct horse battery staple' })
  await owner.hello()
  await owner.until(() => owner.last(MessageId.OHAI_OK) !== undefined, 5000, 'the owner let in')
})

test('a client that floods HUGZ and never reads: a good client is served meanwhile, memory stays bounded, the log is not flooded', async () => {
  const source = join(dir, 'flood')
  await mkdir(source, { recursive: true })
  const files: Record<string, Buffer> = {}
  for (let i = 0; i < 200; i++) files[`f${i}`] = randomBytes(50_000)
  for (const [name, content] of Object.entries(files)) await writeFile(join(source, name), content)
  const { server, at } = await serve({ sendTimeout: 2000 }, [[source, '/']])
  const drops: string[] = []
  server.on('log', (_level, text) => {
    if (text.startsWith('dropping client')) drops.push(text)
  })
  const heapBefore = process.memoryUsage().heapUsed
  // Small buffers on its side, so its queue on ours fills sooner; a send that cannot go ends the flood.
  const flooder = new Dealer({ linger: 0, receiveHighWaterMark: 1, receiveBufferSize: 4096, sendTimeout: 1000 })
  flooder.connect(at)
  await flooder.send(codecs[2].encode({ id: MessageId.OHAI }))
  const hugz = codecs[2].encode({ id: MessageId.HUGZ })
  let flooded = 0
  let stop = false
  const flooding = (async () => {
    try {
      while (!stop) {
        await flooder.send(hugz)
        if (++flooded % 1000 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
    } catch {
      // the server stopped reading it: the flood is over
    }
  })()
  try {
    await eventually(() => flooded > 20_000, 20_000, 'the flood under way')
    const good = await client(at, { version: 2 })
    await good.hello()
    await good.until(() => good.last(MessageId.OHAI_OK) !== undefined, 10_000, 'OHAI-OK for the good client')
    await good.subscribe('/', { RESYNC: '1' })
    await good.until(() => good.files.size === 200, 20_000, 'the good client completing')
    for (const [name, content] of Object.entries(files)) assert.equal(sha1(good.files.get(`/${name}`)!), sha1(content), name)
    // Long enough for the flooder's queue to fill on a quiet machine (it is then dropped, once).
    await eventually(() => drops.length > 0 || flooded > 400_000, 60_000, 'the flood going on').catch(() => undefined)
  } finally {
    stop = true
    await flooding
    flooder.close()
  }
  const grown = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20
  assert.ok(grown < 64, `heap grew by ${grown.toFixed(0)} MiB during a flood of ${flooded} messages`)
  // Dropped at most once or so (one line each), not once per message as before.
  assert.ok(drops.length <= 3, `the flooder was dropped ${drops.length} times: ${drops.slice(0, 3).join(' | ')}`)
})

for (const version of [1, 2] as const) {
  test(`a version ${version} client that grants credit again and again but never reads: content in flight to it stops at twice the credit cap`, async () => {
    const source = join(dir, `hog${version}`)
    await mkdir(source, { recursive: true })
    const hogFiles = new Map<string, Buffer>()
    for (let i = 0; i < 8; i++) hogFiles.set(`big${i}.bin`, randomBytes(2_000_000))
    for (const [name, content] of hogFiles) await writeFile(join(source, name), content)
    const creditCap = 1_000_000
    const { server, at } = await serve({ creditCap, chunkSize: 250_000 }, [[source, '/']])
    const hog = new Dealer({ linger: 0, receiveHighWaterMark: 1, receiveBufferSize: 4096 })
    try {
      hog.connect(at)
      await hog.send(codecs[version].encode({ id: MessageId.OHAI }))
      await hog.send(codecs[version].encode({ id: MessageId.ICANHAZ, path: '/', options: new Map([['RESYNC', '1']]), cache: new Map() }))
      // Credit each time the server moves on, claiming to have read nothing (sequence 0), never answering HUGZ.
      let last = -1
      for (let round = 0; round < 200 && server.stats.contentBytes !== last; round++) {
        last = server.stats.contentBytes
        await hog.send(codecs[version].encode({ id: MessageId.NOM, credit: 2n ** 64n - 1n, sequence: 0n }))
        await eventually(() => server.stats.contentBytes !== last, 1000, 'progress').catch(() => undefined)
      }
      assert.ok(server.stats.contentBytes <= 2 * creditCap + 250_000, `${server.stats.contentBytes} octets sent to a client that read nothing`)
      // An honest client (it echoes the sequence it read, or answers HUGZ) gets the whole tree from the same server.
      const good = await client(at, { version })
      await good.hello()
      await good.until(() => good.last(MessageId.OHAI_OK) !== undefined, 5000, 'OHAI-OK')
      await good.subscribe('/', { RESYNC: '1' })
      await good.until(() => good.files.size === 8, 20_000, 'the honest client completing')
      for (const [name, content] of hogFiles) assert.equal(sha1(good.files.get(`/${name}`)!), sha1(content), name)
    } finally {
      hog.close()
    }
  })
}
