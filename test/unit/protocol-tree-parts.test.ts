/**
 * The pieces of the FEATURES, MORE and TREE extensions that are pure functions: the order of
 * cache parts (code points, as SQLite and UTF-8 octets order them), cutting a cache into
 * parts that fit a message, the cache values of a tree client both ways, and the answer to
 * FEATURES=1.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compareVirtualPaths, sortVirtualPaths } from '../../src/fs/vpath.js'
import { CacheParts, CacheStream, quickCache, splitCache } from '../../src/client/cache.js'
import { formatFeatures, formatTreeValue, parseCacheValue, parseFeatures } from '../../src/protocol/extensions.js'

const SHA1 = 'a9993e364706816aba3e25717850c26c9cd0d89d'

test('virtual paths sort by code point, as the octets of their UTF-8 do, with or without characters from U+D800 up', () => {
  const paths = ['/b', '/a/x', '/a-c', '/\u{1F600}', '/\uFF21', '/a', '/é']
  const byOctets = [...paths].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
  assert.deepEqual([...paths].sort(compareVirtualPaths), byOctets)
  assert.deepEqual(sortVirtualPaths([...paths]), byOctets)
  const plain = ['/z', '/a b', '/a/b', '/a-b', '/A']
  assert.deepEqual(sortVirtualPaths([...plain]), [...plain].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))))
})

test('a cache is cut into parts that each fit a message, keys absolute and in order across parts', () => {
  const cache = new Map<string, string>()
  for (let i = 0; i < 3000; i++) cache.set(`dir${i % 7}/file-${i}.txt`, `${SHA1}:644:1700000000000`)
  const parts = splitCache('/photos', cache, 2)
  assert.ok(parts.length > 1, 'more than one part')
  const keys = parts.flatMap((part) => [...part.keys()])
  assert.equal(keys.length, 3000)
  assert.ok(keys.every((key) => key.startsWith('/photos/dir')), 'keys are full virtual paths')
  assert.deepEqual(keys, [...keys].sort(compareVirtualPaths))
  for (const part of parts) {
    const octets = [...part].reduce((sum, [key, value]) => sum + 1 + Buffer.byteLength(key) + 4 + Buffer.byteLength(value), 0)
    assert.ok(octets <= 48 * 1024, `a part of ${octets} octets fits under the server's 64 KiB`)
  }
  const v1 = splitCache('/', cache, 1)
  assert.ok(v1.every((part) => part.size <= 255), 'version 1: at most 255 entries a part')
  assert.deepEqual(splitCache('/', new Map(), 2), [new Map()], 'an empty cache is one empty part')
})

test('tree cache values both ways: files with mode and mtime, directories, links with any text', () => {
  const entries = [
    { kind: 'complete', digest: SHA1, mode: 0o755, mtimeMs: 1_700_000_000_123 },
    { kind: 'dir', mode: 0o750 },
    { kind: 'link', target: '../Some Where:with:colons' },
    { kind: 'complete', digest: SHA1 },
    { kind: 'stat', size: 0, mode: 0o644, mtimeMs: 1_700_000_000_123 },
    { kind: 'stat', size: 2 ** 40, mode: 0o4755, mtimeMs: 0 },
  ] as const
  for (const entry of entries) assert.deepEqual(parseCacheValue(formatTreeValue(entry)), entry)
  assert.equal(formatTreeValue({ kind: 'dir', mode: 0o750 }), 'dir:750')
  assert.equal(parseCacheValue('dir:9'), undefined)
  assert.equal(parseCacheValue(`${SHA1}:64x:1`), undefined)
  assert.equal(formatTreeValue({ kind: 'stat', size: 12, mode: 0o100644, mtimeMs: 1.5 }), 'file:12:644:1')
  for (const bad of ['file:', 'file:1:644', 'file:-1:644:1', 'file:1:9:1', 'file:99999999999999999:644:1', 'file:1:644:1:x']) {
    assert.equal(parseCacheValue(bad), undefined, bad)
  }
})

test('a quick cache: the walk in code point order cut into parts, every entry once, as the octets of the paths order them', async () => {
  const root = await mkdtemp(join(tmpdir(), 'fmq-quick-'))
  try {
    const names = ['a', 'a-b', 'b', 'é', '\u{1F600}', '\uFF21', 'z z']
    const expected: string[] = []
    for (const dir of names) {
      await mkdir(join(root, dir, 'deeper'), { recursive: true })
      expected.push(`/${dir}`, `/${dir}/deeper`)
      for (const file of names) {
        await writeFile(join(root, dir, `${file}.f`), file)
        expected.push(`/${dir}/${file}.f`)
      }
      await writeFile(join(root, dir, 'deeper', 'x'), 'x')
      expected.push(`/${dir}/deeper/x`)
    }
    await symlink('a.txt', join(root, 'link'))
    expected.push('/link')
    await writeFile(join(root, 'a.txt'), 'file beside folder a')
    await chmod(join(root, 'a.txt'), 0o644)
    await chmod(join(root, 'a'), 0o755)
    expected.push('/a.txt')
    await mkdir(join(root, '.fmq'))
    await writeFile(join(root, '.fmq', 'state'), 'never listed')
    const parts = await quickCache(root, join(root, '.fmq'), '/', 2).rest()
    const keys = parts.flatMap((part) => [...part.keys()])
    const byOctets = [...expected].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
    // Subscribed as /in: keys are the inbox's paths under that virtual path.
    assert.deepEqual(keys, byOctets.map((key) => key))
    const values = new Map(parts.flatMap((part) => [...part]))
    assert.equal(values.get('/a'), 'dir:755')
    assert.equal(values.get('/link'), 'link:a.txt')
    assert.match(values.get('/a.txt')!, /^file:20:644:[0-9]+$/)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
})

test('FEATURES=1 is answered with a reason naming the extensions; any other reason is not an answer', () => {
  assert.deepEqual(parseFeatures(formatFeatures(['PARTS', 'TREE'])), new Set(['PARTS', 'TREE']))
  assert.deepEqual(parseFeatures('FEATURES PARTS SOMETHING-NEW'), new Set(['PARTS']))
  assert.equal(parseFeatures('access denied'), undefined)
  assert.equal(parseFeatures(''), undefined)
})

test('a cache stream hands parts over in order, the last one saying so, and its walk waits while parts wait', async () => {
  let walked = 0
  const stream = new CacheStream(
    2,
    async (cut: CacheParts, pace: () => Promise<void>) => {
      for (let i = 0; i < 20_000; i++) {
        cut.add(`/f${String(i).padStart(6, '0')}`, `file:${i}:644:1700000000000`)
        walked = i + 1
        if (i % 500 === 499) await pace()
      }
    },
    3,
  )
  // Nobody takes: with three full parts waiting (about 3,000 entries) the walk stops there.
  await turns(2_000)
  assert.ok(walked > 0 && walked < 6_000, `the walk waited (at ${walked} entries)`)
  const keys: string[] = []
  for (;;) {
    const { part, more } = await stream.take()
    keys.push(...part.keys())
    if (!more) break
  }
  assert.equal(keys.length, 20_000)
  assert.deepEqual(keys, [...keys].sort())
})

/** Lets the event loop turn this many times. */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}
