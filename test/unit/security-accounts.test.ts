import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { loadZplFile, parseZpl } from '../../src/config/zpl.js';
import {
  AccessPolicy,
  AccountConfigError,
  Accounts,
  PLAIN,
  hashPassword,
} from '../../src/security/index.js';

const samplePlainConfig = fileURLToPath(new URL('../../config/server-plain.cfg', import.meta.url));

const adminHash = hashPassword('s3cret admin');

/** A server config with one clear-text and one hashed account. */
async function mixedConfig(): Promise<string> {
  return [
    'security',
    '    anonymous = 0',
    '    plain = 1',
    '        account',
    '            login = reader',
    '            password = reader',
    '            group = guest',
    '        account',
    '            login = admin',
    `            hash = "${await adminHash}"`,
    '            group = admin',
    '        account',
    '            login = legacy',
    `            password = "${await adminHash}"`,
    '',
  ].join('\n');
}

/** Builds accounts from `text`, expecting an AccountConfigError, and returns it. */
function configError(text: string, source?: string): AccountConfigError {
  try {
    Accounts.fromConfig(parseZpl(text), source);
  } catch (err) {
    assert.ok(err instanceof AccountConfigError, `expected AccountConfigError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_FMQ_ACCOUNT_CONFIG');
    assert.equal(err.name, 'AccountConfigError');
    return err;
  }
  assert.fail('expected Accounts.fromConfig to throw');
}

const account = (...lines: string[]): string =>
  ['security', '    plain = 1', '        account', ...lines.map((line) => `            ${line}`), ''].join('\n');

test('reads clear-text and hashed accounts from a config', async () => {
  const accounts = Accounts.fromConfig(parseZpl(await mixedConfig()));
  assert.equal(accounts.size, 3);
  assert.deepEqual(accounts.list(), [
    { login: 'reader', group: 'guest', line: 4, kind: 'password' },
    { login: 'admin', group: 'admin', line: 8, kind: 'hash' },
    { login: 'legacy', group: '', line: 12, kind: 'hash' },
  ]);
});

test('authenticates a clear-text account and a hashed one', async () => {
  const accounts = Accounts.fromConfig(parseZpl(await mixedConfig()));
  assert.deepEqual(await accounts.authenticate('reader', 'reader'), { login: 'reader', group: 'guest' });
  assert.deepEqual(await accounts.authenticate('admin', 's3cret admin'), { login: 'admin', group: 'admin' });
  // A `password` that is an argon2id string is a hash, not a password to type in.
  assert.deepEqual(await accounts.authenticate('legacy', 's3cret admin'), { login: 'legacy', group: '' });
  assert.equal(await accounts.authenticate('legacy', await adminHash), undefined);
});

test('a wrong password or an unknown login yields undefined', async () => {
  const accounts = Accounts.fromConfig(parseZpl(await mixedConfig()));
  assert.equal(await accounts.authenticate('reader', 'Reader'), undefined);
  assert.equal(await accounts.authenticate('reader', 'reader '), undefined);
  assert.equal(await accounts.authenticate('reader', ''), undefined);
  assert.equal(await accounts.authenticate('admin', 'reader'), undefined);
  assert.equal(await accounts.authenticate('nobody', 'reader'), undefined);
  assert.equal(await accounts.authenticate('', ''), undefined);
  assert.equal(await accounts.authenticate(undefined as unknown as string, 'reader'), undefined);
  assert.equal(await accounts.authenticate('reader', null as unknown as string), undefined);
});

test('clear-text-only accounts authenticate without any argon2id work', async () => {
  const accounts = new Accounts([
    { login: 'a', password: 'alpha' },
    { login: 'b', password: 'beta', group: 'g' },
  ]);
  assert.deepEqual(await accounts.authenticate('b', 'beta'), { login: 'b', group: 'g' });
  assert.equal(await accounts.authenticate('a', 'beta'), undefined);
  assert.equal(await accounts.authenticate('c', 'alpha'), undefined);
});

test('hashes at non-default costs still verify, and unknown logins still fail', async () => {
  // A hash with different costs, as an older tool might have written: the dummy used for
  // unknown logins is made to match it.
  const accounts = new Accounts([
    {
      login: 'old',
      hash: '$argon2id$v=19$m=8192,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$YQ2V2xrcNVJ3o+xAGsU+qQ4u+F6mGrqAk6kT5cBJ6NM',
    },
  ]);
  assert.equal(await accounts.authenticate('old', 'whatever'), undefined);
  assert.equal(await accounts.authenticate('nobody', 'whatever'), undefined);
});

test('the sample config/server-plain.cfg loads, and reader/reader logs in', async () => {
  const config = await loadZplFile(samplePlainConfig);
  const accounts = Accounts.fromConfig(config, samplePlainConfig);
  assert.deepEqual(await accounts.authenticate('reader', 'reader'), { login: 'reader', group: 'guest' });
  // The sample's admin hash is a placeholder that matches nothing.
  assert.equal(await accounts.authenticate('admin', 'admin'), undefined);
  assert.deepEqual(AccessPolicy.fromConfig(config), new AccessPolicy({ anonymous: false, plain: true }));
});

test('an account without a login is refused with its line', () => {
  const err = configError(account('password = x'));
  assert.equal(err.line, 3);
  assert.match(err.message, /^line 3: account has no login$/);
});

test('an account without a password or hash is refused with its line', () => {
  const err = configError(account('login = reader', 'group = guest'), 'server.cfg');
  assert.equal(err.line, 3);
  assert.equal(err.source, 'server.cfg');
  assert.equal(err.message, "server.cfg:3: account 'reader' has no password or hash");
});

test('an empty password is refused with the line of the password', () => {
  const err = configError(account('login = reader', 'password = ""'));
  assert.equal(err.line, 5);
});

test('a duplicate login is refused with the line of the second one', () => {
  const text = [
    'security',
    '    plain',
    '        account',
    '            login = reader',
    '            password = one',
    '        account',
    '            login = reader',
    '            password = two',
  ].join('\n');
  const err = configError(text);
  assert.equal(err.line, 7);
  assert.match(err.message, /already defined on line 3/);
  assert.ok(!err.message.includes('one') && !err.message.includes('two'));
});

test('both a password and a hash, a bad hash, or a repeated property are refused', async () => {
  assert.equal(configError(account('login = a', 'password = x', `hash = "${await adminHash}"`)).line, 3);
  const bad = configError(account('login = a', 'hash = "$argon2id$nope"'));
  assert.equal(bad.line, 5);
  assert.match(bad.message, /not an argon2id string/);
  assert.equal(configError(account('login = a', 'password = x', 'password = y')).line, 6);
});

test('a login or password PLAIN cannot carry is refused', () => {
  assert.match(configError(account(`login = ${'l'.repeat(256)}`, 'password = x')).message, /255 octets/);
  const err = configError(account('login = a', `password = ${'p'.repeat(256)}`));
  assert.equal(err.line, 5);
  assert.ok(!err.message.includes('ppp'));
});

test('accounts built in code are checked too', () => {
  assert.throws(() => new Accounts([{ login: 'a', password: 'x' }, { login: 'a', password: 'y' }]), AccountConfigError);
  assert.throws(() => new Accounts([{ login: '', password: 'x' }]), AccountConfigError);
  assert.throws(() => new Accounts([{ login: 'a' }]), (err: unknown) => {
    assert.ok(err instanceof AccountConfigError);
    assert.equal(err.line, 0);
    assert.equal(err.message, "account 'a' has no password or hash");
    return true;
  });
});

test('no config error ever contains the password', () => {
  const secret = 'Tr0ub4dor&3';
  for (const text of [
    account('login = a', `password = ${secret}`, `password = ${secret}`),
    account('login = a', `password = ${secret}`, 'hash = "$argon2id$bad"'),
    account(`password = ${secret}`),
  ]) {
    assert.ok(!configError(text).message.includes(secret));
  }
});

test('policy defaults: no accounts → anonymous on, PLAIN off', () => {
  const policy = AccessPolicy.fromConfig(parseZpl(''));
  assert.equal(policy.anonymous, true);
  assert.equal(policy.plain, false);
  assert.equal(policy.onOhai(), 'ohai-ok');
});

test('policy defaults: accounts present → anonymous off, PLAIN on', () => {
  const policy = AccessPolicy.fromConfig(parseZpl(account('login = a', 'password = x')));
  assert.deepEqual({ anonymous: policy.anonymous, plain: policy.plain }, { anonymous: false, plain: true });
  assert.equal(policy.onOhai(), 'orly');
  assert.deepEqual(policy.mechanisms, [PLAIN]);
  assert.equal(policy.accepts('PLAIN'), true);
  assert.equal(policy.accepts('ANONYMOUS'), false);
  assert.equal(policy.accepts('CURVE'), false);
});

test('policy as the reference decides: anonymous first, then PLAIN, else SRSLY', () => {
  const policy = (anonymous: string, plain: string) =>
    AccessPolicy.fromConfig(parseZpl(`security\n    anonymous = ${anonymous}\n    plain = ${plain}\n`));
  assert.equal(policy('1', '1').onOhai(), 'ohai-ok');
  assert.equal(policy('1', '0').onOhai(), 'ohai-ok');
  assert.equal(policy('0', '1').onOhai(), 'orly');
  assert.equal(policy('0', '0').onOhai(), 'srsly');
  assert.deepEqual(policy('0', '0').mechanisms, []);
});

test('policy switches other than 0 and 1 are refused with their line', () => {
  const text = 'security\n    anonymous = yes\n';
  assert.throws(
    () => AccessPolicy.fromConfig(parseZpl(text), 'server.cfg'),
    (err: unknown) => {
      assert.ok(err instanceof AccountConfigError);
      assert.equal(err.line, 2);
      assert.equal(err.message, "server.cfg:2: security/anonymous must be 0 or 1, not 'yes'");
      return true;
    },
  );
});

test('a policy is immutable', () => {
  const policy = new AccessPolicy({ anonymous: false, plain: true });
  assert.throws(() => {
    (policy as { anonymous: boolean }).anonymous = true;
  }, TypeError);
});
