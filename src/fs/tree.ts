/**
 * What a client mirroring the tree (ICANHAZ option TREE=1) does besides writing files:
 * directories with their permission bits, symbolic links with their text, new attributes of a
 * file it holds, and the removal of a directory or link. Paths are resolved and checked by the
 * caller (inbox-writer.ts); nothing here follows a symbolic link: a link is replaced, never
 * written through.
 *
 * @packageDocumentation
 */
import { chmodSync, lutimesSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'

import { lstatOrUndefinedSync } from './inbox.js'

/**
 * The time to give utimes for an mtime in whole milliseconds (as headers carry it): half a
 * microsecond over, because ms / 1000 as a double may fall a nanosecond short and read back as
 * the millisecond before (a mirror would then differ from its source at every rerun).
 */
export function mtimeSeconds(mtimeMs: number): number {
  return mtimeMs / 1000 + 5e-7
}

/** Permission bits a mirrored entry gets: the source's, without set-id or sticky bits from a server. */
export function mirroredMode(mode: number): number {
  return mode & 0o777
}

/**
 * Makes `path` a directory with these permission bits: made if missing; whatever else held
 * the name (a file, a link) is replaced.
 */
export function placeDirectory(path: string, mode: number): void {
  const existing = lstatOrUndefinedSync(path)
  if (existing !== undefined && !existing.isDirectory()) unlinkSync(path)
  if (existing === undefined || !existing.isDirectory()) mkdirSync(path, { mode: 0o700 })
  // Exact bits, whatever the umask; a directory already there keeps its content.
  if (existing === undefined || !existing.isDirectory() || (existing.mode & 0o7777) !== mirroredMode(mode)) chmodSync(path, mirroredMode(mode))
}

/**
 * Makes `path` a symbolic link holding `target` (its text as is, wherever it points): made
 * beside the name and renamed over it, so the name is never missing; a directory that held
 * the name is removed first.
 */
export function placeSymlink(path: string, target: string, mtimeMs: number | undefined): void {
  const existing = lstatOrUndefinedSync(path)
  if (existing?.isSymbolicLink()) {
    // Nothing to do when it already says the same (a rerun).
    try {
      if (readlinkSync(path) === target) {
        if (mtimeMs !== undefined) lutimesSync(path, mtimeSeconds(mtimeMs), mtimeSeconds(mtimeMs))
        return
      }
    } catch {
      // replaced below
    }
  }
  if (existing?.isDirectory()) rmSync(path, { recursive: true, force: true })
  const sibling = join(dirname(path), `.${basename(path).slice(0, 200)}.${randomBytes(6).toString('hex')}.fmq-tmp`)
  symlinkSync(target, sibling)
  try {
    if (mtimeMs !== undefined) lutimesSync(sibling, mtimeSeconds(mtimeMs), mtimeSeconds(mtimeMs))
    renameSync(sibling, path)
  } catch (error) {
    try {
      unlinkSync(sibling)
    } catch {
      // gone already
    }
    throw error
  }
}

/** Sets a regular file's permission bits and mtime (the content is the caller's concern). */
export function setAttributes(path: string, mode: number | undefined, mtimeMs: number | undefined): void {
  if (mode !== undefined) chmodSync(path, mirroredMode(mode))
  if (mtimeMs !== undefined) utimesSync(path, new Date(), mtimeSeconds(mtimeMs))
}

/**
 * Removes what holds `path`: a file, a link (never what it points to) or a directory with all
 * under it. Returns what it was, or undefined when nothing was there.
 */
export function removeEntry(path: string): 'file' | 'dir' | 'link' | undefined {
  const existing = lstatOrUndefinedSync(path)
  if (existing === undefined) return undefined
  if (existing.isDirectory()) {
    rmSync(path, { recursive: true, force: true })
    return 'dir'
  }
  unlinkSync(path)
  return existing.isSymbolicLink() ? 'link' : 'file'
}
