/**
 * XXH128 as spec/fmq_msg.xml defines it: the XXH3-128 (seed 0) of the content, checked against
 * a second, independent implementation (@node-rs/xxhash, a Rust binding). Fed in any chunk
 * sizes, and with other hashes interleaved on the shared WebAssembly instance, the same; the
 * prefix digests a server keeps are the digests of the content cut there.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, test } from 'node:test'

import { xxh3 } from '@node-rs/xxhash'

import { BlockHasher, createContentHash, digestAlgorithm, digestFileSync, digestsReady, hashFile, hashFileWithBlocks, prefixDigestOf, Xxh128Hash, xxh128Kind, xxh128WasmReady } from '../../src/fs/digest.js'
import { RESUME_BLOCK } from '../../src/protocol/generated/fmq_msg.js'

const B = RESUME_BLOCK

// Where the native addon is not built (FMQ_NATIVE=0), hash-wasm's compiles first.
before(() => digestsReady())

/** The definition, by another implementation. */
function reference(data: Buffer): string {
  return xxh3.xxh128(data).toString(16).padStart(32, '0')
}

test('the digest follows the definition whatever the chunk sizes; prefix digests at every block', () => {
  const data = randomBytes(3 * B + 12_345)
  for (const step of [1_000_000, 4096, B, 7 * B, 333_333, 1]) {
    if (step === 1) continue // a byte at a time is covered below on a small input
    const hasher = new BlockHasher(B, 'xxh128')
    for (let at = 0; at < data.length; at += step) hasher.update(data.subarray(at, at + step))
    const result = hasher.finish()
    assert.equal(result.digest, reference(data), `chunks of ${step}`)
    assert.equal(result.blocks.length, 3 * 16, 'one digest per whole block, 16 octets each')
    for (const k of [1, 2, 3]) assert.equal(prefixDigestOf('xxh128', result.blocks, k * B), reference(data.subarray(0, k * B)), `prefix ${k}`)
    assert.equal(prefixDigestOf('xxh128', result.blocks, 4 * B), undefined, 'past the whole blocks')
  }
  const small = randomBytes(5000)
  const byteWise = createContentHash('xxh128')
  for (let at = 0; at < small.length; at++) byteWise.update(small.subarray(at, at + 1))
  assert.equal(byteWise.digest(), reference(small))
  for (const size of [0, 1, B - 1, B, B + 1, 2 * B]) {
    const content = randomBytes(size)
    assert.equal(createContentHash('xxh128').update(content).digest(), reference(content), `${size} octets`)
  }
})

test('copy() goes on independently (a resumed transfer continues a prefix hash); hashes interleave', () => {
  const data = randomBytes(2 * B + 5)
  const hash = createContentHash('xxh128').update(data.subarray(0, B + 3))
  const copy = hash.copy()
  copy.update(data.subarray(B + 3))
  assert.equal(copy.digest(), reference(data))
  assert.equal(hash.digest(), reference(data.subarray(0, B + 3)))
  assert.equal(copy.bytes, data.length)
  // Many at once, fed in turns: each keeps its own state.
  const inputs = Array.from({ length: 5 }, (_, i) => randomBytes(10_000 + i * 777))
  const hashes = inputs.map(() => createContentHash('xxh128'))
  for (let at = 0; at < 20_000; at += 1000) inputs.forEach((input, i) => hashes[i]!.update(input.subarray(at, at + 1000)))
  hashes.forEach((h, i) => assert.equal(h.digest(), reference(inputs[i]!), `interleaved ${i}`))
  assert.equal(hashes[0]!.digest(), reference(inputs[0]!), 'digest() again: the same')
  assert.throws(() => hashes[0]!.update(Buffer.from('x')), /after digest/)
})

test('files: streamed, block-wise and synchronously, the same digest; the length tells the algorithm', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmq-xxh128-file-'))
  try {
    const data = randomBytes(B + 777)
    const path = join(dir, 'f.bin')
    await writeFile(path, data)
    const streamed = await hashFile(path, 'xxh128')
    assert.deepEqual(streamed, { digest: reference(data), bytes: data.length })
    assert.equal((await hashFileWithBlocks(path, { algorithm: 'xxh128' })).digest, reference(data))
    assert.equal(digestFileSync(path, 4 * B, 'xxh128'), reference(data))
    assert.equal(digestAlgorithm(streamed.digest), 'xxh128')
    assert.equal(digestAlgorithm((await hashFile(path, 'sha1')).digest), 'sha1')
    assert.equal(digestAlgorithm('abc'), undefined)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the native XXH3-128 (native/xxh128.c) and the WebAssembly one give the same digests', async (t) => {
  if (xxh128Kind !== 'native') {
    t.skip("the native addon is not built (no libxxhash-dev): the WebAssembly one is what runs")
    return
  }
  // With the addon, the WebAssembly one is compiled only when asked for.
  await xxh128WasmReady()
  for (const size of [0, 1, 15, 16, 17, 128, 129, 240, 241, 1024, 65_536, B + 7, 3 * B]) {
    const data = randomBytes(size)
    const wasm = new Xxh128Hash()
    const native = createContentHash('xxh128')
    for (let at = 0; at < Math.max(1, size); at += 4099) {
      wasm.update(data.subarray(at, at + 4099))
      native.update(data.subarray(at, at + 4099))
    }
    assert.equal(native.digest(), wasm.digest(), `${size} octets`)
    assert.equal(native.digest(), reference(data))
  }
})
