/**
 * CURVE keys (CurveZMQ, rfc.zeromq.org spec 26) for encryption in transit: keys as Z85 text,
 * key files in CZMQ's zcert form, and loading them with the checks a secret deserves.
 *
 * A key pair is two files, as `zcert_save` writes them: `NAME` holds the public key (give it
 * to clients), `NAME_secret` holds both keys (it stays with the server). Each is ZPL:
 *
 * ```
 * metadata
 *     name = "server"
 * curve
 *     public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
 *     secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"    (NAME_secret only)
 * ```
 *
 * A secret file that group or others may read is refused, as ssh refuses such a private key:
 * a key anyone on the host can read protects nothing, and a warning scrolls by unread.
 * Messages of the errors here name files and fields, never a secret key.
 *
 * @packageDocumentation
 */
import { lstat, open, readdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { sodium } from './sodium.js'
import { curveKeyPair } from 'zeromq'

import { parseZpl, ZplSyntaxError } from '../config/zpl.js'

/** Characters of a key in Z85 (spec 32): 32 octets, 4 per 5 characters. */
export const CURVE_KEY_LENGTH = 40
/** Octets of a CURVE key (Curve25519). */
export const CURVE_KEY_BYTES = 32
/** What `fmq keygen` appends to NAME for the secret file, as zcert does. */
export const SECRET_SUFFIX = '_secret'

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#'
const Z85_VALUE = new Map([...Z85].map((char, index) => [char, index]))

/** A long-term key pair, both keys as 40 characters of Z85. */
export interface CurveKeyPair {
  readonly publicKey: string
  readonly secretKey: string
}

/** A key file's content: the public key, the secret key in a secret file, the metadata. */
export interface CurveCertificate {
  readonly publicKey: string
  readonly secretKey?: string
  readonly metadata: Readonly<Record<string, string>>
}

/** Any failure to read, check or write CURVE keys; the subclasses say which. */
export class CurveKeyError extends Error {
  override readonly name: string = 'CurveKeyError'
  readonly code: string = 'ERR_FMQ_CURVE_KEY'
}

/**
 * A key file is not there.
 *
 * @example
 * ```ts
 * await loadCurveKeyPair('keys/nope') // throws CurveKeyFileNotFoundError
 * ```
 */
export class CurveKeyFileNotFoundError extends CurveKeyError {
  override readonly name = 'CurveKeyFileNotFoundError'
  override readonly code = 'ERR_FMQ_CURVE_KEY_FILE_NOT_FOUND'

  constructor(
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(`key file ${path}: no such file (make one with fmq keygen)`, options)
  }
}

/**
 * A key file is there but cannot be read (permission denied, a directory...); see `cause`.
 *
 * @example
 * ```ts
 * try { await loadCurveKeyPair('/root/keys/server') } catch (error) { if (error instanceof CurveKeyFileUnreadableError) console.error(error.cause) }
 * ```
 */
export class CurveKeyFileUnreadableError extends CurveKeyError {
  override readonly name = 'CurveKeyFileUnreadableError'
  override readonly code = 'ERR_FMQ_CURVE_KEY_FILE_UNREADABLE'

  constructor(
    readonly path: string,
    options?: ErrorOptions,
  ) {
    const code = (options?.cause as { code?: unknown } | undefined)?.code
    super(`key file ${path} cannot be read (${typeof code === 'string' ? code : String(options?.cause)})`, options)
  }
}

/**
 * A key file is not a key file: not ZPL, no `curve` section, a key missing. `line` is 1-based, 0 when unknown.
 *
 * @example
 * ```ts
 * parseCurveCertificate('hello\n', 'keys/server') // throws MalformedCurveKeyFileError
 * ```
 */
export class MalformedCurveKeyFileError extends CurveKeyError {
  override readonly name = 'MalformedCurveKeyFileError'
  override readonly code = 'ERR_FMQ_CURVE_KEY_FILE_MALFORMED'

  constructor(
    readonly path: string,
    readonly reason: string,
    readonly line = 0,
    options?: ErrorOptions,
  ) {
    super(`key file ${path}${line > 0 ? `:${line}` : ''}: ${reason}`, options)
  }
}

/** What is wrong with a key's text. */
export type CurveKeyProblem =
  /** Not 40 characters. */
  | 'length'
  /** A character outside Z85's alphabet, or a group of 5 over 2^32 − 1. */
  | 'alphabet'

/**
 * A key is not 40 characters of Z85 (32 octets). `what` names it (`public-key`, `--server-key`...);
 * `source` the file it came from, when it did. The key itself is never in the message.
 *
 * @example
 * ```ts
 * checkCurveKey('too short', 'server key') // throws InvalidCurveKeyError, problem 'length'
 * ```
 */
export class InvalidCurveKeyError extends CurveKeyError {
  override readonly name = 'InvalidCurveKeyError'
  override readonly code = 'ERR_FMQ_CURVE_KEY_INVALID'

  constructor(
    readonly what: string,
    readonly problem: CurveKeyProblem,
    readonly length: number,
    readonly source?: string,
    readonly line = 0,
  ) {
    const where = source === undefined ? '' : `key file ${source}${line > 0 ? `:${line}` : ''}: `
    const why =
      problem === 'length'
        ? `is ${length} characters, a CURVE key is ${CURVE_KEY_LENGTH} (Z85 of 32 octets)`
        : 'is not Z85 (a character outside its alphabet)'
    super(`${where}${what} ${why}`)
  }
}

/**
 * A secret file's public key is not the one its secret key makes: the file was edited or
 * pieced together from two pairs, and clients holding that public key could not connect.
 *
 * @example
 * ```ts
 * await loadCurveKeyPair('keys/spliced_secret') // throws CurveKeyMismatchError
 * ```
 */
export class CurveKeyMismatchError extends CurveKeyError {
  override readonly name = 'CurveKeyMismatchError'
  override readonly code = 'ERR_FMQ_CURVE_KEY_MISMATCH'

  constructor(readonly path: string) {
    super(`key file ${path}: its public-key does not belong to its secret-key`)
  }
}

/**
 * A secret key file that group or others may read (or write): refused. `chmod 600 FILE` fixes it.
 *
 * @example
 * ```ts
 * await chmod('keys/server_secret', 0o644)
 * await loadCurveKeyPair('keys/server') // throws InsecureCurveKeyFileError
 * ```
 */
export class InsecureCurveKeyFileError extends CurveKeyError {
  override readonly name = 'InsecureCurveKeyFileError'
  override readonly code = 'ERR_FMQ_CURVE_KEY_FILE_INSECURE'

  constructor(
    readonly path: string,
    /** The file's permission bits. */
    readonly mode: number,
  ) {
    super(`secret key file ${path} is open to others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): chmod 600 ${path}`)
  }
}

/**
 * `writeCurveKeyPair` would replace a key file and was not told to (`--force`).
 *
 * @example
 * ```ts
 * await writeCurveKeyPair('keys/server', generateCurveKeyPair()) // twice: throws CurveKeyFileExistsError
 * ```
 */
export class CurveKeyFileExistsError extends CurveKeyError {
  override readonly name = 'CurveKeyFileExistsError'
  override readonly code = 'ERR_FMQ_CURVE_KEY_FILE_EXISTS'

  constructor(readonly path: string) {
    super(`${path} already exists (--force replaces it)`)
  }
}

/**
 * Z85 (rfc.zeromq.org spec 32) of octets whose count is a multiple of 4.
 *
 * @example
 * ```ts
 * z85Encode(Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])) // 'HelloWorld'
 * ```
 */
export function z85Encode(data: Uint8Array): string {
  if (data.length % 4 !== 0) throw new RangeError('Z85 encodes a multiple of 4 octets')
  let text = ''
  for (let at = 0; at < data.length; at += 4) {
    let value = ((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!) >>> 0
    let group = ''
    for (let i = 0; i < 5; i++) {
      group = Z85[value % 85]! + group
      value = Math.floor(value / 85)
    }
    text += group
  }
  return text
}

/**
 * The octets of Z85 text, or undefined when it is not Z85 (length not a multiple of 5, a
 * character outside the alphabet, a group over 2^32 − 1).
 *
 * @example
 * ```ts
 * z85Decode('HelloWorld') // <Buffer 86 4f d2 6f b5 59 f7 5b>
 * ```
 */
export function z85Decode(text: string): Buffer | undefined {
  if (text.length % 5 !== 0) return undefined
  const out = Buffer.alloc((text.length / 5) * 4)
  for (let at = 0; at < text.length; at += 5) {
    let value = 0
    for (let i = 0; i < 5; i++) {
      const digit = Z85_VALUE.get(text[at + i]!)
      if (digit === undefined) return undefined
      value = value * 85 + digit
    }
    if (value > 0xffffffff) return undefined
    out.writeUInt32BE(value, (at / 5) * 4)
  }
  return out
}

/** Whether `text` is a CURVE key: 40 characters of Z85, 32 octets. */
export function isCurveKey(text: string): boolean {
  return text.length === CURVE_KEY_LENGTH && z85Decode(text)?.length === CURVE_KEY_BYTES
}

/**
 * `key` when it is a CURVE key, else an {@link InvalidCurveKeyError} naming it as `what`.
 *
 * @example
 * ```ts
 * const serverKey = checkCurveKey(process.env.FMQ_SERVER_KEY ?? '', 'FMQ_SERVER_KEY')
 * ```
 */
export function checkCurveKey(key: string, what: string, source?: string, line = 0): string {
  if (key.length !== CURVE_KEY_LENGTH) throw new InvalidCurveKeyError(what, 'length', key.length, source, line)
  if (z85Decode(key) === undefined) throw new InvalidCurveKeyError(what, 'alphabet', key.length, source, line)
  return key
}

/**
 * The public key that goes with a secret key (Curve25519 scalar multiplication of the base point).
 *
 * @example
 * ```ts
 * const pair = generateCurveKeyPair()
 * curvePublicKeyOf(pair.secretKey) === pair.publicKey // true
 * ```
 */
export function curvePublicKeyOf(secretKey: string): string {
  const secret = z85Decode(checkCurveKey(secretKey, 'secret-key'))!
  const pub = Buffer.alloc(CURVE_KEY_BYTES)
  sodium().crypto_scalarmult_base(pub, secret)
  sodium().sodium_memzero(secret)
  return z85Encode(pub)
}

/**
 * A new long-term key pair (libzmq's `zmq_curve_keypair`).
 *
 * @example
 * ```ts
 * const { publicKey, secretKey } = generateCurveKeyPair()
 * ```
 */
export function generateCurveKeyPair(): CurveKeyPair {
  const { publicKey, secretKey } = curveKeyPair()
  return { publicKey, secretKey }
}

/** A ZPL value, quoted: Z85 has `#`, which would start a comment in a bare value. */
const quoted = (value: string): string => `"${value}"`

/**
 * The text of a key file: the public file without `secretKey`, the secret file with it.
 *
 * @example
 * ```ts
 * formatCurveCertificate({ publicKey, metadata: { name: 'server' } })
 * ```
 */
export function formatCurveCertificate(certificate: CurveCertificate, date = new Date()): string {
  const secret = certificate.secretKey !== undefined
  const lines = [
    `#   ****  Generated on ${date.toISOString()} by fmq keygen  ****`,
    secret ? '#   ZeroMQ CURVE **Secret** Certificate' : '#   ZeroMQ CURVE Public Certificate',
    secret
      ? '#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.'
      : '#   Give this file (or the public key in it) to the clients of this server.',
    '',
    'metadata',
  ]
  for (const [name, value] of Object.entries(certificate.metadata)) {
    if (!/^[A-Za-z0-9$\-_@.&+/]+$/.test(name) || /["\r\n]/.test(value)) throw new RangeError(`metadata ${name} cannot be written as ZPL`)
    lines.push(`    ${name} = ${quoted(value)}`)
  }
  lines.push('curve', `    public-key = ${quoted(certificate.publicKey)}`)
  if (secret) lines.push(`    secret-key = ${quoted(certificate.secretKey)}`)
  return lines.join('\n') + '\n'
}

/**
 * Reads a key file's text (`source` names it in errors): `curve/public-key`, `curve/secret-key`
 * when there is one, the `metadata` section.
 *
 * @example
 * ```ts
 * parseCurveCertificate(await readFile('keys/server', 'utf8'), 'keys/server').publicKey
 * ```
 */
export function parseCurveCertificate(text: string, source: string): CurveCertificate {
  let root
  try {
    root = parseZpl(text, source)
  } catch (error) {
    if (error instanceof ZplSyntaxError) throw new MalformedCurveKeyFileError(source, `not ZPL: ${error.reason}`, error.line, { cause: error })
    throw error
  }
  const curve = root.at('curve')
  if (curve === undefined) throw new MalformedCurveKeyFileError(source, 'no curve section (not a key file made by fmq keygen or zcert)')
  const key = (name: string): string | undefined => {
    const node = curve.at(name)
    return node === undefined ? undefined : checkCurveKey(node.value, name, source, node.line)
  }
  const publicKey = key('public-key')
  if (publicKey === undefined) throw new MalformedCurveKeyFileError(source, 'no curve/public-key', curve.line)
  const secretKey = key('secret-key')
  const metadata: Record<string, string> = {}
  for (const node of root.at('metadata')?.children ?? []) metadata[node.name] = node.value
  return { publicKey, ...(secretKey === undefined ? {} : { secretKey }), metadata }
}

/** A file's text, with the failures as key errors. */
async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CurveKeyFileNotFoundError(path, { cause: error })
    throw new CurveKeyFileUnreadableError(path, { cause: error })
  }
}

/**
 * The key pair a server uses, from `NAME_secret` when it exists, else from `NAME` itself
 * (the order of CZMQ's `zcert_load`), so `keys/server` and `keys/server_secret` both work.
 * The file must hold a secret key, must not be open to group or others (not checked on
 * Windows), and its public key, when written, must belong to its secret key.
 *
 * @example
 * ```ts
 * const keys = await loadCurveKeyPair('keys/server')
 * const server = new Server({ curve: keys })
 * ```
 */
export async function loadCurveKeyPair(path: string): Promise<CurveKeyPair & { readonly file: string }> {
  let file = path + SECRET_SUFFIX
  let text = await readKeyFile(file).catch((error: unknown) => {
    if (error instanceof CurveKeyFileNotFoundError) return undefined
    throw error
  })
  if (text === undefined) {
    file = path
    text = await readKeyFile(file)
  }
  const certificate = parseCurveCertificate(text, file)
  if (certificate.secretKey === undefined) {
    throw new MalformedCurveKeyFileError(file, `no curve/secret-key: this is a public key file; the server needs ${file.endsWith(SECRET_SUFFIX) ? 'its secret file' : file + SECRET_SUFFIX}`)
  }
  if (process.platform !== 'win32') {
    const { mode } = await stat(file)
    if ((mode & 0o077) !== 0) throw new InsecureCurveKeyFileError(file, mode)
  }
  if (curvePublicKeyOf(certificate.secretKey) !== certificate.publicKey) throw new CurveKeyMismatchError(file)
  return { publicKey: certificate.publicKey, secretKey: certificate.secretKey, file }
}

/**
 * A server's public key given as the key itself (40 characters of Z85) or as a key file
 * (the public file `NAME`; a secret file works too, only its public key is read).
 *
 * @example
 * ```ts
 * const serverKey = await readCurvePublicKey(flags.serverKey) // 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' or 'keys/server'
 * new Client({ inbox: './inbox', curveServerKey: serverKey })
 * ```
 */
export async function readCurvePublicKey(keyOrFile: string): Promise<string> {
  if (isCurveKey(keyOrFile)) return keyOrFile
  const text = await readKeyFile(keyOrFile).catch((error: unknown) => {
    // 40 characters and no such file: a key with a typo rather than a file name.
    if (error instanceof CurveKeyFileNotFoundError && keyOrFile.length === CURVE_KEY_LENGTH) throw new InvalidCurveKeyError('server key', 'alphabet', keyOrFile.length)
    throw error
  })
  return parseCurveCertificate(text, keyOrFile).publicKey
}

/**
 * The public keys of every key file in `folder` (the public files of `fmq keygen`; `*_secret`
 * files are skipped), as zauth's certificate store: the clients a CURVE server lets in.
 * Throws for a folder that cannot be read or a file that is not a key file.
 *
 * @example
 * ```ts
 * new Server({ curve: await loadCurveKeyPair('keys/server'), curveClients: await loadCurvePublicKeys('keys/clients') })
 * ```
 */
export async function loadCurvePublicKeys(folder: string): Promise<string[]> {
  let names: string[]
  try {
    names = (await readdir(folder, { withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => entry.name)
  } catch (error) {
    throw new CurveKeyFileUnreadableError(folder, { cause: error })
  }
  const keys: string[] = []
  for (const name of names.sort()) {
    if (name.endsWith(SECRET_SUFFIX) || name.startsWith('.')) continue
    keys.push(await readCurvePublicKey(join(folder, name)))
  }
  return keys
}

/**
 * Writes a key pair as zcert does: `name` (the public key) and `name_secret` (both keys,
 * mode 0600, made so before any key is in it). Neither file is replaced unless `force`;
 * when one already exists, nothing is written.
 *
 * @example
 * ```ts
 * const { publicFile, secretFile } = await writeCurveKeyPair('keys/server', generateCurveKeyPair())
 * ```
 */
export async function writeCurveKeyPair(
  name: string,
  pair: CurveKeyPair,
  options: { force?: boolean; metadata?: Record<string, string> } = {},
): Promise<{ publicFile: string; secretFile: string }> {
  const publicFile = name
  const secretFile = name + SECRET_SUFFIX
  const force = options.force === true
  if (!force) {
    for (const file of [publicFile, secretFile]) {
      if ((await lstat(file).catch(() => undefined)) !== undefined) throw new CurveKeyFileExistsError(file)
    }
  }
  const metadata = options.metadata ?? {}
  const date = new Date()
  const put = async (file: string, text: string, mode: number): Promise<void> => {
    // 'wx' also closes the race with a file made since the check above.
    const handle = await open(file, force ? 'w' : 'wx', mode).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EEXIST' ? new CurveKeyFileExistsError(file) : error
    })
    try {
      // A file replaced with --force keeps its old mode unless told: narrow it before the secret goes in.
      await handle.chmod(mode)
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
  }
  await put(secretFile, formatCurveCertificate({ ...pair, metadata }, date), 0o600)
  try {
    await put(publicFile, formatCurveCertificate({ publicKey: pair.publicKey, metadata }, date), 0o644)
  } catch (error) {
    if (!force) await rm(secretFile, { force: true })
    throw error
  }
  return { publicFile, secretFile }
}
