/**
 * XXH128 (ours, spec/fmq_msg.xml): the server names it in its FEATURES answer; a client that
 * asks XXH128=1 gets header xxh128 and no sha1, may send XXH128 cache values and resume
 * prefixes; a client that does not ask (a reference client) gets sha1 as ever, and its SHA-1
 * cache is judged with SHA-1 the server computes only then.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { digestHex } from '../../src/fs/digest.js'
import { formatPartialEntry, parseCacheValue, parseFeatures, RESUME_BLOCK } from '../../src/protocol/extensions.js'
import { type Message, MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { publishedServer, type PublishedServer } from '../peers/published-server.js'
import { ReferenceClient } from '../peers/reference-client.js'

type Burger = Extract<Message, { id: typeof MessageId.CHEEZBURGER }>

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')
const xxh = (data: Buffer): string => digestHex('xxh128', data)

describe('XXH128: the fast digest, negotiated', () => {
  let published: PublishedServer
  let endpoint: string
  const files = { 'small.txt': randomBytes(3000), 'big.bin': randomBytes(2 * RESUME_BLOCK + 12_345), 'empty.txt': Buffer.alloc(0) }
  const clients: ReferenceClient[] = []

  before(async () => {
    published = await publishedServer('fmq-xxh128-', Object.entries(files))
    endpoint = published.endpoint
  })

  after(async () => {
    for (const client of clients) await client.close()
    await published.close()
  })

  /** Every CHEEZBURGER of one subscription, by file name, once `expected` files have ended. */
  async function subscribe(
    version: 1 | 2,
    options: Record<string, string>,
    cache: Record<string, string>,
    expected: readonly string[],
  ): Promise<{ byName: Map<string, Burger[]>; client: ReferenceClient }> {
    const client = new ReferenceClient({ version })
    clients.push(client)
    await client.connect(endpoint)
    await client.hello()
    await client.subscribe('/', { RESYNC: '1', SYNCED: '1', ...options }, cache)
    if (version === 1) await client.grant(5_000_000)
    const byName = (): Map<string, Burger[]> => {
      const map = new Map<string, Burger[]>()
      for (const message of client.received) {
        if (message.id !== MessageId.CHEEZBURGER || message.operation !== 1) continue
        const name = message.filename.replace(/^\//, '')
        map.set(name, [...(map.get(name) ?? []), message])
      }
      return map
    }
    // The SYNCED mark (operation 3) ends the resync.
    await client.until(() => client.received.some((m) => m.id === MessageId.CHEEZBURGER && m.operation === 3), 10_000, 'the SYNCED mark')
    assert.deepEqual([...byName().keys()].sort(), [...expected].sort(), JSON.stringify([...client.received].map((m) => m.id === MessageId.CHEEZBURGER ? [m.filename, m.operation, [...m.headers]] : m.id)))
    return { byName: byName(), client }
  }

  /** What the headers of a file's first and last chunk announce together. */
  const announced = (burgers: Burger[]): Map<string, string> => new Map([...burgers[0]!.headers, ...burgers.at(-1)!.headers])

  test('FEATURES=1 is answered naming XXH128', async () => {
    const client = new ReferenceClient({ version: 2 })
    clients.push(client)
    await client.connect(endpoint)
    await client.hello()
    await client.subscribe('/.fmq/features', { FEATURES: '1' })
    await client.until(() => client.last(MessageId.SRSLY) !== undefined, 10_000, 'SRSLY')
    const answer = client.last(MessageId.SRSLY) as Extract<Message, { id: typeof MessageId.SRSLY }>
    assert.ok(parseFeatures(answer.reason)?.has('XXH128'), answer.reason)
  })

  for (const version of [1, 2] as const) {
    test(`version ${version}: XXH128=1 gets xxh128 headers and no sha1; without it, sha1 as ever`, async () => {
      const fast = await subscribe(version, { XXH128: '1' }, {}, Object.keys(files))
      for (const [name, content] of Object.entries(files)) {
        const burgers = fast.byName.get(name)!
        assert.deepEqual(Buffer.concat(burgers.map((burger) => burger.chunk)), content)
        const headers = announced(burgers)
        assert.equal(headers.get('xxh128'), xxh(content), name)
        assert.equal(headers.has('sha1'), false, `${name}: no SHA-1 for a client that negotiated`)
      }
      const reference = await subscribe(version, {}, {}, Object.keys(files))
      for (const [name, content] of Object.entries(files)) {
        const headers = announced(reference.byName.get(name)!)
        assert.equal(headers.get('sha1'), sha1(content), name)
        assert.equal(headers.has('xxh128'), false)
      }
    })
  }

  test('caches are judged in their own algorithm: SHA-1 values (computed for them) and XXH128 values', async () => {
    await published.server.publisher.whenIndexed()
    const small = files['small.txt']
    const big = files['big.bin']
    // A reference client holding the small file (SHA-1) and a stale big one: only the big one comes.
    await subscribe(2, {}, { 'small.txt': sha1(small), 'big.bin': sha1(Buffer.from('old')), 'empty.txt': sha1(Buffer.alloc(0)) }, ['big.bin'])
    // Ours, in XXH128: the same judgement; a SHA-1 value from it is judged as SHA-1 too.
    await subscribe(2, { XXH128: '1' }, { 'small.txt': xxh(small), 'big.bin': sha1(big), 'empty.txt': xxh(Buffer.alloc(1)) }, ['empty.txt'])
  })

  test('a resume prefix in XXH128 continues at its offset; a wrong one sends the whole file', async () => {
    const big = files['big.bin']
    const prefix = formatPartialEntry(xxh(big.subarray(0, 2 * RESUME_BLOCK)), 2 * RESUME_BLOCK)
    const held = { 'small.txt': xxh(files['small.txt']), 'empty.txt': xxh(files['empty.txt']) }
    const resumed = await subscribe(2, { XXH128: '1' }, { ...held, 'big.bin': prefix }, ['big.bin'])
    const burgers = resumed.byName.get('big.bin')!
    assert.equal(burgers[0]!.offset, BigInt(2 * RESUME_BLOCK))
    assert.deepEqual(Buffer.concat(burgers.map((burger) => burger.chunk)), big.subarray(2 * RESUME_BLOCK))
    assert.equal(announced(burgers).get('xxh128'), xxh(big), 'the digest of the whole file')
    const wrong = formatPartialEntry(xxh(randomBytes(RESUME_BLOCK)), RESUME_BLOCK)
    const whole = await subscribe(2, { XXH128: '1' }, { ...held, 'big.bin': wrong }, ['big.bin'])
    assert.equal(whole.byName.get('big.bin')![0]!.offset, 0n)
  })
})

test('cache values carry either digest; the length tells which', () => {
  const x = digestHex('xxh128', 'abc')
  assert.equal(x, '06b05ab6733a618578af5f94892f3950', 'XXH3-128 of content up to a block, as xxhsum -H2 prints it')
  const s = sha1(Buffer.from('abc'))
  assert.deepEqual(parseCacheValue(x), { kind: 'complete', digest: x })
  assert.deepEqual(parseCacheValue(s), { kind: 'complete', digest: s })
  // 32 digits, "@", 7 digits: as long as a SHA-1, and still a prefix.
  assert.deepEqual(parseCacheValue(`${x}@${2 * RESUME_BLOCK}`), { kind: 'partial', digest: x, offset: 2 * RESUME_BLOCK })
  assert.deepEqual(parseCacheValue(`${x}:644:12`), { kind: 'complete', digest: x, mode: 0o644, mtimeMs: 12 })
  assert.equal(parseCacheValue(x.slice(1)), undefined, '31 digits')
  assert.equal(parseCacheValue(`${x}0`), undefined, '33 digits')
})
