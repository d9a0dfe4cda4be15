/**
 * Typed errors of the security layer: one class per failure, each with a Node-style `code`.
 *
 * None of them ever carries a password: messages name the field that is wrong, never its
 * content, so an error can be logged as it is.
 *
 * @packageDocumentation
 */

/**
 * The peer was refused: anonymous access is off and no mechanism is on offer, the
 * credentials did not match an account, or the server answered SRSLY. `reason` is the
 * SRSLY text when there was one (the reference sends an empty one).
 *
 * @example
 * ```ts
 * try {
 *   await client.connect();
 * } catch (err) {
 *   if (err instanceof AccessDeniedError) console.error('refused:', err.reason || '(no reason)');
 * }
 * ```
 */
export class AccessDeniedError extends Error {
  override readonly name = 'AccessDeniedError';
  readonly code = 'ERR_FMQ_ACCESS_DENIED';

  /**
   * @param reason - why, in words safe to show the peer or a log; '' when unknown.
   * @param options - `cause` when the refusal stems from another error.
   */
  constructor(
    readonly reason: string = '',
    options?: { cause?: unknown },
  ) {
    super(reason === '' ? 'access denied' : `access denied: ${reason}`, options);
  }
}

/** What is wrong with a SASL PLAIN response. */
export type CredentialsProblem =
  /** The response is not a byte buffer at all. */
  | 'not-bytes'
  /** Fewer than the two NUL separators RFC 4616 requires. */
  | 'missing-nul'
  /** More than two NUL octets: a NUL inside one of the parts. */
  | 'extra-nul'
  /** The authentication identity (login) is empty. */
  | 'empty-login'
  /** The password is empty. */
  | 'empty-password'
  /** A part, or the whole response, is longer than RFC 4616 allows (255 octets a part). */
  | 'too-long'
  /** A part is not valid UTF-8. */
  | 'bad-utf8';

/**
 * A SASL PLAIN response that does not follow RFC 4616, or credentials that cannot be
 * encoded as one. The server answers it like a wrong password (SRSLY); it is never a crash.
 *
 * @example
 * ```ts
 * try {
 *   parsePlainResponse(frame);
 * } catch (err) {
 *   if (err instanceof MalformedCredentialsError) sendSrsly(); // err.problem says why
 * }
 * ```
 */
export class MalformedCredentialsError extends Error {
  override readonly name = 'MalformedCredentialsError';
  readonly code = 'ERR_FMQ_BAD_CREDENTIALS';

  /**
   * @param problem - which rule was broken.
   * @param message - a description that names parts, never their content.
   */
  constructor(
    readonly problem: CredentialsProblem,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The `security` section of a config cannot be used: an account without a login or
 * password, a login defined twice, a `hash` that is not an argon2id string, a switch that
 * is neither 0 nor 1. `line` is the 1-based config line (0 when the account was built in
 * code); `source` is the file name when known.
 *
 * @example
 * ```ts
 * try {
 *   Accounts.fromConfig(config, 'server.cfg');
 * } catch (err) {
 *   if (err instanceof AccountConfigError) console.error(err.message);
 *   // server.cfg:14: account 'admin' has both a password and a hash
 * }
 * ```
 */
export class AccountConfigError extends Error {
  override readonly name = 'AccountConfigError';
  readonly code = 'ERR_FMQ_ACCOUNT_CONFIG';

  /**
   * @param reason - what is wrong, without the location prefix and without any secret.
   * @param line - 1-based config line, 0 when unknown.
   * @param source - the config file name, if known.
   * @param options - `cause` when another error lies underneath.
   */
  constructor(
    readonly reason: string,
    readonly line: number,
    readonly source?: string,
    options?: { cause?: unknown },
  ) {
    super(`${locate(line, source)}${reason}`, options);
  }
}

function locate(line: number, source: string | undefined): string {
  if (line > 0) return source === undefined ? `line ${line}: ` : `${source}:${line}: `;
  return source === undefined ? '' : `${source}: `;
}
