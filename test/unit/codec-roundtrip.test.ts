/**
 * Properties of the codecs over generated input: every message the wire can carry
 * comes back unchanged through encode → decode, and no sequence of octets makes
 * decode throw anything but a MalformedMessageError.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import fc from 'fast-check'

import { MessageId, type Message } from '../../src/protocol/generated/fmq_msg.js'
import * as v1 from '../../src/protocol/generated/fmq_msg_v1.js'
import * as v2 from '../../src/protocol/generated/fmq_msg_v2.js'
import { MalformedMessageError } from '../../src/protocol/errors.js'
import { canonical, golden, toFrames } from '../fixtures/golden.js'

const codecs = { 1: v1, 2: v2 } as const

// --- arbitraries -------------------------------------------------------------------------

const byteLength = (text: string): number => Buffer.byteLength(text, 'utf8')

/** Well-formed Unicode (no lone surrogates: they cannot survive UTF-8), any code point. */
const unicode = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: 'binary', maxLength })

/** A 1-octet-length string: at most 255 octets of UTF-8. */
const string1: fc.Arbitrary<string> = fc.oneof(
  unicode(63), // at most 4 octets per code point: always fits
  fc.string({ unit: 'binary-ascii', maxLength: 255 }),
  fc.string({ unit: 'binary-ascii', minLength: 240, maxLength: 255 }), // near the limit
  fc.string({ unit: 'binary', minLength: 50, maxLength: 255 }).filter((s) => byteLength(s) <= 255),
)

/** A 4-octet-length string (version 2 longstr). */
const longstr: fc.Arbitrary<string> = fc.oneof(unicode(40), fc.string({ unit: 'binary-ascii', minLength: 256, maxLength: 400 }))

const number8 = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.constantFrom(0n, 1n, (1n << 53n) + 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n),
)
const number1 = fc.integer({ min: 0, max: 255 })
const octets = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a))

/** Version 1 dictionary: at most 255 entries, names without "=", each "name=value" at most 255 octets. */
const dictionary: fc.Arbitrary<Map<string, string>> = fc
  .uniqueArray(
    fc.tuple(
      unicode(25).filter((name) => !name.includes('=')), // at most 100 octets
      fc.oneof(unicode(36), fc.string({ unit: 'binary-ascii', maxLength: 154 })), // at most 154 octets; "=" allowed
    ),
    { selector: ([name]) => name, maxLength: 12 },
  )
  .map((list) => new Map(list))

/** A near-limit version 1 dictionary, now and then. */
const bigDictionary: fc.Arbitrary<Map<string, string>> = fc
  .integer({ min: 200, max: 255 })
  .map((n) => new Map(Array.from({ length: n }, (_, i): [string, string] => [`n${i}`, 'v'.repeat(255 - `n${i}=`.length)])))

/** Version 2 hash: names are 1-octet strings (may hold "="), values are longstr, no count limit. */
const hash: fc.Arbitrary<Map<string, string>> = fc
  .uniqueArray(fc.tuple(string1, fc.oneof(unicode(40), longstr)), { selector: ([name]) => name, maxLength: 12 })
  .map((list) => new Map(list))

function messages(version: 1 | 2): fc.Arbitrary<Message> {
  const text = version === 1 ? string1 : longstr
  const properties = version === 1 ? fc.oneof({ weight: 9, arbitrary: dictionary }, { weight: 1, arbitrary: bigDictionary }) : hash
  const names = version === 1 ? fc.array(string1, { maxLength: 8 }) : fc.array(longstr, { maxLength: 8 })
  const bare = <Id extends Message['id']>(id: Id) => fc.constant({ id })
  return fc.oneof(
    bare(MessageId.OHAI),
    fc.record({ id: fc.constant(MessageId.ORLY), mechanisms: names, challenge: octets }),
    fc.record({ id: fc.constant(MessageId.YARLY), mechanism: string1, response: octets }),
    bare(MessageId.OHAI_OK),
    fc.record({ id: fc.constant(MessageId.ICANHAZ), path: text, options: properties, cache: properties }),
    bare(MessageId.ICANHAZ_OK),
    fc.record({ id: fc.constant(MessageId.NOM), credit: number8, sequence: number8 }),
    fc.record({
      id: fc.constant(MessageId.CHEEZBURGER),
      sequence: number8,
      operation: number1,
      filename: text,
      offset: number8,
      eof: number1,
      headers: properties,
      chunk: octets,
    }),
    bare(MessageId.HUGZ),
    bare(MessageId.HUGZ_OK),
    bare(MessageId.KTHXBAI),
    fc.record({ id: fc.constant(MessageId.SRSLY), reason: string1 }),
    fc.record({ id: fc.constant(MessageId.RTFM), reason: string1 }),
  ) as fc.Arbitrary<Message>
}

const KNOWN_IDS = Object.values(MessageId) as number[]

