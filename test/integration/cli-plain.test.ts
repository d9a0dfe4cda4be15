/**
 * `fmq server -c` with the PLAIN sample config (its folders moved to a temp dir, bound to a
 * free port on 127.0.0.1) and `fmq client --login --password-file`, both real processes:
 * a small tree arrives whole, and Ctrl-C on the client says goodbye and exits 0.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import { writePlainConfig } from '../fixtures/plain-config.js'
import { digests, write } from '../fixtures/tree.js'
import { fmqCommand, FmqProcess } from '../peers/fmq-process.js'


const TREE = {
  'a.txt': 'alpha\n',
  'nested/b.bin': Buffer.alloc(300_000, 7),
  'nested/deeper/c.txt': 'gamma\n',
}
const LOGS = { 'today.log': 'one line\n' }

describe('fmq server -c (PLAIN sample) and fmq client --login --password-file over tcp', () => {
  let dir: string
  let config: string
  let passwordFile: string
  const processes: FmqProcess[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-cli-plain-'))
    await write(join(dir, 'send'), TREE)
    await write(join(dir, 'logs'), LOGS)
    config = join(dir, 'server.cfg')
    await writePlainConfig(config, { send: join(dir, 'send'), logs: join(dir, 'logs') })
    passwordFile = join(dir, 'password')
    await writeFile(passwordFile, 'reader\nignored second line\n')
  })

  after(async () => {
    for (const child of processes) await child.kill()
    await rm(dir, { recursive: true, force: true })
  })

  const start = (args: string[]): FmqProcess => {
    const child = new FmqProcess(args)
    processes.push(child)
    return child
  }

  test('the tree arrives; SIGINT on the client and SIGTERM on the server exit 0', async () => {
    const server = start(['server', '-c', config])
    const echo = await server.waitFor((line) => line.type === 'echo', 20_000, 'the security/echo line')
    assert.match(String(echo.text), /reader\/reader/)
    const endpoint = await server.endpoint()
    assert.match(endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/)

    const inbox = join(dir, 'inbox')
    const client = start(['client', '-C', endpoint, '-i', inbox, '--resync', '--login', 'reader', '--password-file', passwordFile, '-v'])
    await client.waitFor((line) => line.type === 'connected', 20_000, 'connected')
    for (const path of ['/a.txt', '/nested/b.bin', '/nested/deeper/c.txt', '/logs/today.log']) {
      await client.waitFor((line) => line.type === 'delivered' && line.virtualPath === path, 20_000, `${path} delivered`)
    }
    const [sent, logs, received] = await Promise.all([digests(join(dir, 'send')), digests(join(dir, 'logs')), digests(inbox)])
    for (const [name, digest] of sent) assert.equal(received.get(name), digest, name)
    for (const [name, digest] of logs) assert.equal(received.get(join('logs', name)), digest, name)

    await client.kill('SIGINT')
    assert.equal(await client.exited, 0)
    assert.ok(client.lines.some((line) => line.type === 'closing'), 'the client said it was closing')
    await server.kill('SIGTERM')
    assert.equal(await server.exited, 0)
  })

  test('--once: the client exits 0 once the server has sent everything, the tree complete', async () => {
    const server = start(['server', '-c', config])
    const endpoint = await server.endpoint()
    const inbox = join(dir, 'inbox-once')
    const client = start(['client', '-C', endpoint, '-i', inbox, '--resync', '--once', '--login', 'reader', '--password-file', passwordFile])
    const code = await Promise.race([client.exited, new Promise((resolve) => setTimeout(resolve, 30_000, 'timeout'))])
    assert.equal(code, 0, client.stderr.join(' | '))
    const [sent, received] = await Promise.all([digests(join(dir, 'send')), digests(inbox)])
    for (const [name, digest] of sent) assert.equal(received.get(name), digest, name)
    await server.kill('SIGINT')
  })

  test('SIGINT on the client during a large file, then a restart: the file completes, resumed', async () => {
    const big = join(dir, 'send', 'large.bin')
    const out = await import('node:fs').then((fs) => fs.createWriteStream(big))
    const piece = Buffer.alloc(8 * 1024 * 1024)
    for (let i = 0; i < 24; i++) {
      piece.fill(i)
      if (!out.write(Buffer.from(piece))) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
    }
    await new Promise<void>((resolve) => out.end(() => resolve()))
    try {
      const server = start(['server', '-c', config])
      const endpoint = await server.endpoint()
      const inbox = join(dir, 'inbox-large')
      const args = ['client', '-C', endpoint, '-i', inbox, '--resync', '--login', 'reader', '--password-file', passwordFile, '--bwlimit', '40M']
      const first = start(args)
      await first.waitFor((line) => line.type === 'progress' && line.virtualPath === '/large.bin' && Number(line.bytes) >= 32 * 1024 * 1024, 60_000, 'a good part of large.bin')
      await first.kill('SIGINT')
      assert.equal(await first.exited, 0)
      assert.equal(first.lines.some((line) => line.type === 'delivered' && line.virtualPath === '/large.bin'), false, 'interrupted before the end')

      const second = start(args)
      await second.waitFor((line) => line.type === 'delivered' && line.virtualPath === '/large.bin', 120_000, 'large.bin after the restart')
      const resumed = second.lines.find((line) => line.type === 'progress' && line.virtualPath === '/large.bin')
      assert.ok(resumed === undefined || Number(resumed.bytes) >= 16 * 1024 * 1024, `resumed, not started over (first progress at ${String(resumed?.bytes)})`)
      const [sent, received] = await Promise.all([digests(join(dir, 'send')), digests(inbox)])
      assert.equal(received.get('large.bin'), sent.get('large.bin'))
      await second.kill('SIGINT')
      await server.kill('SIGINT')
    } finally {
      await rm(big, { force: true })
    }
  })

  test('stdout not a terminal and no --json: plain lines, one per delivery', async () => {
    const server = start(['server', '-c', config])
    const endpoint = await server.endpoint()
    const [file, ...command] = fmqCommand()
    const child = spawn(
      file!,
      [...command, 'client', '-C', endpoint, '-i', join(dir, 'inbox-text'), '--resync', '--login', 'reader', '--password-file', passwordFile],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    const seen: string[] = []
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), 20_000)
        createInterface({ input: child.stdout }).on('line', (line) => {
          seen.push(line)
          if (seen.filter((each) => each.startsWith('delivered ')).length === 4) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
    } finally {
      child.kill('SIGTERM')
    }
    assert.equal(await exited, 0)
    assert.ok(seen.includes('delivered /a.txt (6 B)'), JSON.stringify(seen))
    assert.ok(!seen.some((line) => line.startsWith('{')), 'no JSON without --json')
  })
})
