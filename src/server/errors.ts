/**
 * Typed errors of the server: one class per failure, each with a Node-style `code`.
 *
 * @packageDocumentation
 */

/**
 * An option of `new Server(options)` cannot work (a heartbeat of 0, client keys without CURVE).
 * The message names the option, never a key or a password.
 *
 * @example
 * ```ts
 * new Server({ heartbeat: -1 }) // throws InvalidServerOptionError, option 'heartbeat'
 * ```
 */
export class InvalidServerOptionError extends RangeError {
  override readonly name = 'InvalidServerOptionError'
  readonly code = 'ERR_FMQ_INVALID_OPTION'

  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`)
  }
}

/**
 * A config asks for what the server cannot do any more (CURVE after the first bind, another
 * rescan interval after the first publish), or for a reload it cannot watch.
 *
 * @example
 * ```ts
 * await server.bind('tcp://*:5670')
 * await server.configure('curve.cfg') // throws ServerConfigError: CURVE: the server is bound already; ...
 * ```
 */
export class ServerConfigError extends Error {
  override readonly name = 'ServerConfigError'
  readonly code = 'ERR_FMQ_SERVER_CONFIG'
}
