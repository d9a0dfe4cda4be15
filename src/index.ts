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
export { Server, type ServerOptions, type ServerEvents, type PublishedFile } from './server/index.js'
export * from './client/index.js'
export { parseZpl, serializeZpl, loadZplFile, zplNode, ZplNode, ZplSyntaxError, ZplFileError } from './config/zpl.js'
export { MalformedMessageError, NoSignatureError, EncodeError } from './protocol/errors.js'
export { hashPassword, verifyPassword } from './security/password.js'
export { AccessDeniedError, AccountConfigError, MalformedCredentialsError } from './security/errors.js'
export { UnsafeNameError, PathOutsideInboxError, PathOutsideMountError } from './fs/errors.js'
export { PORT, VERSIONS, type ProtocolVersion } from './protocol/generated/fmq_msg.js'
