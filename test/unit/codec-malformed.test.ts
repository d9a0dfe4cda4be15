/**
 * The codecs against hostile or broken input, and against messages the wire cannot
 * carry. Every decode failure must be a MalformedMessageError with the right reason
 * (a NoSignatureError only when the input is not FILEMQ at all), and every encode
 * failure an EncodeError: never a RangeError, TypeError or silent truncation.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import {
  MessageId,
  type Cheezburger,
  type Icanhaz,
  type Message,
  type Nom,
  type Orly,
  type Rtfm,
  type Srsly,
  type Yarly,
} from '../../src/protocol/generated/fmq_msg.js'
import * as v1 from '../../src/protocol/generated/fmq_msg_v1.js'
import * as v2 from '../../src/protocol/generated/fmq_msg_v2.js'
import {
  EncodeError,
  MalformedMessageError,
  NoSignatureError,
  type MalformedReason,
} from '../../src/protocol/errors.js'
import { canonical, golden, toFrames, type GoldenCase } from '../fixtures/golden.js'

const codecs = { 1: v1, 2: v2 } as const
type Codec = (typeof codecs)[1 | 2]

// --- input builders: plain hex, nothing clever ---------------------------------------

const ascii = (text: string): string => Buffer.from(text, 'latin1').toString('hex')
const u32 = (value: number): string => value.toString(16).padStart(8, '0')
const u64 = (value: bigint): string => value.toString(16).padStart(16, '0')
const frame = (...parts: string[]): Buffer => Buffer.from(parts.join(''), 'hex')

/** A string field of the version: 1-octet length in v1, 4-octet length in v2 (for longstr fields). */
function text(version: 1 | 2, octetsHex: string): string {
  const length = octetsHex.length / 2
  return version === 1 ? length.toString(16).padStart(2, '0') + octetsHex : u32(length) + octetsHex
}

