export { Server, type ServerOptions, type ServerEvents, type ServerStats } from './server.js'
export { FileChangedError, type Deletion, type FileDigest, type PublishedFile, type SkippedEntry } from './publisher.js'
