/**
 * `npm run bench [-- --scale F --rounds N --only LIST --tools LIST --out FILE --dir PATH]`:
 * fmq against cp and rsync, in the same run, on the same machine.
 *
 * Sections (--only): mirror (datasets A, B, C into an empty destination), latency (one
 * change at a time through `fmq track`), fanout (one server, ten clients; one rsync daemon,
 * ten pulls), resume (a client killed halfway through dataset A), tree (server start-up over
 * 100,000 files, cold and warm), rerun (a second run over a finished mirror of 100,000 small
 * files, then one changed file), delta (a large file changed in place, appended to, shifted by an
 * insertion; fmq's delta transfer against rsync's). Tools (--tools): fmq-track, fmq-tcp, cp, rsync.
 *
 * The CLI is built first and run as the `fmq` command is (package.json's bin, the bundle, by its #! line),
 * so timings are not tsx's and the process has the settings the command gives it.
 * Every destination is verified (paths, sizes, SHA-1); a run that fails verification or
 * crashes is reported FAILED and the suite exits 1. Results go to --out (Markdown) and the
 * same name with .json (every raw per-round number), and the tables to stdout.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { delta } from './suite/delta.js'
import { fanout } from './suite/fanout.js'
import { latency } from './suite/latency.js'
import { mirror } from './suite/mirror.js'
import { atExit, killAll } from './suite/proc.js'
import { rerun } from './suite/rerun.js'
import { resume } from './suite/resume.js'
import { ensureRsync } from './suite/rsyncd.js'
import { type Context, type SectionResult, type Tool, TOOLS } from './suite/stats.js'
import { treeStartup } from './suite/tree.js'

const SECTIONS = {
  mirror,
  latency,
  fanout,
  resume,
  tree: treeStartup,
  rerun,
  delta,
} as const satisfies Record<string, (ctx: Context) => Promise<SectionResult>>
type Section = keyof typeof SECTIONS

const HELP = `Usage: npm run bench -- [options]

  --scale <f>      multiply file counts and the big file's size (default 1; at least 1 file each)
  --rounds <n>     rounds per section (default 5; fanout runs at most 3)
  --datasets <list> mirror: datasets, comma-separated (default A,B,C)
  --clients <list>  fanout: receivers at once, comma-separated, one table each (default 10; e.g. 10,50)
  --only <list>    sections, comma-separated: ${Object.keys(SECTIONS).join(',')}
  --tools <list>   tools, comma-separated: ${TOOLS.join(',')}
  --out <file>     Markdown results (default bench-results.md; raw numbers in the same name .json)
  --dir <path>     dataset cache and scratch space (default ${join(tmpdir(), 'fmq-bench')})
  -h, --help       this text

Exit status: 0 when every run verified, 1 when a run failed or crashed, 2 on a usage error.`

const REPO = fileURLToPath(new URL('../..', import.meta.url))

function usage(message: string): never {
  console.error(`bench: ${message} (--help for the options)`)
  process.exit(2)
}

function list<T extends string>(value: string, allowed: readonly T[], what: string): Set<T> {
  const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '')
  for (const item of items) if (!allowed.includes(item as T)) usage(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`)
  return new Set(items as T[])
}

function machine(rsync: string | undefined): string {
  let model = 'unknown CPU'
  try {
    model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model
  } catch {
    // not Linux
  }
  return [
    model,
    `${cpus().length} cores`,
    `${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM`,
    `node ${process.version}`,
    rsync ?? 'rsync not installed',
    new Date().toISOString(),
  ].join(', ')
}

async function main(): Promise<number> {
  const { values } = (() => {
    try {
      return parseArgs({
        options: {
          scale: { type: 'string', default: '1' },
          rounds: { type: 'string', default: '5' },
          clients: { type: 'string', default: '10' },
          datasets: { type: 'string', default: 'A,B,C' },
          only: { type: 'string', default: Object.keys(SECTIONS).join(',') },
          tools: { type: 'string', default: TOOLS.join(',') },
          out: { type: 'string', default: 'bench-results.md' },
          dir: { type: 'string', default: join(tmpdir(), 'fmq-bench') },
          help: { type: 'boolean', short: 'h', default: false },
        },
      })
    } catch (error) {
      return usage((error as Error).message)
    }
  })()
  if (values.help) {
    console.log(HELP)
    return 0
  }
  const scale = Number(values.scale)
  const rounds = Number(values.rounds)
  if (!(scale > 0)) usage(`--scale must be a positive number, not "${values.scale}"`)
  if (!Number.isInteger(rounds) || rounds < 1) usage(`--rounds must be a whole number ≥ 1, not "${values.rounds}"`)
  const clients = values.clients.split(',').map((item) => Number(item.trim()))
  if (clients.some((count) => !Number.isInteger(count) || count < 1)) usage(`--clients must list whole numbers ≥ 1, not "${values.clients}"`)
  const datasets = list(values.datasets, ['A', 'B', 'C'], 'dataset')
  const sections = list(values.only, Object.keys(SECTIONS) as Section[], 'section')
  const tools = list<Tool>(values.tools, TOOLS, 'tool')
  const out = resolve(values.out)
  const jsonOut = out.replace(/\.md$/, '') + '.json'
  const dir = resolve(values.dir)
  const log = (line: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`)

  log('building the CLI (npm run build)')
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO, stdio: 'inherit' })
  if (build.status !== 0) usage('the build failed')
  const needsRsync = tools.has('rsync') && (sections.has('mirror') || sections.has('fanout') || sections.has('rerun') || sections.has('delta'))
  const rsync = needsRsync ? ensureRsync(log) : undefined
  await mkdir(dir, { recursive: true })
  const work = await mkdtemp(join(dir, 'work-'))
  // Interrupted (Ctrl-C) or crashed: the scratch folder goes anyway; the dataset cache stays.
  atExit(() => rmSync(work, { recursive: true, force: true }))
  const ctx: Context = { repo: REPO, cli: join(REPO, (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: { fmq: string } }).bin.fmq), dir, work, scale, rounds, tools, rsync, log, clients, datasets: [...datasets] }

  const results: SectionResult[] = []
  let failures = 0
  try {
    for (const name of Object.keys(SECTIONS) as Section[]) {
      if (!sections.has(name)) continue
      log(`section ${name}`)
      try {
        const result = await SECTIONS[name](ctx)
        results.push(result)
        failures += result.failures
      } catch (error) {
        log(`section ${name} CRASHED: ${(error as Error).stack ?? String(error)}`)
        results.push({ name, markdown: `## ${name}\n\nCRASHED: ${(error as Error).message}`, raw: { error: (error as Error).message }, failures: 1 })
        failures++
      }
    }
  } finally {
    killAll()
    await rm(work, { recursive: true, force: true })
  }

  const host = machine(rsync)
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim()
  const header = ['# fmq benchmarks', '', `Machine: ${host}`, '', `Command: \`${command}\``, '']
  const markdown = [...header, ...results.flatMap((result) => [result.markdown, '']), failures > 0 ? `**${failures} run(s) FAILED.**\n` : ''].join('\n')
  await writeFile(out, markdown)
  await writeFile(
    jsonOut,
    `${JSON.stringify({ machine: host, command, scale, rounds, failures, sections: Object.fromEntries(results.map((r) => [r.name, r.raw])) }, null, 2)}\n`,
  )
  console.log(`\n${markdown}`)
  log(`results in ${out} and ${jsonOut}${failures > 0 ? `; ${failures} run(s) FAILED` : ''}`)
  return failures > 0 ? 1 : 0
}

process.exitCode = await main()
