/**
 * Limits on password guessing.
 *
 * - Per peer: the answer to a failed login is delayed (1 s, growing to 5 s), so guessing
 *   over one connection runs at about one guess a second at best.
 * - Per login: a failure cools the login down for the same growing delay, and an attempt on
 *   a login that is cooling down, or being checked, is refused without looking at its
 *   password. Opening many connections therefore buys a guesser nothing: the passwords of
 *   one login are checked at most once per delay, about 12 a minute once it has reached
 *   the ceiling, however many connections take part.
 * - Overall: at most `concurrency` password checks run at once (argon2id costs CPU and
 *   memory), so a flood of logins under new names cannot starve the server.
 *
 * A peer's delay is only a timer for that peer: no lock, no queue, so one peer hammering
 * the server never delays another peer's login or anything else the event loop does. The
 * price of the per-login cooldown: while someone keeps guessing a login, its real owner is
 * refused too ("too many failed logins"), as with any account lockout keyed by name; the
 * peer's address, which would let us tell them apart, is not given to us by ZeroMQ.
 *
 * @packageDocumentation
 */

import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

/** Tuning for {@link LoginThrottle}; every field is optional. */
export interface LoginThrottleOptions {
  /** Delay after a peer's first failure, in ms. Default 1000. */
  baseDelayMs?: number;
  /** Ceiling of the delay however often a peer fails, in ms. Default 5000. */
  maxDelayMs?: number;
  /** Each further failure multiplies the delay by this. Default 2. */
  growth?: number;
  /** A peer with no failure for this long starts again from the base delay, in ms. Default 60000. */
  quietMs?: number;
  /** Most peers (and, apart, most logins) remembered at once; the least recently failed is forgotten first. Default 10000. */
  maxPeers?: number;
  /** Password checks run at once, across every login; more wait their turn. Default 2. */
  concurrency?: number;
  /** Monotonic clock in ms. Default `performance.now`. */
  now?: () => number;
  /**
   * Waits `ms`; rejects when `signal` aborts. Default: an unref'd timer, so a pending delay
   * never keeps a closing process alive.
   */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

interface ResolvedOptions {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly growth: number;
  readonly quietMs: number;
  readonly maxPeers: number;
  readonly concurrency: number;
  readonly now: () => number;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

interface PeerRecord {
  failures: number;
  lastFailure: number;
}

/** What {@link LoginThrottle.check} made of an attempt. */
export type LoginVerdict<T> =
  | { readonly checked: true; readonly result: T }
  /** Refused unchecked: the login is cooling down after a failure, or being checked; try again in `retryMs`. */
  | { readonly checked: false; readonly retryMs: number };

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  delay(ms, undefined, signal === undefined ? { ref: false } : { ref: false, signal });

/**
 * Delays the answer to each failed login by about a second per peer, growing for repeated
 * failures of the same peer up to a ceiling, and starting over after a success or a quiet
 * period. Memory is bounded: quiet peers are forgotten and at most `maxPeers` are tracked
 * (a peer forgotten early merely starts over at the base delay).
 *
 * @example
 * ```ts
 * const throttle = new LoginThrottle();
 * const who = await accounts.authenticate(login, password);
 * if (who === undefined) {
 *   await throttle.fail(peerId); // 1 s, then 2 s, 4 s, 5 s, 5 s… for this peer only
 *   return sendSrsly();
 * }
 * throttle.succeed(peerId);
 * ```
 */
export class LoginThrottle {
  readonly #options: ResolvedOptions;
  /** Ordered by last failure, oldest first: re-inserted on every failure. */
  readonly #peers = new Map<string, PeerRecord>();
  /** Failures per login, ordered the same way. */
  readonly #logins = new Map<string, PeerRecord>();
  /** Logins whose password is being checked right now. */
  readonly #checking = new Set<string>();
  /** Checks running, and those waiting for one of the `concurrency` places. */
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  /**
   * Throws a RangeError for a negative or non-finite delay, a growth below 1, or a
   * `maxPeers` below 1.
   *
   * @example
   * ```ts
   * let clock = 0;
   * const throttle = new LoginThrottle({ now: () => clock, sleep: async () => {} });
   * ```
   */
  constructor(options: LoginThrottleOptions = {}) {
    const resolved: ResolvedOptions = {
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 5000,
      growth: options.growth ?? 2,
      quietMs: options.quietMs ?? 60_000,
      maxPeers: options.maxPeers ?? 10_000,
      concurrency: options.concurrency ?? 2,
      now: options.now ?? (() => performance.now()),
      sleep: options.sleep ?? defaultSleep,
    };
    for (const key of ['baseDelayMs', 'maxDelayMs', 'quietMs'] as const) {
      const value = resolved[key];
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(`LoginThrottle ${key} must be a finite number >= 0, not ${value}`);
      }
    }
    if (!Number.isFinite(resolved.growth) || resolved.growth < 1) {
      throw new RangeError(`LoginThrottle growth must be a finite number >= 1, not ${resolved.growth}`);
    }
    for (const key of ['maxPeers', 'concurrency'] as const) {
      if (!Number.isInteger(resolved[key]) || resolved[key] < 1) {
        throw new RangeError(`LoginThrottle ${key} must be an integer >= 1, not ${resolved[key]}`);
      }
    }
    this.#options = Object.freeze(resolved);
  }

