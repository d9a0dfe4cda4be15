#!/usr/bin/env node
/**
 * The `fmq` command line: commander wiring only; the library does the work and
 * throws typed errors, which this file turns into one line on stderr and an exit code.
 */
import { readFileSync } from 'node:fs'
import { Command } from 'commander'

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }

const program = new Command('fmq')
  .description('FileMQ: publish folders over ZeroMQ and mirror them on other hosts')
  .version(pkg.version)
  .addHelpText('after', '\nThe server, client and track commands arrive with the next issues; see README.md.')

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`fmq: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
