/**
 * Who may connect: the PLAIN accounts of a server config and the access policy that decides
 * between OHAI-OK, ORLY and SRSLY.
 *
 * The reference compares clear-text passwords with `streq`, which returns at the first
 * differing byte and skips unknown logins at once, so both passwords and logins can be probed
 * by timing. Here every attempt costs the same work whatever the login: see
 * {@link Accounts.authenticate}.
 *
 * @packageDocumentation
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import type { ZplNode } from '../config/zpl.js';
import { AccountConfigError } from './errors.js';
import { hashPasswordWithLimits, parsePasswordHash, verifyPassword } from './password.js';
import { MAX_PLAIN_PART, PLAIN, type Mechanism } from './sasl.js';

/**
 * One account as a config (or code) defines it: a login and exactly one of a clear-text
 * `password` (as the reference keeps them) or an argon2id `hash` from `hashPassword`. A
 * `password` that is itself an argon2id string is taken as a hash.
 */
export interface AccountSpec {
  /** The PLAIN login; non-empty, at most 255 octets of UTF-8. */
  readonly login: string;
  /** Reported to the application on success; '' when absent. */
  readonly group?: string;
  /** Clear-text password, compared in constant time. */
  readonly password?: string;
  /** argon2id hash string, checked with `verifyPassword`. */
  readonly hash?: string;
  /** Config line of the account section, for error messages; 0 or absent when built in code. */
  readonly line?: number;
  /** Config file the account was read from, for error messages (when `new Accounts` is given none). */
  readonly source?: string;
}

/** What a successful login yields. */
export interface AuthenticatedAccount {
  readonly login: string;
  readonly group: string;
}

/** A description of a configured account that holds no secret. */
export interface AccountInfo {
  readonly login: string;
  readonly group: string;
  /** How the password is kept: in clear text or as an argon2id hash. */
  readonly kind: 'password' | 'hash';
  /** Config line of the account section; 0 when built in code. */
  readonly line: number;
}

interface StoredAccount {
  readonly login: string;
  readonly group: string;
  readonly line: number;
  /** Keyed digest of a clear-text password: fixed length, so comparing it leaks no length. */
  readonly digest?: Buffer;
  readonly hash?: string;
}

/** Lines of the individual properties of an account section, for precise error messages. */
interface FieldLines {
  login: number;
  password: number;
  hash: number;
}

/** Filled by {@link accountSpecs}; a spec built in code has only its own `line`. */
const fieldLines = new WeakMap<AccountSpec, FieldLines>();

/**
 * Stands in for the hash of an unknown login, so that login costs a full argon2id
 * verification like a real one. Made with libsodium's INTERACTIVE limits from 32 random bytes
 * that were then thrown away: no password matches it, and it is never compared for a real
 * account anyway.
 */
const INTERACTIVE_DUMMY_HASH =
  '$argon2id$v=19$m=65536,t=2,p=1$T4oOTinwzvYXIpyZlj5GYA$+NnxMIxbBYIkCwqbiLBkrrryIjL0WAhn8+HXUrmjzJY';

/** With the `u` flag this matches only surrogates that are not half of a pair. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * The PLAIN accounts a server accepts.
 *
 * @example
 * ```ts
 * const config = await loadZplFile('config/server-plain.cfg');
 * const accounts = Accounts.fromConfig(config, 'config/server-plain.cfg');
 * const who = await accounts.authenticate('reader', 'reader');
 * if (who === undefined) sendSrsly(); else sendOhaiOk(who.group);
 * ```
 */
export class Accounts {
  readonly #byLogin = new Map<string, StoredAccount>();
  /** Per-instance key, so the stored digests are useless outside this process. */
  readonly #key = randomBytes(32);
  readonly #dummyDigest: Buffer;
  /** Present when any account is hashed: then every attempt runs one argon2id verification. */
  readonly #dummyHash: Promise<string> | undefined;

