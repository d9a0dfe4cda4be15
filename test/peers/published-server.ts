/**
 * A real `Server` publishing some files from a fresh temporary folder, bound on tcp: the
 * fixture of tests that talk to our server with the reference client (test/peers/reference-client.ts).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Server } from '../../src/index.js'

export interface PublishedServer {
  readonly server: Server
  readonly endpoint: string
  /** Closes the server and removes the folder. */
  close(): Promise<void>
}

/** Writes `files` (name → content) into `<tmp>/<prefix>…/src`, publishes it as `/` and binds 127.0.0.1. */
export async function publishedServer(prefix: string, files: Iterable<readonly [string, Buffer]>): Promise<PublishedServer> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await mkdir(join(dir, 'src'))
  for (const [name, content] of files) await writeFile(join(dir, 'src', name), content)
  const server = new Server({ stateDir: join(dir, 'state') })
  await server.publish(join(dir, 'src'), '/')
  const endpoint = await server.bind('tcp://127.0.0.1:*')
  return {
    server,
    endpoint,
    close: async () => {
      await server.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