/** A 1-octet-length string (both versions). */
function short(octetsHex: string): string {
  return (octetsHex.length / 2).toString(16).padStart(2, '0') + octetsHex
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}(${error.message})`
  return String(error)
}

function thrown(run: () => unknown): unknown {
  try {
    run()
  } catch (error) {
    return error
  }
  assert.fail('expected an error, but none was thrown')
}

/** Decoding must fail with a MalformedMessageError that is NOT a NoSignatureError. */
function assertMalformed(codec: Codec, frames: readonly Buffer[], reason: MalformedReason, what = ''): void {
  const error = thrown(() => codec.decode(frames))
  assert.ok(error instanceof MalformedMessageError, `${what}: expected MalformedMessageError, got ${describeError(error)}`)
  assert.ok(!(error instanceof NoSignatureError), `${what}: FILEMQ input must not be taken for a foreign protocol`)
  assert.equal(error.code, 'ERR_FMQ_MALFORMED', what)
  assert.equal(error.reason, reason, `${what}: ${error.message}`)
}

/** Decoding must fail with a NoSignatureError (the server drops these silently). */
function assertNoSignature(codec: Codec, frames: readonly Buffer[], reason: 'empty' | 'no-signature', what = ''): void {
  const error = thrown(() => codec.decode(frames))
  assert.ok(error instanceof NoSignatureError, `${what}: expected NoSignatureError, got ${describeError(error)}`)
  assert.ok(error instanceof MalformedMessageError, `${what}: NoSignatureError is a MalformedMessageError`)
  assert.equal(error.code, 'ERR_FMQ_NO_SIGNATURE', what)
  assert.equal(error.reason, reason, what)
}

/** Encoding must fail with an EncodeError of this reason, naming the field. */
function assertEncodeError(
  codec: Codec,
  message: Message,
  reason: EncodeError['reason'],
  field: string | RegExp,
): void {
  const error = thrown(() => codec.encode(message))
  assert.ok(error instanceof EncodeError, `expected EncodeError, got ${describeError(error)}`)
  assert.equal(error.code, 'ERR_FMQ_ENCODE')
  assert.equal(error.reason, reason, error.message)
  if (typeof field === 'string') assert.equal(error.field, field)
  else assert.match(error.field, field)
}

/** Encoding must work and the message must come back unchanged. */
function assertRoundTrip(codec: Codec, message: Message): Buffer[] {
  const frames = codec.encode(message)
  assert.deepEqual(canonical(codec.decode(frames)), canonical(message))
  return frames
}

function fixtureOf(version: 1 | 2, id: number): GoldenCase {
  const found = golden[version].find((c) => c.message.id === id)
  assert.ok(found, `no v${version} fixture for id ${id}`)
  return found
}

// --- message builders ----------------------------------------------------------------

const icanhaz = (path: string, options = new Map<string, string>(), cache = new Map<string, string>()): Icanhaz => ({
  id: MessageId.ICANHAZ,
  path,
  options,
  cache,
})

const cheezburger = (fields: Partial<Omit<Cheezburger, 'id'>>): Cheezburger => ({
  id: MessageId.CHEEZBURGER,
  sequence: 0n,
  operation: 1,
  filename: '/f',
  offset: 0n,
  eof: 0,
  headers: new Map(),
  chunk: Buffer.alloc(0),
  ...fields,
})

const nom = (credit: bigint, sequence = 0n): Nom => ({ id: MessageId.NOM, credit, sequence })
const orly = (mechanisms: string[]): Orly => ({ id: MessageId.ORLY, mechanisms, challenge: Buffer.alloc(0) })
const yarly = (mechanism: string): Yarly => ({ id: MessageId.YARLY, mechanism, response: Buffer.alloc(0) })
const srsly = (reason: string): Srsly => ({ id: MessageId.SRSLY, reason })
const rtfm = (reason: string): Rtfm => ({ id: MessageId.RTFM, reason })

/** n distinct entries, in insertion order k0=v0, k1=v1, ... */
function entries(n: number): Map<string, string> {
  const map = new Map<string, string>()
  for (let i = 0; i < n; i++) map.set(`k${i}`, `v${i}`)
  return map
}

/** Invalid UTF-8: a stray byte, a bad continuation, an overlong "/", a surrogate, past U+10FFFF, a cut sequence. */
const BAD_UTF8 = ['ff', 'c328', 'c0af', 'eda080', 'f4908080', '61e282']

// --- decoding --------------------------------------------------------------------------

for (const version of [1, 2] as const) {
  const codec = codecs[version]
  const other = version === 1 ? 2 : 1
  /** OHAI's version field as this codec writes it. */
  const ohaiVersion = version === 1 ? '01' : '0002'

  describe(`fmq_msg v${version} decoding malformed input`, () => {
    test('no frames at all is "empty" and not FILEMQ', () => {
      assertNoSignature(codec, [], 'empty')
    })

    test('an empty first frame is "empty" and not FILEMQ', () => {
      assertNoSignature(codec, [Buffer.alloc(0)], 'empty')
      assertNoSignature(codec, [Buffer.alloc(0), frame('aaa309')], 'empty', 'empty first frame, then a frame')
    })

    test('a foreign protocol (an HTTP request) has no signature', () => {
      assertNoSignature(codec, [Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n', 'latin1')], 'no-signature')
    })

    test('other first frames without the 0xAA 0xA3 signature', () => {
      for (const bad of ['aa', 'a3', '00', 'a3aa01', 'aaa201', 'aba301', 'ffff09', '0000000000']) {
        assertNoSignature(codec, [frame(bad)], 'no-signature', bad)
      }
    })

    test('the signature alone, without an id, is FILEMQ but truncated', () => {
      // The signature is there, so this is a broken FILEMQ message, not a foreign protocol.
      assertMalformed(codec, [frame('aaa3')], 'truncated')
    })

    test('unknown message ids', () => {
      for (const id of [0, 12, 127, 130, 255]) {
        const idHex = id.toString(16).padStart(2, '0')
        assertMalformed(codec, [frame('aaa3', idHex)], 'unknown-id', `id ${id}`)
        assertMalformed(codec, [frame('aaa3', idHex, '000000000000')], 'unknown-id', `id ${id} with octets`)
      }
    })

    for (const fixture of golden[version]) {
      test(`${fixture.name}: cut short at every octet of its first frame`, () => {
        const [first, ...rest] = toFrames(fixture.frames)
        assert.ok(first)
        for (let cut = 3; cut < first.length; cut++) {
          assertMalformed(codec, [first.subarray(0, cut), ...rest], 'truncated', `cut at ${cut} of ${first.length}`)
        }
      })
    }

    for (const fixture of golden[version]) {
      test(`${fixture.name}: an octet after the last field is extra data`, () => {
        const [first, ...rest] = toFrames(fixture.frames)
        assert.ok(first)
        assertMalformed(codec, [Buffer.concat([first, frame('00')]), ...rest], 'extra-data')
      })

      test(`${fixture.name}: a frame more than the message has is extra data`, () => {
        const frames = toFrames(fixture.frames)
        assertMalformed(codec, [...frames, frame('ff')], 'extra-data', 'extra non-empty frame')
        assertMalformed(codec, [...frames, Buffer.alloc(0)], 'extra-data', 'extra empty frame')
      })
    }

    test(version === 1 ? 'a 0xFF length or count in a short frame is truncated' : 'a 0xFFFFFFFF (or 2^31) length or count in a short frame is truncated', () => {
      for (const [what, first] of hugeLengths(version)) {
        assertMalformed(codec, withFrameFields(version, first), 'truncated', what)
      }
    })

    test('lying lengths do not make the decoder allocate what they claim', () => {
      const inputs = hugeLengths(version).map(([, first]) => withFrameFields(version, first))
      const start = process.memoryUsage().arrayBuffers
      let peak = 0
      for (let i = 0; i < 1000; i++) {
        for (const input of inputs) {
          const error = thrown(() => codec.decode(input))
          assert.ok(error instanceof MalformedMessageError, describeError(error))
          assert.equal(error.reason, 'truncated')
        }
        peak = Math.max(peak, process.memoryUsage().arrayBuffers - start)
      }
      assert.ok(peak < 1024 * 1024, `arrayBuffers grew by ${peak} octets over ${1000 * inputs.length} decodes`)
    })

    test('OHAI naming another protocol', () => {
      for (const protocol of ['FILEMQX', 'HTTP/1', 'filemq', 'FILEM', '']) {
        assertMalformed(codec, [frame('aaa301', short(ascii(protocol)), ohaiVersion)], 'bad-protocol', protocol)
      }
    })

    test(`OHAI of version ${other} given to the version ${version} codec`, () => {
      const theirs = toFrames(fixtureOf(other, MessageId.OHAI).frames)
      // v1 reads the first octet of v2's number-2 version (0x00); v2 finds one octet where it needs two.
      assertMalformed(codec, theirs, version === 1 ? 'bad-version' : 'truncated')
    })

    test('OHAI with another version number in the right layout', () => {
      const wrong = version === 1 ? ['00', '02', 'ff'] : ['0000', '0001', '0003', '0102', 'ffff']
      for (const number of wrong) {
        assertMalformed(codec, [frame('aaa301', short(ascii('FILEMQ')), number)], 'bad-version', number)
      }
    })

    if (version === 1) {
      test('ORLY, YARLY and CHEEZBURGER without their second frame', () => {
        for (const id of [MessageId.ORLY, MessageId.YARLY, MessageId.CHEEZBURGER]) {
          for (const fixture of golden[1].filter((c) => c.message.id === id)) {
            const [first] = toFrames(fixture.frames)
            assert.ok(first)
            assertMalformed(codec, [first], 'missing-frame', fixture.name)
          }
        }
      })

      test('a dictionary entry without "="', () => {
        const path = short(ascii('/'))
        const ok = short(ascii('RESYNC=1'))
        const bare = short(ascii('RESYNC'))
        assertMalformed(codec, [frame('aaa305', path, '01', bare, '00')], 'bad-entry', 'options')
        assertMalformed(codec, [frame('aaa305', path, '02', ok, bare, '00')], 'bad-entry', 'second option')
        assertMalformed(codec, [frame('aaa305', path, '00', '01', short(ascii('a.txt')))], 'bad-entry', 'cache')
        assertMalformed(codec, [frame('aaa305', path, '01', short(''), '00')], 'bad-entry', 'empty entry')
        assertMalformed(
          codec,
          [frame('aaa308', u64(1n), '01', short(ascii('/a')), u64(0n), '00', '01', short(ascii('size'))), Buffer.alloc(0)],
          'bad-entry',
          'headers',
        )
      })
    }

    test('invalid UTF-8 in a filename', () => {
      for (const bad of BAD_UTF8) {
        const first = frame('aaa308', u64(1n), '01', text(version, ascii('/a') + bad), u64(0n), '00')
        const frames =
          version === 1 ? [Buffer.concat([first, frame('00')]), Buffer.alloc(0)] : [Buffer.concat([first, frame(u32(0), u32(0))])]
        assertMalformed(codec, frames, 'bad-utf8', bad)
      }
    })

    test('invalid UTF-8 in other strings', () => {
      const empty = version === 1 ? '00' : u32(0)
      const pathOf = (octets: string): string => text(version, octets)
      assertMalformed(codec, [frame('aaa305', pathOf('2fff'), empty, empty)], 'bad-utf8', 'path')
      assertMalformed(codec, [frame('aaa381', short('c328'))], 'bad-utf8', 'reason')
      assertMalformed(codec, [frame('aaa380', short('eda080'))], 'bad-utf8', 'reason')
      if (version === 1) {
        assertMalformed(codec, [frame('aaa305', pathOf('2f'), '01', short(ascii('a=') + 'ff'), '00')], 'bad-utf8', 'dictionary value')
        assertMalformed(codec, [frame('aaa303', short('c0af')), Buffer.alloc(0)], 'bad-utf8', 'mechanism')
      } else {
        assertMalformed(codec, [frame('aaa305', pathOf('2f'), u32(1), short('ff'), u32(0), empty)], 'bad-utf8', 'hash name')
        assertMalformed(codec, [frame('aaa305', pathOf('2f'), u32(1), short('61'), u32(1), 'ff', empty)], 'bad-utf8', 'hash value')
        assertMalformed(codec, [frame('aaa302', u32(1), u32(1), 'ff', u32(0))], 'bad-utf8', 'mechanisms')
      }
    })
  })
}

/**
 * In version 1, ORLY, YARLY and CHEEZBURGER carry a frame field; give them their (empty)
 * second frame so that only the first frame is at fault.
 */
function withFrameFields(version: 1 | 2, first: Buffer): Buffer[] {
  const id = first[2]
  const hasFrame = id === MessageId.ORLY || id === MessageId.YARLY || id === MessageId.CHEEZBURGER
  return version === 1 && hasFrame ? [first, Buffer.alloc(0)] : [first]
}

function hugeLengths(version: 1 | 2): Array<readonly [string, Buffer]> {
  return version === 1 ? hugeV1Lengths() : hugeV2Lengths()
}

/** Version 1 fields whose 1-octet length or count says 255 in a frame far shorter. */
function hugeV1Lengths(): Array<readonly [string, Buffer]> {
  return [
    ['path length', frame('aaa305', 'ff', ascii('/'))],
    ['mechanisms count', frame('aaa302', 'ff', short(ascii('PLAIN')))],
    ['mechanism entry length', frame('aaa302', '01', 'ff', ascii('PLAIN'))],
    ['options count', frame('aaa305', short(ascii('/')), 'ff', short(ascii('RESYNC=1')))],
    ['options entry length', frame('aaa305', short(ascii('/')), '01', 'ff', ascii('RESYNC=1'))],
    ['filename length', frame('aaa308', u64(1n), '01', 'ff', ascii('/a'))],
    ['headers count', frame('aaa308', u64(1n), '01', short(ascii('/a')), u64(0n), '00', 'ff', short(ascii('a=b')))],
    ['reason length', frame('aaa381', 'ff', ascii('x'))],
  ]
}

/** Version 2 fields whose 4-octet length or count says 0xFFFFFFFF or 2^31 in a frame far shorter. */
function hugeV2Lengths(): Array<readonly [string, Buffer]> {
  const attacks: Array<readonly [string, Buffer]> = []
  for (const huge of ['ffffffff', '80000000', '7fffffff']) {
    attacks.push(
      [`path length ${huge}`, frame('aaa305', huge, ascii('/abc'))],
      [`options count ${huge}`, frame('aaa305', u32(1), ascii('/'), huge, short(ascii('RESYNC')), u32(1), ascii('1'))],
      [`options value length ${huge}`, frame('aaa305', u32(1), ascii('/'), u32(1), short(ascii('RESYNC')), huge, ascii('1'))],
      [`mechanisms count ${huge}`, frame('aaa302', huge, u32(5), ascii('PLAIN'))],
      [`mechanism entry length ${huge}`, frame('aaa302', u32(1), huge, ascii('PLAIN'))],
      [`challenge length ${huge}`, frame('aaa302', u32(0), huge, '00')],
      [`response length ${huge}`, frame('aaa303', short(ascii('PLAIN')), huge, '00')],
      [`filename length ${huge}`, frame('aaa308', u64(1n), '01', huge, ascii('/a'))],
      [`headers count ${huge}`, frame('aaa308', u64(1n), '01', u32(2), ascii('/a'), u64(0n), '00', huge)],
      [`chunk length ${huge}`, frame('aaa308', u64(1n), '01', u32(2), ascii('/a'), u64(0n), '00', u32(0), huge, 'abcd')],
    )
  }
  return attacks
}

// --- encoding --------------------------------------------------------------------------

describe('fmq_msg v1 encoding limits', () => {
  const codec = v1

  test('a 255-octet string fits, a 256-octet one is too long', () => {
    assertRoundTrip(codec, icanhaz('a'.repeat(255)))
    assertEncodeError(codec, icanhaz('a'.repeat(256)), 'too-long', 'path')
  })

  test('string limits count UTF-8 octets, not characters', () => {
    const fits = `/${'\u00e9'.repeat(127)}` // 1 + 254 = 255 octets
    const tooLong = '\u00e9'.repeat(128) // 128 characters, 256 octets
    assert.equal(Buffer.byteLength(fits), 255)
    assert.equal(Buffer.byteLength(tooLong), 256)
    assertRoundTrip(codec, icanhaz(fits))
    assertEncodeError(codec, icanhaz(tooLong), 'too-long', 'path')
    assertEncodeError(codec, cheezburger({ filename: '\u{1F600}'.repeat(64) }), 'too-long', 'filename')
    assertRoundTrip(codec, cheezburger({ filename: `${'\u{1F600}'.repeat(63)}abc` }))
  })

  test('a dictionary of 255 entries fits, in order; 256 are too many', () => {
    const frames = assertRoundTrip(codec, icanhaz('/', entries(255)))
    assert.equal(frames[0]?.[3 + 2], 255, 'options count octet')
    assertEncodeError(codec, icanhaz('/', entries(256)), 'too-many', 'options')
    assertEncodeError(codec, icanhaz('/', new Map(), entries(256)), 'too-many', 'cache')
    assertEncodeError(codec, cheezburger({ headers: entries(256) }), 'too-many', 'headers')
  })

  test('a dictionary entry "name=value" of 255 octets fits, 256 is too long', () => {
    assertRoundTrip(codec, icanhaz('/', new Map([['k', 'v'.repeat(253)]])))
    assertEncodeError(codec, icanhaz('/', new Map([['k', 'v'.repeat(254)]])), 'too-long', 'options')
    assertEncodeError(codec, icanhaz('/', new Map([['k'.repeat(255), '']])), 'too-long', 'options')
  })

  test('a dictionary key holding "=" cannot be carried', () => {
    assertEncodeError(codec, icanhaz('/', new Map([['a=b', 'c']])), 'bad-key', 'options')
    assertEncodeError(codec, cheezburger({ headers: new Map([['=', '']]) }), 'bad-key', 'headers')
    // "=" in a value is fine: entries split at the first "=".
    assertRoundTrip(codec, icanhaz('/', new Map([['a', '=b=']])))
  })

  test('a list of 255 mechanisms fits, 256 are too many; each is a 1-octet string', () => {
    assertRoundTrip(codec, orly(Array.from({ length: 255 }, (_, i) => `M${i}`)))
    assertEncodeError(codec, orly(Array.from({ length: 256 }, (_, i) => `M${i}`)), 'too-many', 'mechanisms')
    assertEncodeError(codec, orly(['x'.repeat(256)]), 'too-long', 'mechanisms')
    assertEncodeError(codec, yarly('x'.repeat(256)), 'too-long', 'mechanism')
  })
})

describe('fmq_msg v2 encoding limits', () => {
  const codec = v2

  test('path and filename are longstr: 300 and 70,000 octets fit', () => {
    const frames = assertRoundTrip(codec, icanhaz(`/${'p'.repeat(299)}`))
    assert.equal(frames[0]?.readUInt32BE(3), 300, 'path length is 4 octets')
    assertRoundTrip(codec, cheezburger({ filename: `/${'\u00e9'.repeat(35_000)}` }))
  })

  test('a hash of 1000 entries fits, in order', () => {
    const frames = assertRoundTrip(codec, icanhaz('/', entries(1000), entries(3)))
    assert.equal(frames[0]?.readUInt32BE(3 + 4 + 1), 1000, 'options count is 4 octets')
    assertRoundTrip(codec, cheezburger({ headers: entries(1000) }))
  })

  test('a hash name of 255 octets fits, 256 is too long; values are longstr', () => {
    assertRoundTrip(codec, icanhaz('/', new Map([['n'.repeat(255), 'v'.repeat(1000)]])))
    assertEncodeError(codec, icanhaz('/', new Map([['n'.repeat(256), '']])), 'too-long', 'options')
  })

  test('mechanisms are longstr with a 4-octet count; mechanism stays a 1-octet string', () => {
    assertRoundTrip(codec, orly(Array.from({ length: 300 }, (_, i) => `M${i}`)))
    assertRoundTrip(codec, orly(['x'.repeat(300)]))
    assertRoundTrip(codec, yarly('x'.repeat(255)))
    assertEncodeError(codec, yarly('x'.repeat(256)), 'too-long', 'mechanism')
  })

  test('a chunk travels inside the first frame', () => {
    const chunk = Buffer.alloc(70_000, 0xab)
    const frames = assertRoundTrip(codec, cheezburger({ chunk }))
    assert.equal(frames.length, 1)
  })
})

for (const version of [1, 2] as const) {
  const codec = codecs[version]

  describe(`fmq_msg v${version} encoding numbers and reasons`, () => {
    test('number-1 fields hold 0 to 255 integers only', () => {
      assertRoundTrip(codec, cheezburger({ operation: 255, eof: 255 }))
      assertEncodeError(codec, cheezburger({ operation: 256 }), 'out-of-range', 'operation')
      assertEncodeError(codec, cheezburger({ operation: -1 }), 'out-of-range', 'operation')
      assertEncodeError(codec, cheezburger({ operation: 1.5 }), 'out-of-range', 'operation')
      assertEncodeError(codec, cheezburger({ eof: 256 }), 'out-of-range', 'eof')
    })

    test('number-8 fields hold 0 to 2^64-1', () => {
      assertRoundTrip(codec, nom(2n ** 64n - 1n, 2n ** 64n - 1n))
      assertEncodeError(codec, nom(-1n), 'out-of-range', 'credit')
      assertEncodeError(codec, nom(2n ** 64n), 'out-of-range', 'credit')
      assertEncodeError(codec, nom(0n, 2n ** 64n), 'out-of-range', 'sequence')
      assertEncodeError(codec, cheezburger({ offset: -1n }), 'out-of-range', 'offset')
      assertEncodeError(codec, cheezburger({ sequence: 2n ** 70n }), 'out-of-range', 'sequence')
    })

    test('reason is a 1-octet string: 255 octets fit, 256 are too long', () => {
      assertRoundTrip(codec, srsly('r'.repeat(255)))
      assertRoundTrip(codec, rtfm('\u20ac'.repeat(85))) // 255 octets
      assertEncodeError(codec, srsly('r'.repeat(256)), 'too-long', 'reason')
      assertEncodeError(codec, rtfm(`${'\u20ac'.repeat(85)}x`), 'too-long', 'reason')
    })
  })
}
