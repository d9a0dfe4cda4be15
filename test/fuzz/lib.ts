/**
 * What the fuzz tests share: a seeded generator, the time budget, mutators of FILEMQ
 * frames, a garbage collection that really runs, the regression fixtures' format and
 * how a new crash input is saved as one.
 *
 * Environment:
 * - FMQ_FUZZ_SECONDS: the time each fuzz file runs for (default: short, for CI);
 * - FMQ_FUZZ_SEED: the seed (default: random, printed with every failure to reproduce it);
 * - FMQ_FUZZ_SAVE: a folder where failing inputs are written as regression fixtures
 *   (`npm run test:fuzz` sets test/fixtures/fuzz/found).
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import assert from 'node:assert/strict'
import { MalformedMessageError, NoSignatureError } from '../../src/protocol/errors.js'
import { MessageId, type Message } from '../../src/protocol/generated/fmq_msg.js'
import * as v1 from '../../src/protocol/generated/fmq_msg_v1.js'
import * as v2 from '../../src/protocol/generated/fmq_msg_v2.js'
import { canonical, golden } from '../fixtures/golden.js'

// --- settings ----------------------------------------------------------------------------

/** Seconds this fuzz file runs for: FMQ_FUZZ_SECONDS, else the short CI default. */
export function fuzzSeconds(ciDefault: number): number {
  const raw = process.env.FMQ_FUZZ_SECONDS
  const seconds = raw === undefined || raw === '' ? ciDefault : Number(raw)
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`FMQ_FUZZ_SECONDS must be a positive number, got ${raw}`)
  return seconds
}

/** The seed of this run: FMQ_FUZZ_SEED, else a fresh one. */
export function fuzzSeed(): number {
  const raw = process.env.FMQ_FUZZ_SEED
  if (raw !== undefined && raw !== '') {
    const seed = Number(raw)
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`FMQ_FUZZ_SEED must be an integer from 0 to 2^32-1, got ${raw}`)
    return seed
  }
  return (Date.now() ^ (process.pid << 16) ^ Math.floor(Math.random() * 0x100000000)) >>> 0
}

/** How to run this again: printed with every failure. */
export const reproduce = (seed: number, seconds: number, file: string): string =>
  `reproduce with: FMQ_FUZZ_SEED=${seed} FMQ_FUZZ_SECONDS=${seconds} node --import tsx --test ${file}`

// --- a seeded generator (mulberry32: small, fast, good enough to pick mutations) --------

export class Random {
  private state: number

  constructor(readonly seed: number) {
    this.state = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1)
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new Error('pick from an empty list')
    return list[this.int(list.length)]!
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length)
    for (let i = 0; i < length; i++) out[i] = this.int(256)
    return out
  }

  /** Mostly small, sometimes large: lengths as fuzzers like them. */
  length(max: number): number {
    const roll = this.next()
    if (roll < 0.6) return this.int(Math.min(max, 32) + 1)
    if (roll < 0.9) return this.int(Math.min(max, 512) + 1)
    return this.int(max + 1)
  }

  /** A generator for a sub-task, derived from this one (so tasks do not disturb each other's sequences). */
  fork(): Random {
    return new Random(this.int(0x100000000))
  }
}

// --- corpus and mutators -----------------------------------------------------------------

export type Frames = Buffer[]

/** Every golden message, of both versions, as frames: where mutations start from. */
export const goldenFrames: ReadonlyArray<{ version: 1 | 2; name: string; frames: Frames }> = ([1, 2] as const).flatMap((version) =>
  golden[version].map((c) => ({ version, name: c.name, frames: c.frames.map((hex) => Buffer.from(hex, 'hex')) })),
)

/** Values length and count fields are set to: zero, boundaries of each width, and huge. */
const INTERESTING = [0, 1, 2, 3, 0x7f, 0x80, 0xfe, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]
const WIDTHS = [1, 2, 4, 8] as const

/** Writes `value` big-endian into `width` octets at `at` (clipped at the end of the buffer). */
function writeWidth(buffer: Buffer, at: number, width: number, value: number): void {
  let v = BigInt(value)
  if (width === 8 && value === 0xffffffff) v = (1n << 64n) - 1n
  for (let i = width - 1; i >= 0; i--) {
    if (at + i < buffer.length) buffer[at + i] = Number(v & 0xffn)
    v >>= 8n
  }
}

