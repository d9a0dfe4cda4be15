/**
 * Checking a destination against its dataset: the same relative paths (fmq's `.fmq` state
 * folder at the top left out), the same sizes, the same SHA-1. A fast wrong answer must not
 * win, so every run's destination goes through this.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { readFile, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'

import { type Dataset, pool } from './datasets.js'

const STATE_DIR = '.fmq'

export interface Verdict {
  ok: boolean
  /** The first few differences. */
  problems: string[]
}

/** Every regular file under `root` (and anything else that is not a folder), relative, with `/`. */
async function list(root: string): Promise<string[]> {
  const found: string[] = []
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (prefix === '' && entry.name === STATE_DIR) continue
      const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`
      if (entry.isDirectory()) await walk(join(dir, entry.name), relative)
      else found.push(relative)
    }
  }
  await walk(root, '')
  return found
}

/** The SHA-1 of a file's content, in hex. */
export async function sha1File(path: string): Promise<string> {
  const hash = createHash('sha1')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function sha1Small(path: string, size: number): Promise<string> {
  return size <= 1 << 20 ? createHash('sha1').update(await readFile(path)).digest('hex') : sha1File(path)
}

/** Compares the tree at `root` with `data`. */
export async function verify(root: string, data: Dataset): Promise<Verdict> {
  const problems: string[] = []
  let present: string[]
  try {
    present = await list(root)
  } catch (error) {
    return { ok: false, problems: [`cannot list ${root}: ${(error as Error).message}`] }
  }
  const expected = new Map(data.files.map((file) => [file.path, file]))
  const extra = present.filter((path) => !expected.has(path))
  const presentSet = new Set(present)
  const missing = data.files.filter((file) => !presentSet.has(file.path))
  if (missing.length > 0) problems.push(`${missing.length} missing (${missing[0]!.path}…)`)
  if (extra.length > 0) problems.push(`${extra.length} unexpected (${extra[0]}…)`)
  const wrong = await pool(
    data.files.filter((file) => presentSet.has(file.path)),
    8,
    async (file) => {
      try {
        return (await sha1Small(join(root, file.path), file.size)) === file.sha1 ? undefined : file.path
      } catch (error) {
        return `${file.path} (${(error as Error).message})`
      }
    },
  )
  const bad = wrong.filter((path) => path !== undefined)
  if (bad.length > 0) problems.push(`${bad.length} with wrong content (${bad[0]}…)`)
  return { ok: problems.length === 0, problems }
}

/** What a timed run of a tool reports before it is judged. */
export interface Attempt {
  ms: number
  rss: Record<string, number | undefined>
  error?: string
}

/**
 * Runs `run` (`tool` writing `dst` from the cached dataset `data`) and judges it: a throw, a
 * failure it reports, a `.fmq` left in the source (fmq's state belongs in DST; it is removed)
 * or a destination that differs from `data` fails it, the reason in `error`.
 */
export async function checked<R extends Attempt>(tool: string, dst: string, data: Dataset, run: () => Promise<R>): Promise<R & { verified: boolean }> {
  let result: R
  try {
    result = await run()
  } catch (error) {
    result = { ms: Number.NaN, rss: {}, error: (error as Error).message } as R
  }
  const leftover = join(data.root, STATE_DIR)
  if (existsSync(leftover)) {
    result.error ??= `${tool} wrote ${leftover} into the source`
    await rm(leftover, { recursive: true, force: true })
  }
  if (result.error !== undefined) return { ...result, verified: false }
  const verdict = await verify(dst, data)
  if (!verdict.ok) result.error = `verification: ${verdict.problems.join('; ')}`
  return { ...result, verified: verdict.ok }
}
