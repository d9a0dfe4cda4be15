'use strict'
/**
 * Copied by scripts/bundle.mjs into dist/bundle/ as load-bundle.js: runs one of the CommonJS
 * bundles there (fmq.bundle.js, server-thread.bundle.js) compiled with a V8 code cache kept
 * beside it, so that a start deserializes the compiled bundle instead of parsing and compiling
 * half a megabyte of JavaScript (10 ms instead of 18 ms here, BENCHMARKS.md).
 *
 * The cache is `<bundle>.<key>.cache`, the key a hash of what V8 checks a cache against
 * (Node's version, its flags) and of the bundle's size and mtime (V8 checks the source by its
 * length only). It is written when the process or thread ends, once, if it was missing or
 * V8 refused it: `npm run build` writes the one for `fmq` run as a command (its #! flags);
 * another way of running it (`node dist/bundle/fmq.js`, a test) writes its own the first time.
 * Written to a temporary name then renamed, so processes starting at once never read half of
 * one; where the folder is not writable, nothing is cached and nothing else changes.
 */
const { closeSync, fstatSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs')
const Module = require('node:module')
const { join } = require('node:path')
const vm = require('node:vm')
const { threadId } = require('node:worker_threads')

/** FNV-1a, 32 bits, in hex: a file name's worth of the key. */
function fnv1a(text) {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return hash.toString(16).padStart(8, '0')
}

function save(script, path) {
  const temporary = `${path}.${process.pid}.${threadId}.tmp`
  try {
    writeFileSync(temporary, script.createCachedData())
    renameSync(temporary, path)
  } catch {
    // Not writable, or full: run uncached next time too.
    rmSync(temporary, { force: true })
  }
}

/** Runs `dist/bundle/<name>` as a CommonJS module. */
module.exports = function loadBundle(name) {
  const file = join(__dirname, name)
  const fd = openSync(file, 'r')
  let source
  let stats
  try {
    stats = fstatSync(fd)
    source = readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
  // A #! line is a script's first line only: the module wrapper goes before it.
  if (source.startsWith('#!')) source = `//${source.slice(2)}`
  const key = fnv1a([process.version, process.arch, process.execArgv.join(' '), stats.size, stats.mtimeMs].join('\0'))
  const cacheFile = `${file}.${key}.cache`
  let cachedData
  try {
    cachedData = readFileSync(cacheFile)
  } catch {
    // None yet.
  }
  const script = new vm.Script(Module.wrap(source), {
    filename: file,
    cachedData,
    importModuleDynamically: vm.constants === undefined ? undefined : vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  if (cachedData === undefined || script.cachedDataRejected) process.once('exit', () => save(script, cacheFile))
  const bundle = new Module(file, module)
  bundle.filename = file
  bundle.paths = Module._nodeModulePaths(__dirname)
  script.runInThisContext().call(bundle.exports, bundle.exports, Module.createRequire(file), bundle, file, __dirname)
}
