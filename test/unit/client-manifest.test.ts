import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { Client, type DeliveredEvent } from '../../src/client/index.js'
import { HEADER } from '../../src/protocol/extensions.js'
import { MessageId, type Icanhaz } from '../../src/protocol/generated/fmq_msg.js'
import { openStore } from '../../src/store/database.js'
import { ReferencePeer, nextEvent, tempDir } from '../peers/reference-server.js'

const sha1 = (data: Buffer | string): string => createHash('sha1').update(data).digest('hex')
const FILES = 300

/** A tree of `FILES` small files in nested directories; their content by inbox-relative path. */
async function populate(inbox: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for (let i = 0; i < FILES; i++) {
    const path = `d${i % 7}/e${i % 3}/file-${i}.bin`
    const content = randomBytes(100 + i)
    await mkdir(join(inbox, `d${i % 7}/e${i % 3}`), { recursive: true })
    await writeFile(join(inbox, path), content)
    files.set(path, content)
  }
  return files
}

const sorted = (cache: ReadonlyMap<string, string> | undefined): [string, string][] => [...(cache ?? [])].sort(([a], [b]) => (a < b ? -1 : 1))
const expected = (files: ReadonlyMap<string, Buffer>, under = ''): [string, string][] =>
  [...files]
    .filter(([path]) => path.startsWith(under))
    .map(([path, content]): [string, string] => [path.slice(under.length), sha1(content)])
    .sort(([a], [b]) => (a < b ? -1 : 1))

/** Clients a test started: closed after it even when an assertion cut it short. */
const started = new Set<Client>()
afterEach(async () => {
  await Promise.all([...started].map((client) => client.close()))
  started.clear()
})

/** A client that connects, makes the subscriptions, and gives back the ICANHAZ the peer got. */
async function start(peer: ReferencePeer, inbox: string, paths: string[] = ['/']): Promise<{ client: Client; icanhaz: Icanhaz[] }> {
  const before = peer.received(MessageId.ICANHAZ).length
  // The default heartbeat: a busy machine's pause must not look like a server gone (the
  // cache would be read twice).
  const client = new Client({ inbox, resync: true, versions: [2] })
  started.add(client)
  await client.connect(peer.endpoint)
  for (const path of paths) await client.subscribe(path)
  return { client, icanhaz: (peer.received(MessageId.ICANHAZ) as Icanhaz[]).slice(before) }
}

test(`a second start over an unchanged inbox of ${FILES} files reads no content; a file changed locally is hashed again and its new digest sent`, async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  try {
    const files = await populate(inbox)
    const total = [...files.values()].reduce((sum, content) => sum + content.length, 0)

    let { client, icanhaz } = await start(peer, inbox)
    assert.deepEqual(sorted(icanhaz[0]?.cache), expected(files))
    assert.equal(client.stats.bytesHashed, total, 'the first start hashes everything once')
    await client.close()

    ;({ client, icanhaz } = await start(peer, inbox))
    assert.deepEqual(sorted(icanhaz[0]?.cache), expected(files))
    assert.equal(client.stats.bytesHashed, 0, 'nothing hashed over an unchanged inbox')
    await client.close()

    // Changed in place with the same size and a new mtime; one deleted; one added; a symlink.
    const touched = 'd1/e2/file-8.bin'
    const changed = randomBytes(files.get(touched)!.length)
    await writeFile(join(inbox, touched), changed)
    await utimes(join(inbox, touched), new Date(), new Date(Date.UTC(2019, 0, 1)))
    files.set(touched, changed)
    await rm(join(inbox, 'd0/e0/file-0.bin'))
    files.delete('d0/e0/file-0.bin')
    await writeFile(join(inbox, 'added.txt'), 'added')
    files.set('added.txt', Buffer.from('added'))
    await symlink(join(inbox, 'added.txt'), join(inbox, 'link.txt'))

    ;({ client, icanhaz } = await start(peer, inbox))
    assert.deepEqual(sorted(icanhaz[0]?.cache), expected(files))
    assert.equal(icanhaz[0]?.cache.get(touched), sha1(changed))
    assert.equal(client.stats.bytesHashed, changed.length + 'added'.length, 'only the changed and the new file')
    await client.close()

    const db = openStore(join(inbox, '.fmq'))
    try {
      const rows = db.prepare('SELECT path FROM client_manifest ORDER BY path').all() as { path: string }[]
      assert.deepEqual(
        rows.map((row) => row.path),
        [...files.keys()].sort(),
        'the deleted file lost its row; no row for the symlink',
      )
    } finally {
      db.close()
    }
  } finally {
    await peer.close()
    await dir.remove()
  }
})

test('subscriptions below the root: keys relative to the path, a single file keyed by its virtual path; rows elsewhere are kept', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  try {
    const files = await populate(inbox)
    let { client, icanhaz } = await start(peer, inbox, ['/d3', '/d4/e1/file-4.bin'])
    assert.deepEqual(sorted(icanhaz[0]?.cache), expected(files, 'd3/'))
    assert.deepEqual(sorted(icanhaz[1]?.cache), [['/d4/e1/file-4.bin', sha1(files.get('d4/e1/file-4.bin')!)]])
    const partly = client.stats.bytesHashed
    await client.close()

    // The root walk hashes only what the two subscriptions did not already cover.
    ;({ client, icanhaz } = await start(peer, inbox, ['/', '/d3']))
    assert.deepEqual(sorted(icanhaz[0]?.cache), expected(files))
    const total = [...files.values()].reduce((sum, content) => sum + content.length, 0)
    assert.equal(client.stats.bytesHashed, total - partly)
    await client.close()

    ;({ client } = await start(peer, inbox, ['/d3', '/']))
    assert.equal(client.stats.bytesHashed, 0)
    await client.close()
  } finally {
    await peer.close()
    await dir.remove()
  }
})

test('delivered files are recorded with the digest taken while receiving, deleted ones forgotten: the next start hashes nothing', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  try {
    let { client } = await start(peer, inbox)
    const subscriber = await peer.waitForSubscriber()
    const content = randomBytes(2_000_000)
    const mtime = Date.UTC(2020, 4, 5)
    const delivered = nextEvent<DeliveredEvent>(client, 'delivered', (event) => event.virtualPath === '/docs/b.txt')
    await peer.sendFile(subscriber, '/docs/a.bin', content, new Map([[HEADER.SHA1, sha1(content)], [HEADER.MTIME, String(mtime)]]))
    await peer.sendFile(subscriber, '/docs/b.txt', Buffer.from('plain, from a reference server'))
    await delivered
    assert.equal((await stat(join(inbox, 'docs/a.bin'))).mtimeMs, mtime)
    const deleted = nextEvent(client, 'deleted')
    await peer.sendDelete(subscriber, '/docs/b.txt')
    await deleted
    assert.equal(client.stats.bytesHashed, 0, 'received content is hashed on the way in, never read back')
    await client.close()

    let icanhaz: Icanhaz[]
    ;({ client, icanhaz } = await start(peer, inbox))
    assert.deepEqual(sorted(icanhaz[0]?.cache), [['docs/a.bin', sha1(content)]])
    assert.equal(client.stats.bytesHashed, 0)
    assert.ok((await readFile(join(inbox, 'docs/a.bin'))).equals(content))
    await client.close()
  } finally {
    await peer.close()
    await dir.remove()
  }
})
