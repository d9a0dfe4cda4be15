/**
 * The benchmark suite at a tiny scale, as a child process, so it cannot rot: every section
 * runs, every destination is verified, and the results table names every tool.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const SUITE = fileURLToPath(new URL('../bench/suite.ts', import.meta.url))

describe('npm run bench at a tiny scale', () => {
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-bench-smoke-'))
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('runs every section, verifies every destination and writes the results table', { timeout: 600_000 }, async () => {
    const out = join(dir, 'results.md')
    const child = spawn(process.execPath, ['--import', 'tsx', SUITE, '--scale', '0.005', '--rounds', '1', '--out', out, '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (data: Buffer) => (output += data.toString()))
    child.stderr.on('data', (data: Buffer) => (output += data.toString()))
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)))
    assert.equal(code, 0, output.slice(-3000))
    const table = await readFile(out, 'utf8')
    for (const tool of ['fmq-track', 'fmq-tcp', 'cp']) assert.match(table, new RegExp(`\\| ${tool} \\|`), `${tool} in the mirror table`)
    // The rerun section (500 files here): nothing sent over a finished mirror, one file after one change.
    assert.match(table, /\| fmq-track \| `fmq track --once` \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [^|]+ \| 0 \|/, 'fmq track reran and sent nothing')
    assert.match(table, /\| fmq-track \| [\d.]+ \| 1 \| [^|]+ \| yes \| ok \|/, 'fmq track sent the one changed file')
    assert.doesNotMatch(table, /FAILED/)
    const raw = JSON.parse(await readFile(out.replace(/\.md$/, '.json'), 'utf8')) as object
    assert.ok(Object.keys(raw).length > 0)
  })
})
