/**
 * Socket calls a signal cut short. libzmq returns EINTR from a receive or a send when a signal
 * arrives during its internal poll, whatever SA_RESTART says: a terminal's SIGWINCH, a hook's
 * SIGCHLD, a profiler's SIGPROF (`node --cpu-prof` made `fmq client` exit 1 with "Interrupted
 * system call" one run in three). Nothing is lost: the call is made again.
 *
 * @packageDocumentation
 */

/** Whether an error is EINTR. */
export function interrupted(error: unknown): boolean {
  return (error as { code?: unknown } | null | undefined)?.code === 'EINTR'
}

/** What {@link received} needs of a zeromq.js socket (or of its event observer). */
export interface Receiving<T> {
  readonly closed: boolean
  receive(): Promise<T>
}

/**
 * The messages of a socket (or the events of its observer), as `for await (const frames of socket)` gives them (ending quietly
 * once the socket is closed), except that a receive a signal interrupted is made again.
 *
 * @example
 * ```ts
 * for await (const frames of received(socket)) handle(frames)
 * ```
 */
export function received<T>(socket: Receiving<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          if (socket.closed) return { done: true, value: undefined }
          try {
            return { done: false, value: await socket.receive() }
          } catch (error) {
            if (interrupted(error)) continue
            // As zeromq.js's own iterator: a receive pending when the socket closed ends the loop.
            if (socket.closed && (error as { code?: unknown }).code === 'EAGAIN') return { done: true, value: undefined }
            throw error
          }
        }
      },
    }),
  }
}

/**
 * `send()` of a socket, made again when a signal interrupted it.
 *
 * @example
 * ```ts
 * await sent(() => socket.send(frames))
 * ```
 */
export async function sent(send: () => Promise<void>): Promise<void> {
  for (;;) {
    try {
      return await send()
    } catch (error) {
      if (!interrupted(error)) throw error
    }
  }
}
