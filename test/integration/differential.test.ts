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
import { describe, test } from 'node:test'

import type { Mode } from '../differential/drivers.js'
import { loadFixtures, type RunResult, runSeed, saveFixture, timeoutFromEnv } from '../differential/harness.js'
import { aspectsFromEnv } from '../differential/snapshot.js'

/**
 * CI size: a few seeds of 15 steps a mode (the `--once` mode starts a process, some 4 s, a
 * step: fewer).
 */
const RUNS: Array<{ mode: Mode; seeds: number[]; steps: number }> = [
  { mode: 'track', seeds: [1, 2], steps: 15 },
  { mode: 'server-client', seeds: [1, 2], steps: 15 },
  { mode: 'once', seeds: [3], steps: 5 },
]
const aspects = aspectsFromEnv()
const timeoutMs = timeoutFromEnv()

/** Fails with the run's report; a new failing run is saved as a fixture when FMQ_DIFF_SAVE=1. */
async function check(result: RunResult, save: boolean): Promise<void> {
  if (result.failure === undefined) return
  if (save && process.env.FMQ_DIFF_SAVE === '1') await saveFixture(result, aspects)
  assert.fail(`\n${result.failure.report}`)
}

const fixtures = await loadFixtures()

// Two runs at a time: one a core, on the 2 cores of CI.
describe('differential: DST as rsync -a --delete makes it, after every step', { concurrency: 2 }, () => {
  for (const { mode, seeds, steps } of RUNS) {
    for (const seed of seeds) {
      test(`${mode}, seed ${seed}, ${steps} steps`, async () => {
        await check(await runSeed({ mode, seed, steps, aspects, timeoutMs }), true)
      })
    }
  }
  // The replay list of test/fixtures/differential/: runs that failed once, each as it was found.
  for (const { file, fixture } of fixtures) {
    test(`replay ${file}: ${fixture.comment}`, async () => {
      await check(await runSeed({ mode: fixture.mode, seed: fixture.seed, steps: fixture.steps, aspects: fixture.aspects ?? 'all', timeoutMs }), false)
    })
  }
})
