/**
 * sodium-native, loaded at its first use: a process that never hashes or checks a password
 * and never derives a CURVE key (a plain `fmq track`, a worker thread serving anonymous
 * clients) does not pay for loading the native library at start.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module'

import type Sodium from 'sodium-native'

let loaded: typeof Sodium | undefined

/** The sodium-native module. */
export function sodium(): typeof Sodium {
  loaded ??= createRequire(import.meta.url)('sodium-native') as typeof Sodium
  return loaded
}
