#!/usr/bin/env node
/**
 * The `fmq` command: for `fmq track`, the server half's thread is started before anything else
 * loads, so that its start-up (a thread, the server's modules) runs beside the loading of the
 * rest rather than after it; then the command line itself (./program.ts).
 */
import { prewarmServerThread } from '../prewarm.js'

const [command, ...rest] = process.argv.slice(2)
if (command === 'track' && !rest.some((arg) => arg === '--help' || arg === '-h')) prewarmServerThread()
await import('./program.js')
