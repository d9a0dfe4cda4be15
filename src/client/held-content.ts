/**
 * Content the inbox already holds, found by its SHA-1, so that a file renamed or copied at the
 * source (offered by digest: operation ATTRIBUTES, TREE=1) is made locally instead of sent
 * again. Two places hold it: inbox files the manifest knows, as long as their size and mtime
 * are those recorded; and the trash, `<stateDir>/trash/<sha1>`, where files deleted at the
 * source wait a while, because a rename arrives as a deletion and a new file, in either order
 * and not always in one burst (the server may hash the new name first): a trashed file goes
 * at the first SYNCED mark once it has been there {@link TRASH_KEEP_MS}.
 *
 * @packageDocumentation
 */
import { mkdirSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'

import { lstatOrUndefinedSync } from '../fs/inbox.js'
import { REFER_MIN } from '../protocol/extensions.js'
import type { Manifest } from './manifest.js'

/** Where content is: a trashed file (moved into place) or an inbox file (copied). */
export interface HeldSource {
  readonly path: string
  readonly trashed: boolean
}

const TRASH_DIR = 'trash'
/** How long deleted content is kept at least, for a rename to find it. */
export const TRASH_KEEP_MS = 60_000

export class HeldContent {
  /** When each file in the trash was put there, by SHA-1 (files found there from an earlier run are not in it). */
  private readonly trashed = new Map<string, number>()

  constructor(
    private readonly paths: () => { inbox: string; stateDir: string },
    private readonly manifest: () => Manifest | undefined,
  ) {}

  /**
   * Deletes an inbox file, keeping its content in the trash when the manifest vouches for it
   * (size and mtime as recorded) and it is big enough to be worth finding again.
   */
  discard(path: string, relativePath: string): void {
    if (!this.trash(path, relativePath)) unlinkSync(path)
  }

  /** {@link discard} for every file under a directory about to be removed. */
  discardTree(dir: string, relativeDir: string): void {
    let entries
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries) {
      const path = join(dir, entry.name)
      const relativePath = `${relativeDir}/${entry.name}`
      if (entry.isDirectory()) this.discardTree(path, relativePath)
      else if (entry.isFile()) this.trash(path, relativePath)
    }
  }

  /** A source of this content, or undefined. */
  find(sha1: string | undefined, size: number | undefined): HeldSource | undefined {
    if (sha1 === undefined || size === undefined) return undefined
    const trashed = join(this.paths().stateDir, TRASH_DIR, sha1)
    if (lstatOrUndefinedSync(trashed)?.size === size) {
      this.trashed.delete(sha1)
      return { path: trashed, trashed: true }
    }
    const { inbox } = this.paths()
    for (const row of this.manifest()?.withDigest(sha1) ?? []) {
      if (row.size !== size) continue
      const path = join(inbox, ...row.path.split('/'))
      const stats = lstatOrUndefinedSync(path)
      if (stats?.isFile() === true && stats.size === row.size && stats.mtimeMs === row.mtimeMs) return { path, trashed: false }
    }
    return undefined
  }

  /** Forgets what the trash has held for {@link TRASH_KEEP_MS} (at each SYNCED mark), and what an earlier run left there. */
  empty(now = Date.now()): void {
    const dir = join(this.paths().stateDir, TRASH_DIR)
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      this.trashed.clear()
      return
    }
    for (const name of names) {
      const since = this.trashed.get(name)
      if (since !== undefined && now - since < TRASH_KEEP_MS) continue
      this.trashed.delete(name)
      rmSync(join(dir, name), { recursive: true, force: true })
    }
  }

  private trash(path: string, relativePath: string): boolean {
    const row = this.manifest()?.get(relativePath)
    if (row === undefined || row.size < REFER_MIN) return false
    const stats = lstatOrUndefinedSync(path)
    if (stats?.isFile() !== true || stats.size !== row.size || stats.mtimeMs !== row.mtimeMs) return false
    const dir = join(this.paths().stateDir, TRASH_DIR)
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      renameSync(path, join(dir, row.digest))
      this.trashed.set(row.digest, Date.now())
      return true
    } catch {
      return false // another file system, say: simply deleted
    }
  }
}
