import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import {
  CLIENT_DEFAULTS,
  checkEndpoint,
  parseMount,
  resolveClientSettings,
  resolveServerSettings,
  SERVER_DEFAULTS,
  SettingsError,
} from '../../src/config/settings.js'
import { parseZpl } from '../../src/config/zpl.js'

const zpl = (...lines: string[]) => parseZpl(lines.join('\n') + '\n', 'test.cfg')

describe('settings: mounts and endpoints', () => {
  test('a mount is DIR, DIR=/VPATH or DIR:/VPATH', () => {
    assert.deepEqual(parseMount('./photos'), { location: './photos', virtualPath: '/' })
    assert.deepEqual(parseMount('./photos=/photos'), { location: './photos', virtualPath: '/photos' })
    assert.deepEqual(parseMount('./photos:/pics/2024'), { location: './photos', virtualPath: '/pics/2024' })
    assert.throws(() => parseMount('./photos=pics'), SettingsError)
  })

  test('endpoints are checked for their form', () => {
    assert.equal(checkEndpoint('tcp://*:5670', 'bind'), 'tcp://*:5670')
    assert.equal(checkEndpoint('tcp://127.0.0.1:*', 'bind'), 'tcp://127.0.0.1:*')
    assert.equal(checkEndpoint('ipc:///tmp/fmq', 'connect'), 'ipc:///tmp/fmq')
    assert.throws(() => checkEndpoint('tcp://nonsense', 'connect'), /bad endpoint "tcp:\/\/nonsense"/)
    assert.throws(() => checkEndpoint('tcp://host:99999', 'bind'), /not a port number/)
    assert.throws(() => checkEndpoint('tcp://*:5670', 'connect'), /cannot connect to \*/)
    assert.throws(() => checkEndpoint('udp://host:1', 'connect'), /unknown transport/)
    assert.throws(() => checkEndpoint('localhost:5670', 'connect'), /expected tcp/)
  })
})

describe('settings: fmq server layers defaults < config < flags', () => {
  test('defaults alone: bind to the registered port, publish nothing', () => {
    const settings = resolveServerSettings(undefined, {})
    assert.deepEqual(settings.bind, SERVER_DEFAULTS.bind)
    assert.deepEqual(settings.publish, [])
    assert.deepEqual([settings.options.anonymous, settings.options.plain, settings.options.accounts], [undefined, undefined, undefined], 'no security section: the defaults of the server')
  })

  test('the config sets binds, mounts, heartbeat, timeout, security and echo', () => {
    const config = zpl(
      'server',
      '    heartbeat = 0.25',
      '    timeout = 3000',
      'publish',
      '    location = ./send',
      '    virtual = /',
      'publish',
      '    location = ./logs',
      '    virtual = /logs',
      'bind',
      '    endpoint = tcp://*:6000',
      'security',
      '    echo = "hello"',
      '    anonymous = 0',
      '    plain = 1',
    )
    const settings = resolveServerSettings(config, {}, 'test.cfg')
    assert.deepEqual(settings.bind, ['tcp://*:6000'])
    assert.deepEqual(settings.publish, [
      { location: './send', virtualPath: '/' },
      { location: './logs', virtualPath: '/logs' },
    ])
    assert.equal(settings.options.heartbeat, 250)
    assert.equal(settings.options.maxSilence, 3000)
    assert.equal(settings.echo, 'hello')
    assert.deepEqual([settings.options.anonymous, settings.options.plain, settings.options.accounts], [false, true, []])
  })

  test('flags replace the config: --bind, --publish, --state, --anonymous', () => {
    const config = zpl('server', '    state = ./cfgstate', 'publish', '    location = ./send', 'bind', '    endpoint = tcp://*:6000', 'security', '    anonymous = 0', '    plain = 1')
    const settings = resolveServerSettings(config, { bind: ['tcp://127.0.0.1:*'], publish: ['./x=/x'], state: './flagstate', anonymous: true })
    assert.deepEqual(settings.bind, ['tcp://127.0.0.1:*'])
    assert.deepEqual(settings.publish, [{ location: './x', virtualPath: '/x' }])
    assert.equal(settings.options.stateDir, './flagstate')
    assert.equal(settings.options.anonymous, true)
    assert.equal(settings.options.plain, true)
    assert.equal(resolveServerSettings(config, {}).options.stateDir, './cfgstate')
  })

  test('CURVE client keys: security/curve/clients or --client-keys; client/curve/keys or --curve-keys', () => {
    const config = zpl('security', '    curve = 1', '        keys = ./keys/server', '        clients = ./keys/clients')
    assert.equal(resolveServerSettings(config, {}).clientKeys, './keys/clients')
    assert.equal(resolveServerSettings(config, { clientKeys: './other' }).clientKeys, './other')
    assert.equal(resolveServerSettings(zpl('security', '    curve = 0', '        keys = ./k', '        clients = ./c'), {}).clientKeys, undefined)
    const client = zpl('client', '    inbox = ./in', '    curve', '        server-key = ./keys/server', '        keys = ./keys/alice', 'connect', '    endpoint = tcp://h:1')
    assert.equal(resolveClientSettings(client, {}).curveKeys, './keys/alice')
    assert.equal(resolveClientSettings(client, { curveKeys: './keys/bob' }).curveKeys, './keys/bob')
  })

  test('links leaving a mount: not followed by default; server/follow-outside or --follow-outside turns it on', () => {
    assert.equal(resolveServerSettings(undefined, {}).options.followOutside, undefined)
    const config = zpl('server', '    follow-outside = 1')
    assert.equal(resolveServerSettings(config, {}).options.followOutside, true)
    assert.equal(resolveServerSettings(config, { followOutside: false }).options.followOutside, false)
    assert.equal(resolveServerSettings(undefined, { followOutside: true }).options.followOutside, true)
    assert.throws(() => resolveServerSettings(zpl('server', '    follow-outside = sometimes'), {}, 'test.cfg'), /test\.cfg:2: server\/follow-outside must be 1 or 0/)
  })

  test('rescans: server/rescan in seconds (as the reference reads its times), --rescan wins, a bad value names the line', () => {
    assert.equal(resolveServerSettings(undefined, {}).options.rescan, undefined)
    const config = zpl('server', '    rescan = 600')
    assert.equal(resolveServerSettings(config, {}).options.rescan, 600_000)
    assert.equal(resolveServerSettings(config, { rescan: 2.5 }).options.rescan, 2500)
    assert.throws(() => resolveServerSettings(zpl('server', '    rescan = 0'), {}), /server\/rescan must be a positive number of seconds, got "0"/)
    assert.equal(resolveServerSettings(zpl('server', '    poll = 5'), {}).options.poll, 5000)
    assert.equal(resolveServerSettings(undefined, { poll: 0.5 }).options.poll, 500)
  })

  test('config errors point at the file and line', () => {
    assert.throws(() => resolveServerSettings(zpl('server', '    heartbeat = soon'), {}, 'test.cfg'), /^SettingsError: test\.cfg:2: server\/heartbeat must be a positive number of seconds/)
    assert.throws(() => resolveServerSettings(zpl('bind', '    endpoint = tcp://nonsense'), {}, 'test.cfg'), (error: Error) => error instanceof SettingsError && error.line === 2)
    assert.throws(() => resolveServerSettings(zpl('publish', '    virtual = /x'), {}, 'test.cfg'), /test\.cfg:1: publish needs a location/)
  })
})