  /**
   * Throws {@link AccountConfigError} for an account without a login, with no or an empty
   * password, with both a password and a hash, with a hash that is not argon2id, with a login
   * or password PLAIN cannot carry, or with a login already taken.
   *
   * @param accounts - the accounts, in order; error messages point at `line` when given.
   * @param source - config file name for error messages.
   *
   * @example
   * ```ts
   * const accounts = new Accounts([
   *   { login: 'reader', password: 'reader', group: 'guest' },
   *   { login: 'admin', hash: await hashPassword('s3cret'), group: 'admin' },
   * ]);
   * ```
   */
  constructor(accounts: Iterable<AccountSpec>, source?: string) {
    let firstHash: string | undefined;
    for (const spec of accounts) {
      const stored = this.#check(spec, source ?? spec.source);
      this.#byLogin.set(stored.login, stored);
      firstHash ??= stored.hash;
    }
    this.#dummyDigest = this.#digest(randomBytes(16).toString('base64'));
    this.#dummyHash = firstHash === undefined ? undefined : dummyHashLike(firstHash);
  }

  /**
   * Reads every `security/plain/account` section: `login`, `password` or `hash`, and an
   * optional `group`. Errors carry the config line of the offending property.
   *
   * @param root - the parsed config.
   * @param source - config file name for error messages.
   *
   * @example
   * ```ts
   * const accounts = Accounts.fromConfig(parseZpl([
   *   'security',
   *   '    plain = 1',
   *   '        account',
   *   '            login = reader',
   *   '            password = reader',
   * ].join('\n')));
   * ```
   */
  static fromConfig(root: ZplNode, source?: string): Accounts {
    return new Accounts(accountSpecs(root, source), source);
  }

  /** Number of accounts. */
  get size(): number {
    return this.#byLogin.size;
  }

  /**
   * Whether a login exists. For configuration checks only: a server answering this to a
   * peer would hand out exactly what the constant-time checks hide.
   */
  has(login: string): boolean {
    return this.#byLogin.has(login);
  }

