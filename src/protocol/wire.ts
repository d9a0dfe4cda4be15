/**
 * Wire primitives the generated codecs are made of: one reader and one writer
 * per FILEMQ encoding (see the encodings listed in spec/fmq_msg.xml).
 *
 * The reader checks every length and count against the octets that are really
 * there before it allocates anything, so no peer can make us allocate by lying
 * in a length field. Octet fields are returned as views, never copied.
 */
import { isUtf8 } from 'node:buffer'
import { EncodeError, MalformedMessageError, NoSignatureError } from './errors.js'

/** spec 19: every message's first frame opens with these two octets. */
export const SIGNATURE = 0xaaa3
const MAX_NUMBER_8 = (1n << 64n) - 1n
const EMPTY = Buffer.alloc(0)

/** Reads the fields of one message, in order, from its frames. */
export class FrameReader {
  /** The message id, read by {@link FrameReader.open}. */
  readonly id: number
  private offset = 3
  private nextFrame = 1

  private constructor(
    private readonly frames: readonly Buffer[],
    private readonly buffer: Buffer,
  ) {
    this.id = buffer[2]!
  }

  /** Checks the signature and reads the message id of the first frame. */
  static open(frames: readonly Buffer[]): FrameReader {
    const first = frames[0]
    if (first === undefined || first.length === 0) {
      throw new NoSignatureError('empty', 'empty message')
    }
    if (first.length < 2 || first.readUInt16BE(0) !== SIGNATURE) {
      throw new NoSignatureError('no-signature', 'first frame lacks the FILEMQ signature')
    }
    if (first.length < 3) {
      throw new MalformedMessageError('truncated', 'message id missing after the signature')
    }
    return new FrameReader(frames, first)
  }

  private need(octets: number, field: string): number {
    const at = this.offset
    if (octets > this.buffer.length - at) {
      throw new MalformedMessageError(
        'truncated',
        `${field}: needs ${octets} octets at offset ${at}, frame has ${this.buffer.length - at} left`,
        field,
      )
    }
    this.offset = at + octets
    return at
  }

  number1(field: string): number {
    return this.buffer[this.need(1, field)]!
  }

  number2(field: string): number {
    return this.buffer.readUInt16BE(this.need(2, field))
  }

  number4(field: string): number {
    return this.buffer.readUInt32BE(this.need(4, field))
  }

  number8(field: string): bigint {
    return this.buffer.readBigUInt64BE(this.need(8, field))
  }

  private text(length: number, field: string): string {
    const at = this.need(length, field)
    const text = this.buffer.toString('utf8', at, at + length)
    // Octets that are not UTF-8 decode with U+FFFD: only a text showing one is checked (a
    // genuine U+FFFD is valid), not each of the 100,000 keys of a resync cache.
    if (text.includes('\uFFFD') && !isUtf8(this.buffer.subarray(at, at + length))) {
      throw new MalformedMessageError('bad-utf8', `${field}: not valid UTF-8`, field)
    }
    return text
  }

  /** A string with a 1-octet length. */
  string(field: string): string {
    return this.text(this.number1(field), field)
  }

  /** A string with a 4-octet length. */
  longstr(field: string): string {
    return this.text(this.number4(field), field)
  }

  /** A 1-octet count of 1-octet-length strings. */
  strings1(field: string): string[] {
    const count = this.count(this.number1(field), 1, field)
    const list: string[] = []
    for (let i = 0; i < count; i++) list.push(this.string(field))
    return list
  }

  /** A 4-octet count of 4-octet-length strings. */
  strings4(field: string): string[] {
    const count = this.count(this.number4(field), 4, field)
    const list: string[] = []
    for (let i = 0; i < count; i++) list.push(this.longstr(field))
    return list
  }

  /** A 1-octet count of "name=value" strings (version 1). */
  dictionary(field: string): Map<string, string> {
    const count = this.count(this.number1(field), 1, field)
    const map = new Map<string, string>()
    for (let i = 0; i < count; i++) {
      const entry = this.string(field)
      const equals = entry.indexOf('=')
      // The reference 1.x crashes on an entry without "="; we refuse the message.
      if (equals < 0) throw new MalformedMessageError('bad-entry', `${field}: entry without "="`, field)
      map.set(entry.slice(0, equals), entry.slice(equals + 1))
    }
    return map
  }

  /** A 4-octet count of entries, each a 1-octet-length name and a 4-octet-length value (version 2). */
  hash(field: string): Map<string, string> {
    const count = this.count(this.number4(field), 1 + 4, field)
    const map = new Map<string, string>()
    for (let i = 0; i < count; i++) {
      const name = this.string(field)
      map.set(name, this.longstr(field))
    }
    return map
  }

