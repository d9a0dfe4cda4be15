/**
 * `fmq` as a real child process, given bad input: each failure is one `fmq: ...` line on
 * stderr (never a stack trace) and its documented exit code. Also `fmq passwd`, whose hash
 * line must then work in a server config.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { fmqCommand, FmqProcess } from '../peers/fmq-process.js'


interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `fmq` to its end (killed after `ms`), feeding `input` on stdin. */
function run(args: readonly string[], options: { input?: string; ms?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const [file, ...command] = fmqCommand()
    const child = spawn(file!, [...command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`fmq ${args.join(' ')} did not exit within ${options.ms ?? 20_000} ms; stderr: ${stderr}`))
    }, options.ms ?? 20_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(options.input ?? '')
  })
}

/** One line on stderr, starting `fmq: ` and containing `text`; no stack trace. */
function oneLine(result: Run, text: string | RegExp, code: number): void {
  const lines = result.stderr.split('\n').filter((line) => line !== '')
  assert.equal(lines.length, 1, `expected one line on stderr, got: ${result.stderr}`)
  assert.match(lines[0] ?? '', /^fmq: /)
  if (typeof text === 'string') assert.ok(lines[0]?.includes(text), `"${lines[0]}" should include "${text}"`)
  else assert.match(lines[0] ?? '', text)
  assert.equal(result.code, code, `exit code (stderr: ${result.stderr})`)
}

