/**
 * `fmq server -c` and `fmq client -c` as real processes, with configs a user gets wrong: an old
 * config of ours in milliseconds and a typo'd key are read, each with a warning naming file and
 * line; an account without a secret, or outside security/plain, stops the server with
 * file:line and exit code 2.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import { FmqProcess } from '../peers/fmq-process.js'

describe('fmq with configs a user gets wrong', () => {
  let dir: string
  let send: string
  const processes: FmqProcess[] = []
  const start = (args: string[], json = true): FmqProcess => {
    const child = new FmqProcess(args, { json })
    processes.push(child)
    return child
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-cli-config-'))
    send = join(dir, 'send')
    await mkdir(send)
  })
  after(async () => {
    for (const child of processes) await child.kill()
    await rm(dir, { recursive: true, force: true })
  })

  test('fmq server: heartbeat = 1000 and a misspelt key each warn with file:line, and the server runs', async () => {
    const config = join(dir, 'old.cfg')
    await writeFile(config, ['server', '    monitr = 1', '    heartbeat = 1000', 'publish', `    location = ${send}`, 'bind', '    endpoint = tcp://127.0.0.1:*', ''].join('\n'))
    const server = start(['server', '-c', config])
    await server.endpoint()
    const warnings = server.lines.filter((line) => line.type === 'warning').map((line) => String(line.message))
    assert.deepEqual(warnings, [
      `${config}:2: unknown key server/monitr (did you mean server/monitor?)`,
      `${config}:3: server/heartbeat = 1000 is read in seconds, as the reference FileMQ reads it (1000 s, about 17 minutes); if milliseconds were meant, write heartbeat = 1`,
    ])
  })

  test('fmq client: a misspelt key warns with file:line', async () => {
    const config = join(dir, 'client.cfg')
    await writeFile(config, ['client', `    inbox = ${join(dir, 'inbox')}`, '    resynk = 1', 'connect', '    endpoint = tcp://127.0.0.1:1', ''].join('\n'))
    const client = start(['client', '-c', config])
    const warning = await client.waitFor((line) => line.type === 'warning', 20_000, 'a warning')
    assert.equal(warning.message, `${config}:3: unknown key client/resynk (did you mean client/resync?)`)
  })

  for (const [what, lines, expected] of [
    ['an account without a password or hash', ['security', '    anonymous = 0', '    plain = 1', '        account', '            login = reader', '            group = guest'], ":6: account 'reader' has no password or hash"],
    ['an account outside security/plain', ['security', '    anonymous = 0', '    plain = 1', '    account', '        login = reader', '        password = reader'], ':6: security/account: an account section belongs under security/plain'],
  ] as const) {
    test(`fmq server: ${what} is an error with file:line, exit code 2`, async () => {
      const config = join(dir, `account-${what.length}.cfg`)
      await writeFile(config, ['publish', `    location = ${send}`, ...lines, ''].join('\n'))
      const server = start(['server', '-c', config, '-b', 'tcp://127.0.0.1:*'], false)
      assert.equal(await server.exited, 2)
      assert.equal(server.stderr.length, 1, server.stderr.join('\n'))
      assert.ok(server.stderr[0]?.startsWith(`fmq: ${config}${expected}`), server.stderr[0])
    })
  }
})
