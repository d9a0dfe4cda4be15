/**
 * Interoperation with the reference-like peers (test/peers) over time, with configs in the
 * reference's units (`heartbeat = 1`: seconds; `timeout = 3000`: milliseconds), PLAIN and
 * anonymous, version 1 and version 2 at once:
 * - our server, configured from a reference-style config file, publishes a folder that changes
 *   round after round (new files, a file of several chunks, changes, deletions) to
 *   reference-like clients that stay connected, with a quiet spell of four heartbeats in each
 *   round (longer than the version-1 expiry of three), and to a RESYNC late joiner each round
 *   that holds part of the tree already (its cache, keys relative and absolute);
 * - our client, configured from a reference-style client config file, mirrors reference-like
 *   servers that send files and deletions round after round, with the same quiet spells.
 * Nobody is expired or forgotten, no RTFM is sent, every change arrives, and nothing more.
 *
 * Duration: by default each part runs about 20 s (both together well under a minute in `npm
 * test`). The issue asks for several minutes: `FMQ_INTEROP=long` runs each part 3 minutes,
 * and `FMQ_INTEROP_SECONDS=N` runs each part N seconds, e.g.
 *
 *     FMQ_INTEROP=long node --import tsx --test test/integration/reference-interop.test.ts
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { Client, loadZplFile, Server } from '../../src/index.js'
import { resolveClientSettings } from '../../src/internal.js'
import { MessageId, type ProtocolVersion } from '../../src/protocol/generated/fmq_msg.js'
import { ReferenceClient } from '../peers/reference-client.js'
import { nextEvent, record, ReferencePeer, tempDir, withTimeout } from '../peers/reference-server.js'

const SECONDS = Number(process.env.FMQ_INTEROP_SECONDS ?? (process.env.FMQ_INTEROP === 'long' ? 180 : 20))
/** Heartbeats of quiet in each round: more than the three after which a version-1 peer forgets a silent one. */
const QUIET_BEATS = 4
const ACCOUNT = { login: 'reader', password: 'reader-secret' }
const sha1 = (content: Buffer): string => createHash('sha1').update(content).digest('hex')

/** A file's content for round `round`: mostly small, every third round one of several 1,000,000-octet chunks. */
function content(name: string, round: number): Buffer {
  const size = round % 3 === 2 ? 2_500_000 + round : 100 + round * 37
  const text = Buffer.from(`${name} in round ${round}\n`)
  return Buffer.concat([text, Buffer.alloc(Math.max(0, size - text.length), round % 251)])
}

/** Whether the files a peer holds are exactly `expected`, content included. */
function holds(files: ReadonlyMap<string, Buffer>, expected: ReadonlyMap<string, Buffer>): boolean {
  if (files.size !== expected.size) return false
  for (const [path, data] of expected) if (!files.get(path)?.equals(data)) return false
  return true
}

const describeTree = (files: ReadonlyMap<string, Buffer>): string => [...files.keys()].sort().join(', ')

