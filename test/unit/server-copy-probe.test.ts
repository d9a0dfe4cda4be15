/**
 * The copy check's first look (src/server/copy-probe.ts): files of one size that start alike
 * may be copies (the whole digest decides); a file whose start no other of its size shares
 * cannot be one, and is not hashed before its turn.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { CopyProbes, PROBE_BYTES, PROBES_PER_CHECK } from '../../src/server/copy-probe.js'

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-probe-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

type Version = { virtualPath: string; physicalPath: string; size: number; mtimeMs: number; ino: number }

async function publish(files: Map<string, Version>, probes: CopyProbes, name: string, content: Buffer): Promise<Version> {
  const physicalPath = join(dir, name)
  await writeFile(physicalPath, content)
  const info = await stat(physicalPath)
  const version = { virtualPath: `/${name}`, physicalPath, size: info.size, mtimeMs: info.mtimeMs, ino: info.ino }
  files.set(version.virtualPath, version)
  probes.published(version.virtualPath, version.size, 1)
  return version
}

test('files of one size: a different start rules a copy out; the same start leaves it possible', async () => {
  const files = new Map<string, Version>()
  const probes = new CopyProbes(1024, (path) => files.get(path))
  const size = PROBE_BYTES * 4
  const original = randomBytes(size)
  const a = await publish(files, probes, 'a.bin', original)
  assert.equal(await probes.copyPossible(a), false, 'alone at its size')
  const b = await publish(files, probes, 'b.bin', randomBytes(size))
  assert.equal(await probes.copyPossible(b), false, 'same size, another start')
  // The same start, another end: possible (the whole digest then tells).
  const tail = Buffer.from(original)
  tail.fill(7, PROBE_BYTES)
  const c = await publish(files, probes, 'c.bin', tail)
  assert.equal(await probes.copyPossible(c), true)
  assert.equal(await probes.copyPossible(a), true)
  assert.equal(await probes.copyPossible(b), false)
  // Gone: no longer compared.
  files.delete(c.virtualPath)
  probes.published(c.virtualPath, c.size, -1)
  assert.equal(await probes.copyPossible(a), false)
  // A file changed in place (new mtime): probed again, not taken from before.
  const again = await publish(files, probes, 'b.bin', original)
  assert.equal(await probes.copyPossible(again), true)
  // Smaller than the minimum: never kept.
  const small = await publish(files, probes, 'small.bin', randomBytes(100))
  await publish(files, probes, 'small2.bin', randomBytes(100))
  assert.equal(await probes.copyPossible(small), false)
})

test('a start that cannot be read leaves a copy possible', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, async () => {
  const files = new Map<string, Version>()
  const probes = new CopyProbes(1024, (path) => files.get(path))
  const x = await publish(files, probes, 'x.bin', randomBytes(4096))
  await publish(files, probes, 'y.bin', randomBytes(4096))
  await chmod(join(dir, 'y.bin'), 0)
  assert.equal(await probes.copyPossible(x), true)
})

test('a file shorter than its published size (changing) leaves a copy possible', async () => {
  const files = new Map<string, Version>()
  const probes = new CopyProbes(1024, (path) => files.get(path))
  const x = await publish(files, probes, 'p.bin', randomBytes(4096))
  const y = await publish(files, probes, 'q.bin', randomBytes(4096))
  await writeFile(y.physicalPath, randomBytes(10))
  // Its stat as published (size 4096), its content now 10 octets.
  assert.equal(await probes.copyPossible(x), true)
})

test('one check reads the starts of at most PROBES_PER_CHECK other files; the next goes on from there', async () => {
  const files = new Map<string, Version>()
  const probes = new CopyProbes(1024, (path) => files.get(path))
  const many: Version[] = []
  for (let i = 0; i < PROBES_PER_CHECK + 10; i++) many.push(await publish(files, probes, `many-${i}.bin`, randomBytes(2048)))
  // Too many unread at once: hashed whole, as before the probes.
  assert.equal(await probes.copyPossible(many[0]!), true)
  // The probes read stay: the next check reads the rest and finds no file starting alike.
  assert.equal(await probes.copyPossible(many[1]!), false)
})