  /**
   * Records a failed login of `peer` and resolves, with the delay in ms, once that delay has
   * passed; only then should the failure be answered. Rejects only if `signal` aborts the
   * wait (or an injected `sleep` rejects).
   *
   * @example
   * ```ts
   * const waited = await throttle.fail(routingId.toString('hex'));
   * ```
   */
  async fail(peer: string, signal?: AbortSignal): Promise<number> {
    const ms = this.#delay(this.#record(this.#peers, peer, this.#options.now()));
    await this.#options.sleep(ms, signal);
    return ms;
  }

  /**
   * Runs `check` (the password check of an attempt on `login`) unless the login is cooling
   * down after a failure or another check of it is running: then the attempt is refused
   * unchecked, with the time left. At most `concurrency` checks run at once; the others wait
   * their turn. A result of `undefined` is a failure and starts (or lengthens) the login's
   * cooldown; anything else is a success and ends it.
   *
   * @example
   * ```ts
   * const verdict = await throttle.check(login, () => accounts.authenticate(login, password));
   * if (!verdict.checked) return refuse(`too many failed logins, try again in ${verdict.retryMs} ms`);
   * ```
   */
  async check<T>(login: string, check: () => Promise<T | undefined>): Promise<LoginVerdict<T | undefined>> {
    const retryMs = this.coolingMs(login);
    if (retryMs > 0 || this.#checking.has(login)) return { checked: false, retryMs: Math.max(retryMs, 1) };
    this.#checking.add(login);
    try {
      if (this.#running >= this.#options.concurrency) await new Promise<void>((turn) => this.#waiting.push(turn));
      else this.#running++;
      let result: T | undefined;
      try {
        result = await check();
      } finally {
        // Hand the place straight to the next waiter, if any.
        const next = this.#waiting.shift();
        if (next === undefined) this.#running--;
        else next();
      }
      if (result === undefined) this.#record(this.#logins, login, this.#options.now());
      else this.#logins.delete(login);
      return { checked: true, result };
    } finally {
      this.#checking.delete(login);
    }
  }

  /**
   * Milliseconds before `login` may be checked again: 0 unless it failed recently.
   *
   * @example
   * ```ts
   * throttle.coolingMs('alice'); // 0 for a login that has not failed lately
   * ```
   */
  coolingMs(login: string): number {
    const record = this.#logins.get(login);
    if (record === undefined) return 0;
    return Math.max(0, Math.ceil(record.lastFailure + this.#delay(record.failures) - this.#options.now()));
  }

  /**
   * Forgets `peer`'s failures after a successful login.
   *
   * @example
   * ```ts
   * throttle.succeed(peerId);
   * ```
   */
  succeed(peer: string): void {
    this.#peers.delete(peer);
  }

  /**
   * The delay `peer`'s next failure would get, in ms, without recording anything.
   *
   * @example
   * ```ts
   * throttle.nextDelay('never-seen'); // 1000
   * ```
   */
  nextDelay(peer: string): number {
    const record = this.#peers.get(peer);
    if (record === undefined || this.#isQuiet(record, this.#options.now())) return this.#delay(1);
    return this.#delay(record.failures + 1);
  }

  /** Number of peers currently remembered. */
  get size(): number {
    return this.#peers.size;
  }

  /** Forgets every peer and login. Delays already running still run out. */
  clear(): void {
    this.#peers.clear();
    this.#logins.clear();
  }

  /** Counts one more failure of `key` in `records` (forgetting quiet and surplus keys); returns its failures. */
  #record(records: Map<string, PeerRecord>, key: string, now: number): number {
    this.#forgetQuiet(records, now);
    const failures = (records.get(key)?.failures ?? 0) + 1;
    // Re-inserting moves the key to the end, keeping the map ordered by last failure.
    records.delete(key);
    records.set(key, { failures, lastFailure: now });
    for (const oldest of records.keys()) {
      if (records.size <= this.#options.maxPeers) break;
      records.delete(oldest);
    }
    return failures;
  }

  #delay(failures: number): number {
    const { baseDelayMs, maxDelayMs, growth } = this.#options;
    return Math.min(baseDelayMs * growth ** (failures - 1), maxDelayMs);
  }

  #isQuiet(record: PeerRecord, now: number): boolean {
    return now - record.lastFailure >= this.#options.quietMs;
  }

  /** Drops quiet keys from the old end of a map; stops at the first one still active. */
  #forgetQuiet(records: Map<string, PeerRecord>, now: number): void {
    for (const [key, record] of records) {
      if (!this.#isQuiet(record, now)) break;
      records.delete(key);
    }
  }
}
