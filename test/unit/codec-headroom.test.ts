import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { codecs } from '../../src/protocol/generated/fmq_codecs.js'
import { MessageId, type Message } from '../../src/protocol/generated/fmq_msg.js'
import { withHeadroom } from '../../src/protocol/wire.js'

const burger = (chunk: Buffer): Message => ({
  id: MessageId.CHEEZBURGER,
  sequence: 7n,
  operation: 1,
  filename: '/photos/a.jpg',
  offset: 1_000_000n,
  eof: 0,
  headers: new Map([['size', '3000000']]),
  chunk,
})

describe('v2 CHEEZBURGER around a chunk read with headroom', () => {
  const content = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251))

  it('is byte for byte the frame a plain chunk gives, laid around the chunk instead of copying it', () => {
    const roomy = withHeadroom(content.length)
    content.copy(roomy)
    const [inPlace] = codecs[2].encode(burger(roomy))
    const [copied] = codecs[2].encode(burger(Buffer.from(content)))
    assert.deepEqual(inPlace, copied)
    assert.equal(inPlace!.buffer, roomy.buffer, 'the frame shares the chunk memory')
    assert.deepEqual(codecs[2].decode([inPlace!]), burger(content))
  })

  it('uses the room once, and only for a chunk that starts where the room ends', () => {
    const roomy = withHeadroom(content.length)
    content.copy(roomy)
    const [first] = codecs[2].encode(burger(roomy.subarray(0, 1000)))
    assert.equal(first!.buffer, roomy.buffer)
    // The rest of the read follows bytes already handed to zeromq: it must be copied.
    const [second] = codecs[2].encode(burger(roomy.subarray(1000)))
    assert.notEqual(second!.buffer, roomy.buffer)
    assert.deepEqual(codecs[2].decode([second!]), burger(content.subarray(1000)))
    assert.deepEqual(codecs[2].decode([first!]), burger(content.subarray(0, 1000)))
  })

  it('version 1 sends the chunk as its own frame, unchanged', () => {
    const roomy = withHeadroom(content.length)
    content.copy(roomy)
    const frames = codecs[1].encode({ ...burger(roomy), headers: new Map() } as Message)
    assert.equal(frames.at(-1), roomy)
  })
})
