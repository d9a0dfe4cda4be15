/**
 * The layering, read from the import lines: src/config/ (ZPL and what a config means) sits
 * below the server and the client, so it imports nothing from src/server/ or src/client/;
 * they, the relay and the CLI import it. The CLI only wires commands to the library: it
 * imports the public API (src/index.ts) and one internal entry point (src/internal.ts).
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'

const SRC = join(import.meta.dirname, '../../src')

/** Every module specifier a file imports or re-exports (type-only ones included). */
async function imports(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8')
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)].map((match) => match[1]!)
}

/** Every .ts file under `folder`, with its path relative to src/. */
async function sources(folder: string): Promise<string[]> {
  const entries = await readdir(join(SRC, folder), { recursive: true })
  return entries.filter((name) => name.endsWith('.ts')).map((name) => join(folder, name))
}

test('layers: src/config/ (all of it) imports nothing from src/server/ or src/client/, at any depth', async () => {
  for (const file of await sources('config')) {
    const found = (await imports(join(SRC, file))).filter((specifier) => /(^|\/)(server|client)\//.test(specifier) && specifier.startsWith('.'))
    assert.deepEqual(found, [], `src/${file} reaches up into ${found.join(', ')}`)
  }
})

test('layers: src/cli/ imports only the public entry point (src/index.ts), the internal ones (src/internal.ts, src/prewarm.ts), itself, node: and packages', async () => {
  const files = await sources('cli')
  assert.ok(files.length >= 8, 'the CLI has its files')
  for (const file of files) {
    const depth = file.split('/').length - 1
    const up = '../'.repeat(depth)
    const allowed = new Set([`${up}index.js`, `${up}internal.js`, `${up}prewarm.js`])
    const found = (await imports(join(SRC, file))).filter((specifier) => {
      if (!specifier.startsWith('.')) return false // node: and packages
      if (allowed.has(specifier)) return false
      // Within src/cli/: a specifier that never leaves it.
      const resolved = join('src', file, '..', specifier)
      return !resolved.startsWith('src/cli/')
    })
    assert.deepEqual(found, [], `src/${file} imports internals: ${found.join(', ')}`)
  }
})

test('layers: src/internal.ts re-exports only what the CLI needs beyond src/index.ts (settings and the track tool)', async () => {
  const found = await imports(join(SRC, 'internal.ts'))
  assert.deepEqual(found.sort(), ['../track/track.js', './config/settings.js'])
})

test('layers: src/prewarm.ts is light: it re-exports the prewarm of track/ alone, which imports node: only', async () => {
  assert.deepEqual(await imports(join(SRC, 'prewarm.ts')), ['../track/prewarm.js'])
  const found = (await imports(join(SRC, '../track/prewarm.ts'))).filter((specifier) => !specifier.startsWith('node:'))
  assert.deepEqual(found, [])
})
