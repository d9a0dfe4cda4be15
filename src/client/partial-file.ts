/**
 * The partial file a transfer writes into, under `<stateDir>/partial/`, from its opening to the
 * moment it is renamed into place or let go: opened empty or cut back to a resume offset,
 * recorded in `client_partials` once worth resuming (partials.ts), kept on disk for a retry or
 * discarded with its row.
 *
 * @packageDocumentation
 */
import { fstatSync, ftruncateSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'

import { sha1Hex } from '../fs/digest.js'
import { closeQuietly, unlinkQuietly } from '../fs/io.js'
import type { DurableState } from './durable.js'
import { InboxWriteError } from './errors.js'
import { PARTIAL_DIR } from './options.js'

/** What the partial files need from the writer's host. */
export interface PartialFileHost {
  readonly endpoint: string
  paths(): { inbox: string; stateDir: string }
  error(error: Error): void
  durable(): DurableState | undefined
}

/** A partial file open for writing, with what the server announced of its file. */
export interface PartialFile {
  /** The name as the server sends it. */
  readonly name: string
  readonly tempPath: string
  /** The partial file, open for writing. */
  readonly fd: number
  readonly size: number | undefined
  readonly mtimeMs: number | undefined
  readonly mode: number | undefined
  /** The announced digest of the whole file (lower-case hex), SHA-1 or XXH128. */
  readonly digest: string | undefined
  /** Recorded in `client_partials`: the partial file outlives the conversation. */
  resumable: boolean
}

/** The partial files of one server. */
export class PartialFiles {
  /** The partial directory known to exist; created again if it goes. */
  private partialDir: string | undefined

  constructor(private readonly host: PartialFileHost) {}

  /** One partial file per server and name; the name is hashed so no server text reaches the path. */
  tempPath(name: string): string {
    return join(this.host.paths().stateDir, PARTIAL_DIR, `${sha1Hex(`${this.host.endpoint}\n${name}`)}.part`)
  }

  /** A new, empty partial file; the partial directory is made on first use, and again if it went. */
  open(tempPath: string, mode: number): number {
    const dir = join(this.host.paths().stateDir, PARTIAL_DIR)
    if (this.partialDir !== dir) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      this.partialDir = dir
    }
    try {
      return openSync(tempPath, 'w', mode)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      return openSync(tempPath, 'w', mode)
    }
  }

  /**
   * The partial file of `name` opened again and cut back to `offset`, where its transfer goes
   * on. A partial file that cannot be resumed goes, with its row.
   */
  resume(name: string, tempPath: string, offset: number): number {
    try {
      const fd = openSync(tempPath, 'r+')
      try {
        // Longer is fine (cut back); shorter would be a hole the kept hash knows nothing of.
        if (fstatSync(fd).size < offset) throw new Error(`the partial file is shorter than the resume offset ${offset}`)
        ftruncateSync(fd, offset)
      } catch (error) {
        closeQuietly(fd)
        throw error
      }
      return fd
    } catch (error) {
      unlinkQuietly(tempPath)
      this.forget(name)
      throw new InboxWriteError(name, { cause: error })
    }
  }

  /** Records the partial file in `client_partials`, so it outlives the conversation. */
  markResumable(file: PartialFile): void {
    file.resumable = true
    try {
      this.host.durable()?.partials.record({
        endpoint: this.host.endpoint,
        name: file.name,
        temp: file.tempPath,
        size: file.size,
        mtimeMs: file.mtimeMs,
        mode: file.mode,
        digest: file.digest,
      })
    } catch (error) {
      // Not recorded: this file cannot be resumed, it is received all the same.
      file.resumable = false
      this.host.error(new InboxWriteError(file.name, { cause: error }))
    }
  }

  /** Drops the row of `name`, if it has one. */
  forget(name: string): void {
    try {
      this.host.durable()?.partials.remove(this.host.endpoint, name)
    } catch (error) {
      this.host.error(new InboxWriteError(name, { cause: error }))
    }
  }

  /** Closes a partial file cut short and keeps it, and its row, to resume. */
  keep(file: PartialFile): void {
    closeQuietly(file.fd)
  }

  /** Closes and deletes a partial file, and forgets its row. */
  discard(file: PartialFile): void {
    closeQuietly(file.fd)
    unlinkQuietly(file.tempPath)
    if (file.resumable) this.forget(file.name)
  }
}