  /** Octets with a 4-octet length, inside the first frame: a view, not a copy. */
  chunk(field: string): Buffer {
    const length = this.number4(field)
    const at = this.need(length, field)
    return this.buffer.subarray(at, at + length)
  }

  /** Octets carried as the next ZeroMQ frame (version 1). */
  frame(field: string): Buffer {
    const frame = this.frames[this.nextFrame]
    if (frame === undefined) {
      throw new MalformedMessageError('missing-frame', `${field}: its frame is missing`, field)
    }
    this.nextFrame++
    return frame
  }

  /** Checks the protocol constant of OHAI. */
  expectText(value: string, actual: string, field: string): void {
    if (actual !== value) {
      throw new MalformedMessageError('bad-protocol', `${field}: expected "${value}", got "${actual.slice(0, 32)}"`, field)
    }
  }

  /** Checks the version constant of OHAI. */
  expectVersion(value: number, actual: number, field: string): void {
    if (actual !== value) {
      throw new MalformedMessageError('bad-version', `${field}: this codec speaks version ${value}, got ${actual}`, field)
    }
  }

  /** Fails unless every octet and every frame was consumed. */
  end(): void {
    if (this.offset !== this.buffer.length) {
      throw new MalformedMessageError('extra-data', `${this.buffer.length - this.offset} octets after the last field`)
    }
    if (this.nextFrame !== this.frames.length) {
      throw new MalformedMessageError('extra-data', `${this.frames.length - this.nextFrame} frames after the last field`)
    }
  }

  /** A count is only believed if the frame holds at least its smallest entries. */
  private count(count: number, minimumEntry: number, field: string): number {
    if (count * minimumEntry > this.buffer.length - this.offset) {
      throw new MalformedMessageError('truncated', `${field}: ${count} entries cannot fit in the frame`, field)
    }
    return count
  }
}

/** Computes sizes before writing so each frame is allocated once, at its final size. */
export const size = {
  string(value: string, field: string): number {
    const length = Buffer.byteLength(value)
    if (length > 255) throw new EncodeError('too-long', field, `${field}: ${length} octets, at most 255 fit`)
    return 1 + length
  },
  longstr(value: string, field: string): number {
    const length = Buffer.byteLength(value)
    if (length > 0xffffffff) throw new EncodeError('too-long', field, `${field}: ${length} octets is too long`)
    return 4 + length
  },
  strings1(list: readonly string[], field: string): number {
    if (list.length > 255) throw new EncodeError('too-many', field, `${field}: ${list.length} entries, at most 255 fit`)
    let total = 1
    for (const item of list) total += size.string(item, field)
    return total
  },
  strings4(list: readonly string[], field: string): number {
    let total = 4
    for (const item of list) total += size.longstr(item, field)
    return total
  },
  dictionary(map: ReadonlyMap<string, string>, field: string): number {
    if (map.size > 255) throw new EncodeError('too-many', field, `${field}: ${map.size} entries, at most 255 fit`)
    let total = 1
    for (const [name, value] of map) {
      if (name.includes('=')) throw new EncodeError('bad-key', field, `${field}: name "${name.slice(0, 32)}" holds "="`)
      total += size.string(`${name}=${value}`, field)
    }
    return total
  },
  hash(map: ReadonlyMap<string, string>, field: string): number {
    let total = 4
    for (const [name, value] of map) total += size.string(name, field) + size.longstr(value, field)
    return total
  },
  chunk(octets: Uint8Array, field: string): number {
    if (octets.length > 0xffffffff) throw new EncodeError('too-long', field, `${field}: ${octets.length} octets is too long`)
    return 4 + octets.length
  },
} as const

/** Octets reserved before a chunk made by {@link withHeadroom}: room for a CHEEZBURGER's other fields. */
export const HEADROOM = 8 * 1024

/** Memory made by withHeadroom, not used for a frame yet: where its chunk starts. */
const roomy = new WeakMap<ArrayBufferLike, number>()

/**
 * A buffer for `length` octets of chunk with {@link HEADROOM} octets reserved before it, so
 * the frame that carries it can be written around it: a file is read straight into the
 * frame that goes on the wire. The room is used once, by the first frame that ends with
 * exactly this buffer (or a prefix of it); any other use copies as usual.
 *
 * @example
 * ```ts
 * const chunk = withHeadroom(1_000_000)
 * await handle.read(chunk, 0, chunk.length, position)
 * codec.encode({ id: MessageId.CHEEZBURGER, ..., chunk }) // no copy of the chunk
 * ```
 */
