#!/usr/bin/env node
/**
 * Builds the native addons with the system's C compiler and Node's own headers (no download,
 * no node-gyp): build/fmq_native.node from native/list_folder.c (the folder listing),
 * build/fmq_delta.node from native/delta.c (delta transfer's chunking) and
 * build/fmq_allocator.node from native/allocator.c (glibc malloc's thresholds for chunk buffers),
 * build/fmq_xxh128.node from native/xxh128.c (the XXH128 digest, with Debian's libxxhash-dev).
 * Optional: when there is no compiler or no headers, fmq uses its JavaScript versions (and
 * malloc as it is), and this says so and exits 0.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ADDONS = [
  { source: 'list_folder.c', target: 'fmq_native.node', what: 'folder listing' },
  { source: 'delta.c', target: 'fmq_delta.node', what: 'delta chunking' },
  { source: 'allocator.c', target: 'fmq_allocator.node', what: 'allocator tuning', fallback: 'malloc is left as it is' },
  { source: 'xxh128.c', target: 'fmq_xxh128.node', what: 'XXH128 digest', fallback: "hash-wasm's WebAssembly one is used (Debian's libxxhash-dev provides xxhash.h)", needs: '/usr/include/xxhash.h' },
]

const headers = [process.env.FMQ_NODE_INCLUDE, resolve(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find(
  (dir) => dir !== undefined && existsSync(join(dir, 'node_api.h')),
)

for (const addon of ADDONS) {
  const source = join(root, 'native', addon.source)
  const target = join(root, 'build', addon.target)
  const skip = (why) => console.warn(`fmq: the native ${addon.what} is not built (${why}); ${addon.fallback ?? 'the JavaScript one is used'}`)
  if (process.platform !== 'linux') {
    skip(`${process.platform}: it is written for Linux`)
    continue
  }
  if (headers === undefined) {
    skip("no node_api.h (Node's headers) found; set FMQ_NODE_INCLUDE to their folder")
    continue
  }
  if (addon.needs !== undefined && !existsSync(addon.needs)) {
    skip(`no ${addon.needs}`)
    continue
  }
  if (existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs) continue
  mkdirSync(dirname(target), { recursive: true })
  const compiler = process.env.CC ?? 'cc'
  const built = spawnSync(compiler, ['-O2', '-std=gnu11', '-Wall', '-Werror', '-shared', '-fPIC', `-I${headers}`, source, '-o', target], { stdio: ['ignore', 'inherit', 'inherit'] })
  if (built.error !== undefined) skip(`${compiler}: ${built.error.message}`)
  else if (built.status !== 0) skip(`${compiler} exited with ${built.status}`)
}
