/**
 * `npm run test:faults`: the fault suite at full scale (FMQ_FAULTS=long: 300 MiB trees, 12
 * client kills, longer proxy chaos), then one table of every figure the tests recorded
 * (recordFigure → FMQ_FAULT_FIGURES). Exits with the tests' exit code. FMQ_FAULTS=short
 * runs the CI-sized version instead; FMQ_FAULTS_SEED replays a run.
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseFigures } from './figures.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const files = readdirSync(here)
  .filter((name) => name.endsWith('.test.ts'))
  .sort()
  .map((name) => join('test', 'faults', name))
const scratch = mkdtempSync(join(tmpdir(), 'fmq-fault-figures-'))
const figuresFile = join(scratch, 'figures.jsonl')
const scale = process.env.FMQ_FAULTS === 'short' ? 'short' : 'long'
const started = Date.now()

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-timeout=3600000', '--test-reporter=spec', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
  env: { ...process.env, FMQ_FAULTS: scale, FMQ_FAULT_FIGURES: figuresFile },
})
const code = await new Promise<number>((resolve) => child.once('exit', (exit, signal) => resolve(exit ?? (signal === null ? 1 : 128))))

let figures: ReturnType<typeof parseFigures> = []
try {
  figures = parseFigures(readFileSync(figuresFile, 'utf8'))
} catch {
  // no test recorded anything
}
rmSync(scratch, { recursive: true, force: true })

const rows = figures.map((f) => [f.file ?? '', f.name, `${f.value}${f.unit === undefined ? '' : ` ${f.unit}`}`])
const widths = [0, 1, 2].map((i) => Math.max(['file', 'figure', 'value'][i]!.length, ...rows.map((row) => row[i]!.length)))
const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()
console.log(`\nfault figures (FMQ_FAULTS=${scale}, ${((Date.now() - started) / 1000).toFixed(0)} s${process.env.FMQ_FAULTS_SEED ? `, seed ${process.env.FMQ_FAULTS_SEED}` : ''}):`)
console.log(line(['file', 'figure', 'value']))
console.log(line(widths.map((w) => '-'.repeat(w))))
for (const row of rows) console.log(line(row))
if (rows.length === 0) console.log('(none recorded)')
process.exit(code)
