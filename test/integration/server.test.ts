import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Server } from '../../src/server/index.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { hashPassword } from '../../src/security/password.js'
import { ReferenceClient } from '../peers/reference-client.js'

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')

async function tree(root: string, files: Record<string, Buffer>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(root, name, '..'), { recursive: true })
    await writeFile(join(root, name), content)
  }
}

for (const transport of ['tcp', 'ipc'] as const) {
  describe(`server over ${transport}`, () => {
    let dir: string
    const endpoint = () => (transport === 'tcp' ? 'tcp://127.0.0.1:*' : `ipc://${join(dir, `s${Math.random().toString(36).slice(2)}.sock`)}`)
    const servers: Server[] = []
    const clients: ReferenceClient[] = []

    async function serve(options: ConstructorParameters<typeof Server>[0], mounts: Array<[string, string]>) {
      const server = new Server({ heartbeat: 200, loginDelay: 50, ...options })
      servers.push(server)
      for (const [location, virtual] of mounts) await server.publish(location, virtual)
      return { server, at: await server.bind(endpoint()) }
    }

    async function client(at: string, options: ConstructorParameters<typeof ReferenceClient>[0]) {
      const peer = new ReferenceClient(options)
      clients.push(peer)
      await peer.connect(at)
      return peer
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fmq-server-'))
    })
    after(async () => {
      for (const c of clients) await c.close()
      for (const s of servers) await s.close()
      await rm(dir, { recursive: true, force: true })
    })

    for (const version of [1, 2] as const) {
      test(`a version ${version} client receives a whole tree byte for byte, then live changes`, async () => {
        const source = join(dir, `tree-v${version}`)
        const files: Record<string, Buffer> = {
          'empty.txt': Buffer.alloc(0),
          'big.bin': randomBytes(3_500_000),
          'a/b/c/deep.txt': Buffer.from('deep'),
        }
        for (let i = 0; i < 50; i++) files[`small/${i % 5}/f${i}.dat`] = randomBytes(1000 + i)
        await tree(source, files)
        const { at } = await serve({}, [[source, '/']])
        const peer = await client(at, { version })
        await peer.hello()
        await peer.until(() => peer.last(MessageId.OHAI_OK) !== undefined, 5000, 'OHAI-OK')
        await peer.subscribe('/', { RESYNC: '1' })
        await peer.until(() => peer.files.size === Object.keys(files).length, 10_000, 'all files')
        for (const [name, content] of Object.entries(files)) {
          assert.equal(sha1(peer.files.get(`/${name}`)!), sha1(content), name)
        }
        // Every final chunk is empty; the v2 server marks it eof = 1, the v1 server never.
        const ends = peer.received.filter((m) => m.id === MessageId.CHEEZBURGER && m.chunk.length === 0)
        assert.ok(ends.every((m) => m.id === MessageId.CHEEZBURGER && m.eof === (version === 2 ? 1 : 0)))

        await writeFile(join(source, 'new.txt'), 'fresh')
        await writeFile(join(source, 'a/b/c/deep.txt'), 'changed')
        await unlink(join(source, 'empty.txt'))
        await peer.until(
          () => peer.files.get('/new.txt')?.toString() === 'fresh' &&
            peer.files.get('/a/b/c/deep.txt')?.toString() === 'changed' &&
            peer.deleted.includes('/empty.txt'),
          10_000, 'live changes')
      })
    }

    test('one server serves a version 1 client and a version 2 client at the same time', async () => {
      const source = join(dir, 'both')
      const files: Record<string, Buffer> = { 'x/one.bin': randomBytes(1_500_000), 'two.txt': Buffer.from('two') }
      await tree(source, files)
      const { at } = await serve({}, [[source, '/']])
      const v1 = await client(at, { version: 1 })
      const v2 = await client(at, { version: 2 })
      await Promise.all([v1.hello(), v2.hello()])
      await Promise.all([v1.subscribe('/', { RESYNC: '1' }), v2.until(() => v2.last(MessageId.OHAI_OK) !== undefined, 5000).then(() => v2.subscribe('/', { RESYNC: '1' }))])
      await Promise.all([v1, v2].map((peer) => peer.until(() => peer.files.size === 2, 10_000, 'both files')))
      for (const peer of [v1, v2]) for (const [name, content] of Object.entries(files)) assert.equal(sha1(peer.files.get(`/${name}`)!), sha1(content))
    })

    test('PLAIN: right password and hashed password get in, a wrong one gets SRSLY', async () => {
      const source = join(dir, 'plain')
      await tree(source, { 'secret.txt': Buffer.from('s3cret') })
      const hash = await hashPassword('hunter2')
      const { at } = await serve(
        { anonymous: false, plain: true, accounts: [{ login: 'alice', password: 'wonderland' }, { login: 'bob', hash }] },
        [[source, '/']],
      )
      for (const [login, password] of [['alice', 'wonderland'], ['bob', 'hunter2']] as const) {
        const peer = await client(at, { version: 2, login, password })
        await peer.hello()
        await peer.until(() => peer.last(MessageId.OHAI_OK) !== undefined, 5000, `${login} accepted`)
        await peer.subscribe('/', { RESYNC: '1' })
        await peer.until(() => peer.files.get('/secret.txt')?.toString() === 's3cret', 5000, 'file')
      }
      const intruder = await client(at, { version: 1, login: 'alice', password: 'guess' })
      await intruder.hello()
      await intruder.until(() => intruder.last(MessageId.SRSLY) !== undefined, 5000, 'SRSLY')
      assert.equal(intruder.last(MessageId.OHAI_OK), undefined)
      await intruder.subscribe('/', { RESYNC: '1' })
      await intruder.until(() => intruder.last(MessageId.RTFM) !== undefined, 5000, 'RTFM after refusal')
      assert.equal(intruder.files.size, 0)
    })

    test('anonymous refused when disabled and no mechanism is configured', async () => {
      const { at } = await serve({ anonymous: false, plain: false }, [])
      const peer = await client(at, { version: 2 })
      await peer.hello()
      await peer.until(() => peer.last(MessageId.SRSLY) !== undefined, 5000, 'SRSLY')
    })

    test('subscriptions match on path segments; overlapping mounts resolve to the longest', async () => {
      const photos = join(dir, 'photos')
      const photos2 = join(dir, 'photos2')
      const special = join(dir, 'special')
      await tree(photos, { 'a.jpg': Buffer.from('a'), 'x/b.jpg': Buffer.from('b') })
      await tree(photos2, { 'c.jpg': Buffer.from('c') })
      await tree(special, { 'b.jpg': Buffer.from('special b') })
      const { at } = await serve({}, [[photos, '/photos'], [photos2, '/photos2'], [special, '/photos/x']])
      const peer = await client(at, { version: 2 })
      await peer.hello()
      await peer.subscribe('/photos', { RESYNC: '1' })
      await peer.until(() => peer.last(MessageId.CHEEZBURGER) !== undefined && peer.files.size === 2, 5000)
      assert.deepEqual([...peer.files.keys()].sort(), ['/photos/a.jpg', '/photos/x/b.jpg'])
      assert.equal(peer.files.get('/photos/x/b.jpg')!.toString(), 'special b')
    })

    test('RESYNC skips files whose SHA-1 the client holds, by relative and absolute keys', async () => {
      const source = join(dir, 'resync')
      const files: Record<string, Buffer> = {}
      for (let i = 0; i < 10; i++) files[`f${i}.bin`] = randomBytes(100_000)
      await tree(source, files)
      const { at } = await serve({}, [[source, '/data']])
      const cache: Record<string, string> = {}
      for (let i = 0; i < 5; i++) cache[i % 2 ? `f${i}.bin` : `/data/f${i}.bin`] = sha1(files[`f${i}.bin`]!).toUpperCase()
      const peer = await client(at, { version: 2 })
      await peer.hello()
      await peer.subscribe('/data', { RESYNC: '1' }, cache)
      await peer.until(() => peer.files.size === 5, 5000, 'the other half')
      assert.deepEqual([...peer.files.keys()].sort(), ['/data/f5.bin', '/data/f6.bin', '/data/f7.bin', '/data/f8.bin', '/data/f9.bin'])
      assert.equal(peer.contentBytes, 500_000)
    })


    test('a version 2 reference client with a big inbox: its whole cache in one ICANHAZ (about 230 KiB) is taken, not cut off', async () => {
      // The reference client sends its cache in one message; ours accepted 64 KiB and libzmq cut
      // the connection without a word to either side.
      const source = join(dir, 'big-cache')
      const files: Record<string, Buffer> = {}
      for (let i = 0; i < 3000; i++) files[`folder${i % 30}/file-with-a-long-name-${i}.txt`] = Buffer.from(`content ${i}\n`)
      await tree(source, files)
      const { at } = await serve({}, [[source, '/data']])
      const cache: Record<string, string> = {}
      for (const [name, content] of Object.entries(files)) if (!name.endsWith('-7.txt')) cache[name] = sha1(content)
      const octets = Object.entries(cache).reduce((sum, [key, value]) => sum + key.length + value.length + 5, 0)
      assert.ok(octets > 200 * 1024, `the cache is ${octets} octets`)
      const peer = await client(at, { version: 2 })
      await peer.hello()
      await peer.subscribe('/data', { RESYNC: '1' }, cache)
      await peer.until(() => peer.files.size === 1, 20_000, 'the one file the cache lacks')
      assert.deepEqual([...peer.files.keys()], ['/data/folder7/file-with-a-long-name-7.txt'])
      assert.ok(peer.received.some((message) => message.id === MessageId.ICANHAZ_OK))
    })
    test('credit is honoured: a client that grants N octets and stops gets at most N; huge grants are capped', async () => {
      const source = join(dir, 'credit')
      await tree(source, { 'big.bin': randomBytes(3_000_000) })
      const { at } = await serve({ creditCap: 2_000_000 }, [[source, '/']])
      const peer = await client(at, { version: 2, firstCredit: 1_234_567, slice: 0 })
      await peer.hello()
      await peer.subscribe('/', { RESYNC: '1' })
      await peer.until(() => peer.contentBytes === 1_234_567, 5000, 'the credit granted')
      await peer.send({ id: MessageId.HUGZ })
      await peer.until(() => peer.last(MessageId.HUGZ_OK) !== undefined, 5000, 'HUGZ-OK')
      assert.equal(peer.contentBytes, 1_234_567)
      await peer.send({ id: MessageId.NOM, credit: 2n ** 64n - 1n, sequence: 0n })
      await peer.until(() => peer.files.has('/big.bin'), 5000, 'the capped rest')
      assert.equal(peer.files.get('/big.bin')?.length, 3_000_000)
      const grants = peer.received.filter((m) => m.id === MessageId.CHEEZBURGER && m.offset >= 1_234_567n && m.chunk.length > 0)
      assert.ok(grants.every((m) => m.id === MessageId.CHEEZBURGER && m.chunk.length <= 2_000_000))
    })

    test('RTFM for unexpected commands and unknown versions; no answer to input without the signature', async () => {
      const { at } = await serve({}, [])
      const early = await client(at, { version: 2 })
      await early.send({ id: MessageId.NOM, credit: 1n, sequence: 0n })
      await early.until(() => early.last(MessageId.RTFM) !== undefined, 5000, 'RTFM')
      const v3 = await client(at, { version: 2 })
      await v3.sendRaw([Buffer.from([0xaa, 0xa3, 1, 6, ...Buffer.from('FILEMQ'), 0, 3])])
      await v3.until(() => v3.last(MessageId.RTFM) !== undefined, 5000, 'RTFM for version 3')
      const stranger = await client(at, { version: 2 })
      await stranger.sendRaw([Buffer.from('GET / HTTP/1.0\r\n\r\n')])
      await stranger.hello()
      await stranger.until(() => stranger.received.length > 0, 5000, 'OHAI-OK')
      assert.deepEqual(stranger.received.map((m) => m.id), [MessageId.OHAI_OK])
    })

    test('a hostile client sending garbage does not disturb a well-behaved one', async () => {
      const source = join(dir, 'hostile')
      const files: Record<string, Buffer> = {}
      for (let i = 0; i < 20; i++) files[`f${i}`] = randomBytes(200_000)
      await tree(source, files)
      const { at } = await serve({}, [[source, '/']])
      const good = await client(at, { version: 1 })
      const bad = await client(at, { version: 2 })
      await good.hello()
      await good.subscribe('/', { RESYNC: '1' })
      await bad.hello()
      const garbage = [
        [randomBytes(100)],
        [Buffer.from([0xaa, 0xa3, 5, 0xff, 0xff, 0xff, 0xff])],
        [Buffer.from([0xaa, 0xa3, 8])],
        [Buffer.from([0xaa, 0xa3]), Buffer.alloc(10)],
        [Buffer.from([0xaa, 0xa3, 1, 6, ...Buffer.from('FILEMQ'), 0, 2]), randomBytes(10)],
        [Buffer.alloc(200_000)],
      ]
      for (let round = 0; round < 20; round++) for (const frames of garbage) await bad.sendRaw(frames)
      await good.until(() => good.files.size === 20, 10_000, 'the good client completing')
      for (const [name, content] of Object.entries(files)) assert.equal(sha1(good.files.get(`/${name}`)!), sha1(content))
    })
  })
}

