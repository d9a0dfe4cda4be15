/**
 * CURVE from the command line, as real processes: `fmq keygen` writes NAME and NAME_secret
 * (0600) and refuses to overwrite; `fmq server --curve-keys` (and the sample
 * config/server-curve.cfg) with `fmq client --server-key` mirror a tree; a wrong key makes
 * `--once` fail with a line that says to check the key; an open secret file is refused.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { generateCurveKeyPair } from '../../src/security/curve.js'
import { digests, write } from '../fixtures/tree.js'
import { FmqProcess } from '../peers/fmq-process.js'

const SAMPLE = fileURLToPath(new URL('../../config/server-curve.cfg', import.meta.url))

const TREE = {
  'a.txt': 'alpha\n',
  'nested/b.bin': Buffer.alloc(300_000, 7),
}

/** The exit code, or 'timeout' after `ms`. */
const exitWithin = (child: FmqProcess, ms: number): Promise<number | null | 'timeout'> =>
  Promise.race([child.exited, new Promise<'timeout'>((resolve) => setTimeout(resolve, ms, 'timeout').unref())])

describe('fmq keygen, fmq server --curve-keys, fmq client --server-key', () => {
  let dir: string
  const processes: FmqProcess[] = []
  const start = (args: string[]): FmqProcess => {
    const child = new FmqProcess(args)
    processes.push(child)
    return child
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-cli-curve-'))
    await write(join(dir, 'send'), TREE)
  })
  after(async () => {
    for (const child of processes) await child.kill()
    await rm(dir, { recursive: true, force: true })
  })

  test('keygen writes NAME (0644) and NAME_secret (0600), its folder made if missing, prints the public key, refuses to overwrite without --force', async () => {
    const name = join(dir, 'made', 'keys')
    const first = start(['keygen', name])
    const made = await first.waitFor((line) => line.type === 'keygen', 20_000, 'the keygen line')
    assert.equal(await first.exited, 0)
    assert.equal((await stat(name)).mode & 0o777, 0o644)
    assert.equal((await stat(`${name}_secret`)).mode & 0o777, 0o600)
    assert.match(String(made.publicKey), /^.{40}$/)
    assert.ok((await readFile(name, 'utf8')).includes(`public-key = "${String(made.publicKey)}"`))
    assert.ok(!(await readFile(name, 'utf8')).includes('secret-key'))

    const secret = await readFile(`${name}_secret`, 'utf8')
    const again = start(['keygen', name])
    assert.equal(await again.exited, 2)
    assert.equal(again.stderr.length, 1, again.stderr.join(' | '))
    assert.match(again.stderr[0] ?? '', /^fmq: .*already exists \(--force replaces it\)$/)
    assert.equal(await readFile(`${name}_secret`, 'utf8'), secret, 'untouched')

    const forced = start(['keygen', name, '--force'])
    const remade = await forced.waitFor((line) => line.type === 'keygen', 20_000, 'the keygen line (--force)')
    assert.equal(await forced.exited, 0)
    assert.notEqual(remade.publicKey, made.publicKey)
    assert.equal((await stat(`${name}_secret`)).mode & 0o777, 0o600)
  })

  test('server --curve-keys and client --server-key FILE: the tree arrives; a wrong key fails --once with a clear line', async () => {
    const keys = join(dir, 'server')
    const keygen = start(['keygen', keys])
    assert.equal(await keygen.exited, 0)
    const server = start(['server', '-p', join(dir, 'send'), '-b', 'tcp://127.0.0.1:*', '--curve-keys', keys])
    const curve = await server.waitFor((line) => line.type === 'curve', 20_000, 'the curve line')
    const endpoint = await server.endpoint()

    const inbox = join(dir, 'inbox')
    const client = start(['client', '-C', endpoint, '-i', inbox, '--resync', '--once', '--server-key', keys])
    assert.equal(await exitWithin(client, 30_000), 0, client.stderr.join(' | '))
    assert.deepEqual(await digests(inbox), await digests(join(dir, 'send')))

    // The key given as itself works the same.
    const byKey = start(['client', '-C', endpoint, '-i', join(dir, 'inbox-key'), '--resync', '--once', '--server-key', String(curve.publicKey)])
    assert.equal(await exitWithin(byKey, 30_000), 0, byKey.stderr.join(' | '))

    const wrong = start(['client', '-C', endpoint, '-i', join(dir, 'inbox-wrong'), '--resync', '--once', '--connect-timeout', '3000', '--server-key', generateCurveKeyPair().publicKey])
    await wrong.waitFor((line) => line.type === 'error' && /check the server key/.test(String(line.error)), 20_000, 'the handshake error event')
    assert.equal(await exitWithin(wrong, 20_000), 1)
    assert.match(wrong.stderr.join('\n'), /^fmq: no answer from .* within 3 s \(CURVE handshake failed: check the server key/m)
    assert.equal(wrong.lines.some((line) => line.type === 'delivered'), false)

    const none = start(['client', '-C', endpoint, '-i', join(dir, 'inbox-none'), '--resync', '--once', '--connect-timeout', '3000'])
    assert.equal(await exitWithin(none, 20_000), 1)
    assert.match(none.stderr.join('\n'), /CURVE/)
    await server.kill('SIGTERM')
  })

  test('the sample config/server-curve.cfg serves over CURVE; an open secret file is refused (exit 2)', async () => {
    const keys = join(dir, 'sample-keys')
    assert.equal(await start(['keygen', keys]).exited, 0)
    const sample = await readFile(SAMPLE, 'utf8')
    assert.ok(sample.includes('./fmqroot/send') && sample.includes('keys = ./keys/server') && sample.includes('tcp://*:5670'), 'the sample still has its paths')
    const config = join(dir, 'server-curve.cfg')
    await writeFile(config, sample.replace('./fmqroot/send', join(dir, 'send')).replace('./keys/server', keys).replace('tcp://*:5670', 'tcp://127.0.0.1:*'))

    const server = start(['server', '-c', config])
    const endpoint = await server.endpoint()
    const inbox = join(dir, 'inbox-sample')
    const client = start(['client', '-C', endpoint, '-i', inbox, '--resync', '--once', '--server-key', keys])
    assert.equal(await exitWithin(client, 30_000), 0, client.stderr.join(' | '))
    assert.deepEqual(await digests(inbox), await digests(join(dir, 'send')))
    await server.kill('SIGTERM')

    await chmod(`${keys}_secret`, 0o644)
    const refused = start(['server', '-c', config])
    assert.equal(await exitWithin(refused, 20_000), 2)
    assert.match(refused.stderr.join('\n'), /^fmq: secret key file .*_secret is open to others \(mode 644\): chmod 600 /m)
    const missing = start(['server', '-p', join(dir, 'send'), '-b', 'tcp://127.0.0.1:*', '--curve-keys', join(dir, 'no-such-keys')])
    assert.equal(await exitWithin(missing, 20_000), 2)
    assert.match(missing.stderr.join('\n'), /no such file \(make one with fmq keygen\)/)
  })

  test('relay --server-key (upstream) and --curve-keys (downstream): CURVE on both hops', async () => {
    const origin = join(dir, 'origin')
    const relayKeys = join(dir, 'relay')
    for (const name of [origin, relayKeys]) assert.equal(await start(['keygen', name]).exited, 0)
    const server = start(['server', '-p', join(dir, 'send'), '-b', 'tcp://127.0.0.1:*', '--curve-keys', origin])
    const upstream = await server.endpoint()
    const relay = start(['relay', '-u', upstream, '--server-key', origin, '-i', join(dir, 'relay-inbox'), '-b', 'tcp://127.0.0.1:*', '--curve-keys', relayKeys])
    const downstream = await relay.endpoint()
    await relay.waitFor((line) => line.type === 'delivered' && line.virtualPath === '/nested/b.bin', 30_000, 'the relay mirrored the origin')

    const leaf = join(dir, 'leaf')
    const client = start(['client', '-C', downstream, '-i', leaf, '--resync', '--once', '--server-key', relayKeys])
    assert.equal(await exitWithin(client, 30_000), 0, client.stderr.join(' | '))
    assert.deepEqual(await digests(leaf), await digests(join(dir, 'send')))
    // The relay's key is not the origin's: a leaf holding the origin's key cannot get in.
    const wrong = start(['client', '-C', downstream, '-i', join(dir, 'leaf-wrong'), '--resync', '--once', '--connect-timeout', '3000', '--server-key', origin])
    assert.equal(await exitWithin(wrong, 20_000), 1)
    await relay.kill('SIGTERM')
    await server.kill('SIGTERM')
  })
})
