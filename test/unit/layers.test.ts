/**
 * The layering, read from the import lines: src/config/ (ZPL and what a config means) sits
 * below the server and the client, so it imports nothing from src/server/ or src/client/;
 * they, the relay and the CLI import it.
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

test('layers: src/config/ imports nothing from src/server/ or src/client/', async () => {
  const folder = join(SRC, 'config')
  const files = (await readdir(folder)).filter((name) => name.endsWith('.ts'))
  assert.ok(files.length >= 3, 'the config layer has its files')
  for (const name of files) {
    const found = (await imports(join(folder, name))).filter((specifier) => /^\.\.\/(server|client)\//.test(specifier))
    assert.deepEqual(found, [], `src/config/${name} reaches up into ${found.join(', ')}`)
  }
})
