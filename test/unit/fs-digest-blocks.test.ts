/**
 * SHA-1 of a file and of every prefix at a block boundary, in one read: each block digest
 * equals hashing that prefix on its own, for sizes around the boundaries, for any read size
 * (chunks straddling boundaries), and for the real RESUME_BLOCK.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import fc from 'fast-check'

import { hashFileWithBlocks } from '../../src/fs/digest.js'
import { RESUME_BLOCK, prefixDigest } from '../../src/protocol/extensions.js'

const sha1 = (data: Uint8Array): string => createHash('sha1').update(data).digest('hex')

/** What the block digests must be: SHA-1 of [0, k × blockSize) for every whole block. */
function expected(data: Buffer, blockSize: number): string[] {
  const prefixes: string[] = []
  for (let end = blockSize; end <= data.length; end += blockSize) prefixes.push(sha1(data.subarray(0, end)))
  return prefixes
}

function split(blocks: Buffer): string[] {
  const digests: string[] = []
  for (let offset = 0; offset < blocks.length; offset += 20) digests.push(blocks.subarray(offset, offset + 20).toString('hex'))
  return digests
}

describe('fs-digest: hashFileWithBlocks', () => {
  let dir: string
  let serial = 0
  const file = async (data: Buffer): Promise<string> => {
    const path = join(dir, `f${serial++}`)
    await writeFile(path, data)
    return path
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-blocks-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const blockSize = 4096
  for (const size of [0, 1, blockSize - 1, blockSize, blockSize + 1, 3 * blockSize + 17]) {
    test(`${size} octets, blocks of ${blockSize}: every block digest is the SHA-1 of its prefix`, async () => {
      const data = randomBytes(size)
      const path = await file(data)
      for (const highWaterMark of [1000, blockSize, 64 * 1024]) {
        const result = await hashFileWithBlocks(path, { blockSize, highWaterMark })
        assert.equal(result.digest, sha1(data), `whole file, reads of ${highWaterMark}`)
        assert.equal(result.bytes, size)
        assert.equal(result.blocks.length, 20 * Math.floor(size / blockSize))
        assert.deepEqual(split(result.blocks), expected(data, blockSize), `reads of ${highWaterMark}`)
      }
    })
  }

  test('random sizes and read sizes (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 6 * 512 + 100 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: 1, max: 700 }),
        async (size, highWaterMark, block) => {
          const data = randomBytes(size)
          const result = await hashFileWithBlocks(await file(data), { blockSize: block, highWaterMark })
          assert.equal(result.digest, sha1(data))
          assert.equal(result.bytes, size)
          assert.deepEqual(split(result.blocks), expected(data, block))
        },
      ),
      { numRuns: 150 },
    )
  })

  test(`the real RESUME_BLOCK (${RESUME_BLOCK} octets), as prefixDigest reads it`, async () => {
    const data = randomBytes(2 * RESUME_BLOCK + 12_345)
    const result = await hashFileWithBlocks(await file(data))
    assert.equal(result.digest, sha1(data))
    assert.equal(result.blocks.length, 40)
    assert.equal(prefixDigest(result.blocks, RESUME_BLOCK), sha1(data.subarray(0, RESUME_BLOCK)))
    assert.equal(prefixDigest(result.blocks, 2 * RESUME_BLOCK), sha1(data.subarray(0, 2 * RESUME_BLOCK)))
    assert.equal(prefixDigest(result.blocks, 3 * RESUME_BLOCK), undefined, 'no digest past the last whole block')
  })

  test('an open handle is read from offset 0 and left open', async () => {
    const data = randomBytes(10_000)
    const handle = await open(await file(data), 'r')
    try {
      await handle.read(Buffer.alloc(100), 0, 100, null) // moves the file position
      const result = await hashFileWithBlocks(handle, { blockSize })
      assert.equal(result.digest, sha1(data))
      assert.equal((await handle.stat()).size, data.length, 'still open')
    } finally {
      await handle.close()
    }
  })

  test('rejects on a missing file, a bad block size and an aborted signal', async () => {
    await assert.rejects(hashFileWithBlocks(join(dir, 'missing')), { code: 'ENOENT' })
    await assert.rejects(hashFileWithBlocks(await file(Buffer.from('x')), { blockSize: 0 }), RangeError)
    await assert.rejects(hashFileWithBlocks(await file(Buffer.from('x')), { signal: AbortSignal.abort() }), { name: 'AbortError' })
    const controller = new AbortController()
    const hashing = hashFileWithBlocks(await file(randomBytes(1 << 20)), { signal: controller.signal, highWaterMark: 1024 })
    controller.abort()
    await assert.rejects(hashing, { name: 'AbortError' })
  })
})