/** The mutations, by name (the name goes into failure reports). */
export const MUTATIONS = ['flip', 'byte', 'insert', 'delete', 'truncate', 'extend', 'length', 'swap-id', 'drop-signature', 'add-frame', 'drop-frame', 'split-frame', 'splice'] as const
export type Mutation = (typeof MUTATIONS)[number]

/** One random mutation of a message's frames (never modifies its input). */
export function mutate(random: Random, input: readonly Buffer[]): { frames: Frames; mutation: Mutation } {
  const frames: Frames = input.map((f) => Buffer.from(f))
  const mutation = random.pick(MUTATIONS)
  const f = frames.length === 0 ? -1 : random.chance(0.8) ? 0 : random.int(frames.length)
  const target = f < 0 ? Buffer.alloc(0) : frames[f]!
  const at = target.length === 0 ? 0 : random.int(target.length)
  const set = (buffer: Buffer): void => {
    if (f >= 0) frames[f] = buffer
    else frames.push(buffer)
  }
  switch (mutation) {
    case 'flip':
      if (target.length > 0) target[at]! ^= 1 << random.int(8)
      break
    case 'byte':
      if (target.length > 0) target[at] = random.pick([0, 1, 0x7f, 0x80, 0xff, random.int(256)])
      break
    case 'insert':
      set(Buffer.concat([target.subarray(0, at), random.bytes(random.length(64) || 1), target.subarray(at)]))
      break
    case 'delete':
      set(Buffer.concat([target.subarray(0, at), target.subarray(at + random.range(1, 16))]))
      break
    case 'truncate':
      set(target.subarray(0, random.int(target.length + 1)))
      break
    case 'extend':
      set(Buffer.concat([target, random.chance(0.5) ? Buffer.alloc(random.length(4096)) : random.bytes(random.length(4096))]))
      break
    case 'length':
      // A length or count field set to 0, a boundary, or huge: the position is a guess, the width too.
      writeWidth(target, Math.max(3, at), random.pick(WIDTHS), random.pick(INTERESTING))
      break
    case 'swap-id':
      if (target.length > 2 && f <= 0) target[2] = random.chance(0.8) ? random.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 127, 128, 129, 130, 255]) : random.int(256)
      break
    case 'drop-signature':
      if (target.length > 0) target[random.int(Math.min(2, target.length))]! ^= 0xff
      break
    case 'add-frame':
      frames.splice(random.int(frames.length + 1), 0, random.chance(0.3) ? Buffer.alloc(0) : random.bytes(random.length(256)))
      break
    case 'drop-frame':
      if (frames.length > 0) frames.splice(random.int(frames.length), 1)
      break
    case 'split-frame':
      if (f >= 0) frames.splice(f, 1, target.subarray(0, at), target.subarray(at))
      break
    case 'splice': {
      // The head of this message on the tail of another one (fields of one, lengths of the other).
      const other = random.pick(goldenFrames).frames[0]!
      set(Buffer.concat([target.subarray(0, at), other.subarray(random.int(other.length + 1))]))
      break
    }
  }
  return { frames, mutation }
}

/** Several mutations in a row (most inputs get one or two). */
export function mutateMany(random: Random, input: readonly Buffer[]): { frames: Frames; mutations: Mutation[] } {
  let frames: Frames = [...input]
  const mutations: Mutation[] = []
  const count = random.chance(0.6) ? 1 : random.range(2, 6)
  for (let i = 0; i < count; i++) {
    const step = mutate(random, frames)
    frames = step.frames
    mutations.push(step.mutation)
  }
  return { frames, mutations }
}

/**
 * Every deterministic length mutation of a frame: at each offset after the id, each width
 * set to each interesting value. Small for golden vectors (a few thousand per frame).
 */
export function* lengthSweep(frames: readonly Buffer[]): Generator<Frames> {
  const first = frames[0]
  if (first === undefined) return
  for (let at = 3; at < first.length; at++) {
    for (const width of WIDTHS) {
      for (const value of INTERESTING) {
        const copy = Buffer.from(first)
        writeWidth(copy, at, width, value)
        yield [copy, ...frames.slice(1)]
      }
    }
  }
}

