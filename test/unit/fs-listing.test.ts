/**
 * The folder listing of every walk (src/fs/listing.ts): the native one (native/list_folder.c,
 * built by `npm run build`) and the JavaScript one give the same entries, types and stats, and
 * fail the same way; the scan publishes the same with either.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { listEntries, listingKind, type ListedEntry, type ListingKind } from '../../src/fs/listing.js';

/** An entry as both listings must give it. */
function summary({ dirent, stats }: ListedEntry): object {
  const kinds = ['isDirectory', 'isFile', 'isSymbolicLink', 'isFIFO', 'isSocket', 'isBlockDevice', 'isCharacterDevice'] as const;
  return {
    name: dirent.name,
    type: kinds.filter((kind) => dirent[kind]()),
    stats:
      stats === undefined
        ? undefined
        : { mode: stats.mode, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, uid: stats.uid, gid: stats.gid, type: kinds.filter((kind) => stats[kind]()) },
  };
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const listed = (dir: string, kind: ListingKind): object[] => (listEntries(dir, kind).map(summary) as { name: string }[]).sort(byName);

describe('fs-listing: native and JavaScript folder listings', () => {
  let base: string;
  let socket: ReturnType<typeof createServer> | undefined;

  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'fmq-listing-')));
    await mkdir(join(base, 'folder', 'inner'), { recursive: true, mode: 0o750 });
    await writeFile(join(base, 'plain.txt'), 'hello');
    await writeFile(join(base, 'empty'), '');
    await writeFile(join(base, 'big.bin'), Buffer.alloc(300_000, 1), { mode: 0o640 });
    // A sub-millisecond mtime: both must give Node's own mtimeMs, to the last bit.
    await utimes(join(base, 'plain.txt'), 1_700_000_000.123456, 1_600_000_000.987654);
    await writeFile(join(base, 'line\nbreak\ttab\\ é 🎉'), 'odd');
    await symlink('plain.txt', join(base, 'link'));
    await symlink('/nowhere/at/all', join(base, 'dangling'));
    execFileSync('mkfifo', [join(base, 'pipe')]);
    socket = createServer();
    await new Promise<void>((resolve) => socket!.listen(join(base, 'sock'), resolve));
    // A name that is not UTF-8: both show it with U+FFFD (the scan lists such a folder again as octets).
    execFileSync('sh', ['-c', `printf x > "${join(base, 'folder')}/$(printf 'bad\\377name')"`]);
  });

  after(async () => {
    await new Promise<void>((resolve) => (socket === undefined ? resolve() : socket.close(() => resolve())));
    await rm(base, { recursive: true, force: true });
  });

  test('the native listing is built here (npm run build), so the tests below compare two listings', () => {
    assert.equal(listingKind(), process.env.FMQ_NATIVE === '0' ? 'javascript' : 'native', 'build/fmq_native.node did not load: run npm run build');
  });

  test('the same entries, types and stats as lstat gives, for every kind of entry', () => {
    const native = listed(base, 'native');
    assert.deepEqual(native, listed(base, 'javascript'));
    const names = (native as { name: string }[]).map(({ name }) => name);
    assert.deepEqual(names, ['big.bin', 'dangling', 'empty', 'folder', 'line\nbreak\ttab\\ é 🎉', 'link', 'pipe', 'plain.txt', 'sock']);
    const plain = listEntries(base).find(({ dirent }) => dirent.name === 'plain.txt')!;
    assert.equal(plain.stats!.mtimeMs, lstatSync(join(base, 'plain.txt')).mtimeMs);
    // The name that is not UTF-8: the native listing lstat's it by its octets, the JavaScript
    // one cannot (by the decoded name); either way the scan skips it as a bad name.
    const withoutStats = (entries: object[]): object[] => entries.map((entry) => ({ ...entry, stats: (entry as { name: string }).name.includes('\uFFFD') ? undefined : (entry as { stats: unknown }).stats }));
    const folder = listed(join(base, 'folder'), 'native');
    assert.deepEqual(withoutStats(folder), withoutStats(listed(join(base, 'folder'), 'javascript')));
    assert.ok((folder as { name: string }[]).some(({ name }) => name === 'bad\uFFFDname'));
  });

  test('an empty folder lists nothing; a missing folder and a file fail as readdirSync fails', () => {
    assert.deepEqual(listEntries(join(base, 'folder', 'inner'), 'native'), []);
    for (const [path, code] of [
      [join(base, 'missing'), 'ENOENT'],
      [join(base, 'plain.txt'), 'ENOTDIR'],
    ] as const) {
      for (const kind of ['native', 'javascript'] as const) {
        assert.throws(() => listEntries(path, kind), (error: NodeJS.ErrnoException) => error.code === code && error.syscall === 'scandir', `${kind} ${path}`);
      }
    }
  });

  test('a folder of 5,000 entries: the same, entry for entry', async () => {
    const many = join(base, 'many');
    await mkdir(many);
    await Promise.all(Array.from({ length: 5000 }, (_, i) => writeFile(join(many, `f${i}`), String(i))));
    const native = listed(many, 'native');
    assert.equal(native.length, 5000);
    assert.deepEqual(native, listed(many, 'javascript'));
  });
});
