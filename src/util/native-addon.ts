/**
 * Loading one of fmq's optional native addons (build/*.node, made from native/*.c by
 * `npm run build`): from the sources (src/<dir>/), the compiled tree (dist/src/<dir>/) or the
 * bundle (dist/bundle/), build/ is two or three folders up. Null when the addon is not built,
 * does not load here, or FMQ_NATIVE=0 asks for the JavaScript versions.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * The addon `build/<file>`, or null (the caller then does without: its JavaScript version,
 * or the system's defaults). Callers keep what it returns; it loads anew at each call.
 *
 * @example
 * ```ts
 * const delta = loadNativeAddon<DeltaAddon>('fmq_delta.node') // null: the JavaScript loop
 * ```
 */
export function loadNativeAddon<T>(file: string): T | null {
  if (process.env.FMQ_NATIVE === '0') return null
  const require = createRequire(import.meta.url)
  for (const up of ['../../build/', '../../../build/']) {
    try {
      return require(fileURLToPath(new URL(up + file, import.meta.url))) as T
    } catch {
      // Not there: the next place, else none.
    }
  }
  return null
}
