/**
 * An inbox filled by another tool (cp -a, rsync, or `fmq track`, which keeps no manifest of
 * what it left untouched): a client's first resync with our server judges it by stat (QUICK)
 * and reads no content, however many files it holds; it never hashes the inbox for a cache
 * form it does not need.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
import { listEntries } from '../fixtures/entries.js'

describe('resync into an inbox filled by another tool', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-foreign-'))
  })

  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  test('1,500 files copied with cp -a, no manifest: nothing hashed, nothing sent, one changed file sent', async () => {
    const src = join(dir, 'src')
    const inbox = join(dir, 'inbox')
    for (let folder = 0; folder < 15; folder++) {
      await mkdir(join(src, `f${folder}`), { recursive: true })
      for (let i = 0; i < 100; i++) await writeFile(join(src, `f${folder}`, `file-${i}.txt`), `${folder} ${i} `.repeat(20))
    }
    execFileSync('cp', ['-a', src, inbox])
    // One file differs in the inbox, same size, other content and mtime: it comes again.
    await writeFile(join(inbox, 'f3', 'file-7.txt'), 'x'.repeat(`3 7 `.length * 20))

    const server = new Server({ settle: 20 })
    server.on('error', () => undefined)
    closers.push(() => server.close())
    await server.publish(src, '/')
    const endpoint = await server.bind(`ipc://${join(dir, 'server.sock')}`)

    const client = new Client({ inbox, resync: true, mirror: true })
    client.on('error', () => undefined)
    closers.push(() => client.close())
    const delivered: string[] = []
    client.on('delivered', (event) => delivered.push(event.virtualPath))
    const synced = new Promise<void>((resolve) => client.once('synced', () => resolve()))
    await client.connect(endpoint)
    await client.subscribe('/')
    await synced

    assert.deepEqual(delivered, ['/f3/file-7.txt'], 'only the changed file is sent')
    // The changed file's own digest (read to judge ATTRIBUTES, at most) and nothing else.
    assert.ok(client.stats.bytesHashed <= 100, `the inbox was hashed for the cache: ${client.stats.bytesHashed} octets`)
    assert.deepEqual(await listEntries(inbox), await listEntries(src))
  })
})
