/** `--http` values: a bare port is loopback only; HOST:PORT and [IPv6]:PORT as given; anything else a clear error. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { InvalidHttpAddressError, parseHttpAddress } from '../../src/index.js'

describe('parseHttpAddress', () => {
  test('a bare port binds 127.0.0.1 only', () => {
    assert.deepEqual(parseHttpAddress('8080'), { host: '127.0.0.1', port: 8080 })
    assert.deepEqual(parseHttpAddress('0'), { host: '127.0.0.1', port: 0 })
  })

  test('HOST:PORT and [IPv6]:PORT bind where they say', () => {
    assert.deepEqual(parseHttpAddress('0.0.0.0:9100'), { host: '0.0.0.0', port: 9100 })
    assert.deepEqual(parseHttpAddress('localhost:1'), { host: 'localhost', port: 1 })
    assert.deepEqual(parseHttpAddress('[::1]:8080'), { host: '::1', port: 8080 })
  })

  test('anything else is an InvalidHttpAddressError naming the value', () => {
    for (const bad of ['', 'nope', '65536', '1.2.3.4:', ':80', '::1:80', 'host:port', '80 80', '-1']) {
      assert.throws(() => parseHttpAddress(bad), (error: unknown) => error instanceof InvalidHttpAddressError && error.message.includes(`'${bad}'`), bad)
    }
  })
})