/** 1 to 3 frames of random octets, the first one often opened by the signature and an id. */
const randomFrames: fc.Arbitrary<Buffer[]> = fc
  .record({
    prefix: fc.option(fc.oneof(fc.constantFrom(...KNOWN_IDS), fc.integer({ min: 0, max: 255 })), { nil: undefined }),
    frames: fc.array(fc.uint8Array({ maxLength: 96 }), { minLength: 1, maxLength: 3 }),
  })
  .map(({ prefix, frames }) => {
    const buffers = frames.map((f) => Buffer.from(f))
    if (prefix !== undefined) buffers[0] = Buffer.concat([Buffer.from([0xaa, 0xa3, prefix]), buffers[0] ?? Buffer.alloc(0)])
    return buffers
  })

/** A golden message with a few octets changed, inserted, removed, or frames dropped or added. */
function mutatedGolden(version: 1 | 2): fc.Arbitrary<Buffer[]> {
  const cases = golden[version]
  return fc
    .record({
      index: fc.nat({ max: cases.length - 1 }),
      edits: fc.array(
        fc.record({
          kind: fc.constantFrom('set', 'insert', 'delete', 'drop-frame', 'add-frame'),
          frame: fc.nat(),
          at: fc.nat(),
          value: fc.oneof(fc.constantFrom(0x00, 0xff, 0x3d, 0x7f, 0x80), fc.integer({ min: 0, max: 255 })),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    })
    .map(({ index, edits }) => {
      const frames = toFrames(cases[index]?.frames ?? [])
      for (const edit of edits) {
        if (edit.kind === 'drop-frame') {
          if (frames.length > 0) frames.splice(edit.frame % frames.length, 1)
          continue
        }
        if (edit.kind === 'add-frame') {
          frames.push(Buffer.from([edit.value]))
          continue
        }
        if (frames.length === 0) continue
        const which = edit.frame % frames.length
        const target = frames[which] ?? Buffer.alloc(0)
        const at = target.length === 0 ? 0 : edit.at % (target.length + (edit.kind === 'insert' ? 1 : 0))
        if (edit.kind === 'set' && target.length > 0) {
          const copy = Buffer.from(target)
          copy[at] = edit.value
          frames[which] = copy
        } else if (edit.kind === 'insert') {
          frames[which] = Buffer.concat([target.subarray(0, at), Buffer.from([edit.value]), target.subarray(at)])
        } else if (edit.kind === 'delete' && target.length > 0) {
          frames[which] = Buffer.concat([target.subarray(0, at), target.subarray(at + 1)])
        }
      }
      return frames
    })
}

/** decode either returns a message or throws a MalformedMessageError; nothing else. */
function decodesOrRejects(codec: (typeof codecs)[1 | 2], frames: readonly Buffer[]): void {
  let message: Message
  try {
    message = codec.decode(frames)
  } catch (error) {
    if (!(error instanceof MalformedMessageError)) {
      throw new assert.AssertionError({ message: `decode threw ${String(error)}`, actual: error, expected: MalformedMessageError })
    }
    return
  }
  assert.ok(KNOWN_IDS.includes(message.id), `decoded an unknown id ${message.id}`)
  // Whatever decodes must be encodable again: the decoder only accepts what the wire can carry.
  codec.encode(message)
}

// --- properties ----------------------------------------------------------------------------

for (const version of [1, 2] as const) {
  const codec = codecs[version]

  describe(`fmq_msg v${version} properties`, () => {
    test('every message within the limits round-trips encode → decode unchanged', () => {
      fc.assert(
        fc.property(messages(version), (message) => {
          const frames = codec.encode(message)
          assert.deepEqual(canonical(codec.decode(frames)), canonical(message))
        }),
        { numRuns: 2000 },
      )
    })

    test('encode → decode → encode gives the same octets', () => {
      fc.assert(
        fc.property(messages(version), (message) => {
          const frames = codec.encode(message)
          const again = codec.encode(codec.decode(frames))
          assert.deepEqual(again.map((f) => f.toString('hex')), frames.map((f) => f.toString('hex')))
        }),
        { numRuns: 500 },
      )
    })

    test('a leading byte order mark is text, not a marker to strip', () => {
      const message: Message = { id: MessageId.SRSLY, reason: '\ufeffreason' }
      assert.deepEqual(canonical(codec.decode(codec.encode(message))), canonical(message))
    })

    test('random frames only ever decode or throw MalformedMessageError', () => {
      fc.assert(
        fc.property(randomFrames, (frames) => decodesOrRejects(codec, frames)),
        { numRuns: 5000 },
      )
    })

    test('mutated golden messages only ever decode or throw MalformedMessageError', () => {
      fc.assert(
        fc.property(mutatedGolden(version), (frames) => decodesOrRejects(codec, frames)),
        { numRuns: 5000 },
      )
    })
  })
}
