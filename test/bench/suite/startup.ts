/**
 * One server start-up over a tree, in this process: the wall time of publish() plus
 * whenIndexed(), octets and files hashed, octets the process read (rchar of /proc/self/io,
 * the index database included) and resident memory. Run in a fresh process for each start,
 * as a restart is (tree-child.ts for `npm run bench`, `--child` for `npm run bench:index`).
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

/** Starts a server over `root` (its index in `stateDir`, else the default `root/.fmq`) and measures it. */
export async function measureStartup(root: string, stateDir?: string): Promise<Startup> {
  const server = new Server(stateDir === undefined ? {} : { stateDir })
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
  return result
}
