/**
 * filemq: FileMQ over ZeroMQ. The public API, an explicit list.
 *
 * @example
 * ```ts
 * import { Server } from 'filemq'
 * const server = new Server()
 * await server.publish('./photos', '/photos')
 * await server.bind('tcp://127.0.0.1:5670')
 * ```
 */
export {
  Server,
  FileChangedError,
  type ServerOptions,
  type ServerEvents,
  type ServerStats,
  type PublishedFile,
  type SkippedEntry,
  type FileDigest,
  type Deletion,
  DEFAULT_SERVER_OPTIONS,
  resolveServerOptions,
  loadServerKeys,
  InvalidServerOptionError,
  ServerConfigError,
  type ResolvedServerOptions,
  type AccessReload,
} from './server/index.js'
export { Relay, RelayConfigError, relayOptionsFromConfig, type RelayOptions } from './relay/relay.js'
export { StoreOpenError, StoreVersionError } from './store/database.js'
export { parseRate, InvalidRateError } from './client/rate.js'
export { RESUME_BLOCK, OPTION, HEADER } from './protocol/extensions.js'
export * from './client/index.js'
export { parseZpl, serializeZpl, loadZplFile, zplNode, ZplNode, ZplSyntaxError, ZplFileError } from './config/zpl.js'
export { SettingsError, ConfigWarning } from './config/reader.js'
export { MalformedMessageError, NoSignatureError, EncodeError } from './protocol/errors.js'
export { hashPassword, verifyPassword } from './security/password.js'
export { AccessDeniedError, AccountConfigError, MalformedCredentialsError } from './security/errors.js'
export {
  generateCurveKeyPair,
  loadCurveKeyPair,
  loadCurvePublicKeys,
  readCurvePublicKey,
  writeCurveKeyPair,
  curvePublicKeyOf,
  isCurveKey,
  CurveKeyError,
  CurveKeyFileNotFoundError,
  CurveKeyFileUnreadableError,
  CurveKeyFileExistsError,
  CurveKeyMismatchError,
  InsecureCurveKeyFileError,
  InvalidCurveKeyError,
  MalformedCurveKeyFileError,
  type CurveKeyPair,
  type CurveCertificate,
} from './security/curve.js'
export { lockFolder, FolderLockedError, type FolderLock, type LockOwner } from './fs/lock.js'
export { UnsafeNameError, PathOutsideInboxError, PathOutsideMountError, fsErrorWords } from './fs/errors.js'
export { PORT, VERSIONS, type ProtocolVersion } from './protocol/generated/fmq_msg.js'
export {
  StatusServer,
  parseHttpAddress,
  InvalidHttpAddressError,
  HttpListenError,
  observeServer,
  observeClient,
  observeRelay,
  observeTrack,
  type HttpAddress,
  type StatusSource,
  type ServerStatus,
  type ServerClientStatus,
  type MountStatus,
  type ClientStatus,
  type ClientServerStatus,
  type RelayStatus,
  type TrackStatus,
  type RecentEntry,
} from './observe/index.js'
export { packageVersion } from './util/version.js'
export { tuneAllocator } from './util/memory.js'
