/**
 * Config keys in the reference's units (REFERENCE.md): `server/heartbeat`, `server/monitor`
 * and `client/heartbeat` in seconds, `server/timeout` in milliseconds, read alike by the CLI
 * settings, the relay and Server.configure; doubtful values warn with file:line.
 */
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { resolveClientSettings, resolveServerSettings } from '../../src/config/settings.js'
import { loadZplFile, parseZpl } from '../../src/config/zpl.js'
import { relayOptionsFromConfig } from '../../src/relay/relay.js'
import type { ConfigWarning } from '../../src/config/reader.js'
import { Server } from '../../src/server/server.js'

const zpl = (...lines: string[]) => parseZpl(lines.join('\n') + '\n', 'test.cfg')

describe('config units: as the reference reads them', () => {
  test('server/heartbeat and server/monitor in seconds, server/timeout in milliseconds', () => {
    const settings = resolveServerSettings(zpl('server', '    monitor = 1', '    heartbeat = 1', '    timeout = 60000'), {}, 'test.cfg')
    assert.equal(settings.options.heartbeat, 1000)
    assert.equal(settings.options.maxSilence, 60_000)
    assert.deepEqual(settings.warnings, [])
  })

  test('client/heartbeat in seconds; a fraction is ours (0.5 s)', () => {
    const read = (value: string) => resolveClientSettings(zpl('client', `    heartbeat = ${value}`, '    inbox = in', 'connect', '    endpoint = tcp://h:1'), {}, 'test.cfg')
    assert.equal(read('1').options.heartbeat, 1000)
    assert.equal(read('0.5').options.heartbeat, 500)
    assert.deepEqual(read('2').warnings, [])
  })

  test('an old config of ours (heartbeat = 1000) is read as the reference reads it, with a warning naming file and line', () => {
    const settings = resolveServerSettings(zpl('server', '    monitor = 1000', '    heartbeat = 1000'), {}, 'old.cfg')
    assert.equal(settings.options.heartbeat, 1_000_000)
    assert.deepEqual(
      settings.warnings.map(String),
      [
        'test.cfg:2: server/monitor = 1000 is read in seconds, as the reference FileMQ reads it (1000 s, about 17 minutes); if milliseconds were meant, write monitor = 1',
        'test.cfg:3: server/heartbeat = 1000 is read in seconds, as the reference FileMQ reads it (1000 s, about 17 minutes); if milliseconds were meant, write heartbeat = 1',
      ].map((line) => line.replace('test.cfg', 'old.cfg')),
    )
    const client = resolveClientSettings(zpl('client', '    heartbeat = 1000', '    inbox = in', 'connect', '    endpoint = tcp://h:1'), {}, 'client.cfg')
    assert.equal(client.options.heartbeat, 1_000_000)
    assert.match(String(client.warnings[0]), /^client\.cfg:2: client\/heartbeat = 1000 is read in seconds/)
  })

  test('a timeout that looks like seconds warns (read in milliseconds all the same)', () => {
    const settings = resolveServerSettings(zpl('server', '    timeout = 60'), {}, 'test.cfg')
    assert.equal(settings.options.maxSilence, 60)
    assert.match(String(settings.warnings[0]), /^test\.cfg:2: server\/timeout = 60 is read in milliseconds, .*write timeout = 60000$/)
  })

  test('bad values are errors with file:line and the unit', () => {
    assert.throws(() => resolveServerSettings(zpl('server', '    monitor = often'), {}, 'test.cfg'), /test\.cfg:2: server\/monitor must be a positive number of seconds/)
    assert.throws(() => resolveServerSettings(zpl('server', '    timeout = -1'), {}, 'test.cfg'), /test\.cfg:2: server\/timeout must be a positive number of milliseconds/)
    assert.throws(() => resolveServerSettings(zpl('server', '    verbose = loud'), {}, 'test.cfg'), /test\.cfg:2: server\/verbose must be 1 or 0/)
  })

  test('the relay reads the same keys in the same units, and warns alike', () => {
    const warnings: ConfigWarning[] = []
    const options = relayOptionsFromConfig(zpl('client', '    heartbeat = 2', 'server', '    heartbeat = 1000', '    timeout = 5000'), 'relay.cfg', warnings)
    assert.equal(options.client?.heartbeat, 2000)
    assert.equal(options.server?.heartbeat, 1_000_000)
    assert.equal(options.server?.maxSilence, 5000)
    assert.deepEqual(warnings.map((warning) => [warning.source, warning.line]), [['relay.cfg', 4]])
  })

  test('Server.configure applies the timings in the same units; explicit options win', async () => {
    const server = new Server({ watch: false })
    const explicit = new Server({ watch: false, heartbeat: 300 })
    try {
      const logs: string[] = []
      server.on('log', (level, text) => logs.push(`${level} ${text}`))
      await server.configure(zpl('server', '    heartbeat = 2', '    timeout = 7000'))
      assert.equal(server.options.heartbeat, 2000)
      assert.equal(server.options.maxSilence, 7000)
      await server.configure(zpl('server', '    heartbeat = 1000'))
      assert.equal(server.options.heartbeat, 1_000_000)
      assert.match(logs.join('\n'), /warn line 2: server\/heartbeat = 1000 is read in seconds/)

      await explicit.configure(zpl('server', '    heartbeat = 2', '    timeout = 7000'))
      assert.equal(explicit.options.heartbeat, 300)
      assert.equal(explicit.options.maxSilence, 7000)
    } finally {
      await server.close()
      await explicit.close()
    }
  })

  test('Server.configure applies server/rescan and server/poll (seconds), server/state and server/follow-outside, before the first publish', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const dir = await mkdtemp(join(tmpdir(), 'fmq-configure-'))
    const server = new Server()
    const explicit = new Server({ watch: false, rescan: 5000 })
    try {
      await server.configure(zpl('server', '    rescan = 600', '    poll = 0.5', `    state = ${join(dir, 'state')}`, '    follow-outside = 1', 'publish', `    location = ${dir}`))
      assert.deepEqual([server.options.rescan, server.options.poll, server.options.followOutside, server.options.stateDir], [600_000, 500, true, join(dir, 'state')])
      // The publisher is made anew with them (it has nothing published before the config's publish sections).
      const publisherOptions = (server.publisher as unknown as { options: { rescan?: number; poll?: number; followOutside?: boolean } }).options
      assert.deepEqual([publisherOptions.rescan, publisherOptions.poll, publisherOptions.followOutside], [600_000, 500, true])
      // Once publishing, another interval would not be applied: an error says so, rather than silence.
      await assert.rejects(server.configure(zpl('server', '    rescan = 60')), (error: Error) => error.name === 'ServerConfigError' && /publishes already/.test(error.message))

      await explicit.configure(zpl('server', '    rescan = 600'))
      assert.equal(explicit.options.rescan, 5000, 'explicit options win')
      await assert.rejects(explicit.configure(zpl('server', '    poll = -1'), { source: 'bad.cfg' }), /^SettingsError: bad\.cfg:2: server\/poll must be a positive number of seconds/)
    } finally {
      await server.close()
      await explicit.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('the server options are checked once, whichever way they come: bad values are InvalidServerOptionErrors naming the option', async () => {
    const { resolveServerOptions, InvalidServerOptionError } = await import('../../src/index.js')
    assert.throws(() => new Server({ heartbeat: 0 }), (error: Error) => error instanceof InvalidServerOptionError && error.option === 'heartbeat')
    assert.throws(() => resolveServerOptions({ chunkSize: 1.5 }), /chunkSize: must be a positive integer, got 1.5/)
    assert.throws(() => resolveServerOptions({ anonymous: 'yes' as unknown as boolean }), /anonymous: must be true or false/)
    assert.throws(() => resolveServerOptions({ curveClients: [] }), /curveClients: needs curve/)
    // The message names the option, never the key.
    assert.throws(() => resolveServerOptions({ curve: { publicKey: 'NOTAKEY-public', secretKey: 'NOTAKEY-secret' } }), (error: Error) => error instanceof InvalidServerOptionError && error.option === 'curve' && !error.message.includes('NOTAKEY'))
    const options = resolveServerOptions({ heartbeat: 500, exclude: ['*.tmp'] })
    assert.equal(options.expiry, 3)
    assert.ok(Object.isFrozen(options) && Object.isFrozen(options.exclude) && Object.isFrozen(options.accounts))
  })

  test('the sample configs in config/ are in the reference units and read without a warning', async () => {
    const folder = join(import.meta.dirname, '../../config')
    for (const name of (await readdir(folder)).filter((file) => file.endsWith('.cfg'))) {
      const root = await loadZplFile(join(folder, name))
      const warnings: ConfigWarning[] = []
      if (root.at('server') !== undefined || name.startsWith('server')) warnings.push(...resolveServerSettings(root, {}, name).warnings)
      if (root.at('client/inbox') !== undefined && root.at('bind') === undefined) warnings.push(...resolveClientSettings(root, {}, name).warnings)
      if (name === 'relay.cfg') relayOptionsFromConfig(root, name, warnings)
      assert.deepEqual(warnings.map(String), [], name)
      for (const path of ['server/heartbeat', 'client/heartbeat', 'server/monitor']) {
        const value = root.get(path)
        if (value !== undefined) assert.ok(Number(value) <= 10, `${name}: ${path} = ${value} should be seconds`)
      }
    }
  })
})

describe('config keys: strict and helpful', () => {
  test('an unknown key warns with file:line and the nearest known key', () => {
    const settings = resolveServerSettings(zpl('server', '    monitr = 1', '    heartbeat = 1', 'publish', '    location = ./send', '    virtaul = /', 'security', '    anonymos = 1'), {}, 'test.cfg')
    assert.deepEqual(settings.warnings.map(String), [
      'test.cfg:2: unknown key server/monitr (did you mean server/monitor?)',
      'test.cfg:6: unknown key publish/virtaul (did you mean publish/virtual?)',
      'test.cfg:8: unknown key security/anonymos (did you mean security/anonymous?)',
    ])
    const client = resolveClientSettings(zpl('client', '    inbox = in', '    heartbeet = 1', 'connect', '    endpoint = tcp://h:1', 'frobnicate = 3'), {}, 'client.cfg')
    assert.deepEqual(client.warnings.map(String), ['client.cfg:3: unknown key client/heartbeet (did you mean client/heartbeat?)', 'client.cfg:6: unknown key frobnicate'])
  })

  test('a key under the wrong section names where it belongs', () => {
    const settings = resolveServerSettings(zpl('server', '    endpoint = tcp://*:5670'), {}, 'test.cfg')
    assert.deepEqual(settings.warnings.map(String), ['test.cfg:2: unknown key server/endpoint (did you mean bind/endpoint?)'])
  })

  test('every key of the sample configs is known', async () => {
    const folder = join(import.meta.dirname, '../../config')
    for (const name of (await readdir(folder)).filter((file) => file.endsWith('.cfg'))) {
      const warnings: ConfigWarning[] = []
      relayOptionsFromConfig(await loadZplFile(join(folder, name)), name, warnings)
      assert.deepEqual(warnings.map(String), [], name)
    }
  })

  test('an account without a password or hash is an error with file:line; one outside security/plain too', async () => {
    const { Accounts } = await import('../../src/security/accounts.js')
    assert.throws(() => Accounts.fromConfig(zpl('security', '    plain = 1', '        account', '            login = x', '            group = g'), 'test.cfg'), /^AccountConfigError: test\.cfg:3: account 'x' has no password or hash/)
    assert.throws(
      () => resolveServerSettings(zpl('security', '    plain = 1', '    account', '        login = x', '        password = y'), {}, 'test.cfg'),
      /^SettingsError: test\.cfg:3: security\/account: an account section belongs under security\/plain/,
    )
    const server = new Server({ watch: false })
    try {
      await assert.rejects(server.configure(zpl('security', '    plain = 1', '        account', '            login = x')), /line 3: account 'x' has no password or hash/)
    } finally {
      await server.close()
    }
  })
})

describe('config: the relay reads as the client and server do', () => {
  test('endpoints are checked with file:line; a login without a password is an error', () => {
    assert.throws(() => relayOptionsFromConfig(zpl('connect', '    endpoint = tcp://nonsense'), 'relay.cfg'), /^SettingsError: relay\.cfg:2: bad endpoint "tcp:\/\/nonsense"/)
    assert.throws(() => relayOptionsFromConfig(zpl('client', '    login = reader'), 'relay.cfg'), /^SettingsError: relay\.cfg:2: no password for login "reader"/)
    assert.deepEqual(relayOptionsFromConfig(zpl('client', '    login = reader'), 'relay.cfg', [], true).client?.login, undefined)
    const options = relayOptionsFromConfig(zpl('security', '    plain', '        login = reader', '        password = secret', 'connect', '    endpoint = tcp://h:1'), 'relay.cfg')
    assert.deepEqual([options.client?.login, options.client?.password, options.upstream], ['reader', 'secret', ['tcp://h:1']])
  })
})
