/**
 * The native gear loop (native/delta.c) against the JavaScript one (src/fs/chunking.ts): both
 * ends of a delta must cut at the same places whichever loop each runs, and the chunk digest
 * (hash-wasm's XXH3-64) is the xxh3-64 of the spec, checked against a second implementation.
 * A file read a window at a time is cut as its octets in memory are, by the native whole-file
 * cut (a thread of the pool) and by the JavaScript loop alike.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { xxh3 } from '@node-rs/xxhash'
import { existsSync } from 'node:fs'
import { chunkHash, chunkHashReady, chunkList, chunksOf, cutPoint, cutPointJs, cuttingKind, formatSignatureParts, paramsOf } from '../../src/fs/chunking.js'
import { deltaAddon } from '../../src/fs/delta-native.js'

// The chunk digest's WebAssembly is compiled at first need (chunksOf awaits it; these call chunkHash directly).
before(() => chunkHashReady())

test('the native addon is built and cuts (npm run build on Linux)', { skip: process.platform !== 'linux' || process.env.FMQ_NATIVE === '0' }, () => {
  assert.equal(cuttingKind, 'native')
  assert.notEqual(deltaAddon(), null)
  // With Debian's libxxhash-dev (the README's install), a whole file is cut natively too.
  if (existsSync('/usr/include/xxhash.h')) assert.equal(typeof deltaAddon()?.chunksOfFile, 'function')
})

test('native and JavaScript gear loops cut at the same places, for every chunking, final or not', () => {
  const data = randomBytes(6 * 1024 * 1024)
  // Runs of zeros and of one octet: where no boundary is found before the maximum.
  data.fill(0, 1_000_000, 1_600_000)
  data.fill(0xff, 3_000_000, 3_300_000)
  for (const bits of [13, 14, 16, 18]) {
    const params = paramsOf(bits)
    for (const final of [true, false]) {
      let cuts = 0
      for (let start = 0; start < data.length; ) {
        const js = cutPointJs(data, start, data.length, params, final)
        assert.equal(cutPoint(data, start, data.length, params, final), js, `bits ${bits} at ${start}`)
        if (js === -1) break
        start = js
        cuts++
      }
      assert.ok(cuts > (6 * 1024 * 1024) / params.max, `bits ${bits}: ${cuts} chunks`)
    }
    // Shorter than the minimum, and windows that end mid-chunk.
    for (const end of [params.min - 1, params.min, params.avg + 7, params.max - 1]) {
      assert.equal(cutPoint(data, 0, end, params, false), cutPointJs(data, 0, end, params, false), `bits ${bits} end ${end}`)
      assert.equal(cutPoint(data, 0, end, params, true), cutPointJs(data, 0, end, params, true), `bits ${bits} end ${end}, final`)
    }
  }
})

test('a chunk digest is xxh3-64 with seed 0 (as @node-rs/xxhash computes it), empty and long chunks included', () => {
  for (const length of [0, 1, 3, 16, 17, 128, 129, 240, 241, 1024, 65536, 1_000_003]) {
    const data = randomBytes(length)
    assert.equal(chunkHash(data), xxh3.xxh64(data), `${length} octets`)
  }
  assert.equal(chunkHash(Buffer.from('abc')), 0x78af5f94892f3950n)
})

test('a file is cut as its octets in memory are, across the windows it is read in (each read while the last is cut), and when shorter than said', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmq-chunks-'))
  try {
    // 40 MiB at 8 KiB chunks: three windows of 16 MiB; 16 MiB + 5 at 32 KiB; 100 KiB, less than a window.
    // 20 MiB at 4 MiB chunks with runs of one octet: chunks cut at their maximum, a window of two.
    const runs = randomBytes(20 * 1024 * 1024)
    runs.fill(7, 2_000_000, 19_000_000)
    // From 64 MiB on, two threads cut a half each and meet: in random data a few chunks past
    // the middle; after a run of one octet across the middle (cut at the largest size from
    // either start, they meet only past it); never, when the run goes on to the end.
    const MiB = 1024 * 1024
    const across = randomBytes(72 * MiB)
    across.fill(7, 30 * MiB, 50 * MiB)
    const toTheEnd = randomBytes(72 * MiB)
    toTheEnd.fill(9, 34 * MiB)
    for (const [length, bits, given] of [
      [72 * MiB + 3, 13],
      [72 * MiB, 16, across],
      [72 * MiB, 13, toTheEnd],
      [20 * 1024 * 1024, 22, runs],
      [40 * 1024 * 1024, 13],
      [16 * 1024 * 1024 + 5, 15],
      [100 * 1024, 13],
      [0, 13],
    ] as Array<[number, number, Buffer?]>) {
      const data = given ?? randomBytes(length)
      const path = join(dir, `f${length}`)
      await writeFile(path, data)
      const params = paramsOf(bits)
      const expected: Array<{ offset: number; length: number; hash: bigint }> = []
      for (let start = 0; start < data.length; ) {
        const end = cutPointJs(data, start, data.length, params, true)
        expected.push({ offset: start, length: end - start, hash: chunkHash(data.subarray(start, end)) })
        start = end
      }
      const handle = await open(path, 'r')
      try {
        const list = (await chunkList(handle, bits))!
        assert.deepEqual(list, expected, `${length} octets at bits ${bits}`)
        // Its signature, formatted from the native packing, is the one formatted chunk by chunk.
        const signature = { size: length, params, chunks: list }
        assert.deepEqual(formatSignatureParts(signature, 100), formatSignatureParts({ ...signature, chunks: [...list] }, 100))
        // The JavaScript loop over the same windows (where the addon is not built) agrees.
        const js: typeof expected = []
        for await (const { offset, length: octets, hash } of chunksOf(handle, length, params)) js.push({ offset, length: octets, hash })
        assert.deepEqual(js, expected, `${length} octets at bits ${bits}, JavaScript`)
        // More chunks than allowed: none.
        if (expected.length > 1) assert.equal(await chunkList(handle, bits, undefined, expected.length - 1), undefined)
        assert.deepEqual(await chunkList(handle, bits, undefined, expected.length), expected)
        // Said to be longer than it is: cut as far as it goes.
        assert.deepEqual(await chunkList(handle, bits, length + 12345), expected, `${length} octets said to be more`)
        // Said to be shorter: only that prefix.
        const prefix = Math.floor(length / 3)
        const cut: typeof expected = []
        for (let start = 0; start < prefix; ) {
          const end = cutPointJs(data, start, prefix, params, true)
          cut.push({ offset: start, length: end - start, hash: chunkHash(data.subarray(start, end)) })
          start = end
        }
        assert.deepEqual(await chunkList(handle, bits, prefix), cut, `the first ${prefix} of ${length} octets`)
      } finally {
        await handle.close()
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
