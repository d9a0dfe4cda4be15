import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import {
  ANONYMOUS,
  MalformedCredentialsError,
  PLAIN,
  encodePlainResponse,
  parsePlainResponse,
  type CredentialsProblem,
} from '../../src/security/index.js';

/** Parses `bytes`, expecting a MalformedCredentialsError, and returns it. */
function malformed(bytes: Uint8Array): MalformedCredentialsError {
  try {
    parsePlainResponse(bytes);
  } catch (err) {
    assert.ok(err instanceof MalformedCredentialsError, `expected MalformedCredentialsError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_FMQ_BAD_CREDENTIALS');
    assert.equal(err.name, 'MalformedCredentialsError');
    return err;
  }
  assert.fail('expected parsePlainResponse to throw');
}

function expectProblem(bytes: Uint8Array, problem: CredentialsProblem): void {
  assert.equal(malformed(bytes).problem, problem);
}

test('mechanism names are the SASL ones', () => {
  assert.equal(ANONYMOUS, 'ANONYMOUS');
  assert.equal(PLAIN, 'PLAIN');
});

test('parses a PLAIN response as the reference client sends it (empty authzid)', () => {
  assert.deepEqual(parsePlainResponse(Buffer.from('\0reader\0secret')), {
    authzid: '',
    login: 'reader',
    password: 'secret',
  });
});

test('parses a PLAIN response with an authorization identity', () => {
  assert.deepEqual(parsePlainResponse(Buffer.from('admin\0reader\0secret')), {
    authzid: 'admin',
    login: 'reader',
    password: 'secret',
  });
});

test('parses UTF-8 parts and keeps a leading byte-order mark', () => {
  assert.deepEqual(parsePlainResponse(Buffer.from('\0jürgen\0\uFEFFpässwort 🔑')), {
    authzid: '',
    login: 'jürgen',
    password: '\uFEFFpässwort 🔑',
  });
});

test('accepts a plain Uint8Array as well as a Buffer', () => {
  const bytes = new Uint8Array([0, 0x61, 0, 0x62]);
  assert.deepEqual(parsePlainResponse(bytes), { authzid: '', login: 'a', password: 'b' });
});

test('refuses a response without the two NUL separators', () => {
  expectProblem(Buffer.from('readersecret'), 'missing-nul');
  expectProblem(Buffer.from('\0readersecret'), 'missing-nul');
  expectProblem(Buffer.alloc(0), 'missing-nul');
});

test('refuses a NUL inside a part', () => {
  expectProblem(Buffer.from('\0reader\0sec\0ret'), 'extra-nul');
  expectProblem(Buffer.from('\0\0\0'), 'extra-nul');
});

test('refuses an empty login and an empty password', () => {
  expectProblem(Buffer.from('\0\0secret'), 'empty-login');
  expectProblem(Buffer.from('admin\0\0secret'), 'empty-login');
  expectProblem(Buffer.from('\0reader\0'), 'empty-password');
});

test('refuses invalid UTF-8 in any part', () => {
  expectProblem(Buffer.from([0, 0xc3, 0x28, 0, 0x70]), 'bad-utf8'); // broken two-octet sequence
  expectProblem(Buffer.from([0, 0x61, 0, 0xff]), 'bad-utf8');
  expectProblem(Buffer.from([0xed, 0xa0, 0x80, 0, 0x61, 0, 0x62]), 'bad-utf8'); // encoded surrogate
  expectProblem(Buffer.from([0, 0x61, 0, 0xe2, 0x82]), 'bad-utf8'); // truncated sequence
});

test('refuses a part over 255 octets and an oversize response', () => {
  const long = 'x'.repeat(256);
  expectProblem(Buffer.from(`\0${long}\0secret`), 'too-long');
  expectProblem(Buffer.from(`\0reader\0${long}`), 'too-long');
  expectProblem(Buffer.from(`${long}\0reader\0secret`), 'too-long');
  expectProblem(Buffer.alloc(10_000, 0x61), 'too-long');
  const max = 'y'.repeat(255);
  assert.equal(parsePlainResponse(Buffer.from(`${max}\0${max}\0${max}`)).password, max);
});

test('refuses a value that is not bytes', () => {
  expectProblem('\0reader\0secret' as unknown as Uint8Array, 'not-bytes');
  expectProblem(null as unknown as Uint8Array, 'not-bytes');
});

test('error messages never contain the password', () => {
  const secret = 'SuperSecret';
  for (const bytes of [
    Buffer.from(`\0reader\0${secret}\0`),
    Buffer.from(`\0reader\0${secret}${'z'.repeat(255)}`),
    Buffer.concat([Buffer.from(`\0reader\0${secret}`), Buffer.from([0xff])]),
  ]) {
    assert.ok(!malformed(bytes).message.includes(secret));
  }
});

test('property: arbitrary bytes parse or throw MalformedCredentialsError, nothing else', () => {
  const arbitraryResponse = fc.oneof(
    fc.uint8Array({ maxLength: 1000 }),
    // Biased towards the interesting shape: few NULs between short parts.
    fc
      .array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array([0]))), { maxLength: 6 })
      .map((chunks) => Buffer.concat(chunks)),
  );
  fc.assert(
    fc.property(arbitraryResponse, (bytes) => {
      try {
        const parsed = parsePlainResponse(bytes);
        assert.ok(parsed.login.length > 0 && parsed.password.length > 0);
      } catch (err) {
        if (!(err instanceof MalformedCredentialsError)) throw err;
      }
    }),
    { numRuns: 2000 },
  );
});

test('encodes as the reference does: NUL login NUL password', () => {
  assert.deepEqual(encodePlainResponse('reader', 'secret'), Buffer.from('\0reader\0secret'));
  assert.deepEqual(encodePlainResponse('reader', 'secret', 'admin'), Buffer.from('admin\0reader\0secret'));
});

test('encoding refuses credentials PLAIN cannot carry', () => {
  const problem = (fn: () => unknown): CredentialsProblem | undefined => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof MalformedCredentialsError);
      return err.problem;
    }
    return undefined;
  };
  assert.equal(problem(() => encodePlainResponse('', 'secret')), 'empty-login');
  assert.equal(problem(() => encodePlainResponse('reader', '')), 'empty-password');
  assert.equal(problem(() => encodePlainResponse('rea\0der', 'secret')), 'extra-nul');
  assert.equal(problem(() => encodePlainResponse('reader', 'x'.repeat(256))), 'too-long');
  assert.equal(problem(() => encodePlainResponse('reader', 'a\uD800')), 'bad-utf8');
});

test('property: encode then parse gives back the credentials', () => {
  const part = (minLength: number) =>
    fc
      .string({ unit: 'grapheme', minLength, maxLength: 60 })
      .filter((text) => !text.includes('\0') && Buffer.byteLength(text) <= 255);
  fc.assert(
    fc.property(part(0), part(1), part(1), (authzid, login, password) => {
      const bytes = encodePlainResponse(login, password, authzid);
      assert.deepEqual(parsePlainResponse(bytes), { authzid, login, password });
    }),
  );
});