  /**
   * The accounts, without secrets, in config order.
   *
   * @example
   * ```ts
   * for (const { login, kind } of accounts.list()) console.log(login, kind);
   * ```
   */
  list(): AccountInfo[] {
    return [...this.#byLogin.values()].map(({ login, group, line, hash }) => ({
      login,
      group,
      line,
      kind: hash === undefined ? 'password' : 'hash',
    }));
  }

  /**
   * Checks a login and password; resolves the account on success and undefined otherwise
   * (unknown login, wrong password, arguments that are not strings). Never rejects.
   *
   * Timing reveals neither the login nor the password: clear-text passwords are compared as
   * fixed-length keyed digests with `timingSafeEqual`, and when any account is hashed every
   * attempt (known login or not, hashed or clear-text account) runs exactly one argon2id
   * verification, against a dummy hash when it has no hash of its own. With no hashed
   * account no attempt runs one, so clear-text-only configs stay cheap.
   *
   * @example
   * ```ts
   * const who = await accounts.authenticate(credentials.login, credentials.password);
   * if (who === undefined) {
   *   await throttle.fail(peer); // answer failures slowly
   * }
   * ```
   */
  async authenticate(login: string, password: string): Promise<AuthenticatedAccount | undefined> {
    if (typeof login !== 'string' || typeof password !== 'string') return undefined;
    const account = this.#byLogin.get(login);
    const wellFormed = !LONE_SURROGATE.test(password);

    const digestMatches = timingSafeEqual(
      this.#digest(password),
      account?.digest ?? this.#dummyDigest,
    );
    let hashMatches = false;
    if (this.#dummyHash !== undefined) {
      hashMatches = await verifyPassword(account?.hash ?? (await this.#dummyHash), password);
    }

    if (account === undefined || !wellFormed) return undefined;
    const matches = account.hash === undefined ? digestMatches : hashMatches;
    return matches ? { login: account.login, group: account.group } : undefined;
  }

  #digest(password: string): Buffer {
    return createHmac('sha256', this.#key).update(password, 'utf8').digest();
  }

  #check(spec: AccountSpec, source: string | undefined): StoredAccount {
    const line = typeof spec.line === 'number' ? spec.line : 0;
    const lines = fieldLines.get(spec) ?? { login: line, password: line, hash: line };
    // Annotated so TypeScript narrows after each `fail(...)` call.
    const fail: (reason: string, at: number) => never = (reason, at) => {
      throw new AccountConfigError(reason, at, source);
    };

    const { login } = spec;
    if (typeof login !== 'string' || login === '') fail('account has no login', lines.login);
    const name = `account '${login}'`;
    if (login.includes('\0')) fail(`${name}: login contains a NUL`, lines.login);
    if (LONE_SURROGATE.test(login)) fail(`${name}: login is not well-formed Unicode`, lines.login);
    if (Buffer.byteLength(login, 'utf8') > MAX_PLAIN_PART) {
      fail(`${name}: login is longer than the ${MAX_PLAIN_PART} octets PLAIN can carry`, lines.login);
    }
    const previous = this.#byLogin.get(login);
    if (previous !== undefined) {
      fail(
        previous.line > 0 ? `${name} is already defined on line ${previous.line}` : `${name} is defined twice`,
        lines.login,
      );
    }

    const group = spec.group ?? '';
    if (typeof group !== 'string') fail(`${name}: group is not a string`, line);
    const stored = { login, group, line };

    if (spec.password !== undefined && spec.hash !== undefined) {
      fail(`${name} has both a password and a hash; keep one`, line);
    }
    if (spec.hash !== undefined) {
      if (typeof spec.hash !== 'string' || parsePasswordHash(spec.hash) === undefined) {
        fail(`${name}: hash is not an argon2id string as 'fmq passwd' prints it`, lines.hash);
      }
      return { ...stored, hash: spec.hash };
    }
    const { password } = spec;
    if (password === undefined) fail(`${name} has no password or hash`, line);
    if (typeof password !== 'string' || password === '') {
      fail(`${name}: password is empty`, lines.password);
    }
    // A config may carry a hash under the reference's own key name.
    if (parsePasswordHash(password) !== undefined) return { ...stored, hash: password };
    if (password.includes('\0') || LONE_SURROGATE.test(password)) {
      fail(`${name}: password contains characters PLAIN cannot carry`, lines.password);
    }
    if (Buffer.byteLength(password, 'utf8') > MAX_PLAIN_PART) {
      fail(`${name}: password is longer than the ${MAX_PLAIN_PART} octets PLAIN can carry`, lines.password);
    }
    return { ...stored, digest: this.#digest(password) };
  }
}

/**
 * The accounts of every `security/plain/account` section (`login`, `password` or `hash`,
 * `group`), each remembering its file and the lines of its properties, so `new Accounts`
 * points its errors at them. Checked by `new Accounts`, not here.
 *
 * @example
 * ```ts
 * new Accounts(accountSpecs(await loadZplFile('server.cfg'), 'server.cfg'));
 * ```
 */
export function accountSpecs(root: ZplNode, source?: string): AccountSpec[] {
  return root.all('security/plain/account').map((section) => {
    const login = single(section, 'login', source);
    const password = single(section, 'password', source);
    const hash = single(section, 'hash', source);
    const group = single(section, 'group', source);
    const spec: AccountSpec = {
      login: login?.value ?? '',
      group: group?.value ?? '',
      line: section.line,
      ...(source === undefined ? {} : { source }),
      ...(password === undefined ? {} : { password: password.value }),
      ...(hash === undefined ? {} : { hash: hash.value }),
    };
    fieldLines.set(spec, {
      login: login?.line ?? section.line,
      password: password?.line ?? section.line,
      hash: hash?.line ?? section.line,
    });
    return spec;
  });
}

/** The child `name` of an account section, refusing a property given twice. */
function single(section: ZplNode, name: string, source: string | undefined): ZplNode | undefined {
  const found = section.children.filter((child) => child.name === name);
  const second = found[1];
  if (second !== undefined) {
    throw new AccountConfigError(`account has more than one '${name}'`, second.line, source);
  }
  return found[0];
}

/**
 * A hash of nothing anyone knows, with the same cost as `hash`, so checking an unknown login
 * takes as long as checking a real one. Never rejects: if a matching hash cannot be made,
 * the INTERACTIVE one stands in.
 */
async function dummyHashLike(hash: string): Promise<string> {
  const params = parsePasswordHash(hash);
  const fallback = parsePasswordHash(INTERACTIVE_DUMMY_HASH);
  if (
    params === undefined ||
    (params.memoryKiB === fallback?.memoryKiB && params.passes === fallback.passes)
  ) {
    return INTERACTIVE_DUMMY_HASH;
  }
  try {
    return await hashPasswordWithLimits(
      randomBytes(32).toString('base64'),
      params.passes,
      params.memoryKiB * 1024,
    );
  } catch {
    return INTERACTIVE_DUMMY_HASH;
  }
}

/** What the server answers to OHAI, as the reference decides it. */
export type AccessDecision = 'ohai-ok' | 'orly' | 'srsly';

/** Which SASL mechanisms a server accepts. */
export interface AccessPolicyOptions {
  /** Let peers in without credentials. */
  readonly anonymous: boolean;
  /** Offer PLAIN (login and password). */
  readonly plain: boolean;
}

/**
 * Which mechanisms a server accepts, from `security/anonymous` and `security/plain`.
 *
 * As the reference decides: anonymous enabled → OHAI-OK at once; otherwise PLAIN enabled →
 * ORLY offering ["PLAIN"]; neither → SRSLY.
 *
 * @example
 * ```ts
 * const policy = AccessPolicy.fromConfig(config);
 * switch (policy.onOhai()) {
 *   case 'ohai-ok': return sendOhaiOk();
 *   case 'orly': return sendOrly(policy.mechanisms);
 *   case 'srsly': return sendSrsly();
 * }
 * ```
 */
export class AccessPolicy implements AccessPolicyOptions {
  readonly anonymous: boolean;
  readonly plain: boolean;
  /** Mechanisms to offer in ORLY. */
  readonly mechanisms: readonly Mechanism[];

  constructor(options: AccessPolicyOptions) {
    this.anonymous = options.anonymous;
    this.plain = options.plain;
    this.mechanisms = Object.freeze(this.plain ? [PLAIN] : []);
    Object.freeze(this);
  }

  /**
   * Reads `security/anonymous` and `security/plain`, each `1` (on) or `0` (off). The
   * reference treats a missing switch as 0, which refuses every peer of a config that says
   * nothing; here a missing (or valueless) switch follows the config instead:
   * - no `security/plain/account` section: anonymous = 1, plain = 0 (an open server, as a
   *   config without accounts can only mean);
   * - at least one account: anonymous = 0, plain = 1 (accounts are there to be required, and
   *   an unnoticed anonymous default would bypass them).
   *
   * Any other value is an {@link AccountConfigError} with its line.
   *
   * @example
   * ```ts
   * AccessPolicy.fromConfig(parseZpl('')); // { anonymous: true, plain: false }
   * ```
   */
  static fromConfig(root: ZplNode, source?: string): AccessPolicy {
    const hasAccounts = root.all('security/plain/account').length > 0;
    return new AccessPolicy({
      anonymous: readSwitch(root, 'security/anonymous', !hasAccounts, source),
      plain: readSwitch(root, 'security/plain', hasAccounts, source),
    });
  }

  /** What to answer to OHAI. */
  onOhai(): AccessDecision {
    if (this.anonymous) return 'ohai-ok';
    return this.plain ? 'orly' : 'srsly';
  }

  /** Whether a YARLY naming `mechanism` may be tried at all. */
  accepts(mechanism: string): boolean {
    return mechanism === PLAIN && this.plain;
  }
}

function readSwitch(root: ZplNode, path: string, fallback: boolean, source: string | undefined): boolean {
  const node = root.at(path);
  if (node === undefined || node.value === '') return fallback;
  if (node.value === '1') return true;
  if (node.value === '0') return false;
  throw new AccountConfigError(`${path} must be 0 or 1, not '${node.value}'`, node.line, source);
}
