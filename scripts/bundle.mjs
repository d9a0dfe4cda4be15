#!/usr/bin/env node
/**
 * Bundles the built `fmq` command (dist/src/cli/fmq.js) and the track's server thread
 * (dist/track/server-thread.js) into dist/bundle/, which is what the `fmq` bin runs.
 *
 * Why: loading about 100 of our modules and 300 of our dependencies' files through Node's
 * module loader (resolve, stat, package.json reads, one compile each) cost each process, and
 * each thread of a track, about 0.2 s of CPU at start; a track rerun over 100,000 files spends
 * under 2 s in all. One file per entry (and the chunk both share) loads in a fraction of that.
 *
 * What stays outside: the packages with native code (they load their .node files by paths of
 * their own) and whatever the sources load lazily through `createRequire` (prom-client,
 * sodium-native), which resolves from node_modules as before. The bundle sits two folders
 * below the project, as dist/src/<dir>/ files do not, so code that finds build/ or
 * package.json by a relative URL tries both depths (listing.ts, version.ts do).
 */
import { build } from 'esbuild'
import { chmodSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const outdir = join(root, 'dist', 'bundle')

rmSync(outdir, { recursive: true, force: true }) // chunks are named by content: old ones would pile up

await build({
  absWorkingDir: root,
  entryPoints: ['dist/src/cli/fmq.js', 'dist/track/server-thread.js'],
  outdir,
  entryNames: '[name]', // dist/bundle/server-thread.js: track.ts and prewarm.ts start it by that name, beside them
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['zeromq', 'better-sqlite3', 'sodium-native', '@node-rs/xxhash', 'prom-client'],
  // hash-wasm's ES module build, not its UMD one (package.json "main"): bundled, it then keeps
  // the one algorithm we use (XXH3-128) instead of all thirty, 268 KiB of base64 that every
  // thread compiled at start-up.
  alias: { 'hash-wasm': 'hash-wasm/dist/index.esm.js' },
  // Bundled CommonJS dependencies call require() for Node's own modules: give ESM one.
  banner: { js: "import { createRequire as __fmqRequire } from 'node:module'; const require = __fmqRequire(import.meta.url);" },
  // Smaller to read and compile at every start (each thread compiles its chunks); names are kept,
  // so stack traces and error names read as in the sources.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  legalComments: 'none',
})
chmodSync(join(outdir, 'fmq.js'), 0o755)
