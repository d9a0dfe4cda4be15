import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Machine } from '../../src/protocol/fsm.js'
import { MessageId, type Message } from '../../src/protocol/generated/fmq_msg.js'
import {
  type ServerActions,
  type ServerEvent,
  type ServerSends,
  type ServerState,
  serverTable,
} from '../../src/protocol/generated/fmq_server_fsm.js'
import { type ClientActions, type ClientEvent, type ClientState, clientTable } from '../../src/protocol/generated/fmq_client_fsm.js'

/** A client of the server machine whose actions record what they did and raise what the test says. */
class Recorder implements ServerActions<Recorder> {
  log: string[] = []
  access: ServerEvent = 'anonymous'
  credentials: ServerEvent = 'friend'
  machine!: Machine<ServerActions<Recorder>, ServerState, ServerEvent, Recorder>

  private note(name: string, message?: Message): void {
    this.log.push(message ? `${name}(${message.id})` : name)
  }
  forgetClientState(_c: Recorder, m: Message): void { this.note('forget', m) }
  checkAccess(): void { this.note('check access'); this.machine.raise(this.access) }
  async checkCredentials(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve))
    this.note('check credentials')
    this.machine.raise(this.credentials)
  }
  delayFailedLogin(): void { this.note('delay') }
  checkSubscription(): void { this.note('check subscription'); this.machine.raise('subscribed') }
  storeSubscription(): void { this.note('store subscription') }
  resyncClient(): void { this.note('resync') }
  storeCredit(_c: Recorder, m: Message): void { this.note('store credit', m) }
  storeAcknowledgement(): void { this.note('store acknowledgement') }
  getNextPatch(): void { this.note('next patch'); this.machine.raise('finished') }
  terminate(): void { this.note('terminate') }
  send(_c: Recorder, name: ServerSends): void { this.note(`send ${name}`) }
}

function server(hooks = {}) {
  const recorder = new Recorder()
  recorder.machine = new Machine(serverTable, recorder as ServerActions<Recorder>, recorder, hooks)
  return recorder
}

const OHAI: Message = { id: MessageId.OHAI }
const YARLY: Message = { id: MessageId.YARLY, mechanism: 'PLAIN', response: Buffer.from('\0a\0b') }
const NOM: Message = { id: MessageId.NOM, credit: 10n, sequence: 0n }

test('anonymous access: OHAI is answered with OHAI-OK and the client is ready', async () => {
  const s = server()
  await s.machine.handle('OHAI', OHAI)
  assert.deepEqual(s.log, ['forget(1)', 'check access', 'send OHAI-OK'])
  assert.equal(s.machine.state, 'ready')
})

test('SASL path: ORLY, then YARLY with good credentials gives OHAI-OK, bad ones SRSLY after a delay', async () => {
  const good = server()
  good.access = 'challenge'
  await good.machine.handle('OHAI', OHAI)
  assert.equal(good.machine.state, 'challenging')
  await good.machine.handle('YARLY', YARLY)
  assert.deepEqual(good.log.slice(2), ['send ORLY', 'check credentials', 'send OHAI-OK'])
  assert.equal(good.machine.state, 'ready')

  const bad = server()
  bad.access = 'challenge'
  bad.credentials = 'foe'
  await bad.machine.handle('OHAI', OHAI)
  await bad.machine.handle('YARLY', YARLY)
  assert.deepEqual(bad.log.slice(3), ['check credentials', 'delay', 'send SRSLY', 'terminate'])
  assert.equal(bad.machine.state, 'start')
})

test('access denied: SRSLY and the conversation ends', async () => {
  const s = server()
  s.access = 'denied'
  await s.machine.handle('OHAI', OHAI)
  assert.deepEqual(s.log.slice(2), ['send SRSLY', 'terminate'])
  assert.equal(s.machine.state, 'start')
})

test('subscribe, credit and dispatch in ready', async () => {
  const s = server()
  await s.machine.handle('OHAI', OHAI)
  s.log = []
  await s.machine.handle('ICANHAZ', { id: MessageId.ICANHAZ, path: '/', options: new Map(), cache: new Map() })
  assert.deepEqual(s.log, ['check subscription', 'store subscription', 'send ICANHAZ-OK', 'resync', 'next patch'])
  s.log = []
  await s.machine.handle('NOM', NOM)
  await s.machine.handle('dispatch')
  assert.deepEqual(s.log, ['store credit(7)', 'next patch', 'next patch'])
})

