/**
 * `--http` on the command line, with real `fmq` processes: off by default (the process
 * listens on its endpoint alone), a bare port listens on 127.0.0.1 only, the ZPL key
 * `server/http` does the same as the flag, and a port in use or a bad value is one clear
 * line and an exit code, never a crash.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile, readlink, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server as NetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { write } from '../fixtures/tree.js'
import { type FmqProcess, FmqProcesses } from '../peers/fmq-process.js'

/** The TCP addresses a process listens on (`127.0.0.1:8080`, `0.0.0.0:5670`), from /proc. */
async function listening(pid: number): Promise<string[]> {
  const inodes = new Set<string>()
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    const match = /^socket:\[(\d+)\]$/.exec(target)
    if (match) inodes.add(match[1]!)
  }
  const found: string[] = []
  for (const table of ['tcp', 'tcp6']) {
    const lines = (await readFile(`/proc/net/${table}`, 'utf8').catch(() => '')).split('\n').slice(1)
    for (const line of lines) {
      const fields = line.trim().split(/\s+/)
      // local address, state 0A (LISTEN), inode
      if (fields[3] !== '0A' || !inodes.has(fields[9] ?? '')) continue
      const [hex, port] = fields[1]!.split(':')
      const host = hex!.length === 8 ? hex!.match(/../g)!.reverse().map((byte) => parseInt(byte, 16)).join('.') : `[${hex}]`
      found.push(`${host}:${parseInt(port!, 16)}`)
    }
  }
  return found.sort()
}