/** A message of random frames: the first often opens with the signature and a known id. */
export function randomMessage(random: Random, maxFrame = 2048): Frames {
  const count = random.chance(0.5) ? 1 : random.range(0, 6)
  const frames: Frames = []
  for (let i = 0; i < count; i++) {
    const frame = random.chance(0.15) ? Buffer.alloc(0) : random.bytes(random.length(maxFrame))
    if (i === 0 && frame.length >= 3 && random.chance(0.7)) {
      frame.writeUInt16BE(0xaaa3, 0)
      if (random.chance(0.8)) frame[2] = random.pick([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 128, 129])
    }
    frames.push(frame)
  }
  return frames
}

export const hexFrames = (frames: readonly Buffer[]): string[] => frames.map((f) => f.toString('hex'))

// --- the codec oracle -------------------------------------------------------------------------

/** A codec of one version. */
export type Codec = (typeof codecs)[1 | 2]
export const codecs = { 1: v1, 2: v2 } as const

/** A single decode of at most ~70 KB taking longer than this is a hang. */
const SLOW_MS = 250

/** What one input did. */
export type Outcome = 'decoded' | 'malformed' | 'non-canonical'

export class Finding extends Error {
  constructor(
    message: string,
    readonly frames: Frames,
  ) {
    super(message)
  }
}

export const describeError = (error: unknown): string => (error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error))
const sameFrames = (a: readonly Buffer[], b: readonly Buffer[]): boolean => a.length === b.length && a.every((f, i) => f.equals(b[i]!))
const octets = (frames: readonly Buffer[]): number => frames.reduce((n, f) => n + f.length, 0)

/**
 * Decodes one input with one codec and checks everything the codec promises about it: a
 * message or a MalformedMessageError (of the right code), quickly; a message re-encodes
 * without throwing, to the same frames unless a key named twice shortened them.
 * Throws a {@link Finding} otherwise.
 */
export function check(codec: Codec, frames: Frames): Outcome {
  const started = performance.now()
  let message: Message
  try {
    message = codec.decode(frames)
  } catch (error) {
    const took = performance.now() - started
    if (!(error instanceof MalformedMessageError)) throw new Finding(`decode threw ${describeError(error)}, not a MalformedMessageError`, frames)
    const expectedCode = error instanceof NoSignatureError ? 'ERR_FMQ_NO_SIGNATURE' : 'ERR_FMQ_MALFORMED'
    if (error.code !== expectedCode) throw new Finding(`${error.name} with code ${error.code}`, frames)
    if (took > SLOW_MS) throw new Finding(`decode took ${took.toFixed(0)} ms to refuse ${octets(frames)} octets`, frames)
    return 'malformed'
  }
  const took = performance.now() - started
  if (took > SLOW_MS) throw new Finding(`decode took ${took.toFixed(0)} ms for ${octets(frames)} octets`, frames)
  if (!Object.values(MessageId).includes(message.id)) throw new Finding(`decoded an unknown id ${message.id}`, frames)

  let encoded: Buffer[]
  try {
    encoded = codec.encode(message)
  } catch (error) {
    throw new Finding(`a decoded ${message.id} does not re-encode: ${describeError(error)}`, frames)
  }
  if (sameFrames(encoded, frames)) return 'decoded'

  // Not the same octets: only a key named twice may explain it, which only shortens the frame.
  const hasMap = Object.values(message).some((value) => value instanceof Map)
  if (!hasMap || encoded.length !== frames.length || encoded[0]!.length >= frames[0]!.length) {
    throw new Finding(`re-encoding changed the octets: ${hexFrames(frames).join(' | ')} → ${hexFrames(encoded).join(' | ')}`, frames)
  }
  let again: Message
  try {
    again = codec.decode(encoded)
  } catch (error) {
    throw new Finding(`a re-encoded message does not decode: ${describeError(error)}`, frames)
  }
  assertSame(again, message, frames, 'a re-encoded message decodes differently')
  if (!sameFrames(codec.encode(again), encoded)) throw new Finding('re-encoding is not a fixed point', frames)
  return 'non-canonical'
}