describe(`reference interop: our server, reference-like clients, ${SECONDS} s, configs in reference units`, () => {
  /** One server, `access` as its config says, with its clients and late joiners, for SECONDS. */
  const run = async (access: 'anonymous' | 'plain'): Promise<void> => {
    const dir = await tempDir('fmq-interop-server-')
    const send = join(dir.path, 'send')
    await mkdir(send)
    const file = join(dir.path, 'server.cfg')
    const security =
      access === 'anonymous'
        ? ['security', '    anonymous = 1']
        : ['security', '    anonymous = 0', '    plain = 1', '        account', `            login = ${ACCOUNT.login}`, `            password = ${ACCOUNT.password}`]
    // As the reference's sample: heartbeat and monitor in seconds, timeout (v2) in milliseconds.
    await writeFile(file, ['server', '    monitor = 1', '    heartbeat = 1', '    timeout = 3000', 'publish', `    location = ${send}`, '    virtual = /', ...security, ''].join('\n'))
    const server = new Server()
    const logs: string[] = []
    server.on('log', (_level, text) => logs.push(text))
    const credentials = access === 'plain' ? ACCOUNT : {}
    const peers = [1, 2].map((version) => new ReferenceClient({ version: version as ProtocolVersion, ...credentials }))
    const joiners: ReferenceClient[] = []
    const expected = new Map<string, Buffer>()
    try {
      await server.configure(file)
      assert.deepEqual([server.options.heartbeat, server.options.maxSilence], [1000, 3000])
      const endpoint = await server.bind('tcp://127.0.0.1:*')
      for (const peer of peers) {
        await peer.connect(endpoint)
        await peer.hello()
        await peer.until(() => peer.last(MessageId.OHAI_OK) !== undefined, 10_000, `OHAI-OK (v${peer.options.version})`)
        await peer.subscribe('/', { RESYNC: '1' })
      }

      const started = Date.now()
      let round = 0
      while (round < 3 || Date.now() - started < SECONDS * 1000) {
        round++
        // Changes: a new file, the previous round's file changed, an older one deleted.
        const name = `/r${round}.bin`
        expected.set(name, content(name, round))
        await writeFile(join(send, name), expected.get(name)!)
        if (round >= 2) {
          const previous = `/r${round - 1}.bin`
          expected.set(previous, content(previous, round))
          await writeFile(join(send, previous), expected.get(previous)!)
        }
        if (round >= 4 && round % 2 === 0) {
          const old = `/r${round - 3}.bin`
          expected.delete(old)
          await unlink(join(send, old))
        }
        for (const peer of peers) {
          await peer.until(() => holds(peer.files, expected), 20_000, `${access}: round ${round} at the v${peer.options.version} client (has ${describeTree(peer.files)}; expected ${describeTree(expected)})`)
        }

        // A late joiner with part of the tree: it gets the rest, and not what its cache holds.
        const version = (round % 2 === 0 ? 2 : 1) as ProtocolVersion
        const joiner = new ReferenceClient({ version, ...credentials })
        joiners.push(joiner)
        const cache: Record<string, string> = {}
        const rest = new Map<string, Buffer>()
        let index = 0
        for (const [path, data] of expected) {
          // Every other file cached, its key relative or absolute in turn (both must match).
          if (index++ % 2 === 0) cache[index % 4 === 1 ? path.slice(1) : path] = sha1(data)
          else rest.set(path, data)
        }
        await joiner.connect(endpoint)
        await joiner.hello()
        await joiner.until(() => joiner.last(MessageId.OHAI_OK) !== undefined, 10_000, `OHAI-OK (late joiner v${version})`)
        await joiner.subscribe('/', { RESYNC: '1' }, cache)
        await joiner.until(() => [...rest].every(([path, data]) => joiner.files.get(path)?.equals(data)), 20_000, `${access}: the late joiner (v${version}) of round ${round}`)
        assert.deepEqual(describeTree(joiner.files), describeTree(rest), `round ${round}: the late joiner got no file its cache holds`)
        await joiner.close()

        // Quiet: the server heartbeats the version-1 client, the version-2 client asks with HUGZ.
        const beats = (peer: ReferenceClient): number => peer.received.filter((message) => message.id === (peer.options.version === 1 ? MessageId.HUGZ : MessageId.HUGZ_OK)).length
        const before = peers.map(beats)
        for (const [at, peer] of peers.entries()) {
          await peer.until(() => beats(peer) >= before[at]! + QUIET_BEATS, (QUIET_BEATS + 5) * 1000, `${access}: ${QUIET_BEATS} heartbeats (v${peer.options.version})`)
        }
      }

      for (const peer of [...peers, ...joiners]) {
        assert.equal(peer.last(MessageId.RTFM), undefined, `no RTFM to the v${peer.options.version} client: never forgotten`)
        assert.equal(peer.last(MessageId.SRSLY), undefined, 'never refused')
      }
      // Each late joiner, closed without a word as the reference's, is dropped or expired once; the clients that stay never are (no RTFM above).
      const expired = logs.filter((line) => /expired|dropping/.test(line))
      assert.ok(expired.length <= joiners.length, expired.join('\n'))
      assert.deepEqual(
        logs.filter((line) => /unknown key|is read in/.test(line)),
        [],
        'the reference-style config reads without a warning',
      )
      assert.ok(round >= 3, `${round} rounds`)
    } finally {
      for (const peer of [...peers, ...joiners]) await peer.close()
      await server.close()
      await dir.remove()
    }
  }

  test('anonymous and PLAIN at once: version-1 and version-2 clients stay through live changes, deletions and quiet spells; RESYNC late joiners get what their cache lacks', { timeout: (SECONDS + 120) * 1000 }, async () => {
    await Promise.all([run('anonymous'), run('plain')])
  })
})

