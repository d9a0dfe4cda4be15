/**
 * Typed errors of the FILEMQ wire layer. Every decode failure is a
 * {@link MalformedMessageError}; the codecs throw nothing else on any input.
 */

/** Why a message could not be decoded. */
export type MalformedReason =
  /** No frames at all, or an empty first frame. */
  | 'empty'
  /** The first frame does not start with the signature 0xAA 0xA3. */
  | 'no-signature'
  /** The message id is not one the protocol defines. */
  | 'unknown-id'
  /** A field, or the data a length or count announces, runs past the end of the frame. */
  | 'truncated'
  /** OHAI names a protocol other than FILEMQ. */
  | 'bad-protocol'
  /** OHAI asks for a version other than the codec's. */
  | 'bad-version'
  /** A version-1 frame field is missing its ZeroMQ frame. */
  | 'missing-frame'
  /** Octets after the last field, or more frames than the message has. */
  | 'extra-data'
  /** A version-1 dictionary entry without "=". */
  | 'bad-entry'
  /** A string that is not valid UTF-8. */
  | 'bad-utf8'

/**
 * A message that does not follow the FILEMQ wire format.
 *
 * @example
 * ```ts
 * try { decode(frames) } catch (error) {
 *   if (error instanceof NoSignatureError) return        // not FILEMQ: drop silently
 *   if (error instanceof MalformedMessageError) sendRtfm() // FILEMQ, but broken
 * }
 * ```
 */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError'
  code: 'ERR_FMQ_MALFORMED' | 'ERR_FMQ_NO_SIGNATURE' = 'ERR_FMQ_MALFORMED'

  constructor(
    readonly reason: MalformedReason,
    message: string,
    /** The field being decoded, when the failure is in a field. */
    readonly field?: string,
  ) {
    super(message)
  }
}

/**
 * A message whose first frame lacks the FILEMQ signature, or an empty message.
 * spec 19: a server drops these silently, so ports that used to host other
 * protocols are not answered.
 */
export class NoSignatureError extends MalformedMessageError {
  override name = 'NoSignatureError'
  override code = 'ERR_FMQ_NO_SIGNATURE' as const

  constructor(reason: 'empty' | 'no-signature', message: string) {
    super(reason, message)
  }
}

/** Why a message could not be encoded. */
export type EncodeReason =
  /** A string longer than its length field can say (255 octets for a 1-octet length). */
  | 'too-long'
  /** A list or dictionary with more entries than its count field can say. */
  | 'too-many'
  /** A number outside the range of its octets, or not an integer. */
  | 'out-of-range'
  /** A dictionary key that the wire cannot carry ("=" in a version-1 name). */
  | 'bad-key'

/**
 * A message that cannot be put on the wire as it is. The codecs never truncate
 * or wrap silently (the reference 1.x does both).
 *
 * @example
 * ```ts
 * try { v1.encode(message) } catch (error) {
 *   if (error instanceof EncodeError && error.reason === 'too-many') splitTheCache()
 * }
 * ```
 */
export class EncodeError extends Error {
  override name = 'EncodeError'
  readonly code = 'ERR_FMQ_ENCODE'

  constructor(
    readonly reason: EncodeReason,
    readonly field: string,
    message: string,
  ) {
    super(message)
  }
}