describe('settings: fmq client layers defaults < config < flags', () => {
  const config = zpl(
    'client',
    '    heartbeat = 0.5',
    '    inbox = ./recv',
    '    resync = 0',
    'connect',
    '    endpoint = tcp://127.0.0.1:5670',
    'subscribe',
    '    path = /',
    'subscribe',
    '    path = /logs',
    'security',
    '    plain',
    '        login = reader',
    '        password = reader',
  )

  test('defaults: subscribe to /, no resync, 10 s connect timeout', () => {
    const settings = resolveClientSettings(undefined, { connect: ['tcp://127.0.0.1:5670'], inbox: 'in' })
    assert.deepEqual(settings.subscribe, CLIENT_DEFAULTS.subscribe)
    assert.equal(settings.connectTimeout, 10_000)
    assert.equal(settings.options.resync, false)
    assert.equal(settings.options.mirror, false)
    assert.equal(settings.options.login, undefined)
  })

  test('the config (config/client.cfg keys) sets inbox, servers, paths, heartbeat and credentials', () => {
    const settings = resolveClientSettings(config, {}, 'test.cfg')
    assert.equal(settings.inbox, './recv')
    assert.deepEqual(settings.connect, ['tcp://127.0.0.1:5670'])
    assert.deepEqual(settings.subscribe, ['/', '/logs'])
    assert.equal(settings.options.heartbeat, 500)
    assert.equal(settings.options.login, 'reader')
    assert.equal(settings.options.password, 'reader')
  })

  test('flags win, --mirror implies --resync, a new login does not take the config password', () => {
    const settings = resolveClientSettings(config, { inbox: './other', connect: ['tcp://h:1'], subscribe: ['/x'], mirror: true, login: 'reader', password: 'secret' })
    assert.equal(settings.inbox, './other')
    assert.deepEqual(settings.connect, ['tcp://h:1'])
    assert.deepEqual(settings.subscribe, ['/x'])
    assert.equal(settings.options.resync, true)
    assert.equal(settings.options.mirror, true)
    assert.equal(settings.options.password, 'secret')
    assert.throws(() => resolveClientSettings(config, { login: 'admin' }), /no password for login "admin"/)
  })

  test('missing inbox, missing server, bad values are SettingsErrors', () => {
    assert.throws(() => resolveClientSettings(undefined, { connect: ['tcp://h:1'] }), /no inbox/)
    assert.throws(() => resolveClientSettings(undefined, { inbox: 'in' }), /no server/)
    assert.throws(() => resolveClientSettings(undefined, { inbox: 'in', connect: ['tcp://nonsense'] }), /bad endpoint/)
    assert.throws(() => resolveClientSettings(undefined, { inbox: 'in', connect: ['tcp://h:1'], connectTimeout: Number.NaN }), /connect-timeout/)
    assert.throws(() => resolveClientSettings(zpl('client', '    inbox = x', '    resync = maybe', 'connect', '    endpoint = tcp://h:1'), {}, 'test.cfg'), /test\.cfg:3: client\/resync must be 1 or 0/)
  })
})
