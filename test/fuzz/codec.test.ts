/**
 * The codecs of both protocol versions, fuzzed for a bounded time: every golden vector
 * with its length and count fields swept through 0, boundaries and huge values; random
 * mutations of the golden vectors (flip, insert, delete, truncate, extend, lengths,
 * frames added, dropped and split, messages spliced); random octets; random multi-frame
 * messages; random well-formed messages, mutated.
 *
 * Every decode returns a message or throws a MalformedMessageError: anything else (a
 * RangeError, a TypeError, a decode that takes long, memory that stays) fails the run.
 * A message that decodes re-encodes without throwing, and to the very same frames, but
 * for one thing the format does not make canonical: a dictionary (v1) or hash (v2) that
 * names a key twice decodes to a Map holding it once, so it re-encodes shorter (and that
 * shorter form is then a fixed point).
 *
 * FMQ_FUZZ_SECONDS (default 10) is the time of this whole file; FMQ_FUZZ_SEED the seed.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { EncodeError } from '../../src/protocol/errors.js'
import { MessageId, type Message } from '../../src/protocol/generated/fmq_msg.js'
import {
  check,
  describeError,
  codecs,
  Finding,
  type Outcome,
  collectGarbage,
  type Frames,
  fuzzSeconds,
  fuzzSeed,
  goldenFrames,
  hexFrames,
  lengthSweep,
  MiB,
  mib,
  mutateMany,
  Random,
  randomMessage,
  recordFigure,
  reproduce,
  saveFinding,
} from './lib.js'


const SECONDS = fuzzSeconds(10)
const SEED = fuzzSeed()
const FILE = 'test/fuzz/codec.test.ts'
/** Live heap after the run, over before it: the codecs keep nothing between messages. */
const HEAP_BOUND = 16 * MiB
/**
 * Buffers alive at once, sampled every 200 inputs: inputs are at most a few KiB, 200 of them
 * with their garbage stay far below this; one allocation believing a 4-octet length would not.
 */
const BUFFERS_BOUND = 256 * MiB

// --- random well-formed messages (then mutated) ----------------------------------------------

const SAMPLE_TEXT = ['', '/', '/a', 'RESYNC', '1', 'a=b', '==', 'café', '☕', '😀', 'x'.repeat(255), '/photos/a.jpg']

function randomText(random: Random, maxOctets: number): string {
  let text = random.chance(0.5) ? random.pick(SAMPLE_TEXT) : random.bytes(random.length(maxOctets)).toString('latin1')
  while (Buffer.byteLength(text) > maxOctets) text = text.slice(0, Math.floor(text.length / 2))
  return text
}

function randomMap(random: Random, version: 1 | 2): Map<string, string> {
  const map = new Map<string, string>()
  const entries = random.chance(0.8) ? random.int(5) : random.int(300)
  for (let i = 0; i < entries && map.size < 255; i++) {
    const name = randomText(random, version === 1 ? 100 : 255).replaceAll('=', version === 1 ? '_' : '=')
    map.set(name, randomText(random, version === 1 ? 254 - Buffer.byteLength(name) : 1000))
  }
  return map
}

const bigint64 = (random: Random): bigint =>
  random.chance(0.5) ? random.pick([0n, 1n, (1n << 53n) + 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n]) : BigInt.asUintN(64, (BigInt(random.int(0x100000000)) << 32n) | BigInt(random.int(0x100000000)))

function randomWellFormed(random: Random, version: 1 | 2): Message {
  const long = version === 2 ? 2000 : 255
  switch (random.pick(Object.values(MessageId))) {
    case MessageId.OHAI:
      return { id: MessageId.OHAI }
    case MessageId.ORLY:
      return { id: MessageId.ORLY, mechanisms: Array.from({ length: random.int(4) }, () => randomText(random, 255)), challenge: random.bytes(random.length(300)) }
    case MessageId.YARLY:
      return { id: MessageId.YARLY, mechanism: randomText(random, 255), response: random.bytes(random.length(300)) }
    case MessageId.OHAI_OK:
      return { id: MessageId.OHAI_OK }
    case MessageId.ICANHAZ:
      return { id: MessageId.ICANHAZ, path: randomText(random, long), options: randomMap(random, version), cache: randomMap(random, version) }
    case MessageId.ICANHAZ_OK:
      return { id: MessageId.ICANHAZ_OK }
    case MessageId.NOM:
      return { id: MessageId.NOM, credit: bigint64(random), sequence: bigint64(random) }
    case MessageId.CHEEZBURGER:
      return {
        id: MessageId.CHEEZBURGER,
        sequence: bigint64(random),
        operation: random.int(256),
        filename: randomText(random, long),
        offset: bigint64(random),
        eof: random.int(256),
        headers: randomMap(random, version),
        chunk: random.bytes(random.length(4096)),
      }
    case MessageId.HUGZ:
      return { id: MessageId.HUGZ }
    case MessageId.HUGZ_OK:
      return { id: MessageId.HUGZ_OK }
    case MessageId.KTHXBAI:
      return { id: MessageId.KTHXBAI }
    case MessageId.SRSLY:
      return { id: MessageId.SRSLY, reason: randomText(random, 255) }
    default:
      return { id: MessageId.RTFM, reason: randomText(random, 255) }
  }
}

