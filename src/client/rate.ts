/**
 * Bandwidth limits (`rateLimit`, `fmq client --bwlimit RATE`): the rate as users write it,
 * and the token bucket that paces the credit a client grants. The limit needs no sleep in the
 * data path: a server never sends more than the credit it holds, so granting credit at most at
 * the rate limits what arrives.
 *
 * @packageDocumentation
 */

/** A rate that {@link parseRate} cannot read. */
export class InvalidRateError extends Error {
  override readonly name = 'InvalidRateError'
  readonly code = 'ERR_FMQ_INVALID_RATE'
  constructor(readonly input: string) {
    super(`invalid rate ${JSON.stringify(input)}: expected octets per second, e.g. 1048576, 500k, 2M, 1.5MB/s`)
  }
}

/** Multipliers, as rsync's `--bwlimit` reads them: a bare letter or `KiB` is binary, `KB` decimal. */
const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
}

const RATE = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)(?:\/s)?$/i

/**
 * Reads a rate in octets per second: a number, optionally followed by a unit (`k`, `M`, `G`
 * or `KiB`, `MiB`, `GiB` are powers of 1024; `KB`, `MB`, `GB` powers of 1000; `B` is one octet;
 * case does not matter) and `/s`. The result is rounded down to whole octets and at least 1.
 *
 * @throws {InvalidRateError} for anything else: empty, negative, zero, unknown unit.
 *
 * @example
 * ```ts
 * parseRate('500k') // 512000
 * parseRate('2M') // 2097152
 * parseRate('1.5MB/s') // 1500000
 * parseRate('1048576') // 1048576
 * ```
 */
export function parseRate(input: string): number {
  const match = typeof input === 'string' ? RATE.exec(input.trim()) : null
  const unit = UNITS[(match?.[2] ?? '').toLowerCase()]
  if (match === null || unit === undefined) throw new InvalidRateError(String(input))
  const rate = Math.floor(Number(match[1]) * unit)
  if (!Number.isSafeInteger(rate) || rate < 1) throw new InvalidRateError(input)
  return rate
}

/** Seconds of the rate the bucket holds at most: what a client may grant at once after a pause. */
const BURST_SECONDS = 0.2
/** Milliseconds between two looks at the bucket while credit is short. */
export const REFILL_INTERVAL_MS = 100

/**
 * A token bucket of octets, filled at `rate` per second up to a burst of 0.2 s of the rate
 * (tokens do not pile up while nothing is sent, so a pause buys no burst above that).
 *
 * @example
 * ```ts
 * const bucket = new CreditBucket(2 * 1024 * 1024)
 * bucket.take(8 * 1024 * 1024, 64 * 1024) // at most the burst; 0 when fewer than 64 KiB are ready
 * ```
 */
export class CreditBucket {
  /** The most octets the bucket holds. */
  readonly burst: number
  private tokens: number
  private last: number

  constructor(
    readonly rate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.burst = Math.max(1, Math.floor(rate * BURST_SECONDS))
    this.tokens = this.burst
    this.last = now()
  }

  /**
   * Takes up to `wanted` octets; none at all when fewer than `least` are ready, so a
   * trickle of tokens does not become a trickle of tiny grants.
   */
  take(wanted: number, least = 1): number {
    const now = this.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    const ready = Math.floor(Math.min(wanted, this.tokens))
    if (ready < Math.max(1, Math.min(least, wanted))) return 0
    this.tokens -= ready
    return ready
  }
}
