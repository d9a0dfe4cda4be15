/**
 * Every golden fixture both ways, byte for byte: encode(message) must give exactly
 * the hand-written frames, and decode(frames) must give back exactly the message.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import * as v1 from '../../src/protocol/generated/fmq_msg_v1.js'
import * as v2 from '../../src/protocol/generated/fmq_msg_v2.js'
import { canonical, golden, toFrames, toHex } from '../fixtures/golden.js'

const codecs = { 1: v1, 2: v2 } as const

for (const version of [1, 2] as const) {
  const codec = codecs[version]

  describe(`fmq_msg v${version} golden fixtures`, () => {
    test('the codec says which version it speaks', () => {
      assert.equal(codec.VERSION, version)
    })

    test('every message id has at least one fixture', () => {
      const covered = new Set<number>(golden[version].map((c) => c.message.id))
      for (const [name, id] of Object.entries(MessageId)) {
        assert.ok(covered.has(id), `no v${version} fixture for ${name}`)
      }
    })

    for (const fixture of golden[version]) {
      describe(fixture.name, () => {
        test('encodes to the fixture frames byte for byte', () => {
          const frames = codec.encode(fixture.message)
          assert.ok(Array.isArray(frames), 'encode returns an array of frames')
          for (const frame of frames) assert.ok(Buffer.isBuffer(frame), 'every frame is a Buffer')
          assert.deepEqual(toHex(frames), fixture.frames)
        })

        test('decodes the fixture frames to the message', () => {
          const message = codec.decode(toFrames(fixture.frames))
          assert.deepEqual(canonical(message), canonical(fixture.message))
        })

        test('decodes frames that are views into larger buffers', () => {
          // zeromq.js may hand us frames that share an ArrayBuffer; a decoder must honour byteOffset.
          const frames = fixture.frames.map((frame) => {
            const octets = Buffer.from(frame, 'hex')
            const backing = Buffer.alloc(octets.length + 16, 0x5a)
            octets.copy(backing, 7)
            return backing.subarray(7, 7 + octets.length)
          })
          const message = codec.decode(frames)
          assert.deepEqual(canonical(message), canonical(fixture.message))
        })

        test('re-encodes its own decoding to the same frames', () => {
          const message = codec.decode(toFrames(fixture.frames))
          assert.deepEqual(toHex(codec.encode(message)), fixture.frames)
        })

        test('does not change the message it encodes', () => {
          const before = canonical(fixture.message)
          codec.encode(fixture.message)
          assert.deepEqual(canonical(fixture.message), before)
        })
      })
    }
  })
}
