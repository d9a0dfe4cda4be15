/**
 * The package's version, read from package.json.
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs'

let cached: string | undefined

/**
 * The version of filemq running: package.json is two levels up from src/util, three from
 * dist/src/util. `unknown` when neither is ours.
 *
 * @example
 * ```ts
 * packageVersion() // '0.1.0'
 * ```
 */
export function packageVersion(): string {
  if (cached !== undefined) return cached
  cached = 'unknown'
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'filemq' && pkg.version !== undefined) {
        cached = pkg.version
        break
      }
    } catch {
      // not this level
    }
  }
  return cached
}