function assertSame(actual: Message, expected: Message, frames: Frames, what: string): void {
  try {
    assert.deepStrictEqual(canonical(actual), canonical(expected))
  } catch (error) {
    throw new Finding(`${what}: ${(error as Error).message}`, frames)
  }
}

// --- memory ---------------------------------------------------------------------------------

let gcFunction: (() => void) | undefined

/** A full garbage collection, so heap figures compare live objects only. */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    setFlagsFromString('--expose-gc')
    gcFunction = runInNewContext('gc') as () => void
  }
  gcFunction()
}

export const MiB = 1024 * 1024
export const mib = (octets: number): string => `${(octets / MiB).toFixed(1)} MiB`

// --- regression fixtures -------------------------------------------------------------------

/** Where the regression fixtures live: one JSON file per input. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/fuzz/', import.meta.url))

/** What decoding one message must give with one codec: a message, or a MalformedMessageError of this reason. */
export type Expectation = 'ok' | 'no-signature' | 'empty' | 'truncated' | 'unknown-id' | 'bad-protocol' | 'bad-version' | 'missing-frame' | 'extra-data' | 'bad-entry' | 'bad-utf8'

/**
 * One regression fixture: messages sent in order by one client (to a live server), each
 * also decoded by both codecs. `expect` pins what each codec must say, when it is known.
 */
export interface FuzzFixture {
  /** What the input is and what it broke (or what it probes, for a handcrafted one). */
  comment: string
  /** Where it came from: "handcrafted", or the fuzz seed and test that found it. */
  origin: string
  /** The servers to replay it against (default both): an input that needs a transfer needs anonymous access. */
  servers?: Array<'anonymous' | 'plain'>
  /** Times the server replay sends it (default a few): an input that loses a race needs more. */
  repeat?: number
  messages: Array<{
    frames: string[]
    expect?: Partial<Record<'1' | '2', Expectation>>
    /** Server replay: after sending this message, wait for a reply with this message id (e.g. 8, CHEEZBURGER). */
    await?: number
  }>
}

export async function loadFixtures(): Promise<Array<{ file: string; fixture: FuzzFixture }>> {
  const out: Array<{ file: string; fixture: FuzzFixture }> = []
  for (const folder of [FIXTURES, join(FIXTURES, 'found')]) {
    if (!existsSync(folder)) continue
    for (const name of (await readdir(folder)).filter((n) => n.endsWith('.json')).sort()) {
      const file = join(folder, name)
      out.push({ file, fixture: JSON.parse(await readFile(file, 'utf8')) as FuzzFixture })
    }
  }
  return out
}

/**
 * Writes a failing input where FMQ_FUZZ_SAVE says (a regression fixture to review, rename
 * and commit); returns where, or undefined when saving is off.
 */
export async function saveFinding(kind: string, seed: number, what: string, messages: Frames[]): Promise<string | undefined> {
  const folder = process.env.FMQ_FUZZ_SAVE
  if (folder === undefined || folder === '') return undefined
  await mkdir(folder, { recursive: true })
  const fixture: FuzzFixture = {
    comment: `FOUND BY THE FUZZER, to review: ${what}`,
    origin: `${kind}, FMQ_FUZZ_SEED=${seed}`,
    messages: messages.map((frames) => ({ frames: hexFrames(frames) })),
  }
  const file = join(folder, `${kind}-${seed}-${Date.now()}.json`)
  await writeFile(file, `${JSON.stringify(fixture, null, 2)}\n`)
  return file
}

// --- figures --------------------------------------------------------------------------------

type RecordFigure = (name: string, value: number | string, unit?: string) => void
let recorder: Promise<RecordFigure | undefined> | undefined

/**
 * Records a figure with test/faults/figures.ts when that module is there; the caller also
 * prints it as a test diagnostic, so the figure is never lost.
 */
export async function recordFigure(name: string, value: number | string, unit?: string): Promise<void> {
  recorder ??= (async () => {
    const path = new URL('../faults/figures.ts', import.meta.url)
    if (!existsSync(fileURLToPath(path))) return undefined
    try {
      const module = (await import(path.href)) as { recordFigure?: RecordFigure }
      return module.recordFigure
    } catch {
      return undefined
    }
  })()
  const record = await recorder
  record?.(name, value, unit)
}
