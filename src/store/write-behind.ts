/**
 * When queued writes to the state database are committed: in one transaction a short while
 * after the first of them, or soon once many are queued. Every commit in WAL mode costs about
 * a dozen system calls (locks on the shared memory, WAL frames), so committing at each turn of
 * the event loop, as files arrive one per turn, cost more than the files' own writes. A kill
 * loses at most the last {@link WRITE_BEHIND_MS} of rows, all of them caches (a digest is read
 * again, a deletion found again by the next scan); readers flush first, and so does close.
 *
 * @packageDocumentation
 */

/** How long a queued write waits for others before it is committed. */
export const WRITE_BEHIND_MS = 50

/** Queued writes that are committed at the next turn without waiting longer. */
export const WRITE_BEHIND_LIMIT = 4096

/**
 * Schedules the commits of one queue of writes.
 *
 * @example
 * ```ts
 * const behind = new WriteBehind(() => this.flush())
 * this.writes.push(write)
 * behind.queued(this.writes.length)
 * // flush(): behind.cancel(), then commit
 * ```
 */
export class WriteBehind {
  private timer: NodeJS.Timeout | undefined
  private immediate: NodeJS.Immediate | undefined

  constructor(private readonly commit: () => void) {}

  /** A write was queued; `count` are waiting in all. */
  queued(count: number): void {
    if (this.immediate !== undefined) return
    if (count >= WRITE_BEHIND_LIMIT) {
      this.cancel()
      this.immediate = setImmediate(() => {
        this.immediate = undefined
        this.commit()
      })
      // Never keeps a process alive on its own: close() commits what is left.
      this.immediate.unref()
      return
    }
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.commit()
    }, WRITE_BEHIND_MS)
    this.timer.unref()
  }

  /** The queue is being committed now: nothing is left to schedule. */
  cancel(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.immediate !== undefined) clearImmediate(this.immediate)
    this.immediate = undefined
  }
}
