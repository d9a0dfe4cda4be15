/**
 * `npm run test:fuzz`: the long fuzz run. Runs every test/fuzz/*.test.ts one file at a time,
 * each for FMQ_FUZZ_SECONDS (default 300), with one seed for all (FMQ_FUZZ_SEED, else a fresh
 * one, printed first so the run can be repeated). Failing inputs are written as regression
 * fixtures to FMQ_FUZZ_SAVE (default test/fixtures/fuzz/found/): review one, say in its
 * comment what it broke, and commit it; the replay test picks it up.
 *
 * @example
 * ```sh
 * npm run test:fuzz                                  # 300 s per file
 * FMQ_FUZZ_SECONDS=60 FMQ_FUZZ_SEED=42 npm run test:fuzz
 * ```
 */
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..', '..')
const files = readdirSync(here)
  .filter((name) => name.endsWith('.test.ts'))
  .sort()
  .map((name) => relative(root, join(here, name)))

const env = {
  ...process.env,
  FMQ_FUZZ_SECONDS: process.env.FMQ_FUZZ_SECONDS || '300',
  FMQ_FUZZ_SEED: process.env.FMQ_FUZZ_SEED || String(Math.floor(Math.random() * 0x100000000)),
  FMQ_FUZZ_SAVE: process.env.FMQ_FUZZ_SAVE || join('test', 'fixtures', 'fuzz', 'found'),
}
console.log(`fuzzing ${files.join(', ')} for ${env.FMQ_FUZZ_SECONDS} s each, seed ${env.FMQ_FUZZ_SEED}; failing inputs go to ${env.FMQ_FUZZ_SAVE}/`)

// One file at a time: the server fuzzer measures memory and throughput, which a codec run beside it would skew.
// A test that hangs still fails: twice the fuzzing time, and 15 minutes for the rest.
const timeout = Number(env.FMQ_FUZZ_SECONDS) * 2000 + 900_000
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${timeout}`, '--test-reporter=spec', ...files], {
  cwd: root,
  env,
  stdio: 'inherit',
})
child.on('exit', (code, signal) => {
  if (signal !== null) console.error(`fuzz run ended by ${signal}`)
  console.log(`seed ${env.FMQ_FUZZ_SEED}`)
  process.exit(code ?? 1)
})
