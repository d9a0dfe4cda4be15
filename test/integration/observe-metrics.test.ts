/**
 * The HTTP status endpoint of a real server and a real client over tcp on 127.0.0.1: after a
 * known transfer of 40 files, /metrics (fetched over real HTTP) counts the tree's octets and
 * files on both sides; /api/status names the client's login, the mount and the server; no
 * password, hash or secret appears anywhere.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Client, hashPassword, observeClient, observeServer, Server, StatusServer, type ClientStatus, type ServerStatus } from '../../src/index.js'
import { write } from '../fixtures/tree.js'

const PASSWORD = 'Pa55-w0rd-never-shown'
const OTHER_PASSWORD = 'another-secret-word'
const FILES = 40

/** 40 files of different sizes, one of them larger than a chunk. */
const TREE: Record<string, Buffer> = {}
for (let i = 0; i < FILES; i++) TREE[`dir${i % 4}/file${i}.bin`] = Buffer.alloc(i === 7 ? 1_500_000 : 1000 + i * 37, i)
const TREE_SIZE = Object.values(TREE).reduce((sum, content) => sum + content.length, 0)

/** Resolves when `count` events came, or rejects after `ms`. */
function until(emitter: Client, event: 'delivered' | 'access-denied' | 'synced', count: number, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${seen} of ${count} '${event}' events`)), ms)
    emitter.on(event, () => {
      if (++seen < count) return
      clearTimeout(timer)
      resolve()
    })
  })
}

/** One sample of a Prometheus text exposition, summed over its labels. */
function sample(text: string, name: string): number {
  const values = text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)))
  assert.ok(values.length > 0, `${name} in the metrics`)
  return values.reduce((sum, value) => sum + value, 0)
}

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url)
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() }
}

describe('--http status endpoint: metrics and status after a known transfer', () => {
  let dir: string
  let hash: string
  let server: Server
  let endpoint: string
  let serverHttp: StatusServer
  let client: Client
  let clientHttp: StatusServer

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-observe-'))
    await write(join(dir, 'send'), TREE)
    hash = await hashPassword(OTHER_PASSWORD)
    server = new Server({
      anonymous: false,
      plain: true,
      loginDelay: 10,
      accounts: [
        { login: 'reader', password: PASSWORD },
        { login: 'admin', hash },
      ],
    })
    await server.publish(join(dir, 'send'), '/')
    endpoint = await server.bind('tcp://127.0.0.1:*')
    serverHttp = await StatusServer.start({ host: '127.0.0.1', port: 0 }, observeServer(server))

    client = new Client({ inbox: join(dir, 'inbox'), resync: true, login: 'reader', password: PASSWORD })
    const source = observeClient(client, { endpoints: [endpoint] })
    clientHttp = await StatusServer.start({ host: '127.0.0.1', port: 0 }, source)
    const delivered = until(client, 'delivered', FILES, 60_000)
    await client.connect(endpoint)
    await client.subscribe('/')
    await delivered
  })

  after(async () => {
    await clientHttp?.close()
    await client?.close()
    await serverHttp?.close()
    await server?.close()
    await rm(dir, { recursive: true, force: true })
  })

  test("the server's /metrics: the tree's octets and files sent, 40 published, one client", async () => {
    const { status, type, body } = await get(`${serverHttp.url}metrics`)
    assert.equal(status, 200)
    assert.match(type, /^text\/plain/)
    assert.equal(sample(body, 'fmq_bytes_sent_total'), TREE_SIZE)
    assert.equal(sample(body, 'fmq_files_sent_total'), FILES)
    assert.equal(sample(body, 'fmq_files_published'), FILES)
    assert.match(body, /^fmq_files_published\{mount="\/"\} 40$/m)
    assert.equal(sample(body, 'fmq_clients_connected'), 1)
    assert.equal(sample(body, 'fmq_logins_failed_total'), 0)
    assert.ok(sample(body, 'fmq_credit_outstanding_bytes') >= 0)
    assert.equal(sample(body, 'fmq_rescans_total'), 0)
    // prom-client's process metrics.
    assert.ok(sample(body, 'process_resident_memory_bytes') > 0)
    assert.match(body, /^nodejs_eventloop_lag_seconds /m)
  })

  test("the client's /metrics: the tree's octets and files delivered, connected, nothing pending", async () => {
    const { status, body } = await get(`${clientHttp.url}metrics`)
    assert.equal(status, 200)
    assert.equal(sample(body, 'fmq_files_delivered_total'), FILES)
    assert.equal(sample(body, 'fmq_bytes_received_total'), TREE_SIZE)
    assert.equal(sample(body, 'fmq_files_pending'), 0)
    assert.equal(sample(body, 'fmq_verify_failures_total'), 0)
    assert.equal(sample(body, 'fmq_resumes_total'), 0)
    assert.ok(body.includes(`fmq_connected{endpoint="${endpoint}"} 1`), body)
  })

  test("the server's /api/status names the client's login, the mount and the totals", async () => {
    const { status, type, body } = await get(`${serverHttp.url}api/status`)
    assert.equal(status, 200)
    assert.match(type, /^application\/json/)
    const json = JSON.parse(body) as ServerStatus
    assert.equal(json.role, 'server')
    assert.match(json.version, /^\d+\.\d+\.\d+/)
    assert.equal(json.mounts.length, 1)
    assert.deepEqual({ ...json.mounts[0], location: undefined }, { virtualPath: '/', location: undefined, files: FILES, bytes: TREE_SIZE })
    assert.equal(json.clients.length, 1)
    const [peer] = json.clients
    assert.equal(peer!.login, 'reader')
    assert.equal(peer!.protocolVersion, 2)
    assert.deepEqual(peer!.subscriptions, ['/'])
    assert.equal(peer!.bytesSent, TREE_SIZE)
    assert.equal(peer!.filesSent, FILES)
    assert.equal(json.totals.filesPublished, FILES)
  })

  test("the client's /api/status names the server, connected, with its subscription", async () => {
    const json = JSON.parse((await get(`${clientHttp.url}api/status`)).body) as ClientStatus
    assert.equal(json.role, 'client')
    assert.equal(json.servers.length, 1)
    const [entry] = json.servers
    assert.equal(entry!.endpoint, endpoint)
    assert.equal(entry!.state, 'connected')
    assert.deepEqual(entry!.subscriptions, ['/'])
    assert.equal(entry!.filesDelivered, FILES)
    assert.equal(entry!.pending, 0)
    // The last 20 deliveries, newest last.
    assert.equal(json.deliveries.length, 20)
    const names = new Set(Object.keys(TREE).map((name) => `/${name}`))
    assert.ok(json.deliveries.every((delivery) => delivery.endpoint === endpoint && names.has(delivery.virtualPath)), JSON.stringify(json.deliveries))
  })

  test('no password, hash or salt in any endpoint of either side', async () => {
    const salt = hash.split('$')[4]!
    for (const base of [serverHttp.url, clientHttp.url]) {
      for (const path of ['', 'api/status', 'metrics']) {
        const { body } = await get(`${base}${path}`)
        for (const secret of [PASSWORD, OTHER_PASSWORD, hash, salt, 'argon2']) assert.ok(!body.includes(secret), `${base}${path} shows ${secret}`)
      }
    }
  })

  test('a failed login is counted; the endpoint is read-only and names its pages', async () => {
    const intruder = new Client({ inbox: join(dir, 'intruder'), login: 'reader', password: 'wrong' })
    try {
      const denied = until(intruder, 'access-denied', 1, 20_000)
      await intruder.connect(endpoint)
      await denied
    } finally {
      await intruder.close()
    }
    assert.equal(sample((await get(`${serverHttp.url}metrics`)).body, 'fmq_logins_failed_total'), 1)
    const posted = await fetch(`${serverHttp.url}api/status`, { method: 'POST', body: '{}' })
    assert.equal(posted.status, 405)
    await posted.body?.cancel()
    const missing = await get(`${serverHttp.url}nothing-here`)
    assert.equal(missing.status, 404)
    assert.match(missing.body, /\/api\/status/)
  })
})

describe('--http status endpoint: a resumed file', () => {
  let dir: string
  let server: Server

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-observe-resume-'))
    await write(join(dir, 'send'), { 'big.bin': Buffer.alloc(6 * 1024 * 1024, 3) })
    server = new Server()
    await server.publish(join(dir, 'send'), '/')
  })

  after(async () => {
    await server?.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('a client that continues a partial file counts one resume', async () => {
    const endpoint = await server.bind('tcp://127.0.0.1:*')
    const inbox = join(dir, 'inbox')
    // Paced, so it can be stopped midway: 2 MiB/s.
    const first = new Client({ inbox, resync: true, rateLimit: 2 * 1024 * 1024 })
    const midway = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for 2 MiB of big.bin')), 30_000)
      first.on('progress', ({ bytes }) => {
        if (bytes < 2 * 1024 * 1024) return
        clearTimeout(timer)
        resolve()
      })
    })
    await first.connect(endpoint)
    await first.subscribe('/')
    await midway
    await first.close()

    const second = new Client({ inbox, resync: true })
    const http = await StatusServer.start({ host: '127.0.0.1', port: 0 }, observeClient(second, { endpoints: [endpoint] }))
    try {
      const delivered = until(second, 'delivered', 1, 30_000)
      await second.connect(endpoint)
      await second.subscribe('/')
      await delivered
      const { body } = await get(`${http.url}metrics`)
      assert.equal(sample(body, 'fmq_resumes_total'), 1)
      assert.equal(sample(body, 'fmq_files_delivered_total'), 1)
    } finally {
      await http.close()
      await second.close()
    }
  })
})

