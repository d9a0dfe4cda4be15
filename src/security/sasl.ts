/**
 * SASL as FileMQ uses it: the ANONYMOUS and PLAIN mechanisms (RFC 4422, RFC 4616) carried in
 * ORLY (mechanisms on offer) and YARLY (the chosen mechanism and its response).
 *
 * The reference server crashes on a malformed PLAIN response; here every malformed response
 * is a {@link MalformedCredentialsError} and nothing else, so the server can answer SRSLY.
 *
 * @packageDocumentation
 */

import { MalformedCredentialsError } from './errors.js';

/** The SASL mechanism for peers that do not identify themselves (RFC 4505). */
export const ANONYMOUS = 'ANONYMOUS';

/** The SASL mechanism for a login and a clear-text password (RFC 4616). */
export const PLAIN = 'PLAIN';

/** Mechanism names this implementation knows, as they travel in ORLY and YARLY. */
export const MECHANISMS = { ANONYMOUS, PLAIN } as const;

/** A mechanism name this implementation knows. */
export type Mechanism = (typeof MECHANISMS)[keyof typeof MECHANISMS];

/** RFC 4616 section 2: each of authzid, authcid and passwd is at most 255 octets. */
export const MAX_PLAIN_PART = 255;

/** Three parts at their longest and the two NUL separators. */
const MAX_PLAIN_RESPONSE = 3 * MAX_PLAIN_PART + 2;

/** The parts of a PLAIN response. */
export interface PlainCredentials {
  /** Authorization identity: who to act as; '' (the reference client's choice) means the login. */
  readonly authzid: string;
  /** Authentication identity: the account name. */
  readonly login: string;
  /** The clear-text password. Keep it out of logs. */
  readonly password: string;
}

// ignoreBOM keeps a leading U+FEFF in the value: the bytes are the identity, not a text file.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const PART_NAMES = ['authorization identity', 'login', 'password'] as const;

const NUL = Buffer.from([0]);

/**
 * Parses a SASL PLAIN response, `[authzid] NUL authcid NUL passwd` (RFC 4616), as the
 * client sends it in YARLY. Throws {@link MalformedCredentialsError}, and nothing else, for
 * any input that breaks the RFC: not exactly two NULs, an empty login or password, a part
 * over 255 octets, or a part that is not UTF-8. Error messages never quote the password.
 *
 * @example
 * ```ts
 * parsePlainResponse(Buffer.from('\0reader\0secret'));
 * // { authzid: '', login: 'reader', password: 'secret' }
 * ```
 */
export function parsePlainResponse(response: Uint8Array): PlainCredentials {
  if (!(response instanceof Uint8Array)) {
    throw new MalformedCredentialsError('not-bytes', 'PLAIN response is not a byte buffer');
  }
  if (response.length > MAX_PLAIN_RESPONSE) {
    throw new MalformedCredentialsError(
      'too-long',
      `PLAIN response is ${response.length} octets; RFC 4616 allows at most ${MAX_PLAIN_RESPONSE}`,
    );
  }
  const first = response.indexOf(0);
  if (first === -1) {
    throw new MalformedCredentialsError('missing-nul', 'PLAIN response has no NUL separator');
  }
  const second = response.indexOf(0, first + 1);
  if (second === -1) {
    throw new MalformedCredentialsError('missing-nul', 'PLAIN response has only one NUL separator');
  }
  if (response.indexOf(0, second + 1) !== -1) {
    // RFC 4616: passwd = 1*SAFE, and SAFE excludes NUL.
    throw new MalformedCredentialsError('extra-nul', 'PLAIN response has more than two NUL octets');
  }

  // RFC 4616: authcid = 1*SAFE and passwd = 1*SAFE; only authzid may be empty.
  if (second === first + 1) {
    throw new MalformedCredentialsError('empty-login', 'PLAIN response has an empty login');
  }
  if (second === response.length - 1) {
    throw new MalformedCredentialsError('empty-password', 'PLAIN response has an empty password');
  }
  return {
    authzid: decodePart(response.subarray(0, first), 'authorization identity'),
    login: decodePart(response.subarray(first + 1, second), 'login'),
    password: decodePart(response.subarray(second + 1), 'password'),
  };
}

function decodePart(part: Uint8Array, name: string): string {
  if (part.length > MAX_PLAIN_PART) {
    throw new MalformedCredentialsError(
      'too-long',
      `PLAIN ${name} is ${part.length} octets; RFC 4616 allows at most ${MAX_PLAIN_PART}`,
    );
  }
  try {
    return utf8.decode(part);
  } catch {
    throw new MalformedCredentialsError('bad-utf8', `PLAIN ${name} is not valid UTF-8`);
  }
}

/** With the `u` flag this matches only surrogates that are not half of a pair. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Encodes a PLAIN response as the reference client does: `NUL login NUL password`, with an
 * empty authorization identity unless one is given. Throws
 * {@link MalformedCredentialsError} for credentials the server could never accept (an empty
 * login or password, a NUL inside a part, a part over 255 octets, a lone surrogate), so the
 * mistake shows at the client instead of as a bare SRSLY.
 *
 * @example
 * ```ts
 * encodePlainResponse('reader', 'secret'); // <Buffer 00 72 65 61 64 65 72 00 73 65 63 72 65 74>
 * ```
 */
export function encodePlainResponse(login: string, password: string, authzid = ''): Buffer {
  const parts = [authzid, login, password].map((text, index) => {
    const name = PART_NAMES[index] ?? 'part';
    if (typeof text !== 'string') {
      throw new MalformedCredentialsError('not-bytes', `PLAIN ${name} is not a string`);
    }
    if (LONE_SURROGATE.test(text)) {
      throw new MalformedCredentialsError('bad-utf8', `PLAIN ${name} is not well-formed Unicode`);
    }
    if (text.includes('\0')) {
      throw new MalformedCredentialsError('extra-nul', `PLAIN ${name} contains a NUL`);
    }
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > MAX_PLAIN_PART) {
      throw new MalformedCredentialsError(
        'too-long',
        `PLAIN ${name} is ${bytes.length} octets; RFC 4616 allows at most ${MAX_PLAIN_PART}`,
      );
    }
    return bytes;
  });
  if (login === '') throw new MalformedCredentialsError('empty-login', 'PLAIN login is empty');
  if (password === '') throw new MalformedCredentialsError('empty-password', 'PLAIN password is empty');
  const [authzBytes, loginBytes, passwordBytes] = parts as [Buffer, Buffer, Buffer];
  return Buffer.concat([authzBytes, NUL, loginBytes, NUL, passwordBytes]);
}
