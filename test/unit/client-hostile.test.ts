import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import {
  Client,
  CreditOverrunError,
  OutOfOrderChunkError,
  RefusedFileNameError,
  type DeliveredEvent,
  type ErrorEvent,
} from '../../src/client/index.js'
import { MalformedMessageError } from '../../src/protocol/errors.js'
import { ReferencePeer, nextEvent, record, tempDir, type PeerClient } from '../peers/reference-server.js'

interface Setup {
  dir: string
  inbox: string
  peer: ReferencePeer
  client: Client
  subscriber: PeerClient
  errors: ErrorEvent[]
  close(): Promise<void>
}

async function setup(options: { creditWindow?: number; creditSlice?: number } = {}): Promise<Setup> {
  const dir = await tempDir()
  const inbox = join(dir.path, 'inbox')
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox, versions: [2], heartbeat: 100, ...options })
  const errors = record<ErrorEvent>(client, 'error')
  await client.connect(peer.endpoint)
  await client.subscribe('/')
  const subscriber = await peer.waitForSubscriber()
  return {
    dir: dir.path,
    inbox,
    peer,
    client,
    subscriber,
    errors,
    async close() {
      await client.close()
      await peer.close()
      await dir.remove()
    },
  }
}

/** Sends a good file last and waits for it: every CHEEZBURGER before it has been handled by then. */
async function sendSentinel(s: Setup): Promise<DeliveredEvent> {
  const delivered = nextEvent<DeliveredEvent>(s.client, 'delivered', (event) => event.virtualPath === '/ok.txt')
  await s.peer.sendFile(s.subscriber, '/ok.txt', Buffer.from('still going'))
  return delivered
}

test('hostile names are refused (.., state dir, a symlinked dir, NUL), nothing is written outside, the transfer goes on', async () => {
  const s = await setup()
  try {
    const outside = join(s.dir, 'outside')
    await mkdir(outside)
    await symlink(outside, join(s.inbox, 'linked'))
    const hostile: [string, string][] = [
      ['../escape', 'unsafe'],
      ['/../x', 'unsafe'],
      ['/a/../../y', 'unsafe'],
      ['/.fmq/partial/x', 'state-dir'],
      ['/.fmq', 'state-dir'],
      ['/linked/evil.txt', 'outside-inbox'],
      ['/nul\0byte', 'unsafe'],
      // A backslash is no separator on Linux: '/back\\slash' is a file name like any other (odd-names.test.ts).
    ]
    for (const [name] of hostile) {
      // A whole file each: two chunks and the end. Only the first chunk may raise an error.
      await s.peer.cheezburger(s.subscriber, { filename: name, offset: 0n, chunk: Buffer.from('evil-') })
      await s.peer.cheezburger(s.subscriber, { filename: name, offset: 5n, chunk: Buffer.from('content') })
      await s.peer.endFile(s.subscriber, name, 12)
    }
    await sendSentinel(s)

    assert.deepEqual(
      s.errors.map(({ error }) => {
        assert.ok(error instanceof RefusedFileNameError, String(error))
        return [error.virtualPath, error.reason]
      }),
      hostile,
    )
    assert.deepEqual(await readdir(outside), [])
    assert.deepEqual((await readdir(s.dir)).sort(), ['inbox', 'outside'])
    assert.deepEqual((await readdir(s.inbox)).sort(), ['.fmq', 'linked', 'ok.txt'])
    assert.deepEqual(await readdir(join(s.inbox, '.fmq', 'partial')), [])
  } finally {
    await s.close()
  }
})

test('a delete with a hostile name is refused and removes nothing', async () => {
  const s = await setup()
  try {
    const victim = join(s.dir, 'escape')
    await writeFile(victim, 'precious')
    await s.peer.sendDelete(s.subscriber, '../escape')
    await s.peer.sendDelete(s.subscriber, '/.fmq')
    await sendSentinel(s)
    assert.equal(await readFile(victim, 'utf8'), 'precious')
    assert.deepEqual(
      s.errors.map(({ error }) => (error as RefusedFileNameError).reason),
      ['unsafe', 'state-dir'],
    )
    assert.ok((await stat(join(s.inbox, '.fmq'))).isDirectory())
  } finally {
    await s.close()
  }
})

