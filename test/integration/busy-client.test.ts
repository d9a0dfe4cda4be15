/**
 * Liveness that does not depend on idleness: with the shipped sample configs
 * (config/server-plain.cfg for `fmq server`, config/client.cfg for `fmq client`, their folders
 * and endpoint moved), a burst of 20,000 small files and a few of 8 MiB, written while the
 * PLAIN client is connected, arrives whole: no client expired, no RTFM, no reconnection.
 * Before, the client, busy writing, sent nothing for seconds and was expired
 * ("expired after 3062 ms of silence"), then looped on "unexpected RTFM"; half the files came.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { digests, randomFile } from '../fixtures/tree.js'
import { FmqProcess } from '../peers/fmq-process.js'

const SERVER_SAMPLE = fileURLToPath(new URL('../../config/server-plain.cfg', import.meta.url))
const CLIENT_SAMPLE = fileURLToPath(new URL('../../config/client.cfg', import.meta.url))

const SMALL = Number(process.env.FMQ_BURST_SMALL ?? 20_000)
const LARGE = Number(process.env.FMQ_BURST_LARGE ?? 4)
const LARGE_SIZE = 8 * 1024 * 1024

describe('a PLAIN client busy with a burst stays connected (shipped sample configs)', () => {
  let dir: string
  const processes: FmqProcess[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-busy-'))
  })
  after(async () => {
    for (const child of processes) await child.kill()
    await rm(dir, { recursive: true, force: true })
  })

  test(`${SMALL} small files and ${LARGE} of 8 MiB arrive whole, with no expiry, RTFM or reconnection`, { timeout: 150_000 }, async () => {
    const send = join(dir, 'send')
    const logs = join(dir, 'logs')
    const inbox = join(dir, 'inbox')
    await mkdir(send)
    await mkdir(logs)

    const serverConfig = join(dir, 'server.cfg')
    const serverSample = await readFile(SERVER_SAMPLE, 'utf8')
    await writeFile(serverConfig, serverSample.replaceAll('./fmqroot/send', send).replaceAll('./fmqroot/logs', logs) + 'bind\n    endpoint = tcp://127.0.0.1:*\n')
    const server = new FmqProcess(['server', '-c', serverConfig, '-v'])
    processes.push(server)
    const endpoint = await server.endpoint()

    const clientConfig = join(dir, 'client.cfg')
    const clientSample = await readFile(CLIENT_SAMPLE, 'utf8')
    assert.ok(clientSample.includes('login = reader'), 'the client sample logs in with PLAIN')
    await writeFile(clientConfig, clientSample.replaceAll('./fmqroot/recv', inbox).replaceAll('tcp://127.0.0.1:5670', endpoint))
    const client = new FmqProcess(['client', '-c', clientConfig, '-v'])
    processes.push(client)
    // The sample does not resync: a file written once the subscriptions are in place shows the link works.
    await client.waitFor((line) => line.type === 'subscribed' && line.path === '/logs', 30_000, 'the subscriptions')
    await writeFile(join(send, 'hello.txt'), 'hello\n')
    await client.waitFor((line) => line.type === 'delivered' && line.virtualPath === '/hello.txt', 30_000, 'hello.txt')

    // The burst, while the client is connected: small files in 100 folders, then the large ones.
    const started = Date.now()
    for (let folder = 0; folder < 100; folder++) await mkdir(join(send, `d${folder}`))
    const pending: Promise<void>[] = []
    for (let i = 0; i < SMALL; i++) {
      // Mostly tiny (a few octets: credit, which counts content, then lets through thousands of
      // messages between two NOMs), some up to a few KiB.
      pending.push(writeFile(join(send, `d${i % 100}`, `f${i}.txt`), `file ${i} `.repeat(i % 10 === 0 ? 1 + (i % 400) : 1)))
      if (pending.length >= 64) await Promise.all(pending.splice(0))
    }
    await Promise.all(pending)
    for (let i = 0; i < LARGE; i++) await randomFile(join(send, `large${i}.bin`), LARGE_SIZE)
    const written = Date.now()

    const total = 1 + SMALL + LARGE
    const delivered = new Set<string>()
    const trouble = (): string =>
      [...server.lines, ...client.lines]
        .map((line) => JSON.stringify(line))
        .filter((line) => /expired|RTFM|dropping|disconnected|error|warning/.test(line))
        .slice(0, 8)
        .join(' | ')
    await client
      .waitFor(
        (line) => {
          if (line.type === 'delivered') delivered.add(line.virtualPath as string)
          return delivered.size >= total
        },
        120_000,
        `${total} deliveries`,
      )
      .catch((error: Error) => Promise.reject(new Error(`${error.message}; ${delivered.size} delivered; ${trouble()}`)))
    const done = Date.now()
    console.log(`burst: ${SMALL} small + ${LARGE} x 8 MiB written in ${written - started} ms, all delivered ${done - started} ms after the first write`)

    const [sent, received] = await Promise.all([digests(send), digests(inbox)])
    assert.equal(received.size, sent.size)
    for (const [name, digest] of sent) assert.equal(received.get(name), digest, name)

    const text = (lines: readonly { type: string }[], stderr: readonly string[]): string => [...lines.map((line) => JSON.stringify(line)), ...stderr].join('\n')
    const serverSaid = text(server.lines, server.stderr)
    const clientSaid = text(client.lines, client.stderr)
    assert.doesNotMatch(serverSaid, /expired|dropping client/, 'the server never gave up on the client')
    assert.doesNotMatch(clientSaid, /RTFM/, 'the client never heard RTFM')
    assert.equal(client.lines.filter((line) => line.type === 'disconnected' || line.type === 'connected').length, 1, 'connected once, never again')
  })
})
