/**
 * `fmq relay --login --password-file` against `fmq server -c` with the PLAIN sample config,
 * all real processes: with the right password the relay mirrors upstream; with a wrong one it
 * says upstream refused access and exits with the access-denied code, 3.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { FmqProcess } from '../peers/fmq-process.js'

const SAMPLE = fileURLToPath(new URL('../../config/server-plain.cfg', import.meta.url))

describe('fmq relay --login --password-file (PLAIN upstream)', () => {
  let dir: string
  let endpoint: string
  const processes: FmqProcess[] = []
  const start = (args: string[]): FmqProcess => {
    const child = new FmqProcess(args)
    processes.push(child)
    return child
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-relay-login-'))
    await mkdir(join(dir, 'send'))
    await mkdir(join(dir, 'logs'))
    await writeFile(join(dir, 'send', 'a.txt'), 'alpha\n')
    const sample = await readFile(SAMPLE, 'utf8')
    const config = join(dir, 'server.cfg')
    await writeFile(config, sample.replaceAll('./fmqroot/send', join(dir, 'send')).replaceAll('./fmqroot/logs', join(dir, 'logs')) + 'bind\n    endpoint = tcp://127.0.0.1:*\n')
    endpoint = await start(['server', '-c', config]).endpoint()
  })
  after(async () => {
    for (const child of processes) await child.kill()
    await rm(dir, { recursive: true, force: true })
  })

  test('the right password: the relay mirrors upstream', async () => {
    const passwordFile = join(dir, 'good')
    await writeFile(passwordFile, 'reader\n')
    const relay = start(['relay', '-u', endpoint, '-i', join(dir, 'mirror'), '-b', 'tcp://127.0.0.1:*', '--login', 'reader', '--password-file', passwordFile])
    await relay.waitFor((line) => line.type === 'delivered' && line.virtualPath === '/a.txt', 30_000, '/a.txt at the relay')
    assert.equal(await readFile(join(dir, 'mirror', 'a.txt'), 'utf8'), 'alpha\n')
  })

  test('a wrong password: access refused, exit code 3', async () => {
    const passwordFile = join(dir, 'bad')
    await writeFile(passwordFile, 'not-the-password\n')
    const relay = start(['relay', '-u', endpoint, '-i', join(dir, 'mirror-bad'), '-b', 'tcp://127.0.0.1:*', '--login', 'reader', '--password-file', passwordFile])
    assert.equal(await relay.exited, 3)
    assert.ok(relay.lines.some((line) => line.type === 'access-denied'), JSON.stringify(relay.lines))
  })

  test('--login without a password is a usage error', async () => {
    const relay = start(['relay', '-u', endpoint, '-i', join(dir, 'mirror-none'), '-b', 'tcp://127.0.0.1:*', '--login', 'reader'])
    assert.equal(await relay.exited, 2)
  })
})