test('chunks out of order are refused: the partial is discarded, never written sparse; offset 0 restarts a file', async () => {
  const s = await setup()
  try {
    // A gap: 0..1000 then 5000.
    await s.peer.cheezburger(s.subscriber, { filename: '/jump.bin', offset: 0n, chunk: Buffer.alloc(1000, 1) })
    await s.peer.cheezburger(s.subscriber, { filename: '/jump.bin', offset: 5000n, chunk: Buffer.alloc(1000, 2) })
    await s.peer.cheezburger(s.subscriber, { filename: '/jump.bin', offset: 6000n, chunk: Buffer.alloc(1000, 3) })
    await s.peer.endFile(s.subscriber, '/jump.bin', 7000)
    // A new file that does not start at 0.
    await s.peer.cheezburger(s.subscriber, { filename: '/late.bin', offset: 10n, chunk: Buffer.alloc(10, 4) })
    await s.peer.endFile(s.subscriber, '/late.bin', 20)
    // A restart: offset 0 again, shorter this time; no old tail survives.
    await s.peer.cheezburger(s.subscriber, { filename: '/restart.bin', offset: 0n, chunk: Buffer.alloc(1000, 0x41) })
    await s.peer.cheezburger(s.subscriber, { filename: '/restart.bin', offset: 0n, chunk: Buffer.alloc(500, 0x42) })
    const restarted = nextEvent<DeliveredEvent>(s.client, 'delivered', (event) => event.virtualPath === '/restart.bin')
    await s.peer.endFile(s.subscriber, '/restart.bin', 500)
    await restarted
    await sendSentinel(s)

    assert.equal(s.errors.length, 2)
    const [gap, late] = s.errors.map(({ error }) => error)
    assert.ok(gap instanceof OutOfOrderChunkError)
    assert.equal(gap.virtualPath, '/jump.bin')
    assert.equal(gap.expected, 1000)
    assert.equal(gap.offset, 5000n)
    assert.ok(late instanceof OutOfOrderChunkError)
    assert.equal(late.expected, 0)
    await assert.rejects(stat(join(s.inbox, 'jump.bin')), { code: 'ENOENT' })
    await assert.rejects(stat(join(s.inbox, 'late.bin')), { code: 'ENOENT' })
    assert.deepEqual(await readFile(join(s.inbox, 'restart.bin')), Buffer.alloc(500, 0x42))
    assert.deepEqual(await readdir(join(s.inbox, '.fmq', 'partial')), [])
  } finally {
    await s.close()
  }
})

test('content beyond the credit granted, or beyond the announced size, is refused', async () => {
  const s = await setup({ creditWindow: 100_000, creditSlice: 50_000 })
  try {
    await s.peer.waitForCredit(s.subscriber, 100_000)
    await s.peer.cheezburger(s.subscriber, { filename: '/flood.bin', offset: 0n, chunk: Buffer.alloc(150_000) })
    await s.peer.endFile(s.subscriber, '/flood.bin', 150_000)
    await s.peer.waitForCredit(s.subscriber, 20)
    const headers = new Map([['size', '10']])
    await s.peer.cheezburger(s.subscriber, { filename: '/liar.bin', offset: 0n, headers, chunk: Buffer.alloc(20) })
    await s.peer.endFile(s.subscriber, '/liar.bin', 20)
    await sendSentinel(s)

    const [flood, liar] = s.errors.map(({ error }) => error)
    assert.equal(s.errors.length, 2)
    assert.ok(flood instanceof CreditOverrunError)
    assert.equal(flood.limit, 'credit')
    assert.equal(flood.allowed, 100_000)
    assert.ok(liar instanceof CreditOverrunError)
    assert.equal(liar.limit, 'size')
    await assert.rejects(stat(join(s.inbox, 'flood.bin')), { code: 'ENOENT' })
    await assert.rejects(stat(join(s.inbox, 'liar.bin')), { code: 'ENOENT' })
    assert.ok(s.subscriber.maxCredit <= 100_000)
  } finally {
    await s.close()
  }
})

test('a malformed message is an error event and is ignored; one without the signature is dropped silently', async () => {
  const s = await setup()
  try {
    await s.peer.sendFrames(s.subscriber, [Buffer.from([0xaa, 0xa3, 8, 0, 0])])
    await s.peer.sendFrames(s.subscriber, [Buffer.from('GET / HTTP/1.0\r\n')])
    await sendSentinel(s)
    assert.equal(s.errors.length, 1)
    assert.ok(s.errors[0]?.error instanceof MalformedMessageError)
    assert.equal(s.errors[0]?.endpoint, s.peer.endpoint)
  } finally {
    await s.close()
  }
})
