/**
 * CHEEZBURGER file headers (src/protocol/extensions.ts): well-formed values are read, anything
 * else is left out (undefined) rather than refused, since a header only adds checks.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { HEADER, parseFileHeaders } from '../../src/protocol/extensions.js'

const SHA1 = 'a9993e364706816aba3e25717850c26c9cd0d89d'

const parse = (entries: [string, string][]) => parseFileHeaders(new Map(entries))

describe('protocol-file-headers: parseFileHeaders', () => {
  test('no headers: nothing announced', () => {
    assert.deepEqual(parse([]), { size: undefined, mtimeMs: undefined, mode: undefined, sha1: undefined, xxh128: undefined })
  })

  test('reads all four headers as a server sends them', () => {
    assert.deepEqual(
      parse([
        [HEADER.SIZE, '1048576'],
        [HEADER.MTIME, '1700000000123'],
        [HEADER.MODE, '644'],
        [HEADER.SHA1, SHA1],
      ]),
      { size: 1048576, mtimeMs: 1700000000123, mode: 0o644, sha1: SHA1, xxh128: undefined },
    )
  })

  test('size and mtime are decimal, up to 15 digits', () => {
    assert.equal(parse([[HEADER.SIZE, '0']]).size, 0)
    assert.equal(parse([[HEADER.SIZE, '007']]).size, 7)
    assert.equal(parse([[HEADER.SIZE, '999999999999999']]).size, 999999999999999)
    assert.equal(parse([[HEADER.MTIME, '0']]).mtimeMs, 0)
  })

  test('mode is octal, with or without a leading 0 or 0o, file-type bits kept', () => {
    assert.equal(parse([[HEADER.MODE, '0644']]).mode, 0o644)
    assert.equal(parse([[HEADER.MODE, '0o755']]).mode, 0o755)
    assert.equal(parse([[HEADER.MODE, '100644']]).mode, 0o100644)
    assert.equal(parse([[HEADER.MODE, '7777777']]).mode, 0o7777777)
  })

  test('sha1 is taken in either case and given in lower case', () => {
    assert.equal(parse([[HEADER.SHA1, SHA1.toUpperCase()]]).sha1, SHA1)
  })

  const malformed: [string, string][] = [
    [HEADER.SIZE, ''],
    [HEADER.SIZE, '-1'],
    [HEADER.SIZE, '+1'],
    [HEADER.SIZE, '1.5'],
    [HEADER.SIZE, '1e6'],
    [HEADER.SIZE, '0x10'],
    [HEADER.SIZE, ' 12'],
    [HEADER.SIZE, '12 '],
    [HEADER.SIZE, '1234567890123456'], // 16 digits: past what a double holds exactly
    [HEADER.MTIME, 'yesterday'],
    [HEADER.MTIME, '-5'],
    [HEADER.MODE, ''],
    [HEADER.MODE, '8'],
    [HEADER.MODE, '0o'],
    [HEADER.MODE, 'rw-r--r--'],
    [HEADER.MODE, '12345670'], // 8 digits
    [HEADER.MODE, '0x1ff'],
    [HEADER.SHA1, ''],
    [HEADER.SHA1, SHA1.slice(1)],
    [HEADER.SHA1, SHA1 + '0'],
    [HEADER.SHA1, 'g' + SHA1.slice(1)],
    [HEADER.SHA1, `${SHA1}@1048576`],
  ]
  for (const [name, value] of malformed) {
    test(`malformed ${name} ${JSON.stringify(value)} is left out`, () => {
      const headers = parse([[name, value]]) as unknown as Record<string, unknown>
      const field = name === HEADER.MTIME ? 'mtimeMs' : name
      assert.equal(headers[field], undefined)
    })
  }

  test('a malformed header leaves the others as they are', () => {
    assert.deepEqual(
      parse([
        [HEADER.SIZE, 'ten'],
        [HEADER.MODE, '644'],
        [HEADER.SHA1, SHA1],
      ]),
      { size: undefined, mtimeMs: undefined, mode: 0o644, sha1: SHA1, xxh128: undefined },
    )
  })

  test('header names are exact: other names and other cases are not read', () => {
    assert.deepEqual(
      parse([
        ['SIZE', '5'],
        ['x-size', '5'],
      ]),
      { size: undefined, mtimeMs: undefined, mode: undefined, sha1: undefined, xxh128: undefined },
    )
  })
})
