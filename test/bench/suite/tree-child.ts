/**
 * One server start-up over a tree, in a fresh process as a restart is (the tree section
 * runs it as `node --import tsx tree-child.ts ROOT STATE`), printed as one JSON line; the
 * index is kept in STATE, never in the cached tree.
 */
import { measureStartup } from './startup.js'

export type { Startup } from './startup.js'

const [root, state] = process.argv.slice(2)
if (root === undefined || state === undefined) throw new Error('usage: tree-child.ts ROOT STATE')
console.log(JSON.stringify(await measureStartup(root, state)))
