/**
 * Server include and exclude globs: the rsync-like rules, the scan, and a real client that
 * receives exactly the filtered tree, then only the allowed one of two new files.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
import { compilePublishFilter } from '../../src/fs/filter.js'
import { scanMount, type ScanSkip } from '../../src/fs/scan.js'
import { digests, write } from '../fixtures/tree.js'

describe('compilePublishFilter', () => {
  const published = compilePublishFilter({
    exclude: ['*.tmp', 'build/**', '/top.txt', 'node_modules/', '.git', '/dist'],
    include: ['keep.tmp', 'dist/keep/'],
  })

  test('a pattern without "/" matches the basename at any depth, dot files included', () => {
    assert.equal(published('a.tmp'), false)
    assert.equal(published('x/y/.hidden.tmp'), false)
    assert.equal(published('a.tmp.txt'), true)
    assert.equal(published('.env'), true)
  })

  test('a pattern with "/" is anchored at the mount', () => {
    assert.equal(published('build/a'), false)
    assert.equal(published('build/a/b'), false)
    assert.equal(published('x/build/a'), true)
    assert.equal(published('top.txt'), false)
    assert.equal(published('x/top.txt'), true)
  })

  test('a folder matched leaves out everything under it; a trailing "/" matches folders only', () => {
    assert.equal(published('a/.git/HEAD'), false)
    assert.equal(published('.git'), false)
    assert.equal(published('q/node_modules/b/c'), false)
    assert.equal(published('node_modules'), true)
    assert.equal(published('dist/a'), false)
    assert.equal(published('x/dist/a'), true)
  })

  test('includes win over excludes', () => {
    assert.equal(published('keep.tmp'), true)
    assert.equal(published('deep/keep.tmp'), true)
    assert.equal(published('dist/keep/a'), true)
  })

  test('no patterns publish everything; bad patterns are refused', () => {
    assert.equal(compilePublishFilter()('anything/at/all.tmp'), true)
    assert.equal(compilePublishFilter({ include: ['*.c'] })('x.h'), true)
    assert.throws(() => compilePublishFilter({ exclude: [''] }), TypeError)
    assert.throws(() => compilePublishFilter({ exclude: ['/'] }), TypeError)
    assert.throws(() => new Server({ exclude: [42 as unknown as string] }), TypeError)
  })
})

describe('server include and exclude', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-filters-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  const tree = {
    'a.txt': 'a',
    'scratch.tmp': 'tmp',
    'keep.tmp': 'kept',
    'sub/b.txt': 'b',
    'sub/c.tmp': 'c',
    'sub/build/d.txt': 'nested build is not the top one',
    'build/out.js': 'out',
    'build/deep/x.o': 'x',
    '.hidden': 'dot file',
  }
  const expected = ['.hidden', 'a.txt', 'keep.tmp', 'sub/b.txt', 'sub/build/d.txt']
  const filters = { exclude: ['*.tmp', 'build/**'], include: ['keep.tmp'] }

  test('the scan leaves out excluded files, by their published name, and says why', async () => {
    const source = join(dir, 'scan')
    await write(source, { ...tree, 'link.tmp.ln': 'a.txt', 'link.txt.ln': 'a.txt' })
    const skips: ScanSkip[] = []
    const found: string[] = []
    for await (const file of scanMount(source, { publish: compilePublishFilter(filters), onSkip: (skip) => skips.push(skip) })) {
      found.push(file.relativePath)
    }
    assert.deepEqual(found.sort(), [...expected, 'link.txt'].sort())
    assert.deepEqual(
      skips.filter((skip) => skip.reason === 'excluded').map((skip) => skip.relativePath).sort(),
      ['build/deep/x.o', 'build/out.js', 'link.tmp.ln', 'scratch.tmp', 'sub/c.tmp'],
    )
  })

  test('a client receives exactly the filtered tree; later, a new excluded file is not sent, a new allowed one is', async () => {
    const source = join(dir, 'source')
    const inbox = join(dir, 'inbox')
    await write(source, tree)
    await mkdir(inbox, { recursive: true })

    const server = new Server({ heartbeat: 200, ...filters })
    closers.push(() => server.close())
    await server.publish(source, '/')
    const at = await server.bind('tcp://127.0.0.1:*')
    assert.deepEqual([...server.publisher.under('/')].map((file) => file.virtualPath).sort(), expected.map((name) => `/${name}`))

    const client = new Client({ inbox, resync: true, heartbeat: 200 })
    client.on('error', () => undefined)
    closers.push(() => client.close())
    const delivered: string[] = []
    client.on('delivered', (event) => delivered.push(event.virtualPath))
    const arrived = (path: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!delivered.includes(path)) return
          client.off('delivered', check)
          resolve()
        }
        client.on('delivered', check)
        check()
      })
    const all = Promise.all(expected.map((name) => arrived(`/${name}`)))
    await client.connect(at)
    await client.subscribe('/')
    await all
    assert.deepEqual([...(await digests(inbox)).keys()].sort(), expected)

    // The excluded one first: were it announced, it would be sent before the allowed one.
    await writeFile(join(source, 'late.tmp'), 'never sent')
    await mkdir(join(source, 'build'), { recursive: true })
    await writeFile(join(source, 'build', 'late.js'), 'never sent')
    await writeFile(join(source, 'late.txt'), 'sent')
    await arrived('/late.txt')
    assert.equal(server.publisher.get('/late.tmp'), undefined)
    assert.equal(server.publisher.get('/build/late.js'), undefined)
    assert.deepEqual([...(await digests(inbox)).keys()].sort(), [...expected, 'late.txt'].sort())
    assert.equal(delivered.length, expected.length + 1)
  })
})
