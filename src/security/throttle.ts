/**
 * Slow answers to failed logins, per peer, so guessing passwords over one connection runs at
 * about one guess a second at best.
 *
 * Each failure is only a timer for that peer: no lock, no queue, so one peer hammering the
 * server never delays another peer's login or anything else the event loop does.
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
  /** Most peers remembered at once; the least recently failed is forgotten first. Default 10000. */
  maxPeers?: number;
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
  readonly now: () => number;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

interface PeerRecord {
  failures: number;
  lastFailure: number;
}

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
    if (!Number.isInteger(resolved.maxPeers) || resolved.maxPeers < 1) {
      throw new RangeError(`LoginThrottle maxPeers must be an integer >= 1, not ${resolved.maxPeers}`);
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
    const now = this.#options.now();
    this.#forgetQuiet(now);
    const record = this.#peers.get(peer);
    const failures = record === undefined ? 1 : record.failures + 1;
    // Re-inserting moves the peer to the end, keeping the map ordered by last failure.
    this.#peers.delete(peer);
    this.#peers.set(peer, { failures, lastFailure: now });
    for (const oldest of this.#peers.keys()) {
      if (this.#peers.size <= this.#options.maxPeers) break;
      this.#peers.delete(oldest);
    }
    const ms = this.#delay(failures);
    await this.#options.sleep(ms, signal);
    return ms;
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

  /** Forgets every peer. Delays already running still run out. */
  clear(): void {
    this.#peers.clear();
  }

  #delay(failures: number): number {
    const { baseDelayMs, maxDelayMs, growth } = this.#options;
    return Math.min(baseDelayMs * growth ** (failures - 1), maxDelayMs);
  }

  #isQuiet(record: PeerRecord, now: number): boolean {
    return now - record.lastFailure >= this.#options.quietMs;
  }

  /** Drops quiet peers from the old end of the map; stops at the first one still active. */
  #forgetQuiet(now: number): void {
    for (const [peer, record] of this.#peers) {
      if (!this.#isQuiet(record, now)) break;
      this.#peers.delete(peer);
    }
  }
}
