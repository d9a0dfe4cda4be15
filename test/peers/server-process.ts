/**
 * A server in a child process, for tests that kill it: publishes argv[2] under "/",
 * binds argv[3], prints "ready <endpoint>" once it serves.
 */
import { Server } from '../../src/server/index.js'

const [location, endpoint] = process.argv.slice(2)
const server = new Server({ heartbeat: 200 })
await server.publish(location!, '/')
console.log(`ready ${await server.bind(endpoint!)}`)
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)))