describe(`reference interop: our client, reference-like servers, ${SECONDS} s, configs in reference units`, () => {
  test('against version-1 and version-2 servers, anonymous and PLAIN, our client stays known through files, deletions and quiet spells', { timeout: (SECONDS + 120) * 1000 }, async () => {
    const dir = await tempDir('fmq-interop-client-')
    const runs: Array<() => Promise<void>> = []
    const cleanups: Array<() => Promise<void>> = []
    for (const version of [1, 2] as const) {
      for (const access of ['anonymous', 'plain'] as const) {
        runs.push(async () => {
          const name = `v${version}-${access}`
          const serverConfig = join(dir.path, `${name}-server.cfg`)
          await writeFile(serverConfig, ['server', '    heartbeat = 1', '    timeout = 3000', ''].join('\n'))
          const peer = await ReferencePeer.start({ version, config: await loadZplFile(serverConfig), ...(access === 'plain' ? { plain: ACCOUNT } : {}) })
          const inbox = join(dir.path, `${name}-inbox`)
          const clientConfig = join(dir.path, `${name}-client.cfg`)
          // As the reference's client config: client/heartbeat in seconds, the login under security/plain.
          const plain = access === 'plain' ? ['security', '    plain', `        login = ${ACCOUNT.login}`, `        password = ${ACCOUNT.password}`] : []
          await writeFile(clientConfig, ['client', '    heartbeat = 1', `    inbox = ${inbox}`, 'connect', `    endpoint = ${peer.endpoint}`, ...plain, ''].join('\n'))
          const settings = resolveClientSettings(await loadZplFile(clientConfig), {}, clientConfig)
          assert.deepEqual(settings.warnings, [])
          assert.equal(settings.options.heartbeat, 1000)
          const client = new Client({ ...settings.options, versions: [version] })
          cleanups.push(async () => {
            await client.close()
            await peer.close()
          })
          const forgotten = record(peer, 'forgotten')
          const disconnects = record(client, 'disconnected')
          const errors = record(client, 'error')
          await client.connect(settings.connect[0]!)
          await client.subscribe('/')
          const subscriber = await peer.waitForSubscriber(10_000)
          const expected = new Map<string, Buffer>()

          const started = Date.now()
          let round = 0
          while (round < 3 || Date.now() - started < SECONDS * 1000) {
            round++
            const path = `/c${round}.bin`
            const data = content(path, round)
            const delivered = nextEvent(client, 'delivered', (event: { virtualPath: string }) => event.virtualPath === path, 20_000)
            await peer.sendFiles([[path, data]], subscriber)
            await delivered
            expected.set(path, data)
            if (round >= 3) {
              const old = `/c${round - 2}.bin`
              const deleted = nextEvent(client, 'deleted', (event: { virtualPath: string }) => event.virtualPath === old, 20_000)
              await peer.sendDelete(subscriber, old)
              await deleted
              expected.delete(old)
            }
            // Quiet: our client speaks once a heartbeat (HUGZ, or HUGZ-OK to the v1 peer's HUGZ).
            const beats = (): number => peer.log.filter((entry) => entry.message.id === MessageId.HUGZ || entry.message.id === MessageId.HUGZ_OK).length
            const before = beats()
            await withTimeout(
              new Promise<void>((resolve) => {
                const check = (): void => {
                  if (beats() < before + QUIET_BEATS) return
                  peer.off('message', check)
                  resolve()
                }
                peer.on('message', check)
              }),
              (QUIET_BEATS + 5) * 1000,
              `${QUIET_BEATS} heartbeats (${name})`,
            )
            assert.equal(peer.clients.get(subscriber.key), subscriber, `${name}: still known to the server in round ${round}`)
          }
          for (const [path, data] of expected) assert.ok((await readFile(join(inbox, path))).equals(data), `${name}: ${path}`)
          assert.deepEqual(forgotten, [], `${name}: never forgotten`)
          assert.deepEqual(disconnects, [], `${name}: never disconnected`)
          assert.deepEqual(errors, [], `${name}: no errors`)
        })
      }
    }
    try {
      await Promise.all(runs.map((run) => run()))
    } finally {
      for (const cleanup of cleanups) await cleanup().catch(() => undefined)
      await dir.remove()
    }
  })
})