test('an unexpected command gets RTFM (the wildcard); before OHAI even HUGZ does', async () => {
  const s = server()
  await s.machine.handle('HUGZ', { id: MessageId.HUGZ })
  assert.deepEqual(s.log, ['send RTFM', 'terminate'])
  s.log = []
  await s.machine.handle('OHAI', OHAI)
  await s.machine.handle('YARLY', YARLY)
  assert.deepEqual(s.log.slice(3), ['send RTFM', 'terminate'])
  assert.equal(s.machine.state, 'start')
})

test('heartbeats: HUGZ answered, HUGZ-OK stored as an acknowledgement, heartbeat sends HUGZ, expiry terminates', async () => {
  const s = server()
  await s.machine.handle('OHAI', OHAI)
  s.log = []
  await s.machine.handle('HUGZ', { id: MessageId.HUGZ })
  await s.machine.handle('HUGZ-OK', { id: MessageId.HUGZ_OK })
  await s.machine.handle('heartbeat')
  await s.machine.handle('expired')
  assert.deepEqual(s.log, ['send HUGZ-OK', 'store acknowledgement', 'send HUGZ', 'terminate'])
  assert.equal(s.machine.state, 'start')
})

test('OHAI at any time restarts the conversation', async () => {
  const s = server()
  await s.machine.handle('OHAI', OHAI)
  await s.machine.handle('OHAI', OHAI)
  assert.deepEqual(s.log, ['forget(1)', 'check access', 'send OHAI-OK', 'forget(1)', 'check access', 'send OHAI-OK'])
  assert.equal(s.machine.state, 'ready')
})

test('internal events a state does not name are ignored and reported, not RTFM', async () => {
  const unhandled: string[] = []
  const s = server({ unhandled: (state: string, event: string) => unhandled.push(`${state}/${event}`) })
  await s.machine.handle('dispatch')
  assert.deepEqual(s.log, [])
  assert.deepEqual(unhandled, ['start/dispatch'])
})

test('events are handled one at a time, in order, even when actions are async', async () => {
  const s = server()
  s.access = 'challenge'
  const done = [s.machine.handle('OHAI', OHAI), s.machine.handle('YARLY', YARLY), s.machine.handle('NOM', NOM)]
  await Promise.all(done)
  assert.deepEqual(s.log, ['forget(1)', 'check access', 'send ORLY', 'check credentials', 'send OHAI-OK', 'store credit(7)', 'next patch'])
})

test('an action that throws is reported and the machine goes on', async () => {
  const errors: unknown[] = []
  const s = server({ error: (error: unknown) => errors.push(error) })
  s.checkAccess = () => { throw new Error('boom') }
  await s.machine.handle('OHAI', OHAI)
  assert.equal(errors.length, 1)
  await s.machine.handle('OHAI', OHAI)
  assert.equal(errors.length, 2)
})

test('client machine: connect sends OHAI; RTFM or silence in greeting tries an older version', async () => {
  const log: string[] = []
  const actions = new Proxy({} as ClientActions<object>, {
    get: (_t, name: string) => (_c: unknown, arg: unknown) => { log.push(typeof arg === 'string' ? `${name} ${arg}` : name) },
  })
  const machine = new Machine(clientTable, actions, {})
  const step = async (event: ClientEvent, message?: Message): Promise<ClientState> => {
    await machine.handle(event, message)
    return machine.state
  }
  assert.equal(await step('connect'), 'greeting')
  assert.equal(await step('RTFM', { id: MessageId.RTFM, reason: '' }), 'start')
  assert.equal(await step('connect'), 'greeting')
  assert.equal(await step('no answer'), 'start')
  assert.equal(await step('connect'), 'greeting')
  assert.equal(await step('OHAI-OK', { id: MessageId.OHAI_OK }), 'ready')
  assert.equal(await step('CHEEZBURGER', { id: MessageId.CHEEZBURGER, sequence: 0n, operation: 1, filename: '/a', offset: 0n, eof: 0, headers: new Map(), chunk: Buffer.alloc(0) }), 'ready')
  assert.equal(await step('ORLY', { id: MessageId.ORLY, mechanisms: [], challenge: Buffer.alloc(0) }), 'start')
  assert.deepEqual(log, [
    'prepareGreeting', 'send OHAI', 'tryOlderVersion', 'prepareGreeting', 'send OHAI', 'tryOlderVersion',
    'prepareGreeting', 'send OHAI', 'signalConnected', 'getNextSubscription', 'storeFileData', 'refillCredit',
    'signalProtocolError', 'reconnect',
  ])
})
