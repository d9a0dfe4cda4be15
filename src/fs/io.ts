/**
 * Small synchronous file helpers for writers whose per-file cost is a few syscalls (each
 * asynchronous call would be a threadpool round trip): a positioned write that finishes, the
 * clean-up calls that must not hide the error being handled, and telling a full disk.
 *
 * @packageDocumentation
 */
import { closeSync, unlinkSync, writeSync } from 'node:fs';

/** Writes all of `chunk` at `position`: one writeSync may write less than it was given. */
export function writeAll(fd: number, chunk: Buffer, position: number): void {
  let written = 0;
  while (written < chunk.length) {
    written += writeSync(fd, chunk, written, chunk.length - written, position + written);
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // closed already
  }
}

export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

/** ENOSPC or EDQUOT when `error` (or its cause) says the disk is full, else undefined. */
export function outOfSpace(error: unknown): 'ENOSPC' | 'EDQUOT' | undefined {
  for (let at = error; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return code;
  }
  return undefined;
}
