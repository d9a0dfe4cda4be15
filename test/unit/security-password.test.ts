import { test } from 'node:test';
import assert from 'node:assert/strict';

import { hashPassword, isPasswordHash, verifyPassword } from '../../src/security/index.js';
import { parsePasswordHash } from '../../src/security/password.js';

// One hash shared by the tests below: each argon2id pass costs 64 MiB and tens of ms.
const hashed = hashPassword('correct horse battery staple');

test('hashPassword writes a libsodium argon2id string at the INTERACTIVE limits', async () => {
  const hash = await hashed;
  assert.match(hash, /^\$argon2id\$v=19\$m=65536,t=2,p=1\$/);
  assert.ok(isPasswordHash(hash));
  assert.deepEqual(parsePasswordHash(hash), { memoryKiB: 65536, passes: 2, lanes: 1 });
  assert.ok(!hash.includes('correct horse'));
});

test('hashPassword salts: the same password twice gives two different strings', async () => {
  const [a, b] = await Promise.all([hashPassword('same'), hashPassword('same')]);
  assert.notEqual(a, b);
});

test('verifyPassword accepts the right password', async () => {
  assert.equal(await verifyPassword(await hashed, 'correct horse battery staple'), true);
});

test('verifyPassword refuses a wrong password', async () => {
  const hash = await hashed;
  assert.equal(await verifyPassword(hash, 'correct horse battery stapler'), false);
  assert.equal(await verifyPassword(hash, ''), false);
});

test('verifyPassword handles non-ASCII passwords by their UTF-8', async () => {
  const hash = await hashPassword('pässwörd ✓ 🔑');
  assert.equal(await verifyPassword(hash, 'pässwörd ✓ 🔑'), true);
  assert.equal(await verifyPassword(hash, 'passwort ✓ 🔑'), false);
});

test('verifyPassword resolves false, never throws, for malformed hashes and bad arguments', async () => {
  const hash = await hashed;
  const malformed = [
    '',
    'hunter2',
    '$argon2id$',
    hash.slice(0, -10),
    hash.replace('argon2id', 'argon2x'),
    hash.replace('v=19', 'v=16'),
    `${hash}\0trailing`,
    hash + 'A'.repeat(200),
    '$argon2id$v=19$m=65536,t=2,p=1$cGxhY2Vob2xkZXJzYWx0$cGxhY2Vob2xkZXItaGFzaC1yZXBsYWNlLW1l',
  ];
  for (const bad of malformed) {
    assert.equal(await verifyPassword(bad, 'correct horse battery staple'), false, JSON.stringify(bad));
  }
  assert.equal(await verifyPassword(hash, 'lone \uD800 surrogate'), false);
  assert.equal(await verifyPassword(undefined as unknown as string, 'x'), false);
  assert.equal(await verifyPassword(hash, 42 as unknown as string), false);
});

test('isPasswordHash tells argon2id strings from plain text', async () => {
  assert.equal(isPasswordHash(await hashed), true);
  assert.equal(isPasswordHash('reader'), false);
  assert.equal(isPasswordHash('$argon2i$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA'), false);
  assert.equal(isPasswordHash(` ${await hashed}`), false);
});

test('hashPassword refuses a string that is not well-formed Unicode', async () => {
  await assert.rejects(hashPassword('a\uDC00b'), TypeError);
});
