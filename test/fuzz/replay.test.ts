/**
 * The regression fixtures of test/fixtures/fuzz/ (one JSON file per input: handcrafted
 * edge cases, and every crash the fuzzers found), replayed against both codecs and against
 * live servers.
 *
 * Codecs: each message decodes, or fails with a MalformedMessageError, as its `expect`
 * says per version; a decoded message re-encodes (to the same frames, but for keys named
 * twice). Servers (anonymous, and PLAIN): each fixture is sent in order by a fresh client,
 * several times; the client then says OHAI and must be answered; at the end nothing crashed,
 * no 'error' was reported, no file handle was left to the garbage collector, a fresh OHAI
 * is answered in both versions and a well-behaved client has the whole tree.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Dealer } from 'zeromq'

import { Client } from '../../src/client/index.js'
import { MalformedMessageError } from '../../src/protocol/errors.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { Server } from '../../src/server/server.js'
import { sameTree, write } from '../fixtures/tree.js'
import { check, codecs, collectGarbage, type FuzzFixture, loadFixtures, MiB } from './lib.js'

const fixtures = await loadFixtures()
/** Each fixture is replayed this many times: races (a message landing while a file opens) need a few tries. */
const ROUNDS = 5
const LOGIN = 'replay'
const PASSWORD = 'replay-secret'

describe('fuzz fixtures: the codecs', () => {
  test('there are fixtures to replay', () => {
    assert.ok(fixtures.length > 0, 'test/fixtures/fuzz/ holds no fixture')
  })
  for (const { file, fixture } of fixtures) {
    test(`${file.split('/').slice(-1)[0]}: ${fixture.comment}`, () => {
      fixture.messages.forEach(({ frames, expect }, index) => {
        const input = frames.map((hex) => Buffer.from(hex, 'hex'))
        for (const version of [1, 2] as const) {
          const what = `message ${index}, version ${version}`
          const outcome = check(codecs[version], input) // throws a Finding on anything the codec must not do
          const wanted = expect?.[version]
          if (wanted === undefined) continue
          if (wanted === 'ok') {
            assert.notEqual(outcome, 'malformed', `${what}: should decode`)
          } else {
            assert.equal(outcome, 'malformed', `${what}: should be refused (${wanted})`)
            assert.throws(() => codecs[version].decode(input), (error: unknown) => error instanceof MalformedMessageError && error.reason === wanted, what)
          }
        }
      })
    })
  }
})

/** Sends a fixture's messages from a fresh socket, then OHAI; resolves on the answer to that OHAI. */
async function replay(at: string, fixture: FuzzFixture, greeting: number): Promise<void> {
  const socket = new Dealer({ linger: 0, sendTimeout: 5000 })
  socket.connect(at)
  /** Receives until a reply with this id comes (others are dropped), for at most 10 s. */
  const until = async (id: number): Promise<void> => {
    const deadline = Date.now() + 10_000
    for (;;) {
      socket.receiveTimeout = Math.max(1, deadline - Date.now())
      const [first] = await socket.receive()
      if (first !== undefined && first.length > 2 && first[2] === id) return
    }
  }
  try {
    for (const { frames, await: reply } of fixture.messages) {
      await socket.send(frames.map((hex) => Buffer.from(hex, 'hex')))
      if (reply !== undefined) await until(reply)
    }
    // Messages of one connection are taken in order: once OHAI is answered, the fixture was dispatched.
    await socket.send(codecs[2].encode({ id: MessageId.OHAI }))
    await until(greeting)
  } finally {
    socket.close()
  }
}

describe('fuzz fixtures: live servers', () => {
  let dir: string
  const problems: string[] = []
  const onProblem = (what: string) => (error: unknown) => void problems.push(`${what}: ${(error as Error)?.stack ?? String(error)}`)
  const onUncaught = onProblem('uncaught exception')
  const onRejection = onProblem('unhandled rejection')
  const onWarning = (warning: Error & { code?: string }): void => {
    if (warning.code === 'DEP0137' || /closing file descriptor/i.test(warning.message)) problems.push(`leaked file handle: ${warning.message}`)
  }
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-fuzz-replay-'))
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onRejection)
    process.on('warning', onWarning)
  })
  after(async () => {
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onRejection)
    process.off('warning', onWarning)
    await rm(dir, { recursive: true, force: true })
  })

  for (const access of ['anonymous', 'plain'] as const) {
    test(`${access} access: every fixture, ${ROUNDS} times each (or as it says), while a good client mirrors the tree`, async () => {
      const source = join(dir, `${access}-source`)
      const inbox = join(dir, `${access}-inbox`)
      // Large files are read asynchronously (content.ts): where a message can land mid-open.
      await write(source, { 'a.txt': 'a', 'big.bin': randomBytes(3 * MiB), 'nested/b.bin': randomBytes(300_000), empty: '' })
      await mkdir(inbox, { recursive: true })
      const errors: string[] = []
      const problemsBefore = problems.length
      const server = new Server({ anonymous: access === 'anonymous', plain: access === 'plain', accounts: [{ login: LOGIN, password: PASSWORD }], loginDelay: 10 })
      server.on('error', (error) => errors.push(error.stack ?? error.message))
      const good = new Client({ inbox, resync: true, ...(access === 'plain' ? { login: LOGIN, password: PASSWORD } : {}) })
      good.on('error', () => undefined)
      try {
        await server.publish(source, '/')
        const at = await server.bind('tcp://127.0.0.1:*')
        await good.connect(at)
        const subscribed = good.subscribe('/')
        const greeting = access === 'anonymous' ? MessageId.OHAI_OK : MessageId.ORLY
        const rounds = Math.max(...fixtures.map(({ fixture }) => fixture.repeat ?? ROUNDS))
        for (let round = 0; round < rounds; round++) {
          for (const { file, fixture } of fixtures) {
            if (round >= (fixture.repeat ?? ROUNDS) || !(fixture.servers ?? [access]).includes(access)) continue
            await replay(at, fixture, greeting).catch((error: Error) => assert.fail(`${file}, round ${round}: no answer to OHAI after the fixture (${error.message})`))
          }
        }
        await subscribed
        await waitFor(() => sameTree(source, inbox), 30_000, 'the good client to hold the whole tree', good)
        collectGarbage()
        await new Promise((resolve) => setImmediate(resolve))
        assert.deepEqual(problems.slice(problemsBefore), [], 'no crash, no handle left to the garbage collector')
        assert.deepEqual(errors, [], 'the server reports no error')
      } finally {
        await good.close()
        await server.close()
      }
    })
  }
})

/** Resolves when `check` holds, looked at again on each delivery; rejects after `ms`. */
function waitFor(condition: () => Promise<boolean>, ms: number, what: string, client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false
    const finish = (error?: Error): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      client.off('delivered', probe)
      if (error) reject(error)
      else resolve()
    }
    const timer = setTimeout(() => finish(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    function probe(): void {
      condition().then(
        (ok) => ok && finish(),
        () => undefined, // a file being put in place: the next delivery looks again
      )
    }
    client.on('delivered', probe)
    probe()
  })
}
