/**
 * fmq against rsync, differentially: seeded random trees and random steps of changes
 * (files, folders, modes, mtimes, links, renames, odd names; test/differential/changes.ts),
 * after each of which DST must be exactly what `rsync -a --delete SRC/ REF/` makes of REF:
 * types, permission bits, file mtimes to the millisecond, content, link targets. Three ways
 * of running fmq, as real processes: `fmq track` live, `fmq server` + `fmq client --resync
 * --mirror` live (both restarted with SIGTERM at random steps), and `fmq track --once` run
 * again after each step. Then every replay fixture of test/fixtures/differential/.
 *
 * A failure prints the seed, the step, its changes and the first differing paths (what rsync
 * has, what fmq has) and how to replay it. The long run is `npm run test:differential`;
 * FMQ_DIFF_SAVE=1 also saves failures here as fixtures.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, test } from 'node:test'

import type { Mode } from '../differential/drivers.js'
import { loadFixtures, type RunResult, runSeed, saveFixture, timeoutFromEnv } from '../differential/harness.js'
import { aspectsFromEnv } from '../differential/snapshot.js'

/**
 * CI size: a few seeds of 15 steps a mode (the `--once` mode starts a process, some 4 s, a
 * step: fewer).
 */
const RUNS: Array<{ mode: Mode; seeds: number[]; steps: number; asUser?: boolean }> = [
  { mode: 'track', seeds: [1, 2], steps: 15 },
  { mode: 'server-client', seeds: [1, 2], steps: 15 },
  { mode: 'once', seeds: [3], steps: 5 },
  // As a user who is not root (nobody, when CI is root): folders and files without owner write.
  { mode: 'track', seeds: [4], steps: 15, asUser: true },
  { mode: 'server-client', seeds: [5], steps: 15, asUser: true },
]
const aspects = aspectsFromEnv()
const timeoutMs = timeoutFromEnv()
/** Root runs as nobody through setpriv. */
const userSkip = (() => {
  if (process.getuid?.() !== 0) return false
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' })
    return false
  } catch {
    return 'needs setpriv to run as a user who is not root'
  }
})()

/** Fails with the run's report; a new failing run is saved as a fixture when FMQ_DIFF_SAVE=1. */
async function check(result: RunResult, save: boolean, asUser = false): Promise<void> {
  if (result.failure === undefined) return
  if (save && process.env.FMQ_DIFF_SAVE === '1') await saveFixture(result, aspects, undefined, asUser)
  assert.fail(`\n${result.failure.report}`)
}

const fixtures = await loadFixtures()

// Two runs at a time: one a core, on the 2 cores of CI.
describe('differential: DST as rsync -a --delete makes it, after every step', { concurrency: 2 }, () => {
  for (const { mode, seeds, steps, asUser = false } of RUNS) {
    for (const seed of seeds) {
      test(`${mode}, seed ${seed}, ${steps} steps${asUser ? ', as a user who is not root' : ''}`, { skip: asUser ? userSkip : false }, async () => {
        await check(await runSeed({ mode, seed, steps, aspects, timeoutMs, asUser }), true, asUser)
      })
    }
  }
  // The replay list of test/fixtures/differential/: runs that failed once, each as it was found.
  for (const { file, fixture } of fixtures) {
    test(`replay ${file}: ${fixture.comment}`, { skip: fixture.asUser === true ? userSkip : false }, async () => {
      const asUser = fixture.asUser === true
      await check(await runSeed({ mode: fixture.mode, seed: fixture.seed, steps: fixture.steps, aspects: fixture.aspects ?? 'all', timeoutMs, asUser }), false, asUser)
    })
  }
})
