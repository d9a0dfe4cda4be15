/**
 * Large files without garbage (issue 16): a chunk's memory is read into again once the client
 * acknowledged it (src/server/content.ts, src/server/peer.ts); a chunk that does not fit the
 * credit left waits for more only when the client surely grants it (Peer.awaitsCredit); the
 * client's receive loop gets a turn of the event loop after each collection of chunks
 * (src/util/memory.ts); the CLI tunes glibc's malloc.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { openContent, recycleChunk, WHOLE_FILE_LIMIT } from '../../src/server/content.js'
import { Peer } from '../../src/server/peer.js'
import { chunkSpent, chunksReleased, CHUNK_COLLECT_BYTES, tuneAllocator } from '../../src/util/memory.js'

const CHUNK = 300_000

test('a large file is read chunk by chunk; memory handed out whole and recycled is read into again, and the content stays right', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmq-chunk-memory-'))
  try {
    const data = randomBytes(4 * CHUNK + 12_345)
    assert.ok(data.length > WHOLE_FILE_LIMIT)
    const path = join(dir, 'big.bin')
    await writeFile(path, data)
    const content = await openContent(path, 0, CHUNK, data.length)
    assert.ok(content !== undefined)
    const received: Buffer[] = []
    const memories: Buffer[] = []
    // Half a chunk, then the other half: the memory is drained by the second take only.
    const first = await content.take(CHUNK / 2)
    received.push(Buffer.from(first))
    assert.equal(content.drained?.(), undefined, 'not all handed out yet')
    const second = await content.take(CHUNK)
    received.push(Buffer.from(second))
    const drained = content.drained?.()
    assert.ok(drained !== undefined && drained.length === CHUNK, 'the chunk memory, once all handed out')
    assert.equal(content.drained?.(), undefined, 'handed back once')
    memories.push(drained)
    recycleChunk(drained)
    for (;;) {
      const chunk = await content.take(CHUNK)
      if (chunk.length === 0) break
      received.push(Buffer.from(chunk))
      const memory = content.drained?.()
      if (memory !== undefined) {
        memories.push(memory)
        recycleChunk(memory)
      }
      if (received.reduce((sum, part) => sum + part.length, 0) === data.length) break
    }
    await content.close()
    assert.ok(Buffer.concat(received).equals(data), 'the content, octet for octet')
    // The read ahead took the recycled memory for the chunk after next: the same megabyte again.
    assert.ok(memories.slice(1).some((memory) => memory.buffer === memories[0]!.buffer), 'recycled memory read into again')
    // The tail (12,345 octets) is no full chunk: never handed back.
    assert.ok(memories.every((memory) => memory.length === CHUNK))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('version 2: a chunk memory is recycled when its CHEEZBURGER is acknowledged; version 1: never', () => {
  const peer = new Peer(Buffer.from('a'), 'a')
  peer.version = 2
  assert.equal(peer.sentChunk(0n, 100, Buffer.alloc(100)), true)
  assert.equal(peer.sentChunk(1n, 100), false, 'no memory, nothing to recycle')
  const old = new Peer(Buffer.from('b'), 'b')
  old.version = 1
  assert.equal(old.sentChunk(0n, 100, Buffer.alloc(100)), false, 'a version-1 client acknowledges no sequence')
})

test('a chunk waits for credit only from a version-2 client that granted more while holding as much, with content in flight', () => {
  const peer = new Peer(Buffer.from('c'), 'c')
  peer.version = 2
  // First NOM: 8,000,000 granted while holding nothing.
  peer.learnGrant(8_000_000, false)
  peer.credit = 8_000_000
  for (let sequence = 0n; sequence < 8n; sequence++) {
    peer.sentChunk(sequence, 1_000_000)
    peer.credit -= 1_000_000
  }
  // Nothing learnt yet but "it granted while holding 0": with 0 left we wait anyway, with more we do not.
  peer.credit = 400_000
  assert.equal(peer.awaitsCredit(), false, 'never seen granting while holding 400,000')
  // The client read one chunk (sequence 0) and granted it back, holding 7,000,000.
  peer.acknowledge(0n)
  peer.learnGrant(1_000_000, false)
  assert.equal(peer.grantLevel, 7_000_000)
  assert.equal(peer.awaitsCredit(), true, 'holding 400,000 with 7,000,000 in flight: it grants again once it reads them')
  // Everything acknowledged: nothing in flight to make it grant.
  peer.acknowledge(7n)
  assert.equal(peer.contentInFlight, 0)
  assert.equal(peer.awaitsCredit(), false)
  // A grant cut to the credit cap: our count of what the client holds is off for good.
  peer.sentChunk(8n, 1_000_000)
  peer.learnGrant(1_000_000, true)
  assert.equal(peer.grantLevel, -1)
  assert.equal(peer.awaitsCredit(), false)
  // Version 1 never waits.
  const old = new Peer(Buffer.from('d'), 'd')
  old.version = 1
  old.grantLevel = 10_000_000
  old.credit = 1
  old.sentChunk(0n, 1)
  assert.equal(old.awaitsCredit(), false)
})

test('after a collection of chunks, chunksReleased gives the event loop a turn (where Node frees their memory); otherwise it costs nothing', async () => {
  assert.equal(chunksReleased(), undefined)
  chunkSpent(CHUNK_COLLECT_BYTES)
  // Queued before: immediates run in order, so this one has run when the release resolves.
  let immediate = false
  setImmediate(() => (immediate = true))
  const released = chunksReleased()
  assert.ok(released instanceof Promise, 'a collection ran')
  await Promise.resolve()
  assert.equal(immediate, false, 'not on microtasks alone')
  await released
  assert.equal(immediate, true, 'resolved from the immediates')
  assert.equal(chunksReleased(), undefined, 'once per collection')
})

test('tuneAllocator: true where glibc and the addon are there, and the same answer when asked again', () => {
  const tuned = tuneAllocator()
  assert.equal(typeof tuned, 'boolean')
  assert.equal(tuneAllocator(), tuned)
  if (process.platform === 'linux' && process.env.FMQ_NATIVE !== '0' && (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime !== undefined) {
    assert.equal(tuned, true, 'glibc here: npm run build makes build/fmq_allocator.node')
  }
})
