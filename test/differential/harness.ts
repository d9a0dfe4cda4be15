/**
 * One differential run: a seeded random tree in SRC, then random steps of changes to it;
 * after each, `rsync -a --delete SRC/ REF/` (the oracle) and fmq (a driver of drivers.ts)
 * must leave DST exactly as REF. The first step where they differ ends the run with a
 * report: the seed, the step, its changes, the first differences (path, what rsync has,
 * what fmq has) and fmq's last output. Failing runs are kept as replay fixtures in
 * test/fixtures/differential/, which test/integration/differential.test.ts replays.
 *
 * Environment: FMQ_DIFF_ASPECTS (`all`, the default, or `files`: regular files only, for
 * debugging), FMQ_DIFF_TIMEOUT_MS (how long a step may take to sync, default 20000),
 * FMQ_DIFF_KEEP=1 (keep the folders of a failing run, and say where).
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { apply, type Change, ChangePlanner, describeChange, OUTSIDE_FILE } from './changes.js'
import { driver, type Mode, MODES } from './drivers.js'
import { type Aspects, compare, describeEntry, type Difference, formatDifferences, snapshot, type Snapshot } from './snapshot.js'

export const FIXTURES = fileURLToPath(new URL('../fixtures/differential/', import.meta.url))

/** A failing run to replay: `mode` and `seed` make the same tree and changes, `steps` of them. */
export interface DifferentialFixture {
  comment: string
  mode: Mode
  seed: number
  steps: number
  aspects?: Aspects
  /** Found in a run as a user who is not root (RunOptions.asUser). */
  asUser?: boolean
}

export interface RunOptions {
  mode: Mode
  seed: number
  steps: number
  aspects: Aspects
  /** How long each step may take to sync. */
  timeoutMs: number
  /** Progress lines (one per step), if wanted. */
  log?: (line: string) => void
  /**
   * As a user who is not root (`nobody` when the run is root's: SRC is given to that user
   * after each change, fmq and rsync run as that user): mode bits then matter, and the
   * changes include folders and files without owner write (0555, 0500, 0444, 0400).
   */
  asUser?: boolean
}

export interface RunResult {
  mode: Mode
  seed: number
  /** Steps that synced (the first tree is step 0). */
  passed: number
  failure?: { step: number; report: string; differences: Difference[] }
}

export function timeoutFromEnv(fallback = 20_000): number {
  const raw = process.env.FMQ_DIFF_TIMEOUT_MS
  const ms = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isInteger(ms) || ms <= 0) throw new Error(`FMQ_DIFF_TIMEOUT_MS must be a positive integer, got ${raw}`)
  return ms
}

/** The command that replays a run, for reports. */
export const replayCommand = (mode: Mode, seed: number, steps: number, aspects: Aspects, asUser = false): string =>
  `${aspects === 'all' ? '' : `FMQ_DIFF_ASPECTS=${aspects} `}npm run test:differential -- --mode ${mode} --seed ${seed} --steps ${steps}${asUser ? ' --as-user' : ''}`

/** The user a run `asUser` runs as: `nobody` for root, else this process's own user (undefined: no switch). */
export const NOBODY = 65534
export const userOf = (asUser: boolean | undefined): number | undefined => (asUser === true && process.getuid?.() === 0 ? NOBODY : undefined)

const run = promisify(execFile)

/**
 * The oracle. `--checksum` only because rsync's quick check (same size, same mtime in whole
 * seconds) would skip a file rewritten within the second it was last copied in; what rsync
 * makes of the tree is otherwise that of `rsync -a --delete`.
 */
async function rsync(src: string, ref: string, uid: number | undefined): Promise<void> {
  const args = ['-a', '--delete', '--checksum', `${src}/`, `${ref}/`]
  if (uid === undefined) await run('rsync', args)
  else await run('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'rsync', ...args])
}

/** A snapshot of a folder fmq may be writing to: a file that vanishes between listing and lstat means look again. */
async function settledSnapshot(root: string): Promise<Snapshot> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await snapshot(root)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 20) throw error
    }
  }
}

