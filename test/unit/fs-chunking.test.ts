/**
 * Content-defined chunking and delta plans (src/fs/chunking.ts, src/protocol/delta.ts): cut
 * points depend on content only, so edits move the boundaries near them and no others; a plan
 * rebuilds the new version exactly from the old one and the octets it sends; signatures and copy
 * runs read back what was written, both ways.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  chunkList,
  chunkParams,
  formatSignature,
  formatSignatureParts,
  MAX_AVERAGE_BITS,
  MAX_SIGNATURE_CHUNKS,
  MIN_AVERAGE_BITS,
  paramsOf,
  parseSignature,
  planDelta,
  SIGNATURE_PART_CHUNKS,
  signatureOf,
  SignatureParts,
  type Signature,
} from '../../src/fs/chunking.js'
import { copyRunHeaders, parseChunking, parseCopyRun } from '../../src/protocol/delta.js'
import { xxh3 } from '@node-rs/xxhash'

const MiB = 1024 * 1024

test('the average chunk grows with the file: about 4096 chunks, between 2^13 and 2^22 octets', () => {
  assert.equal(chunkParams(0).bits, MIN_AVERAGE_BITS)
  assert.equal(chunkParams(32 * MiB).bits, 13)
  assert.equal(chunkParams(256 * MiB).avg, 64 * 1024)
  assert.equal(chunkParams(1024 * 1024 * MiB).bits, MAX_AVERAGE_BITS)
  assert.throws(() => paramsOf(12), RangeError)
  const params = paramsOf(16)
  assert.deepEqual([params.min, params.avg, params.max], [16384, 65536, 262144])
})

test('a signature reads back what was written, and a malformed one is refused', () => {
  const signature: Signature = {
    size: 12288,
    params: paramsOf(13),
    chunks: [
      { offset: 0, length: 4096, hash: 0x0123456789abcdefn },
      { offset: 4096, length: 8192, hash: 0xfedcba9876543210n },
    ],
  }
  const value = formatSignature(signature)
  assert.equal(value, 'cdc1:12288:13:AAAQAAEjRWeJq83vAAAgAP7cuph2VDIQ')
  assert.deepEqual(parseSignature(value), signature)
  assert.equal(parseSignature('cdc1:12289:13:AAAQAAEjRWeJq83vAAAgAP7cuph2VDIQ'), undefined, 'the lengths must add up to the size')
  assert.equal(parseSignature('cdc1:12288:9:AAAQAAEjRWeJq83vAAAgAP7cuph2VDIQ'), undefined, 'bits out of range')
  assert.equal(parseSignature('cdc1:12288:13:AAAQAAEjRWeJq83v'), undefined, 'a short entry')
  assert.equal(parseSignature('a9993e364706816aba3e25717850c26c9cd0d89d'), undefined)
})

test('copy runs and the chunking of an offer read back what was written', () => {
  const headers = copyRunHeaders({ source: 1048576, length: 65536 }, new Map([['size', '9']]))
  assert.deepEqual([...headers], [['size', '9'], ['copy', '1048576'], ['length', '65536']])
  assert.deepEqual(parseCopyRun(headers), { source: 1048576, length: 65536 })
  assert.equal(parseCopyRun(new Map([['copy', '5']])), undefined)
  assert.equal(parseCopyRun(new Map([['copy', '5'], ['length', '0']])), undefined)
  assert.equal(parseChunking(new Map([['chunking', '16']])), 16)
  assert.equal(parseChunking(new Map([['chunking', '40']])), undefined)
})

test('delta plans rebuild the new version exactly, sending little for an overwrite, an append, an insertion and a deletion', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmq-chunking-'))
  try {
    const old = randomBytes(16 * MiB)
    await writeFile(join(dir, 'old'), old)
    const bits = chunkParams(old.length).bits
    const signature = (await signatureOf(join(dir, 'old'), bits))!
    assert.equal(signature.size, old.length)
    assert.ok(signature.chunks.length > 1000 && signature.chunks.length < 4 * 4096, `${signature.chunks.length} chunks`)
    const overwritten = Buffer.from(old)
    randomBytes(4096).copy(overwritten, 8 * MiB)
    const cases: Record<string, { data: Buffer; most: number }> = {
      overwrite: { data: overwritten, most: 4096 + 2 * paramsOf(bits).max },
      append: { data: Buffer.concat([old, randomBytes(MiB)]), most: MiB },
      insert: { data: Buffer.concat([randomBytes(100), old]), most: 100 + 2 * paramsOf(bits).max },
      delete: { data: Buffer.concat([old.subarray(0, 5 * MiB), old.subarray(5 * MiB + 1000)]), most: 2 * paramsOf(bits).max },
      unrelated: { data: randomBytes(MiB), most: MiB },
    }
    for (const [name, { data, most }] of Object.entries(cases)) {
      await writeFile(join(dir, name), data)
      const handle = await open(join(dir, name))
      try {
        const chunks = (await chunkList(handle, bits))!
        const plan = await planDelta(chunks, signature, async (offset, length) => xxh3.xxh64(data.subarray(offset, offset + length)))
        const parts: Buffer[] = []
        for (const segment of plan.segments) {
          parts.push(segment.kind === 'copy' ? old.subarray(segment.source, segment.source + segment.length) : data.subarray(segment.offset, segment.offset + segment.length))
        }
        assert.ok(Buffer.concat(parts).equals(data), `${name}: the plan rebuilds the new version`)
        assert.equal(plan.copied + plan.literal, data.length)
        assert.ok(plan.literal <= most, `${name}: ${plan.literal} octets sent, at most ${most} expected`)
        if (name === 'append') assert.equal(plan.literal, MiB, 'an append sends exactly the appended octets')
      } finally {
        await handle.close()
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a signature in parts: 1024 chunks a part, each in the form of a whole one, put back together as it was; a part that does not fit spoils the lot', () => {
  const chunks = Array.from({ length: 2500 }, (_, index) => ({ offset: index * 8192, length: 8192, hash: BigInt(index) * 0x9e3779b97f4a7c15n % 2n ** 64n }))
  const signature: Signature = { size: 2500 * 8192, params: paramsOf(13), chunks }
  const parts = formatSignatureParts(signature)
  assert.equal(parts.length, 3)
  assert.equal(SIGNATURE_PART_CHUNKS, 1024)
  for (const part of parts) assert.ok(part.length < 16 * 1024 + 32, `a part is ${part.length} characters`)
  // Each part alone is not a whole signature (its lengths do not add up to the size).
  assert.equal(parseSignature(parts[0]!), undefined)
  const assembled = new SignatureParts('/big.bin')
  assembled.add(parts[0]!)
  assembled.add(parts[1]!)
  assert.deepEqual(assembled.finish(parts[2]!), signature)
  // One part: the same value as the whole.
  const small: Signature = { size: 16384, params: paramsOf(13), chunks: chunks.slice(0, 2) }
  assert.deepEqual(formatSignatureParts(small), [formatSignature(small)])
  // Missing, of another chunking, or malformed: the file comes whole. (Parts come in order, as
  // ZeroMQ keeps it; a wrong signature would only make a plan that the whole's digest refuses.)
  const missing = new SignatureParts('/big.bin')
  missing.add(parts[0]!)
  assert.equal(missing.finish(parts[2]!), undefined)
  const mixed = new SignatureParts('/big.bin')
  mixed.add(parts[0]!.replace(':13:', ':14:'))
  mixed.add(parts[1]!)
  assert.equal(mixed.finish(parts[2]!), undefined)
  const malformed = new SignatureParts('/big.bin')
  malformed.add('cdc1:x')
  malformed.add(parts[1]!)
  assert.equal(malformed.finish(parts[2]!), undefined)
})

test('signature parts past 16384 chunks in all are refused: the server holds no more, however many parts come', () => {
  const chunk = { length: 8192, hash: 1n }
  const count = MAX_SIGNATURE_CHUNKS + 1
  const chunks = Array.from({ length: count }, (_, index) => ({ ...chunk, offset: index * 8192 }))
  const parts = formatSignatureParts({ size: count * 8192, params: paramsOf(13), chunks })
  const assembled = new SignatureParts('/huge.bin')
  for (const part of parts.slice(0, -1)) assembled.add(part)
  assert.equal(assembled.finish(parts[parts.length - 1]!), undefined)
})
