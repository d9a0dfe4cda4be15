/**
 * One server start-up over a tree, in a fresh process as a restart is (the tree section
 * runs it as `node --import tsx tree-child.ts ROOT STATE`): the wall time of publish() plus
 * whenIndexed(), octets and files hashed, octets this process read (rchar of /proc/self/io,
 * the index database included) and resident memory, printed as one JSON line. The same
 * measurement as test/bench/index.ts, with the index kept in STATE instead of the tree.
 */
import { readFileSync } from 'node:fs'

import { Server } from '../../../src/server/index.js'

export interface Startup {
  ms: number
  bytesHashed: number
  filesHashed: number
  published: number
  rchar: number | undefined
  rss: number
}

/** Octets read by this process so far (Linux), undefined elsewhere. */
function rchar(): number | undefined {
  try {
    const line = /^rchar:\s*(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))
    return line ? Number(line[1]) : undefined
  } catch {
    return undefined
  }
}

const [root, state] = process.argv.slice(2)
if (root === undefined || state === undefined) throw new Error('usage: tree-child.ts ROOT STATE')
const server = new Server({ stateDir: state })
server.on('error', (error) => console.error(`server error: ${error.message}`))
const readBefore = rchar()
const start = process.hrtime.bigint()
await server.publish(root, '/')
await server.publisher.whenIndexed()
const ms = Number(process.hrtime.bigint() - start) / 1e6
const readAfter = rchar()
const result: Startup = {
  ms,
  bytesHashed: server.stats.bytesHashed,
  filesHashed: server.stats.filesHashed,
  published: server.publisher.size,
  rchar: readBefore === undefined || readAfter === undefined ? undefined : readAfter - readBefore,
  rss: process.memoryUsage().rss,
}
await server.close()
console.log(JSON.stringify(result))