export async function runSeed(options: RunOptions): Promise<RunResult> {
  const { mode, seed, steps, aspects, timeoutMs } = options
  const uid = userOf(options.asUser)
  const work = await mkdtemp(join(tmpdir(), 'fmq-diff-'))
  const src = join(work, 'src')
  const ref = join(work, 'ref')
  const dst = join(work, 'dst')
  await mkdir(src)
  await writeFile(join(work, OUTSIDE_FILE), 'beside the tree\n')
  // The user makes DST, REF and fmq's state here; SRC is theirs, as a user's own tree is.
  if (uid !== undefined) await chmod(work, 0o777)
  const own = async (): Promise<void> => {
    if (uid !== undefined) await run('chown', ['-hR', `${uid}:${uid}`, src])
  }
  await own()
  const planner = new ChangePlanner(seed, aspects, options.asUser === true)
  const history: string[][] = []
  const change = async (changes: Change[], log: string[]): Promise<void> => {
    for (const one of changes) {
      log.push(describeChange(one))
      await apply(src, one)
      await own()
    }
  }

  const fmq = driver(mode, { src, dst, work, ...(uid === undefined ? {} : { uid }) })
  let step = 0
  let keep = false
  try {
    const first: string[] = []
    for (let i = planner.initialActions(); i > 0; i--) await change(planner.initial(await snapshot(src, { hashes: false })), first)
    history.push(first)
    let mark = fmq.mark()
    /** What rsync made of the previous step, and whether this step restarted a side. */
    let previous: Awaited<ReturnType<typeof snapshot>> | undefined
    let restarted = false
    await fmq.start()
    for (; step <= steps; step++) {
      if (step > 0) {
        const plan = planner.step()
        const log: string[] = []
        mark = fmq.mark()
        for (let i = 0; i < plan.actions; i++) await change(planner.next(await snapshot(src, { hashes: false })), log)
        restarted = plan.restart !== undefined
        if (plan.restart !== undefined && mode !== 'once') {
          log.push(`restart ${mode === 'track' ? 'track' : plan.restart === 'server' ? 'server' : 'client'} (kill -TERM, start again)`)
          await fmq.restart(plan.restart)
        }
        history.push(log)
      }
      await rsync(src, ref, uid)
      const expected = await snapshot(ref)
      const oracle = compare(await snapshot(src), expected, aspects)
      if (oracle.length > 0) throw new Error(`rsync's copy differs from SRC itself (a fault of this test, not of fmq):\n${formatDifferences(oracle, 20, ['SRC', 'rsync'])}`)
      const matches = async (): Promise<boolean> => compare(expected, await settledSnapshot(dst), aspects).length === 0
      // A step whose changes cancel out (a file created and deleted again before it settled)
      // leaves fmq nothing to send, so no new synced mark need come: DST must just still match.
      const noop = step > 0 && restarted === false && previous !== undefined && compare(previous, expected, aspects).length === 0
      previous = expected
      const outcome = noop && (await matches()) ? { ok: true, why: '' } : await fmq.sync(mark, matches, timeoutMs)
      if (!outcome.ok) {
        const differences = compare(expected, await settledSnapshot(dst), aspects)
        keep = process.env.FMQ_DIFF_KEEP === '1'
        return { mode, seed, passed: step, failure: { step, differences, report: report(options, step, outcome.why, differences, history, fmq.tail(), keep ? work : undefined) } }
      }
      options.log?.(`${mode} seed ${seed}: step ${step} synced (${expected.size} entries)`)
    }
    return { mode, seed, passed: steps + 1 }
  } catch (error) {
    const why = `the run broke off: ${(error as Error).message}`
    return { mode, seed, passed: step, failure: { step, differences: [], report: report(options, step, why, [], history, fmq.tail(), undefined) } }
  } finally {
    await fmq.close()
    // Folders without owner write (a run as a user) are opened first: rm alone would be refused.
    if (!keep && options.asUser === true) await run('chmod', ['-R', 'u+rwX', work]).catch(() => undefined)
    if (!keep) await rm(work, { recursive: true, force: true })
  }
}

