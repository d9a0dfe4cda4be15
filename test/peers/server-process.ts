/**
 * A server in a child process, for tests that kill it or measure its memory: publishes
 * argv[2] under "/", binds argv[3], prints "ready <endpoint>" once it serves. Server options
 * may be given as JSON in FMQ_TEST_SERVER_OPTIONS (heartbeat defaults to 200 ms).
 */
import { Server } from '../../src/server/index.js'

const [location, endpoint] = process.argv.slice(2)
const options = JSON.parse(process.env.FMQ_TEST_SERVER_OPTIONS ?? '{}') as ConstructorParameters<typeof Server>[0]
const server = new Server({ heartbeat: 200, ...options })
await server.publish(location!, '/')
console.log(`ready ${await server.bind(endpoint!)}`)
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)))
// A line "stats" on stdin is answered with "stats <JSON of server.stats>" (tests that count resent octets).
process.stdin.setEncoding('utf8')
process.stdin.on('data', (text: string) => {
  if (!text.split('\n').includes('stats')) return
  const { contentBytes, files, bytesHashed, filesHashed } = server.stats
  console.log(`stats ${JSON.stringify({ contentBytes, files, bytesHashed, filesHashed })}`)
})
