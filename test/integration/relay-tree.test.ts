/**
 * A relay passes the tree on as it gets it: origin → relay → leaf, the leaf ends as
 * `rsync -a --delete` makes SRC (empty folders and their modes, links as links, file modes),
 * and later a chmod alone, a folder removed with its content, a link retargeted and a rename
 * follow down the chain.
 */
import { after, before, describe, test } from 'node:test'
import { chmod, mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Relay, Server } from '../../src/index.js'
import { write } from '../fixtures/tree.js'
import { sameEntries } from '../fixtures/entries.js'
import { until } from '../fixtures/until.js'

describe('a relay mirrors the tree', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-relay-tree-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  test('origin → relay → leaf: directories, modes, links, then live changes', async () => {
    const src = join(dir, 'src')
    const leaf = join(dir, 'leaf')
    await write(src, { 'a/one.txt': '1\n', 'run.sh': '#!/bin/sh\n', 'doomed/x/y.txt': 'y\n' })
    await mkdir(join(src, 'empty/deeper'), { recursive: true })
    await chmod(join(src, 'a'), 0o750)
    await chmod(join(src, 'run.sh'), 0o755)
    await symlink('a/one.txt', join(src, 'link'))
    await symlink('../outside', join(src, 'a/up'))

    const origin = new Server({ settle: 20 })
    origin.on('error', () => undefined)
    closers.push(() => origin.close())
    await origin.publish(src, '/')
    const upstream = await origin.bind(`ipc://${join(dir, 'origin.sock')}`)
    const relay = await Relay.start({ inbox: join(dir, 'mid'), upstream: [upstream], bind: [`ipc://${join(dir, 'relay.sock')}`], server: { settle: 20 } })
    relay.client.on('error', () => undefined)
    relay.server.on('error', () => undefined)
    closers.push(async () => {
      await relay.client.close()
      await relay.server.close()
    })
    const client = new Client({ inbox: leaf, resync: true, mirror: true })
    client.on('error', () => undefined)
    closers.push(() => client.close())
    await client.connect(relay.endpoints[0]!)
    await client.subscribe('/')
    await until(() => sameEntries(src, leaf), 30_000, 'the leaf to mirror SRC through the relay')

    await chmod(join(src, 'run.sh'), 0o700)
    await chmod(join(src, 'empty'), 0o711)
    await rm(join(src, 'doomed'), { recursive: true })
    await unlink(join(src, 'link'))
    await symlink('run.sh', join(src, 'link'))
    await rename(join(src, 'a/one.txt'), join(src, 'a/renamed.txt'))
    await writeFile(join(src, 'empty/deeper/new.txt'), 'new\n')
    await until(() => sameEntries(src, leaf), 30_000, 'the live changes to reach the leaf through the relay')
  })
})
