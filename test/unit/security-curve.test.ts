/**
 * CURVE keys: Z85 both ways, key files written and read back (NAME and NAME_secret, modes),
 * every failure as its own error (missing, unreadable, malformed, short or non-Z85 keys,
 * spliced pairs, a secret file open to others), and the settings and options that carry keys.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { InvalidClientOptionError } from '../../src/client/errors.js'
import { resolveClientOptions } from '../../src/client/options.js'
import { resolveClientSettings, resolveServerSettings, SettingsError } from '../../src/config/settings.js'
import { parseZpl } from '../../src/config/zpl.js'
import {
  checkCurveKey,
  CurveKeyError,
  CurveKeyFileExistsError,
  CurveKeyFileNotFoundError,
  CurveKeyFileUnreadableError,
  CurveKeyMismatchError,
  curvePublicKeyOf,
  formatCurveCertificate,
  generateCurveKeyPair,
  InsecureCurveKeyFileError,
  InvalidCurveKeyError,
  isCurveKey,
  loadCurveKeyPair,
  MalformedCurveKeyFileError,
  parseCurveCertificate,
  readCurvePublicKey,
  writeCurveKeyPair,
  z85Decode,
  z85Encode,
} from '../../src/security/curve.js'

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777

describe('Z85 and keys', () => {
  test('the spec 32 test vector, both ways', () => {
    const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])
    assert.equal(z85Encode(bytes), 'HelloWorld')
    assert.deepEqual(z85Decode('HelloWorld'), bytes)
  })

  test('32 random octets round-trip through 40 characters', () => {
    for (let i = 0; i < 50; i++) {
      const bytes = randomBytes(32)
      const text = z85Encode(bytes)
      assert.equal(text.length, 40)
      assert.ok(isCurveKey(text))
      assert.deepEqual(z85Decode(text), bytes)
    }
  })

  test('a generated pair: valid keys, and the public key is the one the secret key makes', () => {
    const pair = generateCurveKeyPair()
    assert.equal(checkCurveKey(pair.publicKey, 'public-key'), pair.publicKey)
    assert.equal(curvePublicKeyOf(pair.secretKey), pair.publicKey)
  })

  test('short, long and non-Z85 keys are refused, each saying why and never showing the key', () => {
    const key = generateCurveKeyPair().secretKey
    for (const [text, problem] of [
      [key.slice(0, 39), 'length'],
      [key + 'x', 'length'],
      ['', 'length'],
      [`~${key.slice(1)}`, 'alphabet'],
      [`"${key.slice(1)}`, 'alphabet'],
      // Five '#' are 85^5 − 1, over 2^32 − 1.
      [`#####${key.slice(5)}`, 'alphabet'],
    ] as const) {
      assert.throws(
        () => checkCurveKey(text, 'secret-key'),
        (error: unknown) => {
          assert.ok(error instanceof InvalidCurveKeyError)
          assert.ok(error instanceof CurveKeyError)
          assert.equal(error.name, 'InvalidCurveKeyError')
          assert.equal(error.problem, problem)
          if (text.length > 10) assert.ok(!error.message.includes(text.slice(5)), 'the key is not in the message')
          return true
        },
        `${problem}: ${text.length} characters`,
      )
      assert.equal(isCurveKey(text), false)
    }
  })
})

describe('key files', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-curve-keys-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('write then load: NAME (public, 0644) and NAME_secret (both keys, 0600), loadable by either name', async () => {
    const pair = generateCurveKeyPair()
    const base = join(dir, 'server')
    const { publicFile, secretFile } = await writeCurveKeyPair(base, pair, { metadata: { name: 'server' } })
    assert.equal(publicFile, base)
    assert.equal(secretFile, `${base}_secret`)
    assert.equal(await mode(secretFile), 0o600)
    assert.equal(await mode(publicFile), 0o644)

    const publicText = await readFile(publicFile, 'utf8')
    assert.ok(!publicText.includes(pair.secretKey), 'no secret key in the public file')
    assert.deepEqual(parseCurveCertificate(publicText, publicFile), { publicKey: pair.publicKey, metadata: { name: 'server' } })
    assert.deepEqual(parseCurveCertificate(await readFile(secretFile, 'utf8'), secretFile), { ...pair, metadata: { name: 'server' } })

    for (const name of [base, secretFile]) {
      const loaded = await loadCurveKeyPair(name)
      assert.equal(loaded.publicKey, pair.publicKey)
      assert.equal(loaded.secretKey, pair.secretKey)
      assert.equal(loaded.file, secretFile)
    }
    assert.equal(await readCurvePublicKey(publicFile), pair.publicKey)
    assert.equal(await readCurvePublicKey(secretFile), pair.publicKey)
    assert.equal(await readCurvePublicKey(pair.publicKey), pair.publicKey, 'a key given as itself')
  })

  test('format and parse are inverse, byte for byte', () => {
    const pair = generateCurveKeyPair()
    const date = new Date('2026-01-02T03:04:05Z')
    const text = formatCurveCertificate({ ...pair, metadata: { name: 'x' } }, date)
    const parsed = parseCurveCertificate(text, 'x')
    assert.equal(formatCurveCertificate(parsed, date), text)
  })

  test('no overwrite without force; force replaces and narrows an open secret file to 0600', async () => {
    const base = join(dir, 'again')
    const first = generateCurveKeyPair()
    await writeCurveKeyPair(base, first)
    const before = await readFile(`${base}_secret`, 'utf8')
    await assert.rejects(writeCurveKeyPair(base, generateCurveKeyPair()), CurveKeyFileExistsError)
    assert.equal(await readFile(`${base}_secret`, 'utf8'), before, 'untouched')

    // Only the public file there: still refused, and no secret file left behind.
    const lone = join(dir, 'lone')
    await writeFile(lone, 'x')
    await assert.rejects(writeCurveKeyPair(lone, generateCurveKeyPair()), CurveKeyFileExistsError)
    await assert.rejects(stat(`${lone}_secret`), { code: 'ENOENT' })

    await chmod(`${base}_secret`, 0o644)
    const second = generateCurveKeyPair()
    await writeCurveKeyPair(base, second, { force: true })
    assert.equal(await mode(`${base}_secret`), 0o600)
    assert.equal((await loadCurveKeyPair(base)).secretKey, second.secretKey)
  })

  test('a secret file open to group or others is refused', { skip: process.platform === 'win32' }, async () => {
    const base = join(dir, 'open')
    await writeCurveKeyPair(base, generateCurveKeyPair())
    for (const bits of [0o640, 0o604, 0o660]) {
      await chmod(`${base}_secret`, bits)
      await assert.rejects(loadCurveKeyPair(base), (error: unknown) => {
        assert.ok(error instanceof InsecureCurveKeyFileError)
        assert.equal(error.mode & 0o777, bits)
        assert.match(error.message, /chmod 600/)
        return true
      })
    }
    await chmod(`${base}_secret`, 0o400)
    await loadCurveKeyPair(base)
  })

  test('missing, unreadable, public-only, malformed and spliced files: one error each', async () => {
    await assert.rejects(loadCurveKeyPair(join(dir, 'nope')), CurveKeyFileNotFoundError)
    await assert.rejects(readCurvePublicKey(join(dir, 'nope')), CurveKeyFileNotFoundError)
    // 40 characters that are neither a key nor a file: taken for a mistyped key.
    await assert.rejects(readCurvePublicKey(`~${generateCurveKeyPair().publicKey.slice(1)}`), (error: unknown) => error instanceof InvalidCurveKeyError && error.problem === 'alphabet')
    await mkdir(join(dir, 'adir'))
    await assert.rejects(loadCurveKeyPair(join(dir, 'adir')), CurveKeyFileUnreadableError)

    const pub = join(dir, 'public-only')
    await writeFile(pub, formatCurveCertificate({ publicKey: generateCurveKeyPair().publicKey, metadata: {} }))
    await assert.rejects(loadCurveKeyPair(pub), (error: unknown) => error instanceof MalformedCurveKeyFileError && /secret-key/.test(error.message))

    const put = async (name: string, text: string): Promise<string> => {
      const path = join(dir, name)
      await writeFile(path, text, { mode: 0o600 })
      return path
    }
    const notZpl = await put('not-zpl', 'curve\n   public-key = x\n')
    await assert.rejects(loadCurveKeyPair(notZpl), (error: unknown) => error instanceof MalformedCurveKeyFileError && error.line === 2)
    const noCurve = await put('no-curve', 'metadata\n    name = x\n')
    await assert.rejects(loadCurveKeyPair(noCurve), (error: unknown) => error instanceof MalformedCurveKeyFileError && /no curve section/.test(error.message))
    const noPublic = await put('no-public', `curve\n    secret-key = "${generateCurveKeyPair().secretKey}"\n`)
    await assert.rejects(loadCurveKeyPair(noPublic), (error: unknown) => error instanceof MalformedCurveKeyFileError && /public-key/.test(error.message))

    const pair = generateCurveKeyPair()
    const short = await put('short', `curve\n    public-key = "${pair.publicKey}"\n    secret-key = "${pair.secretKey.slice(0, 32)}"\n`)
    await assert.rejects(loadCurveKeyPair(short), (error: unknown) => {
      assert.ok(error instanceof InvalidCurveKeyError)
      assert.equal(error.problem, 'length')
      assert.equal(error.what, 'secret-key')
      assert.equal(error.source, short)
      assert.equal(error.line, 3)
      assert.ok(!error.message.includes(pair.secretKey.slice(0, 32)), 'the secret is not in the message')
      return true
    })
    const spliced = await put('spliced', `curve\n    public-key = "${generateCurveKeyPair().publicKey}"\n    secret-key = "${pair.secretKey}"\n`)
    await assert.rejects(loadCurveKeyPair(spliced), CurveKeyMismatchError)
  })
})

describe('settings and options that carry keys', () => {
  const key = generateCurveKeyPair().publicKey

  test('server: security/curve/keys < --curve-keys; curve = 0 turns it off; curve without keys is an error with its line', () => {
    const config = parseZpl('security\n    curve = 1\n        keys = "keys/a"\n')
    assert.equal(resolveServerSettings(undefined, {}).curveKeys, undefined)
    assert.equal(resolveServerSettings(config, {}, 'a.cfg').curveKeys, 'keys/a')
    assert.equal(resolveServerSettings(config, { curveKeys: 'keys/b' }, 'a.cfg').curveKeys, 'keys/b')
    assert.equal(resolveServerSettings(parseZpl('security\n    curve = 0\n        keys = k\n'), {}).curveKeys, undefined)
    assert.equal(resolveServerSettings(parseZpl('security\n    curve\n        keys = k\n'), {}).curveKeys, 'k')
    assert.throws(() => resolveServerSettings(parseZpl('security\n    curve = 1\n'), {}, 'b.cfg'), (error: unknown) => error instanceof SettingsError && error.line === 2)
    assert.throws(() => resolveServerSettings(parseZpl('security\n    curve = yes\n        keys = k\n'), {}, 'c.cfg'), SettingsError)
    // The sample's other switches still read as before: a security section without accounts is an open server.
    assert.deepEqual([resolveServerSettings(config, {}).options.anonymous, resolveServerSettings(config, {}).options.plain], [true, false])
  })

  test('client: client/curve/server-key < --server-key', () => {
    const config = parseZpl(`client\n    inbox = in\n    curve\n        server-key = "${key}"\nconnect\n    endpoint = tcp://127.0.0.1:5670\n`)
    assert.equal(resolveClientSettings(config, {}).serverKey, key)
    assert.equal(resolveClientSettings(config, { serverKey: 'keys/server' }).serverKey, 'keys/server')
    assert.equal(resolveClientSettings(undefined, { inbox: 'in', connect: ['tcp://127.0.0.1:5670'] }).serverKey, undefined)
    assert.throws(() => resolveClientSettings(config, { serverKey: '' }), SettingsError)
  })

  test('client options: a bad key is an InvalidClientOptionError naming the option, not the key', () => {
    assert.equal(resolveClientOptions({ curveServerKey: key }).curveServerKey, key)
    assert.throws(
      () => resolveClientOptions({ curveServerKey: 'keys/server' }),
      (error: unknown) => error instanceof InvalidClientOptionError && error.option === 'curveServerKey',
    )
    const pair = generateCurveKeyPair()
    assert.throws(
      () => resolveClientOptions({ curveSecretKey: pair.secretKey }),
      (error: unknown) => error instanceof InvalidClientOptionError && !error.message.includes(pair.secretKey),
    )
    assert.throws(
      () => resolveClientOptions({ curveSecretKey: pair.secretKey.slice(1) }),
      (error: unknown) => error instanceof InvalidClientOptionError && !error.message.includes(pair.secretKey.slice(1)),
    )
  })
})
