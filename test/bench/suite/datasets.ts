/**
 * The benchmark datasets: deterministic (AES-256-CTR keystream under a fixed key, one IV per
 * path, so incompressible and the same on every machine), every mtime fixed, cached in the
 * work directory under name and scale. A stamp file beside each tree, written last, holds
 * its manifest (paths, sizes, SHA-1): a rerun finds it and skips generation, and the
 * digests are computed only once, while writing.
 *
 * @packageDocumentation
 */
import { createCipheriv, createHash } from 'node:crypto'
import { mkdir, open, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

const KEY = createHash('sha256').update('fmq-bench dataset key v1').digest()
/** Every file and folder of a dataset has this mtime. */
export const FIXED_MTIME = new Date('2020-01-01T00:00:00Z')
const CHUNK = 4 * 1024 * 1024
/** Bump when the content or layout changes, so caches are regenerated. */
const FORMAT = 1

export interface FileEntry {
  /** Relative path with `/` separators. */
  path: string
  size: number
  sha1: string
}

export interface Dataset {
  name: string
  root: string
  files: FileEntry[]
  bytes: number
  /** Folders with nothing in them (relative, `/` separators). */
  emptyDirs: string[]
}

/** How a dataset is laid out: file i's path and size, and any empty folders. */
export interface DatasetSpec {
  name: string
  files: number
  path(i: number): string
  size(i: number): number
  emptyDirs?: readonly string[]
}

const MiB = 1024 * 1024
const scaled = (count: number, scale: number): number => Math.max(1, Math.round(count * scale))
const spread = (files: number, dirs: number, prefix: string) => (i: number) =>
  `d${String(i % Math.min(dirs, files)).padStart(3, '0')}/${prefix}${String(i).padStart(6, '0')}.bin`

/** A: one big file (1 GiB at scale 1). */
export const bigFile = (scale: number): DatasetSpec => ({
  name: 'A',
  files: 1,
  path: () => 'big.bin',
  size: () => Math.max(1, Math.round(1024 * MiB * scale)),
})

/** B: 1,024 files of 1 MiB in 8 folders. */
export const mediumFiles = (scale: number, count = 1024, name = 'B'): DatasetSpec => {
  const files = scaled(count, scale)
  return { name, files, path: spread(files, 8, 'm'), size: () => MiB }
}

/** C: 20,000 files of 4 KiB in 100 folders. */
export const smallFiles = (scale: number): DatasetSpec => {
  const files = scaled(20_000, scale)
  return { name: 'C', files, path: spread(files, 100, 's'), size: () => 4096 }
}

/** T: a tree of 100,000 files of 0 to 1,023 octets, 100 per folder (the tree section). */
export const tree = (scale: number): DatasetSpec => {
  const files = scaled(100_000, scale)
  return {
    name: 'T',
    files,
    path: (i) => `d${String(Math.floor(i / 100)).padStart(4, '0')}/t${String(i).padStart(6, '0')}.bin`,
    size: (i) => createHash('sha1').update(`size ${i}`).digest().readUInt16BE(0) % 1024,
  }
}

/**
 * R: 100,000 files of 200 to 4,295 octets, 100 per folder, the folders two deep (100 under
 * each of ten), and an empty folder for every thousand files (the rerun section).
 */
export const rerunTree = (scale: number): DatasetSpec => {
  const files = scaled(100_000, scale)
  const pad = (value: number, width: number): string => String(value).padStart(width, '0')
  const top = (i: number): string => `r${pad(Math.floor(i / 10_000), 2)}`
  return {
    name: 'R',
    files,
    path: (i) => `${top(i)}/d${pad(Math.floor(i / 100) % 100, 2)}/f${pad(i, 6)}.dat`,
    size: (i) => 200 + (createHash('sha1').update(`rerun size ${i}`).digest().readUInt32BE(0) % 4096),
    emptyDirs: Array.from({ length: Math.max(1, Math.round(files / 1000)) }, (_, k) => `${top(Math.min(k * 1000, files - 1))}/e${pad(k, 3)}`),
  }
}

/** The deterministic content stream of one file. */
function keystream(path: string): (length: number) => Buffer {
  const iv = createHash('sha256').update(path).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-256-ctr', KEY, iv)
  let zeros = Buffer.alloc(0)
  return (length) => {
    if (zeros.length < length) zeros = Buffer.alloc(length)
    return cipher.update(zeros.subarray(0, length))
  }
}

/** The first `length` octets of a file's content (for the latency section's small files). */
export function content(path: string, length: number): Buffer {
  return keystream(path)(length)
}

async function writeOne(root: string, path: string, size: number): Promise<FileEntry> {
  const file = join(root, path)
  const next = keystream(path)
  const hash = createHash('sha1')
  if (size <= CHUNK) {
    const data = next(size)
    hash.update(data)
    await writeFile(file, data)
  } else {
    const handle = await open(file, 'w')
    try {
      for (let done = 0; done < size; ) {
        const data = next(Math.min(CHUNK, size - done))
        hash.update(data)
        await handle.write(data)
        done += data.length
      }
    } finally {
      await handle.close()
    }
  }
  await utimes(file, FIXED_MTIME, FIXED_MTIME)
  return { path, size, sha1: hash.digest('hex') }
}

/** Runs `work` over `items` with at most `width` at once, keeping the order of results. */
export async function pool<T, R>(items: readonly T[], width: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await work(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane))
  return results
}

