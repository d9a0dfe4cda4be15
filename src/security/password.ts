/**
 * Password hashing for PLAIN accounts, in libsodium's `crypto_pwhash_str` form: an argon2id
 * string such as `$argon2id$v=19$m=65536,t=2,p=1$<salt>$<hash>` that carries its own salt and
 * cost, so a config can hold it instead of a clear-text password.
 *
 * Hashing and verifying run on the libuv thread pool (sodium-native's async variants): an
 * argon2id pass takes tens of milliseconds and 64 MiB, which must not stall the event loop
 * that serves every other peer.
 *
 * @packageDocumentation
 */

import { sodium } from './sodium.js';

/**
 * The shape libsodium writes: version 19 (0x13), decimal cost parameters, then salt and
 * digest in unpadded standard base64.
 */
const HASH_PATTERN =
  /^\$argon2id\$v=19\$m=([1-9][0-9]{0,9}),t=([1-9][0-9]{0,9}),p=([1-9][0-9]{0,2})\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}$/;

/** With the `u` flag this matches only surrogates that are not half of a pair. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** The cost parameters written into an argon2id string. */
export interface PasswordHashParams {
  /** Memory in KiB (`m=`). */
  readonly memoryKiB: number;
  /** Number of passes (`t=`). */
  readonly passes: number;
  /** Lanes (`p=`); libsodium always writes 1. */
  readonly lanes: number;
}

/**
 * Whether `text` looks like an argon2id hash string as {@link hashPassword} (libsodium's
 * `crypto_pwhash_str`) writes it. Checks the form, not that the digest is genuine.
 *
 * @example
 * ```ts
 * isPasswordHash('$argon2id$v=19$m=65536,t=2,p=1$T4oOTinwzvYXIpyZlj5GYA$+NnxMIxbBYIkCwqbiLBkrrryIjL0WAhn8+HXUrmjzJY'); // true
 * isPasswordHash('hunter2'); // false
 * ```
 */
export function isPasswordHash(text: string): boolean {
  return parsePasswordHash(text) !== undefined;
}

/**
 * The cost parameters of an argon2id hash string, or undefined when `text` is not one.
 *
 * @example
 * ```ts
 * parsePasswordHash(await hashPassword('secret')); // { memoryKiB: 65536, passes: 2, lanes: 1 }
 * ```
 */
export function parsePasswordHash(text: string): PasswordHashParams | undefined {
  // libsodium reads the string as a C string from a fixed-size buffer: anything that does
  // not fit with its terminating NUL cannot be a hash it wrote.
  if (typeof text !== 'string' || text.length >= sodium().crypto_pwhash_STRBYTES) return undefined;
  const match = HASH_PATTERN.exec(text);
  if (match === null) return undefined;
  return { memoryKiB: Number(match[1]), passes: Number(match[2]), lanes: Number(match[3]) };
}

/**
 * Hashes a password into an argon2id string with libsodium's INTERACTIVE limits and a fresh
 * random salt, off the event loop. Throws a TypeError for a string that is not well-formed
 * Unicode (its UTF-8 would be ambiguous); rejects if libsodium cannot compute the hash.
 *
 * @example
 * ```ts
 * const hash = await hashPassword('correct horse');
 * // '$argon2id$v=19$m=65536,t=2,p=1$…'  (put it in a config as `hash = "…"`)
 * ```
 */
export async function hashPassword(password: string): Promise<string> {
  // Cost of a hash made here: libsodium's INTERACTIVE limits (2 passes, 64 MiB).
  return hashPasswordWithLimits(password, sodium().crypto_pwhash_OPSLIMIT_INTERACTIVE, sodium().crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

/**
 * {@link hashPassword} with explicit costs (passes, and memory in bytes), for matching the
 * cost of hashes already in a config. Not part of the public API.
 *
 * @internal
 */
export async function hashPasswordWithLimits(
  password: string,
  opsLimit: number,
  memLimit: number,
): Promise<string> {
  if (typeof password !== 'string') throw new TypeError('password must be a string');
  if (LONE_SURROGATE.test(password)) {
    throw new TypeError('password is not well-formed Unicode');
  }
  const out = Buffer.alloc(sodium().crypto_pwhash_STRBYTES);
  const secret = secretBytes(password);
  try {
    await sodium().crypto_pwhash_str_async(out, secret, opsLimit, memLimit);
  } finally {
    sodium().sodium_memzero(secret);
  }
  const end = out.indexOf(0);
  return out.toString('latin1', 0, end === -1 ? out.length : end);
}

/**
 * Checks a password against an argon2id hash string, off the event loop. Resolves false, and
 * never throws, for a wrong password, a malformed hash string or arguments that are not
 * strings.
 *
 * @example
 * ```ts
 * const hash = await hashPassword('correct horse');
 * await verifyPassword(hash, 'correct horse'); // true
 * await verifyPassword(hash, 'battery staple'); // false
 * await verifyPassword('not a hash', 'x');      // false
 * ```
 */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  if (typeof password !== 'string' || LONE_SURROGATE.test(password)) return false;
  if (!isPasswordHash(hash)) return false;
  // Zero-filled, so the string is NUL-terminated inside the fixed-size buffer libsodium wants.
  const str = Buffer.alloc(sodium().crypto_pwhash_STRBYTES);
  str.write(hash, 'latin1');
  const secret = secretBytes(password);
  try {
    return (await sodium().crypto_pwhash_str_verify_async(str, secret)) === true;
  } catch {
    return false;
  } finally {
    sodium().sodium_memzero(secret);
  }
}

/**
 * A password's UTF-8 in a buffer of its own: `Buffer.from` may slice a shared pool, which
 * would leave the bytes in memory we do not own and cannot scrub.
 */
function secretBytes(password: string): Buffer {
  const bytes = Buffer.alloc(Buffer.byteLength(password, 'utf8'));
  bytes.write(password, 'utf8');
  return bytes;
}