function report(options: RunOptions, step: number, why: string, differences: Difference[], history: string[][], tail: string, kept: string | undefined): string {
  const { mode, seed, steps, aspects } = options
  const as = options.asUser === true ? `, as ${userOf(true) === undefined ? 'this user' : 'nobody'}` : ''
  const lines = [`differential test FAILED: mode ${mode}, seed ${seed}, step ${step} of ${steps}, aspects ${aspects}${as}`, `  ${why}`]
  history.slice(-3).forEach((changes, i, shown) => {
    const at = history.length - shown.length + i
    lines.push(`  ${at === 0 ? 'step 0 (the first tree)' : `step ${at}`}:`, ...changes.map((line) => `    ${line}`))
  })
  if (differences.length > 0) lines.push(`  ${differences.length} path(s) differ (what differs; then what rsync has, what fmq has):`, formatDifferences(differences))
  else if (why.startsWith('the run broke off')) lines.push('  (no comparison made)')
  else lines.push('  DST is now as rsync has it (it was not when fmq said it was synced, or fmq never said so)')
  if (tail !== '') lines.push("  fmq's last output:", tail)
  if (kept !== undefined) lines.push(`  folders kept in ${kept} (src, ref, dst)`)
  lines.push(`  replay: ${replayCommand(mode, seed, step, aspects, options.asUser)}`)
  return lines.join('\n')
}

/** Every fixture of test/fixtures/differential/, by file name. */
export async function loadFixtures(): Promise<Array<{ file: string; fixture: DifferentialFixture }>> {
  if (!existsSync(FIXTURES)) return []
  const out: Array<{ file: string; fixture: DifferentialFixture }> = []
  for (const name of (await readdir(FIXTURES)).filter((n) => n.endsWith('.json')).sort()) {
    const fixture = JSON.parse(await readFile(join(FIXTURES, name), 'utf8')) as DifferentialFixture
    if (!MODES.includes(fixture.mode) || !Number.isInteger(fixture.seed) || !Number.isInteger(fixture.steps)) throw new Error(`${name}: not a differential fixture (mode, seed, steps)`)
    out.push({ file: name, fixture })
  }
  return out
}

/** Writes a failing run as a fixture (`MODE-seed-SEED.json`) unless one for that mode and seed exists; returns the file, or undefined. */
export async function saveFixture(result: RunResult, aspects: Aspects, folder = FIXTURES, asUser = false): Promise<string | undefined> {
  if (result.failure === undefined) return undefined
  const file = join(folder, `${result.mode}-seed-${result.seed}${aspects === 'all' ? '' : `-${aspects}`}${asUser ? '-user' : ''}.json`)
  if (existsSync(file)) return undefined
  const first = result.failure.differences[0]
  const what =
    first === undefined
      ? result.failure.report.split('\n')[1]!.trim()
      : `${JSON.stringify(first.path)}: ${first.fields.join(', ')} (rsync: ${describeEntry(first.expected)}; fmq: ${describeEntry(first.actual)})`
  const fixture: DifferentialFixture = {
    comment: `Found by npm run test:differential on ${new Date().toISOString().slice(0, 10)}; failed at step ${result.failure.step}: ${what}`,
    mode: result.mode,
    seed: result.seed,
    steps: result.failure.step,
    ...(aspects === 'all' ? {} : { aspects }),
    ...(asUser ? { asUser } : {}),
  }
  await mkdir(folder, { recursive: true })
  await writeFile(file, JSON.stringify(fixture, null, 2) + '\n')
  return file
}