/** A TCP port nobody listens on (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

const plainConfig = (send: string, account: string[]) =>
  [
    'server',
    '    heartbeat = 1',
    'publish',
    `    location = ${send}`,
    '    virtual = /',
    'bind',
    '    endpoint = tcp://127.0.0.1:*',
    'security',
    '    anonymous = 0',
    '    plain = 1',
    ...account,
    '',
  ].join('\n')

describe('fmq: bad input is one line on stderr and a documented exit code', () => {
  let dir: string
  let send: string
  const processes: FmqProcess[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-cli-errors-'))
    send = join(dir, 'send')
    await mkdir(send)
    await writeFile(join(send, 'hello.txt'), 'hello\n')
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

  test('a publish directory that does not exist: exit 2', async () => {
    oneLine(await run(['server', '-p', join(dir, 'nowhere=/x'), '-b', 'tcp://127.0.0.1:*']), /publish directory .*nowhere does not exist/, 2)
  })

  test('an inbox whose parent does not exist: exit 2', async () => {
    oneLine(await run(['client', '-C', 'tcp://127.0.0.1:5670', '-i', join(dir, 'no', 'inbox')]), /inbox parent directory .* does not exist/, 2)
  })

  test('a bad endpoint, to bind or to connect to: exit 2', async () => {
    oneLine(await run(['server', '-p', send, '-b', 'tcp://nonsense']), 'bad endpoint "tcp://nonsense"', 2)
    oneLine(await run(['client', '-C', 'tcp://nonsense', '-i', join(dir, 'inbox-bad')]), 'bad endpoint "tcp://nonsense"', 2)
  })

  test('a port in use: exit 1, naming the endpoint', async () => {
    const first = start(['server', '-p', send, '-b', 'tcp://127.0.0.1:*'])
    const endpoint = await first.endpoint()
    oneLine(await run(['server', '-p', send, '-b', endpoint]), `cannot bind ${endpoint}: address already in use`, 1)
  })

  test('a malformed config: exit 2 with file:line', async () => {
    const config = join(dir, 'malformed.cfg')
    await writeFile(config, 'server\n    heartbeat = 1000\n  monitor = 5\n')
    oneLine(await run(['server', '-c', config]), `${config}:3:`, 2)
    const badValue = join(dir, 'bad-value.cfg')
    await writeFile(badValue, `publish\n    location = ${send}\nserver\n    heartbeat = soon\n`)
    oneLine(await run(['server', '-c', badValue]), `${badValue}:4: server/heartbeat must be a positive number`, 2)
  })

  test('an unreadable config (missing, or a directory): exit 2', async () => {
    oneLine(await run(['server', '-c', join(dir, 'missing.cfg')]), /cannot read config .*missing\.cfg: no such file/, 2)
    oneLine(await run(['client', '-c', dir]), `cannot read config ${dir}: is a directory`, 2)
  })

  test('an unknown flag: exit 2', async () => {
    oneLine(await run(['server', '--frobnicate']), "unknown option '--frobnicate'", 2)
  })

  test('a --rescan that is not a positive number of seconds: exit 2 (server and track)', async () => {
    oneLine(await run(['server', '-p', send, '--rescan', '0']), 'positive number of seconds', 2)
    oneLine(await run(['track', send, join(dir, 'rescan-dst'), '--rescan', 'hourly']), 'positive number of seconds', 2)
  })

  test('a wrong password against a PLAIN server: exit 3', async () => {
    const config = join(dir, 'plain.cfg')
    await writeFile(config, plainConfig(send, ['        account', '            login = reader', '            password = right', '            group = guest']))
    const server = start(['server', '-c', config])
    const endpoint = await server.endpoint()
    const passwordFile = join(dir, 'wrong-password')
    await writeFile(passwordFile, 'wrong\n')
    const result = await run(['client', '-C', endpoint, '-i', join(dir, 'inbox-wrong'), '--login', 'reader', '--password-file', passwordFile])
    oneLine(result, `access denied by ${endpoint}`, 3)
  })

  test('file system failures in words naming the path, never a bare ENOENT or EEXIST', async () => {
    oneLine(await run(['track', join(dir, 'missing-src'), join(dir, 'track-dst'), '--once']), `SRC ${join(dir, 'missing-src')} does not exist`, 2)
    oneLine(await run(['client', '-C', 'tcp://127.0.0.1:5670', '-i', join(dir, 'inbox-pw'), '--login', 'reader', '--password-file', dir]), `cannot read password file ${dir}: is a directory`, 2)
    const file = join(dir, 'a-file')
    await writeFile(file, 'not a folder\n')
    const relay = await run(['relay', '-u', 'tcp://127.0.0.1:5670', '-i', file, '-b', 'tcp://127.0.0.1:*'])
    oneLine(relay, `cannot create folder ${file}: already exists`, 1)
    assert.doesNotMatch(relay.stderr, /\bE[A-Z]{3,}\b/)
  })

  test('a password file that cannot be read: exit 2', async () => {
    oneLine(
      await run(['client', '-C', 'tcp://127.0.0.1:5670', '-i', join(dir, 'inbox-nofile'), '--login', 'reader', '--password-file', join(dir, 'nope')]),
      'cannot read password file',
      2,
    )
  })

  test('a server that does not answer: with --once exit 1 after --connect-timeout; without, a warning and it keeps trying', async () => {
    const port = await freePort()
    const once = await run(['client', '-C', `tcp://127.0.0.1:${port}`, '-i', join(dir, 'inbox-silent'), '--once', '--connect-timeout', '300'])
    oneLine(once, `no answer from tcp://127.0.0.1:${port} within 0.3 s`, 1)

    const waiting = start(['client', '-C', `tcp://127.0.0.1:${port}`, '-i', join(dir, 'inbox-silent2'), '--connect-timeout', '300'])
    const warning = await waiting.waitFor((line) => line.type === 'warning', 10_000, 'the warning')
    assert.match(String(warning.message), /still trying/)
    await waiting.kill('SIGINT')
    assert.equal(await waiting.exited, 0)
  })

  test('fmq passwd reads a password from stdin and prints an account that logs in', async () => {
    const hashed = await run(['passwd', '--login', 'admin', '--group', 'admin'], { input: 'correct horse\n' })
    assert.equal(hashed.code, 0, hashed.stderr)
    assert.match(hashed.stdout, /^ {12}hash = "\$argon2id\$v=19\$m=\d+,t=\d+,p=1\$[^"]+"$/m)
    assert.ok(!hashed.stdout.includes('correct horse'))

    const config = join(dir, 'hashed.cfg')
    await writeFile(config, plainConfig(send, hashed.stdout.trimEnd().split('\n')))
    const server = start(['server', '-c', config])
    const endpoint = await server.endpoint()
    const passwordFile = join(dir, 'right-password')
    await writeFile(passwordFile, 'correct horse\n')
    const client = start(['client', '-C', endpoint, '-i', join(dir, 'inbox-hashed'), '--login', 'admin', '--password-file', passwordFile, '--resync'])
    await client.waitFor((line) => line.type === 'delivered' && line.virtualPath === '/hello.txt', 20_000, 'hello.txt delivered')
    await client.kill('SIGINT')
    assert.equal(await client.exited, 0)
  })

  test('fmq passwd with an empty line: exit 2', async () => {
    oneLine(await run(['passwd'], { input: '\n' }), 'the password is empty', 2)
  })
})
