/**
 * The pieces of the FEATURES, MORE and TREE extensions that are pure functions: the order of
 * cache parts (code points, as SQLite and UTF-8 octets order them), cutting a cache into
 * parts that fit a message, the cache values of a tree client both ways, and the answer to
 * FEATURES=1.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compareVirtualPaths, sortVirtualPaths } from '../../src/fs/vpath.js'
import { splitCache } from '../../src/client/cache.js'
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
    { kind: 'complete', sha1: SHA1, mode: 0o755, mtimeMs: 1_700_000_000_123 },
    { kind: 'dir', mode: 0o750 },
    { kind: 'link', target: '../Some Where:with:colons' },
    { kind: 'complete', sha1: SHA1 },
  ] as const
  for (const entry of entries) assert.deepEqual(parseCacheValue(formatTreeValue(entry)), entry)
  assert.equal(formatTreeValue({ kind: 'dir', mode: 0o750 }), 'dir:750')
  assert.equal(parseCacheValue('dir:9'), undefined)
  assert.equal(parseCacheValue(`${SHA1}:64x:1`), undefined)
})

test('FEATURES=1 is answered with a reason naming the extensions; any other reason is not an answer', () => {
  assert.deepEqual(parseFeatures(formatFeatures(['PARTS', 'TREE'])), new Set(['PARTS', 'TREE']))
  assert.deepEqual(parseFeatures('FEATURES PARTS SOMETHING-NEW'), new Set(['PARTS']))
  assert.equal(parseFeatures('access denied'), undefined)
  assert.equal(parseFeatures(''), undefined)
})
