/**
 * `npm run test:differential`: the long differential run against rsync. Runs seed after
 * seed, each in every mode (`track`, `server-client`, `once`, or those given by --mode),
 * until the time is up; prints each failure's report and saves it as a replay fixture in
 * test/fixtures/differential/ (one per mode and seed; --no-save to keep the tree clean);
 * ends with the counts, and exit code 1 if anything failed.
 *
 * @example
 * ```sh
 * npm run test:differential -- --minutes 30                 # random seeds for 30 minutes
 * npm run test:differential -- --minutes 5 --seed 1000      # seeds 1000, 1001, ...
 * npm run test:differential -- --mode track --seed 7 --steps 3   # one run: replay a failure
 * npm run test:differential -- --minutes 10 --as-user          # as nobody (when root): read-only folders too
 * FMQ_DIFF_ASPECTS=files npm run test:differential -- --minutes 2  # regular files only (debugging)
 * ```
 */
import { parseArgs } from 'node:util'

import { type Mode, MODES } from './drivers.js'
import { replayCommand, runSeed, saveFixture, timeoutFromEnv } from './harness.js'
import { aspectsFromEnv } from './snapshot.js'

const USAGE = `Usage: npm run test:differential -- [options]

  --minutes <n>   run seed after seed for this long (default 30; with --seed alone, that one seed)
  --seed <n>      the first seed (default: a random one)
  --steps <n>     changes per seed (default 30)
  --mode <m>      track, server-client or once; repeat for several (default: all three)
  --no-save       keep failing seeds out of test/fixtures/differential/
  --as-user       run fmq and rsync as nobody (when root): read-only folders and files too
  -v, --verbose   say each step
  -h, --help      this text

Exit status: 0 when every step synced, 1 when one failed, 2 for an option it does not know.`

function parsed(): ReturnType<typeof parse> {
  try {
    return parse()
  } catch (error) {
    // An unknown or malformed option: said in one line, with where to look, not as a stack.
    console.error(`test:differential: ${(error as Error).message} (--help for the options)`)
    process.exit(2)
  }
}

function parse() {
  return parseArgs({
    options: {
      minutes: { type: 'string' },
      seed: { type: 'string' },
      steps: { type: 'string', default: '30' },
      mode: { type: 'string', multiple: true },
      'no-save': { type: 'boolean', default: false },
      // As a user who is not root (nobody, when run by root): read-only folders and files too.
      'as-user': { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
}

const { values } = parsed()
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}

function integer(raw: string, what: string, min: number): number {
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new Error(`${what} must be an integer of at least ${min}, got ${raw}`)
  return value
}

const aspects = aspectsFromEnv()
const timeoutMs = timeoutFromEnv()
const steps = integer(values.steps, '--steps', 0)
const modes = (values.mode ?? [...MODES]) as Mode[]
for (const mode of modes) if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')}, got ${mode}`)
// A seed without minutes is one round (a replay); otherwise rounds until the time is up.
const once = values.seed !== undefined && values.minutes === undefined
const minutes = values.minutes === undefined ? 30 : Number(values.minutes)
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`)
const firstSeed = values.seed === undefined ? (Date.now() ^ (process.pid << 12)) >>> 0 : integer(values.seed, '--seed', 0)
const deadline = Date.now() + minutes * 60_000

console.log(
  `differential run against rsync: modes ${modes.join(', ')}, ${steps} steps a seed, aspects ${aspects}${values['as-user'] ? ', as a user who is not root' : ''}, ` +
    (once ? `seed ${firstSeed}` : `seeds from ${firstSeed} for ${minutes} min`),
)
let seeds = 0
let stepsDone = 0
const failures: string[] = []
for (let seed = firstSeed; once ? seed === firstSeed : Date.now() < deadline; seed = (seed + 1) >>> 0) {
  seeds++
  for (const mode of modes) {
    if (!once && Date.now() >= deadline) break
    const asUser = values['as-user']
    const result = await runSeed({ mode, seed, steps, aspects, timeoutMs, asUser, ...(values.verbose ? { log: (line: string) => console.log(line) } : {}) })
    stepsDone += result.passed
    if (result.failure === undefined) {
      console.log(`ok   ${mode} seed ${seed}: ${steps} steps`)
      continue
    }
    console.log(result.failure.report)
    const saved = values['no-save'] ? undefined : await saveFixture(result, aspects, undefined, asUser)
    failures.push(`${mode} seed ${seed} step ${result.failure.step}${saved === undefined ? '' : ` (saved ${saved})`}: ${replayCommand(mode, seed, result.failure.step, aspects, asUser)}`)
  }
}
console.log(`\n${seeds} seed(s), ${stepsDone} step(s) synced, ${failures.length} failure(s)`)
for (const line of failures) console.log(`  ${line}`)
process.exit(failures.length === 0 ? 0 : 1)
