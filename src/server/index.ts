export { Server, type ServerOptions, type ServerEvents } from './server.js'
export type { PublishedFile } from './publisher.js'
