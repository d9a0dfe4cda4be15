/**
 * What a client mirroring the tree (ICANHAZ option TREE=1) applies besides file content:
 * directories (operation DIRECTORY), symbolic links (SYMLINK), and files offered by digest
 * (ATTRIBUTES): new attributes of the file at that name, or a file made from content the inbox
 * holds elsewhere (held-content.ts), else asked for again. Also how such a client lets go of
 * what the server deleted: links, whole directories, and big files kept a while in the trash
 * in case they come back renamed.
 *
 * @packageDocumentation
 */
import { constants, copyFileSync, lstatSync, mkdirSync, renameSync } from 'node:fs'
import { dirname } from 'node:path'

import { digestFileSync } from '../fs/digest.js'
import { announcedDigest } from '../protocol/extensions.js'
import { lstatOrUndefinedSync } from '../fs/inbox.js'
import { unlinkQuietly } from '../fs/io.js'
import { type InboxPlacement, moveIntoPlace } from '../fs/placement.js'
import { placeDirectory, placeSymlink, removeEntry, setAttributes } from '../fs/tree.js'
import { type FileHeaders, HEADER, parseFileHeaders } from '../protocol/extensions.js'
import { DIRECTORY, SYMLINK, type Cheezburger } from '../protocol/generated/fmq_msg.js'
import { InboxWriteError } from './errors.js'
import { deltaBits } from './delta.js'
import { HeldContent, type HeldSource } from './held-content.js'
import type { WriterHost } from './inbox-writer.js'
import type { PartialFiles } from './partial-file.js'

/**
 * Octets of a file offered by digest (ATTRIBUTES) that the manifest does not know, read at
 * once to tell whether it is that content (a few milliseconds); a bigger one is asked for again.
 */
const VERIFY_IN_PLACE_MAX = 8 * 1024 * 1024

export class TreeWriter {
  /** Content the inbox holds by digest, and the trash of deleted files a rename may bring back. */
  private readonly held: HeldContent

  constructor(
    private readonly host: WriterHost,
    private readonly placement: InboxPlacement,
    private readonly partials: PartialFiles,
  ) {
    this.held = new HeldContent(
      () => host.paths(),
      () => host.durable()?.manifest,
    )
  }

  /**
   * A directory, a symbolic link, or a file offered by digest. A file whose content is nowhere
   * in the inbox (the manifest says what each file holds) is asked for again.
   */
  apply(message: Cheezburger): void {
    // In a folder mirrored without owner write (0555), as rsync does: opened for the time of it.
    this.placement.writable(message.filename, () => this.applyAt(message))
  }

  private applyAt(message: Cheezburger): void {
    const name = message.filename
    const announced = parseFileHeaders(message.headers)
    const path = this.placement.parents(name)
    const virtualPath = this.placement.target(name, false).virtualPath
    if (message.operation === DIRECTORY) {
      placeDirectory(path, announced.mode ?? 0o755)
      return
    }
    if (message.operation === SYMLINK) {
      const target = message.headers.get(HEADER.TARGET)
      if (target === undefined || target === '' || target.includes('\0')) {
        this.host.error(new InboxWriteError(name, { cause: new Error('a symbolic link without a target') }))
        return
      }
      placeSymlink(path, target, announced.mtimeMs)
      this.host.durable()?.manifest.forget(virtualPath.slice(1))
      return
    }
    // ATTRIBUTES: the file at this name is that content (a chmod, a touch): attributes only.
    // Known so from the manifest; a small file it does not know (put there by another tool,
    // as rsync or cp would) is read to tell.
    const manifest = this.host.durable()?.manifest
    const held = manifest?.get(virtualPath.slice(1))
    const stats = lstatOrUndefinedSync(path)
    const algorithm = this.host.digestAlgorithm()
    const digest = announcedDigest(announced, algorithm)
    const heldHere =
      stats?.isFile() === true &&
      announced.size === stats.size &&
      digest !== undefined &&
      (held !== undefined && held.size === stats.size && held.mtimeMs === stats.mtimeMs && held.digest.length === digest.length
        ? held.digest === digest
        : digestFileSync(path, VERIFY_IN_PLACE_MAX, algorithm) === digest)
    if (heldHere) {
      setAttributes(path, announced.mode, announced.mtimeMs)
      manifest?.record({ path: virtualPath.slice(1), size: stats.size, mtimeMs: lstatSync(path).mtimeMs, digest })
      return
    }
    // Elsewhere (renamed, copied): made from it; nowhere: the file comes again, with its content.
    const source = this.held.find(digest, announced.size)
    // Asked again with the signature of the version here, if any (DELTA): a same-size change judged by stat comes so.
    if (source === undefined || !this.makeFrom(name, virtualPath, source, announced, digest!)) this.host.reask(virtualPath, this.host.delta?.() === true ? deltaBits(stats, announced.size) : undefined)
  }

  /** Lets go of a file or a whole directory the server deleted, big files into the trash. */
  discard(path: string, relativePath: string, directory: boolean): void {
    if (!directory) {
      this.held.discard(path, relativePath)
      return
    }
    this.held.discardTree(path, relativePath)
    removeEntry(path)
  }

  /** Removes a link the server deleted; false when the name is not one the inbox may hold. */
  removeLink(name: string): boolean {
    try {
      const path = this.placement.parents(name)
      if (lstatOrUndefinedSync(path)?.isSymbolicLink() !== true) return false
      this.placement.writable(name, () => removeEntry(path))
      this.host.deleted({ virtualPath: this.placement.target(name, false).virtualPath, path })
      return true
    } catch {
      return false
    }
  }

  /** A SYNCED mark: what the trash has held long enough goes. */
  synced(): void {
    this.held.empty()
  }

  /** Makes a file from content the inbox holds, as a received file is made: complete under a partial name first. */
  private makeFrom(name: string, virtualPath: string, source: HeldSource, announced: FileHeaders, digest: string): boolean {
    const tempPath = this.partials.tempPath(name)
    try {
      mkdirSync(dirname(tempPath), { recursive: true, mode: 0o700 })
      if (source.trashed) renameSync(source.path, tempPath)
      else copyFileSync(source.path, tempPath, constants.COPYFILE_FICLONE)
      setAttributes(tempPath, announced.mode, announced.mtimeMs)
      const finalPath = this.placement.writable(name, () => {
        const path = this.placement.destination(name, this.host.tree())
        moveIntoPlace(tempPath, path, announced.mtimeMs)
        return path
      })
      const { size, mtimeMs } = lstatSync(finalPath)
      this.host.durable()?.manifest.record({ path: virtualPath.slice(1), size, mtimeMs, digest })
      this.host.delivered({ virtualPath, path: finalPath, size, sent: 0 })
      return true
    } catch {
      unlinkQuietly(tempPath)
      return false
    }
  }
}