describe('fmq --http', () => {
  let dir: string
  let busy: NetServer
  let busyPort: number
  const processes = new FmqProcesses()

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-cli-http-'))
    await write(join(dir, 'send'), { 'a.txt': 'alpha\n' })
    busy = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()))
    busyPort = (busy.address() as { port: number }).port
  })

  after(async () => {
    await processes.killAll()
    await new Promise((resolve) => busy.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })

  const start = (args: string[]): FmqProcess => processes.start(args)
  const serve = (...extra: string[]): FmqProcess => start(['server', '-p', join(dir, 'send'), '-b', 'tcp://127.0.0.1:*', ...extra])
  /** /api/status and /metrics of a process that said where it serves them. */
  const fetchStatus = async (child: FmqProcess): Promise<{ status: Record<string, unknown>; metrics: string }> => {
    const url = String((await child.waitFor((line) => line.type === 'http', 20_000, 'the status URL')).url)
    const [status, metrics] = await Promise.all([fetch(`${url}api/status`).then((response) => response.json()), fetch(`${url}metrics`).then((response) => response.text())])
    return { status: status as Record<string, unknown>, metrics }
  }

  test('off by default: the server listens on its endpoint alone', async () => {
    const server = serve()
    const endpoint = await server.endpoint()
    assert.deepEqual(await listening(server.child.pid!), [endpoint.replace('tcp://', '')])
    assert.equal(server.lines.some((line) => line.type === 'http'), false)
  })

  test('a bare port listens on 127.0.0.1 only, and serves the status', async () => {
    // A port free a moment ago; the test of a bare port needs a number.
    const probe = createServer()
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)))
    await new Promise((resolve) => probe.close(resolve))
    const server = serve('--http', String(port))
    const endpoint = await server.endpoint()
    const http = await server.waitFor((line) => line.type === 'http', 20_000, 'the status URL')
    assert.equal(http.url, `http://127.0.0.1:${port}/`)
    assert.deepEqual(await listening(server.child.pid!), [endpoint.replace('tcp://', ''), `127.0.0.1:${port}`].sort())
    const status = (await (await fetch(`${String(http.url)}api/status`)).json()) as { role: string; mounts: Array<{ files: number }> }
    assert.equal(status.role, 'server')
    assert.equal(status.mounts[0]!.files, 1)
  })

  test('the config key server/http does what the flag does; a bad value names file and line', async () => {
    const config = join(dir, 'server.cfg')
    await writeFile(config, `server\n    http = 127.0.0.1:0\npublish\n    location = ${join(dir, 'send')}\nbind\n    endpoint = tcp://127.0.0.1:*\n`)
    const server = start(['server', '-c', config])
    const http = await server.waitFor((line) => line.type === 'http', 20_000, 'the status URL')
    assert.match(String(http.url), /^http:\/\/127\.0\.0\.1:\d+\/$/)
    assert.equal(server.stderr.filter((line) => line.includes('unknown key')).length, 0, server.stderr.join(' | '))

    const bad = join(dir, 'bad.cfg')
    await writeFile(bad, `server\n    http = here\npublish\n    location = ${join(dir, 'send')}\n`)
    const refused = start(['server', '-c', bad])
    assert.equal(await refused.exited, 2)
    assert.match(refused.stderr.join('\n'), /^fmq: .*bad\.cfg:2: server\/http: invalid HTTP address 'here'/m)
  })

  test('the config key client/http serves a client\'s status', async () => {
    const config = join(dir, 'client.cfg')
    await writeFile(config, `client\n    inbox = ${join(dir, 'inbox-config')}\n    http = 127.0.0.1:0\nconnect\n    endpoint = tcp://127.0.0.1:1\n`)
    const client = start(['client', '-c', config])
    const { status, metrics } = await fetchStatus(client)
    assert.equal(status.role, 'client')
    assert.deepEqual((status.servers as Array<{ endpoint: string; state: string }>).map(({ endpoint, state }) => ({ endpoint, state })), [{ endpoint: 'tcp://127.0.0.1:1', state: 'connecting' }])
    assert.match(metrics, /^fmq_connected\{endpoint="tcp:\/\/127\.0\.0\.1:1"\} 0$/m)
  })

  test('--json: one object per line for a log pipeline, each with its time and level', async () => {
    const config = join(dir, 'typo.cfg')
    await writeFile(config, `server\n    htpp = 8080\npublish\n    location = ${join(dir, 'send')}\nbind\n    endpoint = tcp://127.0.0.1:*\n`)
    const server = start(['server', '-c', config])
    await server.endpoint()
    const warning = await server.waitFor((line) => line.type === 'warning', 20_000, 'the unknown key warning')
    assert.equal(warning.level, 'warn')
    assert.match(String(warning.message), /unknown key server\/htpp \(did you mean server\/http\?\)/)
    const listening = server.lines.find((line) => line.type === 'listening')!
    assert.equal(listening.level, 'info')
    assert.ok(Math.abs(Date.parse(String(listening.time)) - Date.now()) < 60_000, `a time: ${String(listening.time)}`)
    assert.equal(server.lines.filter((line) => line.type === 'text').length, 0, 'every line is JSON')
  })

  test('a port in use: one line and exit 1, for a server and a client', async () => {
    const server = serve('--http', `127.0.0.1:${busyPort}`)
    assert.equal(await server.exited, 1)
    assert.deepEqual(server.stderr, [`fmq: cannot serve HTTP on 127.0.0.1:${busyPort}: address already in use`])

    const client = start(['client', '-C', 'tcp://127.0.0.1:1', '-i', join(dir, 'inbox'), '--http', String(busyPort)])
    assert.equal(await client.exited, 1)
    assert.deepEqual(client.stderr, [`fmq: cannot serve HTTP on 127.0.0.1:${busyPort}: address already in use`])
  })

  test('a value that is no address: a usage error, exit 2', async () => {
    const server = serve('--http', 'example.com')
    assert.equal(await server.exited, 2)
    assert.match(server.stderr.join('\n'), /invalid HTTP address 'example\.com': expected PORT or HOST:PORT/)
  })

  test('fmq track --http: the status of its client half, with SRC and DST', async () => {
    const track = start(['track', join(dir, 'send'), join(dir, 'copy'), '--http', '127.0.0.1:0'])
    await track.waitFor((line) => line.type === 'delivered', 20_000, 'a.txt copied')
    const { status, metrics } = await fetchStatus(track)
    assert.equal(status.role, 'track')
    assert.equal(status.source, join(dir, 'send'))
    assert.equal(status.inbox, join(dir, 'copy'))
    assert.deepEqual(status.totals, { bytesReceived: 6, filesDelivered: 1, verifyFailures: 0 })
    assert.match(metrics, /^fmq_files_delivered_total 1$/m)
    assert.match(metrics, /^fmq_bytes_received_total 6$/m)
  })

  test('fmq relay --http: both halves, the upstream server and what it serves downstream', async () => {
    const server = serve()
    const endpoint = await server.endpoint()
    const relay = start(['relay', '-u', endpoint, '-i', join(dir, 'relayed'), '-b', 'tcp://127.0.0.1:*', '--http', '127.0.0.1:0'])
    await relay.waitFor((line) => line.type === 'delivered', 20_000, 'a.txt relayed')
    const { status, metrics } = await fetchStatus(relay)
    assert.equal(status.role, 'relay')
    const servers = status.servers as Array<{ endpoint: string; state: string; filesDelivered: number }>
    assert.deepEqual(servers.map(({ endpoint: at, state, filesDelivered }) => ({ at, state, filesDelivered })), [{ at: endpoint, state: 'connected', filesDelivered: 1 }])
    assert.ok(Array.isArray(status.mounts) && Array.isArray(status.clients))
    assert.match(metrics, /^fmq_files_delivered_total 1$/m)
    assert.match(metrics, /^fmq_clients_connected 0$/m)
  })
})
