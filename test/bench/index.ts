/**
 * `npm run bench:index [-- --files N --restarts R --dir PATH]`: what the server's durable
 * index saves. Builds a tree of N small files (default 100,000), then starts a server over
 * it once (every file read and hashed) and R more times (default 3) over the unchanged tree,
 * each start in a fresh process, as a restart is. For each start: wall time of publish()
 * plus whenIndexed(), octets and files hashed, octets the process read from files (rchar of
 * /proc/self/io: the database included) and resident memory; then the median restart time.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { measureStartup, type Startup } from './suite/startup.js'

const FILES_PER_DIRECTORY = 100

type Start = Startup

/** Runs one start in a fresh process and returns what it measured. */
function startInChild(root: string): Promise<Start> {
  const self = fileURLToPath(import.meta.url)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, '--child', root], { stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (data: string) => (output += data))
    child.once('error', reject)
    child.once('exit', (code) => {
      const last = output.trim().split('\n').at(-1) ?? ''
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`the start failed (exit ${code}): ${output}`))
      else resolve(JSON.parse(last) as Start)
    })
  })
}

async function makeTree(root: string, files: number): Promise<{ octets: number; ms: number }> {
  const start = Date.now()
  let octets = 0
  // One file after another: the open-file limit may be low.
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${Math.floor(i / FILES_PER_DIRECTORY)}`)
    if (i % FILES_PER_DIRECTORY === 0) await mkdir(dir, { recursive: true })
    const content = randomBytes(Math.floor(Math.random() * 1024))
    await writeFile(join(dir, `f${i}.bin`), content)
    octets += content.length
  }
  return { octets, ms: Date.now() - start }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const mib = (octets: number): string => `${(octets / 1024 / 1024).toFixed(1)} MiB`
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '100000' },
      restarts: { type: 'string', default: '3' },
      dir: { type: 'string' },
      child: { type: 'string' },
    },
  })
  if (values.child !== undefined) {
    console.log(JSON.stringify(await measureStartup(values.child)))
    return
  }
  const files = Number(values.files)
  const restarts = Number(values.restarts)
  const base = values.dir ?? (await mkdtemp(join(tmpdir(), 'fmq-bench-index-')))
  const root = join(base, 'tree')
  try {
    const tree = await makeTree(root, files)
    console.log(`tree: ${files} files in ${Math.ceil(files / FILES_PER_DIRECTORY)} directories, ${mib(tree.octets)}, written in ${seconds(tree.ms)}`)
    console.log(['start', 'publish+indexed', 'bytesHashed', 'filesHashed', 'published', 'rchar', 'RSS'].map((h) => h.padEnd(16)).join(''))
    const restartTimes: number[] = []
    for (let run = 0; run <= restarts; run++) {
      const result = await startInChild(root)
      if (run > 0) restartTimes.push(result.ms)
      const row = [
        run === 0 ? 'first' : `restart ${run}`,
        seconds(result.ms),
        String(result.bytesHashed),
        String(result.filesHashed),
        String(result.published),
        result.rchar === undefined ? 'n/a' : mib(result.rchar),
        mib(result.rss),
      ]
      console.log(row.map((cell) => cell.padEnd(16)).join(''))
    }
    if (restartTimes.length > 0) console.log(`median restart: ${seconds(median(restartTimes))}`)
  } finally {
    if (values.dir === undefined) await rm(base, { recursive: true, force: true })
  }
}

await main()