describe('server: heartbeats, links and files that change while sent', () => {
  let dir: string
  const servers: Server[] = []
  const clients: ReferenceClient[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-server2-'))
  })
  after(async () => {
    for (const c of clients) await c.close()
    for (const s of servers) await s.close()
    await rm(dir, { recursive: true, force: true })
  })
  async function start(options: ConstructorParameters<typeof Server>[0], source?: string) {
    const server = new Server({ heartbeat: 100, ...options })
    servers.push(server)
    if (source) await server.publish(source, '/')
    return server.bind('tcp://127.0.0.1:*')
  }
  async function peer(at: string, options: ConstructorParameters<typeof ReferenceClient>[0]) {
    const c = new ReferenceClient(options)
    clients.push(c)
    await c.connect(at)
    return c
  }

  test('a version 1 client is heartbeated; one that stops answering is forgotten and then gets RTFM', async () => {
    const at = await start({ expiry: 6 })
    const alive = await peer(at, { version: 1 })
    await alive.hello()
    await alive.until(() => alive.received.filter((m) => m.id === MessageId.HUGZ).length >= 5, 5000, 'five HUGZ')
    await alive.send({ id: MessageId.ICANHAZ, path: '/', options: new Map(), cache: new Map() })
    await alive.until(() => alive.last(MessageId.ICANHAZ_OK) !== undefined, 5000, 'still known')

    const server = servers.at(-1)!
    const expired = new Promise<void>((resolve) => server.on('log', (_level, text) => { if (text.includes('expired')) resolve() }))
    const mute = await peer(at, { version: 1, answerHugz: false })
    await mute.hello()
    await mute.until(() => mute.received.filter((m) => m.id === MessageId.HUGZ).length >= 2, 5000, 'HUGZ')
    await expired
    await mute.send({ id: MessageId.ICANHAZ, path: '/', options: new Map(), cache: new Map() })
    await mute.until(() => mute.last(MessageId.RTFM) !== undefined, 5000, 'RTFM once forgotten')
    assert.equal(mute.last(MessageId.ICANHAZ_OK), undefined)
  })

  test('portable links publish their target; links leaving the mount are published only with followOutside', async () => {
    const source = join(dir, 'links')
    const outside = join(dir, 'outside')
    await tree(source, { 'real.txt': Buffer.from('real') })
    await tree(outside, { 'secret.txt': Buffer.from('secret') })
    await writeFile(join(source, 'alias.ln'), `${join(source, 'real.txt')}\n`)
    await writeFile(join(source, 'escape.ln'), `${join(outside, 'secret.txt')}\n`)
    const { symlink } = await import('node:fs/promises')
    await symlink(join(outside, 'secret.txt'), join(source, 'sym.txt'))
    const at = await start({}, source)
    const c = await peer(at, { version: 2 })
    await c.hello()
    await c.subscribe('/', { RESYNC: '1' })
    await c.until(() => c.files.size === 2, 5000, 'two files')
    assert.deepEqual([...c.files.keys()].sort(), ['/alias', '/real.txt'])
    assert.equal(c.files.get('/alias')!.toString(), 'real')
    // Only when the configuration says so are links leaving the mount followed.
    const open = await start({ followOutside: true }, source)
    const d = await peer(open, { version: 2 })
    await d.hello()
    await d.subscribe('/', { RESYNC: '1' })
    await d.until(() => d.files.size === 4, 5000, 'four files')
    assert.deepEqual([...d.files.keys()].sort(), ['/alias', '/escape', '/real.txt', '/sym.txt'])
    assert.equal(d.files.get('/escape')!.toString(), 'secret')
    assert.equal(d.files.get('/sym.txt')!.toString(), 'secret')
  })

  test('a file modified while it is being sent reaches the client whole, in its newest version', async () => {
    const source = join(dir, 'torn')
    const first = randomBytes(3_000_000)
    const second = randomBytes(2_500_000)
    await tree(source, { 'moving.bin': first })
    const at = await start({ settle: 20 }, source)
    const c = await peer(at, { version: 2, firstCredit: 1_500_000, slice: 0 })
    await c.hello()
    await c.subscribe('/', { RESYNC: '1' })
    await c.until(() => c.contentBytes === 1_500_000, 5000, 'half the file')
    await writeFile(join(source, 'moving.bin'), second)
    await c.grant(10_000_000)
    await c.until(() => c.files.has('/moving.bin') && sha1(c.files.get('/moving.bin')!) === sha1(second), 5000, 'the new version')
    for (const [, content] of c.files) assert.notEqual(sha1(content), sha1(Buffer.concat([first.subarray(0, 1_500_000), second.subarray(1_500_000)])))
  })
})