// --- the run ----------------------------------------------------------------------------------

interface Tally {
  inputs: number
  decoded: number
  malformed: number
  nonCanonical: number
}

async function fail(version: 1 | 2, n: number, error: unknown, strategy: string): Promise<never> {
  const frames = error instanceof Finding ? error.frames : []
  const saved = await saveFinding(`codec-v${version}`, SEED, `${strategy}: ${(error as Error).message}`, [frames])
  assert.fail(
    [
      `codec v${version}, input #${n} (${strategy}): ${(error as Error).message}`,
      `input frames (hex): ${JSON.stringify(hexFrames(frames))}`,
      saved === undefined ? 'set FMQ_FUZZ_SAVE=<folder> to write it as a regression fixture' : `saved as ${saved}`,
      reproduce(SEED, SECONDS, FILE),
    ].join('\n'),
  )
}

for (const version of [1, 2] as const) {
  describe(`fuzz: the version ${version} codec`, () => {
    const codec = codecs[version]
    const budgetMs = (SECONDS * 1000) / 2
    const tally: Tally = { inputs: 0, decoded: 0, malformed: 0, nonCanonical: 0 }
    /** The sweep and the random run share this version's half of the time. */
    let versionStarted = 0
    const count = (outcome: Outcome): void => {
      tally.inputs++
      if (outcome === 'decoded') tally.decoded++
      else if (outcome === 'malformed') tally.malformed++
      else tally.nonCanonical++
    }

    test('every golden vector of both versions, its length and count fields swept through 0, boundaries and huge', async (t) => {
      versionStarted = performance.now()
      let n = 0
      for (const { frames } of goldenFrames) {
        for (const input of lengthSweep(frames)) {
          n++
          try {
            count(check(codec, input))
          } catch (error) {
            await fail(version, n, error, 'length sweep')
          }
        }
      }
      t.diagnostic(`${n} swept inputs`)
    })

    test(`mutated golden vectors, random octets, random multi-frame and mutated well-formed messages, seed ${SEED}`, async (t) => {
      const random = new Random(SEED ^ version)
      collectGarbage()
      const heapBefore = process.memoryUsage().heapUsed
      // Octets outside the heap (Buffers): a decode that believed a length would show here.
      const buffersBefore = process.memoryUsage().arrayBuffers
      let buffersMax = buffersBefore
      const started = performance.now()
      const deadline = Math.max(versionStarted + budgetMs, started + 1000)
      let n = 0
      const strategies = { golden: 0, octets: 0, frames: 0, wellFormed: 0 }
      while (performance.now() < deadline) {
        buffersMax = Math.max(buffersMax, process.memoryUsage().arrayBuffers)
        // A batch between clock reads: the clock is not free.
        for (let i = 0; i < 200; i++) {
          n++
          const roll = random.next()
          let strategy: keyof typeof strategies
          let input: Frames
          if (roll < 0.5) {
            strategy = 'golden'
            input = mutateMany(random, random.pick(goldenFrames).frames).frames
          } else if (roll < 0.6) {
            strategy = 'octets'
            input = [random.bytes(random.length(4096))]
          } else if (roll < 0.8) {
            strategy = 'frames'
            input = randomMessage(random)
          } else {
            strategy = 'wellFormed'
            let frames: Frames
            try {
              frames = codec.encode(randomWellFormed(random, version))
            } catch (error) {
              if (!(error instanceof EncodeError)) await fail(version, n, new Finding(`encode threw ${describeError(error)}`, []), strategy)
              continue
            }
            input = random.chance(0.3) ? frames : mutateMany(random, frames).frames
          }
          strategies[strategy]++
          try {
            count(check(codec, input))
          } catch (error) {
            await fail(version, n, error, strategy)
          }
        }
      }
      const seconds = (performance.now() - started) / 1000
      collectGarbage()
      const heapAfter = process.memoryUsage().heapUsed
      const rate = Math.round(n / seconds)
      t.diagnostic(`seed ${SEED}: ${n} random inputs in ${seconds.toFixed(1)} s (${rate}/s); ${JSON.stringify(strategies)}`)
      t.diagnostic(`all inputs: ${tally.decoded} decoded and re-encoded to the same octets, ${tally.nonCanonical} with a key named twice, ${tally.malformed} malformed`)
      t.diagnostic(`heap ${mib(heapBefore)} before, ${mib(heapAfter)} after; buffers at most ${mib(buffersMax - buffersBefore)} over before`)
      await recordFigure(`fuzz codec v${version}: inputs per second`, rate, 'inputs/s')
      await recordFigure(`fuzz codec v${version}: inputs tried`, tally.inputs, 'inputs')
      assert.ok(buffersMax - buffersBefore < BUFFERS_BOUND, `buffers grew by ${mib(buffersMax - buffersBefore)} (bound ${mib(BUFFERS_BOUND)}); ${reproduce(SEED, SECONDS, FILE)}`)
      assert.ok(heapAfter - heapBefore < HEAP_BOUND, `the live heap grew by ${mib(heapAfter - heapBefore)} (bound ${mib(HEAP_BOUND)}); ${reproduce(SEED, SECONDS, FILE)}`)
      assert.ok(tally.decoded > 0 && tally.malformed > 0, 'the fuzzer should reach both outcomes')
    })
  })
}
