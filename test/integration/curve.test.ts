/**
 * CURVE (CurveZMQ) between our server and our client, over real sockets and folders: the
 * right server key mirrors a tree, a wrong key or none gets nothing and a clear error in
 * bounded time, PLAIN works on top, and a TCP proxy in the middle records the bytes to show
 * that neither the password nor the content crosses the wire in clear (and does without CURVE).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import {
  SettingsError,
  Client,
  CurveHandshakeError,
  generateCurveKeyPair,
  parseZpl,
  Server,
  writeCurveKeyPair,
  type ClientOptions,
  type ServerOptions,
} from '../../src/index.js'
import { files, waitFor } from '../fixtures/client-events.js'
import { digests, write } from '../fixtures/tree.js'

const TREE = {
  'a.txt': 'alpha\n',
  'nested/b.bin': Buffer.alloc(200_000, 7),
  'nested/deeper/c.txt': 'gamma\n',
}

for (const transport of ['tcp', 'ipc'] as const) {
  describe(`CURVE over ${transport}`, () => {
    let dir: string
    const keys = generateCurveKeyPair()
    const closers: Array<() => Promise<void>> = []
    let count = 0
    const endpoint = (): string => (transport === 'tcp' ? 'tcp://127.0.0.1:*' : `ipc://${join(dir, `s${count++}.sock`)}`)

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fmq-curve-'))
      await write(join(dir, 'send'), TREE)
    })
    after(async () => {
      for (const close of closers.reverse()) await close()
      await rm(dir, { recursive: true, force: true })
    })

    async function server(options: Partial<ServerOptions> = {}): Promise<string> {
      const s = new Server({ heartbeat: 200, curve: keys, ...options })
      closers.push(() => s.close())
      await s.publish(join(dir, 'send'), '/')
      return s.bind(endpoint())
    }

    function client(name: string, options: Partial<ClientOptions> = {}): { client: Client; inbox: string } {
      const inbox = join(dir, name)
      const c = new Client({ inbox, resync: true, heartbeat: 200, greetingTimeout: 1000, ...options })
      c.on('error', () => undefined)
      closers.push(() => c.close())
      return { client: c, inbox }
    }

    test('the right server key: the tree arrives whole', async () => {
      const at = await server()
      const { client: c, inbox } = client('right', { curveServerKey: keys.publicKey })
      const synced = waitFor(c, (event) => event.type === 'synced', 20_000, 'synced')
      await c.connect(at)
      await c.subscribe('/')
      await synced
      assert.deepEqual(await digests(inbox), await digests(join(dir, 'send')))
    })

    test('the key per connect() overrides the client-wide one', async () => {
      const at = await server()
      const { client: c, inbox } = client('per-connect', { curveServerKey: generateCurveKeyPair().publicKey })
      const synced = waitFor(c, (event) => event.type === 'synced', 20_000, 'synced')
      await c.connect(at, { curveServerKey: keys.publicKey })
      await c.subscribe('/')
      await synced
      assert.deepEqual(await digests(inbox), await digests(join(dir, 'send')))
    })

    test('a wrong server key: no file, a CurveHandshakeError within 10 s, never connected', async () => {
      const at = await server()
      const { client: c, inbox } = client('wrong', { curveServerKey: generateCurveKeyPair().publicKey })
      let connected = false
      c.on('connected', () => (connected = true))
      const failed = waitFor(c, (event) => event.type === 'error' && event.error instanceof CurveHandshakeError, 10_000, 'a CurveHandshakeError')
      await c.connect(at)
      void c.subscribe('/').catch(() => undefined)
      const event = await failed
      assert.ok(event.type === 'error' && event.error instanceof CurveHandshakeError)
      assert.equal(event.endpoint, at)
      assert.equal(event.error.problem, 'curve')
      assert.match(event.error.message, /check the server key/)
      // Meanwhile a client with the right key gets everything from the same server.
      const good = client('wrong-control', { curveServerKey: keys.publicKey })
      const synced = waitFor(good.client, (e) => e.type === 'synced', 20_000, 'synced (right key)')
      await good.client.connect(at)
      await good.client.subscribe('/')
      await synced
      assert.equal(connected, false)
      assert.deepEqual(await files(inbox), [])
    })

    test('no server key at all: no file, a handshake error that says the server wants CURVE', async () => {
      const at = await server()
      const { client: c, inbox } = client('none')
      let connected = false
      c.on('connected', () => (connected = true))
      const failed = waitFor(c, (event) => event.type === 'error' && event.error instanceof CurveHandshakeError, 10_000, 'a CurveHandshakeError')
      await c.connect(at)
      void c.subscribe('/').catch(() => undefined)
      const event = await failed
      assert.ok(event.type === 'error' && event.error instanceof CurveHandshakeError)
      assert.equal(event.error.curve, false)
      assert.match(event.error.message, /CURVE/)
      assert.equal(connected, false)
      assert.deepEqual(await files(inbox), [])
    })

    test('a server key for a server without CURVE: no file, a handshake error', async () => {
      const at = await server({ curve: undefined })
      const { client: c, inbox } = client('not-curve', { curveServerKey: keys.publicKey })
      const failed = waitFor(c, (event) => event.type === 'error' && event.error instanceof CurveHandshakeError, 10_000, 'a CurveHandshakeError')
      await c.connect(at)
      void c.subscribe('/').catch(() => undefined)
      const event = await failed
      assert.ok(event.type === 'error' && event.error instanceof CurveHandshakeError)
      assert.equal(event.error.curve, true)
      assert.deepEqual(await files(inbox), [])
    })

    test('PLAIN over CURVE: the right password gets the tree, a wrong one is refused', async () => {
      const at = await server({ anonymous: false, plain: true, accounts: [{ login: 'reader', password: 'pw-right', group: 'guest' }], loginDelay: 10 })
      const good = client('plain-good', { curveServerKey: keys.publicKey, login: 'reader', password: 'pw-right' })
      const synced = waitFor(good.client, (event) => event.type === 'synced', 20_000, 'synced')
      await good.client.connect(at)
      await good.client.subscribe('/')
      await synced
      assert.deepEqual(await digests(good.inbox), await digests(join(dir, 'send')))

      const bad = client('plain-bad', { curveServerKey: keys.publicKey, login: 'reader', password: 'pw-wrong' })
      const denied = waitFor(bad.client, (event) => event.type === 'access-denied', 20_000, 'access-denied')
      await bad.client.connect(at)
      void bad.client.subscribe('/').catch(() => undefined)
      await denied
      assert.deepEqual(await files(bad.inbox), [])
    })
  })
}

describe('CURVE from a ZPL config (server.configure)', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-curve-config-'))
    await write(join(dir, 'send'), TREE)
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('security/curve/keys turns CURVE on: the right key gets the tree; a switch without keys is refused with its line', async () => {
    const keys = generateCurveKeyPair()
    await writeCurveKeyPair(join(dir, 'server'), keys)
    const server = new Server({ heartbeat: 200 })
    const client = new Client({ inbox: join(dir, 'inbox'), resync: true, heartbeat: 200, curveServerKey: keys.publicKey })
    client.on('error', () => undefined)
    try {
      await server.configure(parseZpl(`publish\n    location = "${join(dir, 'send')}"\nsecurity\n    curve = 1\n        keys = "${join(dir, 'server')}"\n`))
      assert.equal(server.curve, true)
      const at = await server.bind('tcp://127.0.0.1:*')
      const synced = waitFor(client, (event) => event.type === 'synced', 20_000, 'synced')
      await client.connect(at)
      await client.subscribe('/')
      await synced
      assert.deepEqual(await digests(join(dir, 'inbox')), await digests(join(dir, 'send')))
    } finally {
      await client.close()
      await server.close()
    }

    const bare = new Server()
    try {
      await assert.rejects(bare.configure(parseZpl('security\n    anonymous = 1\n    curve = 1\n')), (error: unknown) => error instanceof SettingsError && error.line === 3)
      await bare.configure(parseZpl(`security\n    curve = 0\n        keys = "${join(dir, 'server')}"\n`))
      assert.equal(bare.curve, false)
    } finally {
      await bare.close()
    }
  })
})

/** A TCP proxy to `target` that keeps every byte it forwards, both ways. */
async function recordingProxy(target: { host: string; port: number }): Promise<{ port: number; bytes: () => Buffer; close: () => Promise<void> }> {
  const chunks: Buffer[] = []
  const sockets = new Set<Socket>()
  const proxy: NetServer = createServer((inbound) => {
    const outbound = createConnection(target)
    for (const socket of [inbound, outbound]) {
      sockets.add(socket)
      socket.on('error', () => undefined)
      socket.on('close', () => sockets.delete(socket))
    }
    inbound.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)))
    outbound.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)))
    inbound.pipe(outbound)
    outbound.pipe(inbound)
    inbound.on('close', () => outbound.destroy())
    outbound.on('close', () => inbound.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  return {
    port: (proxy.address() as AddressInfo).port,
    bytes: () => Buffer.concat(chunks),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    },
  }
}

