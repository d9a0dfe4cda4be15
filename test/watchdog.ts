/**
 * A watchdog for one test file's process, loaded by `npm test` (`--import`): a test that runs
 * past its budget, or a file whose tests all ended but whose process stays alive, is reported
 * by name with what keeps the process alive, and the file fails then — not 15 minutes later
 * with nothing said but "timed out". Only in the child that runs a file (NODE_TEST_CONTEXT is
 * set there); the runner itself is left alone.
 */
import { after, beforeEach } from 'node:test'

/** The longest a single test may run (the slowest in CI takes about a minute). */
const TEST_BUDGET_MS = Number(process.env.FMQ_TEST_BUDGET_MS ?? 300_000)
/** How long a file's process may stay alive after its last test. */
const EXIT_BUDGET_MS = 60_000

function report(what: string): never {
  const resources = process.getActiveResourcesInfo().filter((name) => name !== 'TTYWrap')
  process.stderr.write(`watchdog: ${what}; still active: ${resources.join(', ') || 'nothing'}\n`)
  process.exit(1)
}

if (process.env.NODE_TEST_CONTEXT !== undefined) {
  let current: { name: string; since: number } | undefined
  beforeEach((t) => {
    current = { name: t.name, since: Date.now() }
  })
  const timer = setInterval(() => {
    if (current !== undefined && Date.now() - current.since > TEST_BUDGET_MS) {
      report(`the test "${current.name}" has run for more than ${TEST_BUDGET_MS / 1000} s`)
    }
  }, 5_000)
  timer.unref()
  after(() => {
    current = undefined
    // Unref'd: a process that ends as it should is not held by this.
    setTimeout(() => report(`every test of this file ended ${EXIT_BUDGET_MS / 1000} s ago and the process is still alive`), EXIT_BUDGET_MS).unref()
  })
}
