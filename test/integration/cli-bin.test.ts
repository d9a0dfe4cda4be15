/**
 * The `fmq` that `npm link` installs is package.json's bin: a bundle `npm run build` makes of
 * the compiled sources (scripts/bundle.mjs), not the sources the other tests run through tsx.
 * What could break only there: a dependency that does not survive bundling, a native addon
 * or package.json found by a relative path, the track's server thread started by file name.
 * So the bin itself mirrors a tree (files, an empty folder, a link, modes) once and again,
 * and serves a client over tcp. `FMQ_TEST_CLI=bin` runs every CLI test against it.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { randomFile, write } from '../fixtures/tree.js'
import { listEntries } from '../fixtures/entries.js'
import { scratch } from '../fixtures/scratch.js'

describe('the built fmq (package.json bin)', () => {
  const s = scratch('bin')

  const tree = async (src: string): Promise<void> => {
    await write(src, { 'a.txt': 'alpha\n', 'deep/er/b.txt': 'beta\n', 'odd name\ttab.txt': 'tab\n' })
    await randomFile(join(src, 'big.bin'), 3 * 1024 * 1024 + 17)
    await mkdir(join(src, 'empty'))
    await chmod(join(src, 'deep'), 0o750)
    await symlink('deep/er/b.txt', join(src, 'link'))
  }

  test('--version names the package version', async () => {
    const fmq = s.fmq(['--version'], { json: false, cli: 'bin' })
    assert.equal(await fmq.exited, 0, fmq.stderr.join('\n'))
    assert.match(String(fmq.lines[0]?.text), /^\d+\.\d+\.\d+/)
  })

  test('track --once mirrors a tree, and a rerun transfers nothing', async () => {
    const src = join(s.dir, 'track-src')
    const dst = join(s.dir, 'track-dst')
    await tree(src)
    const first = s.fmq(['track', '--once', src, dst], { cli: 'bin' })
    assert.equal(await first.exited, 0, first.stderr.join('\n'))
    assert.deepEqual(await listEntries(dst), await listEntries(src))
    const again = s.fmq(['track', '--once', src, dst], { cli: 'bin' })
    assert.equal(await again.exited, 0, again.stderr.join('\n'))
    assert.equal(again.lines.filter((line) => line.type === 'delivered').length, 0, 'a rerun delivers nothing')
  })

  test('server and client --mirror --once over tcp', async () => {
    const src = join(s.dir, 'served')
    const inbox = join(s.dir, 'inbox')
    await tree(src)
    const server = s.fmq(['server', '--anonymous', '-p', `${src}=/`, '-b', 'tcp://127.0.0.1:*'], { cli: 'bin' })
    const client = s.fmq(['client', '-C', await server.endpoint(), '-s', '/', '-i', inbox, '--resync', '--mirror', '--once'], { cli: 'bin' })
    assert.equal(await client.exited, 0, client.stderr.join('\n'))
    assert.deepEqual(await listEntries(inbox), await listEntries(src))
  })
})
