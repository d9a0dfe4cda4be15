/**
 * `--dry-run` (`-n`, as rsync), the real commands as child processes: `fmq track -n` and
 * `fmq client -n` connect, compare, list what would be copied, updated and deleted (one
 * `planned` event each, a line each in text), write nothing to DST, and exit 0; the run after
 * them does exactly what they listed.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile, stat, utimes } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { sameTree, write } from '../fixtures/tree.js'
import type { FmqProcess } from '../peers/fmq-process.js'
import { scratch } from '../fixtures/scratch.js'

/** Every entry under `root` (but .fmq) with its content or kind and its mtime: what a dry run must not change. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const seen = new Map<string, string>()
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name === '.fmq') continue
      const path = join(dir, entry.name)
      const info = await stat(path)
      if (entry.isDirectory()) {
        seen.set(relative(root, path), `dir ${info.mode}`)
        await walk(path)
      } else seen.set(relative(root, path), `${(await readFile(path)).toString('hex')} ${info.mode} ${info.mtimeMs}`)
    }
  }
  await walk(root)
  return seen
}

describe('--dry-run', () => {
  const scratchpad = scratch('cli-dry-run')
  const fmq = (args: string[], json = true): FmqProcess => scratchpad.fmq(args, { json })

  const planned = (child: FmqProcess): string[] =>
    child.lines
      .filter((line) => line.type === 'planned')
      .map((line) => `${String(line.action)} ${String(line.virtualPath)}`)
      .sort()

  test('fmq track -n lists copies, updates and deletes, writes nothing, exits 0; the real run then does that', async () => {
    const src = join(scratchpad.dir, 'src')
    const dst = join(scratchpad.dir, 'dst')
    await write(src, { 'same.txt': 'same\n', 'changed.txt': 'new\n', 'new/deep.txt': 'deep\n' })
    await write(dst, { 'same.txt': 'same\n', 'changed.txt': 'old content\n', 'gone.txt': 'stale\n' })
    // Same content and time: held as it is (another mtime would be an update, as rsync -a says).
    for (const root of [src, dst]) await utimes(join(root, 'same.txt'), 1_700_000_000, 1_700_000_000)
    const before = await snapshot(dst)

    const dry = fmq(['track', src, dst, '--dry-run'])
    assert.equal(await dry.exited, 0, dry.stderr.join(' | '))
    assert.deepEqual(planned(dry), ['copy /new', 'copy /new/deep.txt', 'delete /gone.txt', 'update /changed.txt'])
    assert.equal(dry.lines.find((line) => line.action === 'copy' && line.virtualPath === '/new/deep.txt')?.size, 5)
    assert.ok(!dry.lines.some((line) => line.type === 'delivered' || line.type === 'deleted'))
    assert.ok(!dry.lines.some((line) => typeof line.endpoint === 'string' && line.endpoint.startsWith('ipc://')), 'no internal endpoint')
    const summary = dry.lines.find((line) => line.type === 'summary')
    // Every --json line says when and how grave; the rest is the summary's own.
    assert.ok(summary !== undefined, 'a summary ends the dry run')
    const { time, level, ...fields } = summary
    assert.equal(level, 'info')
    assert.equal(typeof time, 'string')
    assert.deepEqual({ ...fields, seconds: 0 }, { type: 'summary', dryRun: true, copy: 2, update: 1, delete: 1, bytes: 9, seconds: 0, skipped: 0 })
    assert.deepEqual(await snapshot(dst), before, 'DST untouched')

    // In text: one line each, and the summary.
    const text = fmq(['track', src, dst, '-n'], false)
    assert.equal(await text.exited, 0)
    const lines = text.lines.map((line) => String(line.text))
    for (const expected of ['would copy /new/deep.txt (5 B)', 'would update /changed.txt (4 B)', 'would delete /gone.txt']) assert.ok(lines.includes(expected), lines.join(' | '))
    assert.ok(lines.includes('dry run: 2 to copy, 1 to update (9 B), 1 to delete, 0 skipped; nothing written'), lines.join(' | '))

    const real = fmq(['track', src, dst, '--once'])
    assert.equal(await real.exited, 0)
    assert.ok(await sameTree(src, dst))
    const again = fmq(['track', src, dst, '-n'])
    assert.equal(await again.exited, 0)
    assert.deepEqual(planned(again), [], 'in sync: nothing to do')
  })

  test('fmq client -n --mirror against fmq server: the same list, nothing written, exit 0', async () => {
    const src = join(scratchpad.dir, 'served')
    const inbox = join(scratchpad.dir, 'inbox')
    await write(src, { 'a.txt': 'a\n', 'b/c.txt': 'c\n' })
    await write(inbox, { 'a.txt': 'other\n', 'old.txt': 'old\n' })
    const server = fmq(['server', '-p', `${src}=/`, '-b', 'tcp://127.0.0.1:*'])
    const endpoint = await server.endpoint()
    const before = await snapshot(inbox)
    const dry = fmq(['client', '-C', endpoint, '-i', inbox, '--mirror', '-n'])
    assert.equal(await dry.exited, 0, dry.stderr.join(' | '))
    assert.deepEqual(planned(dry), ['copy /b', 'copy /b/c.txt', 'delete /old.txt', 'update /a.txt'])
    assert.deepEqual(await snapshot(inbox), before, 'the inbox untouched')
  })
})
