/**
 * CURVE servers that let in only the client keys they know (a ZAP handler, as ssh's
 * authorized_keys): a known key mirrors the tree, any other key gets nothing and an error
 * that says so, and a server without a list in the same process still lets any key in.
 * Then the same through `fmq keygen`, `fmq server --client-keys` and `fmq client --curve-keys`.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Client, CurveHandshakeError, generateCurveKeyPair, loadCurvePublicKeys, Server, writeCurveKeyPair } from '../../src/index.js'
import { files, waitFor } from '../fixtures/client-events.js'
import { digests, write } from '../fixtures/tree.js'
import { FmqProcess } from '../peers/fmq-process.js'

const TREE = { 'a.txt': 'alpha\n', 'nested/b.bin': Buffer.alloc(300_000, 3) }

let dir: string
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-curve-clients-'))
  await write(join(dir, 'send'), TREE)
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

test('only the listed client keys get in; other keys get a CurveHandshakeError saying so; a server without a list lets any key in', async () => {
  const serverKeys = generateCurveKeyPair()
  const known = generateCurveKeyPair()
  const stranger = generateCurveKeyPair()
  const strict = new Server({ heartbeat: 200, curve: serverKeys, curveClients: [known.publicKey] })
  const open = new Server({ heartbeat: 200, curve: serverKeys })
  closers.push(() => strict.close(), () => open.close())
  for (const server of [strict, open]) await server.publish(join(dir, 'send'), '/')
  const strictAt = await strict.bind('tcp://127.0.0.1:*')
  const openAt = await open.bind('tcp://127.0.0.1:*')

  const client = (name: string, pair: { publicKey: string; secretKey: string }) => {
    const inbox = join(dir, name)
    const c = new Client({ inbox, resync: true, heartbeat: 200, greetingTimeout: 1000, curveServerKey: serverKeys.publicKey, curvePublicKey: pair.publicKey, curveSecretKey: pair.secretKey })
    c.on('error', () => undefined)
    closers.push(() => c.close())
    return { client: c, inbox }
  }

  const good = client('known', known)
  const synced = waitFor(good.client, (event) => event.type === 'synced', 20_000, 'synced (known key)')
  await good.client.connect(strictAt)
  await good.client.subscribe('/')
  await synced
  assert.deepEqual(await digests(good.inbox), await digests(join(dir, 'send')))

  const bad = client('stranger', stranger)
  let connected = false
  bad.client.on('connected', () => (connected = true))
  const refused = waitFor(bad.client, (event) => event.type === 'error' && event.error instanceof CurveHandshakeError, 10_000, 'a CurveHandshakeError')
  await bad.client.connect(strictAt)
  void bad.client.subscribe('/').catch(() => undefined)
  const event = await refused
  assert.ok(event.type === 'error' && event.error instanceof CurveHandshakeError)
  assert.equal(event.error.problem, 'refused')
  assert.match(event.error.message, /does not let this client's key in/)

  // The same stranger is welcome where no list is kept, in the same process.
  const elsewhere = client('stranger-open', stranger)
  const openSynced = waitFor(elsewhere.client, (e) => e.type === 'synced', 20_000, 'synced (no list)')
  await elsewhere.client.connect(openAt)
  await elsewhere.client.subscribe('/')
  await openSynced
  assert.equal(connected, false)
  assert.deepEqual(await files(bad.inbox), [])
})

test('fmq server --client-keys DIR and fmq client --curve-keys: a known client mirrors, an unknown one is refused with exit 1', async () => {
  const keys = join(dir, 'keys')
  const clients = join(keys, 'clients')
  await mkdir(clients, { recursive: true })
  await writeCurveKeyPair(join(keys, 'server'), generateCurveKeyPair())
  await writeCurveKeyPair(join(keys, 'alice'), generateCurveKeyPair())
  await writeCurveKeyPair(join(keys, 'mallory'), generateCurveKeyPair())
  await copyFile(join(keys, 'alice'), join(clients, 'alice'))
  assert.equal((await loadCurvePublicKeys(clients)).length, 1)

  const server = new FmqProcess(['server', '-p', join(dir, 'send'), '-b', 'tcp://127.0.0.1:*', '--curve-keys', join(keys, 'server'), '--client-keys', clients])
  closers.push(async () => {
    server.child.kill('SIGTERM')
    await server.exited
  })
  const listening = await server.waitFor((line) => line.type === 'listening', 20_000, 'listening')
  const at = (listening.endpoints as string[] | undefined)?.[0] ?? String(listening.endpoint)
  assert.ok(server.lines.some((line) => line.type === 'curve' && line.clients === 1), 'the server says how many client keys it lets in')

  const inbox = join(dir, 'cli-alice')
  await mkdir(inbox)
  const alice = new FmqProcess(['client', '-C', at, '-i', inbox, '--resync', '--once', '--server-key', join(keys, 'server'), '--curve-keys', join(keys, 'alice')])
  assert.equal(await alice.exited, 0, `alice: ${alice.stderr.join(' | ')}`)
  assert.deepEqual(await digests(inbox), await digests(join(dir, 'send')))

  const other = join(dir, 'cli-mallory')
  await mkdir(other)
  const mallory = new FmqProcess(['client', '-C', at, '-i', other, '--resync', '--once', '--connect-timeout', '3000', '--server-key', join(keys, 'server'), '--curve-keys', join(keys, 'mallory')])
  assert.equal(await mallory.exited, 1)
  assert.match(mallory.stderr.join('\n'), /does not let this client's key in/)
  assert.deepEqual(await files(other), [])
})
