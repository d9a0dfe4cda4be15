#!/usr/bin/env node
/**
 * Builds build/fmq_native.node from native/list_folder.c, and build/fmq_allocator.node from
 * native/allocator.c, with the system's C compiler and
 * Node's own headers (no download, no node-gyp). Optional: when there is no compiler or no
 * headers, fmq uses its JavaScript folder listing, and this says so and exits 0.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const addons = [
  { source: join(root, 'native', 'list_folder.c'), target: join(root, 'build', 'fmq_native.node') },
  { source: join(root, 'native', 'allocator.c'), target: join(root, 'build', 'fmq_allocator.node') },
]

const headers = [process.env.FMQ_NODE_INCLUDE, resolve(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find(
  (dir) => dir !== undefined && existsSync(join(dir, 'node_api.h')),
)
const skip = (why) => {
  console.warn(`fmq: the native folder listing is not built (${why}); the JavaScript listing is used`)
  process.exit(0)
}
if (process.platform !== 'linux') skip(`${process.platform}: it is written for Linux`)
if (headers === undefined) skip("no node_api.h (Node's headers) found; set FMQ_NODE_INCLUDE to their folder")
for (const { source, target } of addons) {
  if (existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs) continue
  mkdirSync(dirname(target), { recursive: true })
  const compiler = process.env.CC ?? 'cc'
  const built = spawnSync(compiler, ['-O2', '-std=gnu11', '-Wall', '-Werror', '-shared', '-fPIC', `-I${headers}`, source, '-o', target], { stdio: ['ignore', 'inherit', 'inherit'] })
  if (built.error !== undefined) skip(`${compiler}: ${built.error.message}`)
  if (built.status !== 0) skip(`${compiler} exited with ${built.status}`)
}