export function withHeadroom(length: number): Buffer {
  const memory = Buffer.allocUnsafeSlow(HEADROOM + length)
  roomy.set(memory.buffer, memory.byteOffset + HEADROOM)
  return memory.subarray(HEADROOM)
}

/**
 * Makes the room before a chunk made by {@link withHeadroom} usable again, for memory read
 * into anew once the frame it went out in is done with (content.ts recycles acknowledged chunks).
 */
export function restoreHeadroom(chunk: Buffer): Buffer {
  roomy.set(chunk.buffer, chunk.byteOffset)
  return chunk
}

/** Writes the fields of one message into its first frame, in order. */
export class FrameWriter {
  readonly buffer: Buffer
  private offset = 3
  /** The frame was laid around its final chunk, which is in place already. */
  private readonly inPlace: Uint8Array | undefined

  /** @param tail - the chunk that ends the frame, when it is the last field: written around if it has room. */
  constructor(length: number, id: number, tail?: Uint8Array) {
    const start = tail === undefined ? undefined : roomy.get(tail.buffer)
    const before = tail === undefined ? 0 : length - tail.length
    if (tail !== undefined && start !== undefined && tail.byteOffset === start && before <= HEADROOM) {
      roomy.delete(tail.buffer)
      this.buffer = Buffer.from(tail.buffer, tail.byteOffset - before, length)
      this.inPlace = tail
    } else {
      this.buffer = Buffer.allocUnsafe(length)
    }
    this.buffer.writeUInt16BE(SIGNATURE, 0)
    this.buffer[2] = id
  }

  private integer(value: number, maximum: number, field: string): void {
    if (!Number.isInteger(value) || value < 0 || value > maximum) {
      throw new EncodeError('out-of-range', field, `${field}: ${value} is not an integer from 0 to ${maximum}`)
    }
  }

  number1(value: number, field: string): void {
    this.integer(value, 0xff, field)
    this.buffer[this.offset++] = value
  }

  number2(value: number, field: string): void {
    this.integer(value, 0xffff, field)
    this.offset = this.buffer.writeUInt16BE(value, this.offset)
  }

  number4(value: number, field: string): void {
    this.integer(value, 0xffffffff, field)
    this.offset = this.buffer.writeUInt32BE(value, this.offset)
  }

  number8(value: bigint, field: string): void {
    if (typeof value !== 'bigint' || value < 0n || value > MAX_NUMBER_8) {
      throw new EncodeError('out-of-range', field, `${field}: ${value} is not from 0 to 2^64-1`)
    }
    this.offset = this.buffer.writeBigUInt64BE(value, this.offset)
  }

  string(value: string, _field: string): void {
    const length = this.buffer.write(value, this.offset + 1, 'utf8')
    this.buffer[this.offset] = length
    this.offset += 1 + length
  }

  longstr(value: string, _field: string): void {
    const length = this.buffer.write(value, this.offset + 4, 'utf8')
    this.buffer.writeUInt32BE(length, this.offset)
    this.offset += 4 + length
  }

  strings1(list: readonly string[], field: string): void {
    this.buffer[this.offset++] = list.length
    for (const item of list) this.string(item, field)
  }

  strings4(list: readonly string[], field: string): void {
    this.offset = this.buffer.writeUInt32BE(list.length, this.offset)
    for (const item of list) this.longstr(item, field)
  }

  dictionary(map: ReadonlyMap<string, string>, field: string): void {
    this.buffer[this.offset++] = map.size
    for (const [name, value] of map) this.string(`${name}=${value}`, field)
  }

  hash(map: ReadonlyMap<string, string>, field: string): void {
    this.offset = this.buffer.writeUInt32BE(map.size, this.offset)
    for (const [name, value] of map) {
      this.string(name, field)
      this.longstr(value, field)
    }
  }

  chunk(octets: Uint8Array, _field: string): void {
    this.offset = this.buffer.writeUInt32BE(octets.length, this.offset)
    if (octets !== this.inPlace) this.buffer.set(octets, this.offset)
    this.offset += octets.length
  }

  /** The finished first frame. */
  done(): Buffer {
    return this.buffer
  }
}

/** Octets for a frame field: the caller's buffer itself, never a copy. */
export function frameOf(octets: Uint8Array | undefined): Buffer {
  if (octets === undefined || octets.length === 0) return EMPTY
  return Buffer.isBuffer(octets) ? octets : Buffer.from(octets.buffer, octets.byteOffset, octets.length)
}
