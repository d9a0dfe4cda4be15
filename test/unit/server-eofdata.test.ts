/**
 * EOFDATA=1 (ours): a client that asks gets each file ended on its last chunk of content
 * (eof=1, with the final headers), one message fewer per file; a client that does not ask
 * gets the reference's empty final chunk.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type Message, MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { publishedServer, type PublishedServer } from '../peers/published-server.js'
import { ReferenceClient } from '../peers/reference-client.js'

type Burger = Extract<Message, { id: typeof MessageId.CHEEZBURGER }>

describe('EOFDATA=1: a file ends on its last chunk of content', () => {
  let published: PublishedServer
  let endpoint: string
  const files = { 'small.txt': randomBytes(3000), 'big.bin': randomBytes(2_500_000), 'empty.txt': Buffer.alloc(0) }
  const clients: ReferenceClient[] = []

  before(async () => {
    published = await publishedServer('fmq-eofdata-', Object.entries(files))
    endpoint = published.endpoint
  })

  after(async () => {
    for (const client of clients) await client.close()
    await published.close()
  })

  /** Every CHEEZBURGER of a full resync, by file name, once each file has ended. */
  async function resync(version: 1 | 2, options: Record<string, string>): Promise<Map<string, Burger[]>> {
    const client = new ReferenceClient({ version })
    clients.push(client)
    await client.connect(endpoint)
    await client.hello()
    await client.subscribe('/', { RESYNC: '1', ...options })
    if (version === 1) await client.grant(5_000_000)
    const byName = (): Map<string, Burger[]> => {
      const map = new Map<string, Burger[]>()
      for (const message of client.received) {
        if (message.id !== MessageId.CHEEZBURGER) continue
        const name = message.filename.replace(/^\//, '')
        map.set(name, [...(map.get(name) ?? []), message])
      }
      return map
    }
    const ended = (burgers: Burger[] | undefined): boolean => {
      const last = burgers?.at(-1)
      return last !== undefined && (last.chunk.length === 0 || (options.EOFDATA === '1' && last.eof === 1))
    }
    await client.until(() => Object.keys(files).every((name) => ended(byName().get(name))), 10_000, 'every file to end').catch((error: Error) => {
      throw new Error(`${error.message}: ${client.received.map((m) => (m.id === MessageId.CHEEZBURGER ? `${m.filename}@${m.offset}+${m.chunk.length}${m.eof ? '!' : ''}` : m.id)).join(' ')}`)
    })
    return byName()
  }

  for (const version of [1, 2] as const) {
    test(`version ${version}, asked: no empty chunk after content; size and sha1 announced; content whole`, async () => {
      const received = await resync(version, { EOFDATA: '1' })
      for (const [name, content] of Object.entries(files)) {
        const burgers = received.get(name)!
        const last = burgers.at(-1)!
        assert.equal(last.eof, 1, `${name}: eof on its last chunk`)
        if (content.length > 0) assert.ok(last.chunk.length > 0, `${name}: its last chunk carries content`)
        assert.equal(burgers.filter((burger) => burger.chunk.length === 0).length, content.length === 0 ? 1 : 0, `${name}: empty chunks`)
        assert.deepEqual(Buffer.concat(burgers.map((burger) => burger.chunk)), content)
        // On the first chunk when the digest was indexed, on the last when it was computed on the way.
        const announced = new Map([...burgers[0]!.headers, ...last.headers])
        assert.equal(announced.get('size'), String(content.length))
        assert.equal(announced.get('sha1'), createHash('sha1').update(content).digest('hex'))
      }
    })

    test(`version ${version}, not asked: every file ends with the reference's empty chunk`, async () => {
      const received = await resync(version, {})
      for (const [name, content] of Object.entries(files)) {
        const burgers = received.get(name)!
        const last = burgers.at(-1)!
        assert.equal(last.chunk.length, 0, `${name}: empty final chunk`)
        assert.equal(last.eof, version === 2 ? 1 : 0)
        assert.equal(burgers.slice(0, -1).every((burger) => burger.eof === 0), true)
        assert.deepEqual(Buffer.concat(burgers.map((burger) => burger.chunk)), content)
      }
    })
  }
})