describe('CURVE on the wire (tcp, through a recording proxy)', () => {
  let dir: string
  const PASSWORD = 'pw-Tr0ub4dor-on-the-wire'
  const CONTENT = 'DISTINCTIVE-CONTENT-4f1d9c-curve-wire-check'

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-curve-wire-'))
    await write(join(dir, 'send'), { 'secret.txt': `${CONTENT}\n`.repeat(50) })
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** One PLAIN transfer through the proxy; what crossed the wire. */
  async function transfer(name: string, curve: boolean): Promise<Buffer> {
    const keys = generateCurveKeyPair()
    const server = new Server({
      heartbeat: 200,
      anonymous: false,
      plain: true,
      accounts: [{ login: 'reader', password: PASSWORD, group: 'guest' }],
      ...(curve ? { curve: keys } : {}),
    })
    await server.publish(join(dir, 'send'), '/')
    const at = await server.bind('tcp://127.0.0.1:*')
    const proxy = await recordingProxy({ host: '127.0.0.1', port: Number(at.slice(at.lastIndexOf(':') + 1)) })
    const inbox = join(dir, name)
    await mkdir(inbox, { recursive: true })
    const client = new Client({ inbox, resync: true, heartbeat: 200, login: 'reader', password: PASSWORD, ...(curve ? { curveServerKey: keys.publicKey } : {}) })
    client.on('error', () => undefined)
    try {
      const synced = waitFor(client, (event) => event.type === 'synced', 20_000, 'synced')
      await client.connect(`tcp://127.0.0.1:${proxy.port}`)
      await client.subscribe('/')
      await synced
      assert.deepEqual(await digests(inbox), await digests(join(dir, 'send')), 'the file arrived')
    } finally {
      await client.close()
      await server.close()
      await proxy.close()
    }
    return proxy.bytes()
  }

  test('without CURVE (control): the password and the content are on the wire in clear', async () => {
    const wire = await transfer('clear', false)
    assert.ok(wire.includes(PASSWORD), 'the password crossed in clear')
    assert.ok(wire.includes(CONTENT), 'the content crossed in clear')
  })

  test('with CURVE: neither the password nor the content appears in the bytes', async () => {
    const wire = await transfer('encrypted', true)
    assert.ok(wire.length > 50 * CONTENT.length, `the transfer went through the proxy (${wire.length} octets)`)
    assert.equal(wire.includes(PASSWORD), false, 'the password is not in clear')
    assert.equal(wire.includes(CONTENT), false, 'the content is not in clear')
    assert.equal(wire.includes('reader'), false, 'the login is not in clear either')
    assert.ok(wire.includes('CURVE'), 'the ZMTP greeting names the CURVE mechanism')
  })
})
