#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * The `fmq` command: for `fmq track`, the server half's thread is started before anything else
 * loads, so that its start-up (a thread, the server's modules) runs beside the loading of the
 * rest rather than after it; then the command line itself (./program.ts).
 *
 * The `#!` line gives V8 a young generation of 1 MiB semi-spaces instead of up to 16 MiB: a
 * client receiving 20,000 small files peaked at 114 MiB of RSS, 96 MiB with it, at the same
 * CPU time; a track rerun over 100,000 files 145 → 111 MiB, no slower (the objects a file
 * costs die young either way). Only a flag on the command line sizes the heap; `node
 * dist/bundle/fmq.js` runs with V8's default. In the bundle, the #! line is the entry's
 * (scripts/bundle.mjs writes it). The track's server thread sets its own
 * (track/prewarm.ts).
 */
import { prewarmServerThread } from '../prewarm.js'

const [command, ...rest] = process.argv.slice(2)
if (command === 'track' && !rest.some((arg) => arg === '--help' || arg === '-h')) prewarmServerThread()
// Not awaited: the bundle (scripts/bundle.mjs) is CommonJS, where there is no top-level await.
void import('./program.js')
