/**
 * A password guesser with many connections against a server with the default login delays:
 * how many passwords of one account it gets checked per minute, and whether the account's
 * owner gets in once the guessing stops. Run through `npm run test:faults` for the
 * figures (60 s of guessing with FMQ_FAULTS=long, 12 s otherwise).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Server } from '../../src/server/index.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { ReferenceClient } from '../peers/reference-client.js'
import { recordFigure } from './figures.js'
import { LONG } from './harness.js'

const CONNECTIONS = 32
const SECONDS = LONG ? 60 : 12
const PASSWORD = 'correct horse battery staple'

test(`${CONNECTIONS} connections guessing one account's password for ${SECONDS} s, default delays`, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fmq-guess-'))
  // Defaults: 1 s after a failure, doubling to 5 s, per connection and per login.
  const server = new Server({ anonymous: false, plain: true, accounts: [{ login: 'alice', password: PASSWORD }] })
  try {
    await server.publish(dir, '/')
    const at = await server.bind('tcp://127.0.0.1:*')
    const started = Date.now()
    let checked = 0
    let refused = 0
    const guesser = async (id: number): Promise<void> => {
      for (let attempt = 0; Date.now() - started < SECONDS * 1000; attempt++) {
        const peer = new ReferenceClient({ version: 2, login: 'alice', password: `guess-${id}-${attempt}` })
        try {
          await peer.connect(at)
          await peer.hello()
          await peer.until(() => peer.last(MessageId.SRSLY) !== undefined || peer.last(MessageId.OHAI_OK) !== undefined, 30_000, 'an answer')
          const answer = peer.last(MessageId.SRSLY)
          assert.ok(answer?.id === MessageId.SRSLY, 'a guess was let in')
          if (answer.reason === '') checked++
          else refused++
        } finally {
          await peer.close()
        }
      }
    }
    await Promise.all(Array.from({ length: CONNECTIONS }, (_, id) => guesser(id)))
    const minutes = (Date.now() - started) / 60_000
    const perMinute = checked / minutes
    recordFigure(`passwords checked per minute, one account, ${CONNECTIONS} connections`, Number(perMinute.toFixed(1)), '/min')
    recordFigure('login attempts answered per minute (most refused unchecked)', Math.round((checked + refused) / minutes), '/min')
    // 1 + 2 + 4 s, then one check every 5 s: 3 checks in the first 7 s, 12 a minute after.
    const bound = 3 + Math.ceil(Math.max(0, minutes * 60 - 7) / 5) + 1
    assert.ok(checked <= bound, `${checked} checks in ${(minutes * 60).toFixed(1)} s (bound ${bound})`)
    assert.ok(checked >= 2, `${checked} checks: the account must still be tried, not locked for good`)
    // The owner gets in once the cooldown after the last failure has passed (at most 5 s).
    const owner = new ReferenceClient({ version: 2, login: 'alice', password: PASSWORD })
    try {
      await owner.connect(at)
      const deadline = Date.now() + 15_000
      for (;;) {
        await owner.hello()
        await owner.until(() => owner.received.some((m) => m.id === MessageId.OHAI_OK || m.id === MessageId.SRSLY), 10_000, 'an answer to the owner')
        if (owner.last(MessageId.OHAI_OK) !== undefined) break
        assert.ok(Date.now() < deadline, 'the owner was refused for more than 15 s after the guessing stopped')
        const cooling = owner.last(MessageId.SRSLY)
        assert.ok(cooling?.id === MessageId.SRSLY && /too many failed logins/.test(cooling.reason), 'the owner refused for another reason')
        owner.received.length = 0
      }
    } finally {
      await owner.close()
    }
  } finally {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  }
})
