/**
 * The security layer: SASL PLAIN parsing, accounts and access policy from a ZPL config,
 * argon2id password hashing, and per-peer throttling of failed logins.
 *
 * @example
 * ```ts
 * import { AccessPolicy, Accounts, LoginThrottle, parsePlainResponse } from './security/index.js';
 *
 * const policy = AccessPolicy.fromConfig(config);
 * const accounts = Accounts.fromConfig(config);
 * const throttle = new LoginThrottle();
 * ```
 *
 * @packageDocumentation
 */

export {
  AccessPolicy,
  Accounts,
  type AccessDecision,
  type AccessPolicyOptions,
  type AccountInfo,
  type AccountSpec,
  type AuthenticatedAccount,
} from './accounts.js';
export {
  AccessDeniedError,
  AccountConfigError,
  MalformedCredentialsError,
  type CredentialsProblem,
} from './errors.js';
export { hashPassword, isPasswordHash, verifyPassword } from './password.js';
export {
  ANONYMOUS,
  MECHANISMS,
  PLAIN,
  encodePlainResponse,
  parsePlainResponse,
  type Mechanism,
  type PlainCredentials,
} from './sasl.js';
export { LoginThrottle, type LoginThrottleOptions } from './throttle.js';
