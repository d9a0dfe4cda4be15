/**
 * Renames and copies without resending: a file or folder renamed or moved at the source is
 * made at the destination from the content it already holds (offered by digest, operation
 * ATTRIBUTES), live and across a restart of the client, and the same content at a new path is
 * copied locally. Checked by the octets of content the server sent.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
import { listEntries, sameEntries } from '../fixtures/entries.js'
import { until } from '../fixtures/until.js'

const MiB = 1024 * 1024

describe('renames and copies are not sent again', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-renames-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  test('live, then across a client restart: renamed files and folders and a copy cost no content', async () => {
    const src = join(dir, 'src')
    const inbox = join(dir, 'inbox')
    await mkdir(join(src, 'folder'), { recursive: true })
    await writeFile(join(src, 'big.bin'), randomBytes(16 * MiB))
    for (let i = 0; i < 3; i++) await writeFile(join(src, 'folder', `part-${i}.bin`), randomBytes(512 * 1024))
    const server = new Server({ settle: 20 })
    server.on('error', () => undefined)
    closers.push(() => server.close())
    await server.publish(src, '/')
    const endpoint = await server.bind(`ipc://${join(dir, 'server.sock')}`)

    const start = async (): Promise<Client> => {
      const client = new Client({ inbox, resync: true, mirror: true })
      client.on('error', () => undefined)
      closers.push(() => client.close())
      const synced = new Promise<void>((resolve) => client.once('synced', () => resolve()))
      await client.connect(endpoint)
      await client.subscribe('/')
      await synced
      return client
    }
    const client = await start()
    assert.deepEqual(await listEntries(inbox), await listEntries(src))
    const sent = server.stats.contentBytes
    assert.ok(sent >= 17 * MiB, `the first sync sent the content (${sent} octets)`)

    await mkdir(join(src, 'moved'))
    await rename(join(src, 'big.bin'), join(src, 'moved', 'renamed.bin'))
    await rename(join(src, 'folder'), join(src, 'folder-renamed'))
    // Copied beside the tree and moved in whole: a copy written in place may be seen half done.
    await copyFile(join(src, 'moved', 'renamed.bin'), join(dir, 'copy.bin'))
    await rename(join(dir, 'copy.bin'), join(src, 'copy.bin'))
    await until(() => sameEntries(src, inbox), 30_000, 'the renames and the copy to reach the inbox')
    const live = server.stats.contentBytes - sent
    assert.ok(live < MiB, `renames and a copy of 17.5 MiB put ${live} octets of content on the wire`)

    await client.close()
    await rename(join(src, 'moved', 'renamed.bin'), join(src, 'again.bin'))
    // The server has seen the rename before the client comes back (else the client mirrors the tree before it).
    await until(() => server.publisher.get('/again.bin') !== undefined && server.publisher.get('/moved/renamed.bin') === undefined, 10_000, 'the server to see the rename')
    const before = server.stats.contentBytes
    await start()
    assert.deepEqual(await listEntries(inbox), await listEntries(src))
    const restarted = server.stats.contentBytes - before
    assert.ok(restarted < MiB, `a rename while the client was away put ${restarted} octets of content on the wire`)
  })
})
