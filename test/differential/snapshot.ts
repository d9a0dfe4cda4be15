/**
 * A folder as the differential test compares it: every entry under a root, walked with
 * lstat (links are never followed), by relative path: its type, permission bits, mtime,
 * size, SHA-256 and link target. Two snapshots compare entry by entry into a list of
 * differences that says, per path, what the oracle (rsync) has and what fmq has.
 *
 * Compared: types; permission bits of files and folders; mtimes of regular files to the
 * millisecond (less than 1 ms apart: rsync keeps nanoseconds, fmq milliseconds); sizes
 * and content; link targets.
 * Not compared: owners, folder and link mtimes, the mode of links (always 777 on Linux),
 * the root itself (its mode is the caller's), and the `.fmq` state folder at the top.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'

export type EntryType = 'file' | 'dir' | 'symlink' | 'other'

export interface Entry {
  type: EntryType
  /** Permission bits (mode & 0o7777). */
  mode: number
  /** Microseconds since the epoch (the nanosecond stat, truncated). */
  mtimeUs: number
  size: number
  /** Regular files only. */
  sha256?: string
  /** Symbolic links only: the target as written. */
  target?: string
}

/** Relative path (with `/`) → entry, in code-point order of the paths. */
export type Snapshot = Map<string, Entry>

/**
 * What a run changes and compares, for debugging one thing at a time: `all` (the default,
 * what the test is), `files` (regular files only, plain names: content, mtime, mode), or
 * `content` (as `files`, without chmod and touch).
 */
export const ASPECTS = ['all', 'files', 'content'] as const
export type Aspects = (typeof ASPECTS)[number]

/** FMQ_DIFF_ASPECTS, checked. */
export function aspectsFromEnv(): Aspects {
  const raw = process.env.FMQ_DIFF_ASPECTS
  if (raw === undefined || raw === '') return 'all'
  if ((ASPECTS as readonly string[]).includes(raw)) return raw as Aspects
  throw new Error(`FMQ_DIFF_ASPECTS must be one of ${ASPECTS.join(', ')}, got ${JSON.stringify(raw)}`)
}

/** Folders named so at the top of a tree are fmq's state, never part of the mirror. */
export const STATE_FOLDER = '.fmq'

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Every entry under `root` (not `root` itself); with `hashes: false` content is not read (enough to plan changes). */
export async function snapshot(root: string, options: { hashes?: boolean } = {}): Promise<Snapshot> {
  const entries: Array<[string, Entry]> = []
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? root : join(root, rel))).sort()
    for (const name of names) {
      if (rel === '' && name === STATE_FOLDER) continue
      const path = rel === '' ? name : `${rel}/${name}`
      const full = join(root, path)
      const info = await lstat(full, { bigint: true })
      const type: EntryType = info.isFile() ? 'file' : info.isDirectory() ? 'dir' : info.isSymbolicLink() ? 'symlink' : 'other'
      const entry: Entry = { type, mode: Number(info.mode & 0o7777n), mtimeUs: Number(info.mtimeNs / 1000n), size: Number(info.size) }
      if (type === 'file' && options.hashes !== false) entry.sha256 = await sha256(full)
      if (type === 'symlink') entry.target = await readlink(full)
      entries.push([path, entry])
      if (type === 'dir') await walk(path)
    }
  }
  await walk('')
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return new Map(entries)
}

/** One path on which the two trees disagree. */
export interface Difference {
  path: string
  /** The fields that differ (`missing`, `extra`, `type`, `mode`, `mtime`, `size`, `content`, `target`). */
  fields: string[]
  expected: Entry | undefined
  actual: Entry | undefined
}

/**
 * mtimes agree to the millisecond when less than 1 ms apart: fmq carries milliseconds, and a
 * time set from a float in Node lands up to a microsecond below the millisecond it names
 * (libuv truncates seconds × 10⁶), so 0.518 s is written as 0.517999 s.
 */
const MTIME_TOLERANCE_US = 1000

/** The fields of one entry that the comparison looks at, by type, each with its test. */
function fieldsOf(type: EntryType): Array<[string, (a: Entry, b: Entry) => boolean]> {
  const mode = ['mode', (a: Entry, b: Entry) => a.mode === b.mode] as [string, (a: Entry, b: Entry) => boolean]
  switch (type) {
    case 'file':
      return [
        mode,
        ['mtime', (a, b) => Math.abs(a.mtimeUs - b.mtimeUs) < MTIME_TOLERANCE_US],
        ['size', (a, b) => a.size === b.size],
        ['content', (a, b) => a.sha256 === b.sha256],
      ]
    case 'dir':
    case 'other':
      return [mode]
    case 'symlink':
      return [['target', (a, b) => a.target === b.target]]
  }
}

/** How `actual` differs from `expected`, path by path; unless aspects are `all`, only regular files (of either side) count. */
export function compare(expected: Snapshot, actual: Snapshot, aspects: Aspects = 'all'): Difference[] {
  const paths = [...new Set([...expected.keys(), ...actual.keys()])].sort()
  const out: Difference[] = []
  for (const path of paths) {
    const want = expected.get(path)
    const have = actual.get(path)
    if (aspects !== 'all' && want?.type !== 'file' && have?.type !== 'file') continue
    if (want === undefined || have === undefined) {
      out.push({ path, fields: [want === undefined ? 'extra' : 'missing'], expected: want, actual: have })
      continue
    }
    if (want.type !== have.type) {
      out.push({ path, fields: ['type'], expected: want, actual: have })
      continue
    }
    const fields = fieldsOf(want.type)
      .filter(([, same]) => !same(want, have))
      .map(([field]) => field)
    if (fields.length > 0) out.push({ path, fields, expected: want, actual: have })
  }
  return out
}

/** An entry in a few words: `file 0644 mtime=2026-…Z size=12 sha256=1a2b3c4d`, `dir 0750`, `symlink -> a/b`, `(none)`. */
export function describeEntry(entry: Entry | undefined): string {
  if (entry === undefined) return '(none)'
  const mode = entry.mode.toString(8).padStart(4, '0')
  switch (entry.type) {
    case 'file':
      return `file ${mode} mtime=${new Date(Math.floor(entry.mtimeUs / 1000)).toISOString().replace('Z', String(entry.mtimeUs % 1000).padStart(3, '0'))}Z size=${entry.size} sha256=${entry.sha256?.slice(0, 12) ?? '?'}`
    case 'dir':
      return `dir ${mode}`
    case 'symlink':
      return `symlink -> ${JSON.stringify(entry.target)}`
    case 'other':
      return `other ${mode}`
  }
}

/** The first `most` differences as lines: the path (JSON-quoted: names may hold spaces, tabs, newlines), what differs, the expected side (rsync's), the actual one (fmq's). */
export function formatDifferences(differences: readonly Difference[], most = 20, names: [string, string] = ['rsync', 'fmq']): string {
  const width = Math.max(...names.map((name) => name.length)) + 1
  const lines = differences.slice(0, most).flatMap(({ path, fields, expected, actual }) => [
    `  ${JSON.stringify(path)}: ${fields.join(', ')}`,
    `      ${`${names[0]}:`.padEnd(width)} ${describeEntry(expected)}`,
    `      ${`${names[1]}:`.padEnd(width)} ${describeEntry(actual)}`,
  ])
  if (differences.length > most) lines.push(`  ... and ${differences.length - most} more`)
  return lines.join('\n')
}
