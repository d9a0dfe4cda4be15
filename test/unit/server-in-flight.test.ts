/**
 * The server's count of content in flight per client (src/server/peer.ts): what a version-2
 * NOM acknowledges by echoing a sequence, what a version-1 HUGZ-OK acknowledges, and the
 * memory that bookkeeping takes however many chunks go out between two acknowledgements.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Peer } from '../../src/server/peer.js'

test('version 2: a NOM acknowledges the content up to the sequence it echoes', () => {
  const peer = new Peer(Buffer.from('a'), 'a')
  peer.version = 2
  for (let sequence = 0n; sequence < 10n; sequence++) peer.sentChunk(sequence, 1000)
  assert.equal(peer.contentInFlight, 10_000)
  peer.acknowledge(3n)
  assert.equal(peer.contentInFlight, 6000)
  peer.acknowledge(2n) // an older echo changes nothing
  assert.equal(peer.contentInFlight, 6000)
  peer.acknowledge(9n)
  assert.equal(peer.contentInFlight, 0)
  assert.equal(peer.marksKept, 0)
})

test('100,000 small chunks between two NOMs: marks stay bounded, an acknowledgement never counts more than arrived', () => {
  const peer = new Peer(Buffer.from('b'), 'b')
  peer.version = 2
  for (let i = 0; i < 100_000; i++) peer.sentChunk(BigInt(i), 10)
  assert.ok(peer.marksKept <= 8193, `${peer.marksKept} marks kept`)
  peer.acknowledge(49_999n)
  assert.ok(peer.ackedContent <= 500_000 && peer.ackedContent > 490_000, `${peer.ackedContent} acknowledged of 500,000 arrived`)
  peer.acknowledge(99_999n)
  assert.equal(peer.contentInFlight, 0)
})

test('version 1: no marks; the HUGZ-OK answering our HUGZ acknowledges what was sent before it', () => {
  const peer = new Peer(Buffer.from('c'), 'c')
  peer.version = 1
  for (let i = 0; i < 1000; i++) peer.sentChunk(BigInt(i), 100)
  assert.equal(peer.marksKept, 0)
  peer.probeMark = peer.sentContent // our HUGZ goes out here
  peer.sentChunk(1000n, 100)
  peer.acknowledgeProbe()
  assert.equal(peer.contentInFlight, 100)
  peer.acknowledgeProbe() // a HUGZ-OK nobody asked for acknowledges nothing more
  assert.equal(peer.contentInFlight, 100)
})