/** The dataset, from the cache when its stamp is there and its files have the right sizes. */
export async function dataset(dir: string, spec: DatasetSpec, scale: number, log: (line: string) => void): Promise<Dataset> {
  const id = `${spec.name}-${spec.files}x-s${scale}`
  const root = join(dir, 'datasets', id)
  const stamp = `${root}.stamp.json`
  try {
    const cached = JSON.parse(await readFile(stamp, 'utf8')) as { format: number; files: FileEntry[] }
    if (cached.format === FORMAT && cached.files.length === spec.files) {
      const sizes = await pool(cached.files, 32, async (entry) => (await stat(join(root, entry.path))).size === entry.size)
      const dirs = await pool(spec.emptyDirs ?? [], 32, async (path) => (await stat(join(root, path))).isDirectory())
      if (sizes.every(Boolean) && dirs.every(Boolean)) return describe(spec, root, cached.files)
    }
    log(`dataset ${id}: cache is stale, generating again`)
  } catch {
    // no cache yet
  }
  const start = Date.now()
  await rm(stamp, { force: true })
  await rm(root, { recursive: true, force: true })
  const paths = Array.from({ length: spec.files }, (_, i) => spec.path(i))
  const folders = new Set<string>()
  for (let folder of [...paths.map((path) => dirname(path)), ...(spec.emptyDirs ?? [])]) {
    for (; folder !== '.' && !folders.has(folder); folder = dirname(folder)) folders.add(folder)
  }
  for (const folder of folders) await mkdir(join(root, folder), { recursive: true })
  await mkdir(root, { recursive: true })
  const files = await pool(paths, 16, (path, i) => writeOne(root, path, spec.size(i)))
  for (const folder of [...folders, '.']) await utimes(join(root, folder), FIXED_MTIME, FIXED_MTIME)
  await writeFile(stamp, JSON.stringify({ format: FORMAT, files }))
  const result = describe(spec, root, files)
  log(`dataset ${id}: ${files.length} file${files.length === 1 ? '' : 's'}, ${(result.bytes / MiB).toFixed(1)} MiB generated in ${((Date.now() - start) / 1000).toFixed(1)} s`)
  return result
}

function describe(spec: DatasetSpec, root: string, files: FileEntry[]): Dataset {
  return { name: spec.name, root, files, bytes: files.reduce((sum, file) => sum + file.size, 0), emptyDirs: [...(spec.emptyDirs ?? [])] }
}
