/**
 * A socket call a signal interrupts (EINTR) is made again, never the end of a conversation:
 * `node --cpu-prof` once made `fmq client` exit 1 with "Interrupted system call". libzmq
 * returns EINTR only when a signal lands inside its internal poll, which no test can time, so
 * the retries are driven here by a socket stand-in whose calls fail with that errno; the real
 * zeromq sockets around it are the same in every other test.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Pull, Push } from 'zeromq'

import { interrupted, received, sent } from '../../src/util/interrupted.js'

const eintr = (): Error => Object.assign(new Error('Interrupted system call'), { code: 'EINTR', errno: 4 })

test('a receive cut short by a signal is made again; the loop still ends quietly when the socket closes', async () => {
  const push = new Push()
  const pull = new Pull()
  const endpoint = `inproc://interrupted-${process.pid}`
  await pull.bind(endpoint)
  push.connect(endpoint)
  let calls = 0
  const receive = pull.receive.bind(pull)
  const socket = {
    get closed() {
      return pull.closed
    },
    receive: (): Promise<Buffer[]> => (++calls <= 2 ? Promise.reject(eintr()) : receive()),
  }
  const got: string[] = []
  const loop = (async () => {
    for await (const [frame] of received(socket)) {
      got.push(frame!.toString())
      if (got.length === 2) pull.close()
    }
  })()
  await push.send('one')
  await push.send('two')
  await loop
  assert.deepEqual(got, ['one', 'two'])
  assert.equal(calls, 4, 'two interrupted receives made again, then one per message, none after the close')
  push.close()
})

test('a send cut short by a signal is made again; any other error is thrown', async () => {
  let calls = 0
  await sent(async () => {
    if (++calls < 3) throw eintr()
  })
  assert.equal(calls, 3)
  await assert.rejects(
    sent(() => Promise.reject(Object.assign(new Error('Host unreachable'), { code: 'EHOSTUNREACH' }))),
    /Host unreachable/,
  )
  assert.equal(interrupted(eintr()), true)
  assert.equal(interrupted(new Error('other')), false)
  assert.equal(interrupted(undefined), false)
})
