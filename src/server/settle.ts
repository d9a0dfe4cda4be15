/**
 * How long a changed file must stay quiet before it is shipped. Short by default (`settle`,
 * 10 ms), so a file written in one go goes at once. A file that changes again soon after it
 * was shipped has a writer that pauses (a download, a log, a slow copy): fs.watch does not
 * say when a writer closes a file, so each pause longer than the settle would ship another
 * partial version. Such a file's settle doubles each time it is shipped and changes again
 * within {@link SLOW_WINDOW_MS}, up to {@link SLOW_SETTLE_MAX_MS}; a file left alone that long
 * is forgotten and settles short again. What was shipped is always a whole version (the
 * transfer checks the file's size and mtime before its last chunk and starts again if it
 * changed), and the last version always follows.
 *
 * @packageDocumentation
 */

/** Milliseconds after a ship within which a change means the file is still being written. */
export const SLOW_WINDOW_MS = 2000
/** The longest settle a slow writer's file is given. */
export const SLOW_SETTLE_MAX_MS = 1000

/**
 * Settle times per path.
 *
 * @example
 * ```ts
 * const settle = new SettleTimes(10)
 * setTimeout(look, settle.delay(path)) // 10 ms, or more for a file still being written
 * settle.shipped(path)                 // when it is announced
 * ```
 */
export class SettleTimes {
  /** Paths shipped lately, oldest first: when, and the settle their next change gets. */
  private readonly recent = new Map<string, { at: number; settle: number }>()

  constructor(private readonly settle: number) {}

  /** Milliseconds a change at this path waits for quiet. */
  delay(key: string): number {
    const recent = this.recent.get(key)
    return recent !== undefined && Date.now() - recent.at < SLOW_WINDOW_MS ? recent.settle : this.settle
  }

  /** The file at this path was announced: a change soon after waits longer. */
  shipped(key: string): void {
    const now = Date.now()
    const before = this.recent.get(key)
    this.recent.delete(key) // re-inserted last: the map stays in order of time
    const again = before !== undefined && now - before.at < SLOW_WINDOW_MS
    this.recent.set(key, { at: now, settle: again ? Math.min(SLOW_SETTLE_MAX_MS, Math.max(2 * before.settle, 4 * this.settle)) : this.settle })
    for (const [path, entry] of this.recent) {
      if (now - entry.at < SLOW_WINDOW_MS) break
      this.recent.delete(path)
    }
  }
}
