/**
 * The inbox: file names from a server are untrusted. Every unsafe name is refused, symbolic
 * links inside the inbox are refused, and nothing is ever written outside it.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import fc from 'fast-check';

import { PathOutsideInboxError, UnsafeNameError, type UnsafeNameReason } from '../../src/fs/errors.js';
import {
  ensureParentDirs,
  inboxSegments,
  resolveInboxPath,
  resolveInboxPathSafely,
} from '../../src/fs/inbox.js';
import { isPathInside } from '../../src/fs/mounts.js';

const INBOX = '/home/me/inbox';

const unsafe = (reason: UnsafeNameReason) => (error: unknown) =>
  error instanceof UnsafeNameError && error.reason === reason && error.code === 'ERR_FMQ_UNSAFE_NAME';

describe('fs-inbox: resolveInboxPath', () => {
  test('maps virtual names below the inbox', () => {
    assert.equal(resolveInboxPath(INBOX, '/photos/a.jpg'), '/home/me/inbox/photos/a.jpg');
    assert.equal(resolveInboxPath(INBOX, 'photos/a.jpg'), '/home/me/inbox/photos/a.jpg');
    assert.equal(resolveInboxPath(INBOX, '//photos//a.jpg/'), '/home/me/inbox/photos/a.jpg');
    assert.equal(resolveInboxPath(INBOX + '/', '/..a/b..'), '/home/me/inbox/..a/b..');
    assert.equal(resolveInboxPath(INBOX, '/12:30.txt'), '/home/me/inbox/12:30.txt');
  });

  const refusals: [string, UnsafeNameReason][] = [
    ['../escape', 'dot-segment'],
    ['/../x', 'dot-segment'],
    ['/a/../../x', 'dot-segment'],
    ['/a/./b', 'dot-segment'],
    ['/a/..', 'dot-segment'],
    ['/a\0b', 'nul'],
    ['/', 'empty'],
    ['', 'empty'],
    ['/' + 'a'.repeat(256), 'segment-too-long'],
    ['/' + 'é'.repeat(128), 'segment-too-long'], // 256 octets in 128 characters
    ['/' + Array.from({ length: 20 }, () => 'a'.repeat(250)).join('/'), 'too-long'],
  ];
  for (const [name, reason] of refusals) {
    test(`refuses ${JSON.stringify(name.length > 40 ? name.slice(0, 40) + '…' : name)} (${reason})`, () => {
      assert.throws(() => resolveInboxPath(INBOX, name), unsafe(reason));
    });
  }

  test('on Linux a backslash, a control character, a drive letter are characters like any other', () => {
    assert.equal(resolveInboxPath(INBOX, '/a\\..\\..\\x'), '/home/me/inbox/a\\..\\..\\x', 'one segment: only "/" separates');
    assert.equal(resolveInboxPath(INBOX, 'C:\\x'), '/home/me/inbox/C:\\x');
    assert.equal(resolveInboxPath(INBOX, '/c:/x'), '/home/me/inbox/c:/x');
    assert.equal(resolveInboxPath(INBOX, '/a\nb\tc\u007f'), '/home/me/inbox/a\nb\tc\u007f');
  });

  test('on Windows refuses backslashes, control characters and drive letters', () => {
    const windows: [string, UnsafeNameReason][] = [
      ['C:\\x', 'backslash'],
      ['/a\\..\\..\\x', 'backslash'],
      ['C:/x', 'drive-letter'],
      ['/c:/x', 'drive-letter'],
      ['/a\nb', 'control-character'],
      ['/a\u007fb', 'control-character'],
    ];
    for (const [name, reason] of windows) assert.throws(() => inboxSegments(name, 'win32'), unsafe(reason), JSON.stringify(name));
  });

  test('on Windows also refuses reserved characters and names', () => {
    for (const name of ['/ab:c', '/con', '/photos/NUL.txt', '/lpt1', '/a?', '/dot.', '/space ']) {
      assert.throws(() => inboxSegments(name, 'win32'), unsafe('reserved-name'), name);
    }
    assert.deepEqual(inboxSegments('/photos/console.txt', 'win32'), ['photos', 'console.txt']);
    assert.deepEqual(inboxSegments('/ab:c', 'linux'), ['ab:c']);
    assert.deepEqual(inboxSegments('/x/a:b', 'linux'), ['x', 'a:b']);
    assert.throws(() => inboxSegments('/x/a:b', 'win32'), unsafe('drive-letter'));
  });

  test('property: any name either is refused or lands strictly inside the inbox', () => {
    const piece = fc.oneof(
      fc.constantFrom('..', '.', '', 'a', 'C:', '\\', '\0', '~', '...'),
      fc.string({ maxLength: 8 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), fc.boolean(), (pieces, leading) => {
        const name = (leading ? '/' : '') + pieces.join('/');
        let path: string;
        try {
          path = resolveInboxPath(INBOX, name);
        } catch (error) {
          assert.ok(error instanceof UnsafeNameError, String(error));
          return;
        }
        assert.ok(isPathInside(INBOX, path), `${JSON.stringify(name)} → ${path}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('fs-inbox: on disk', () => {
  let base: string; // real path of the test's temp directory
  let inbox: string;
  let outside: string;

  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'fmq-inbox-')));
    inbox = join(base, 'inbox');
    outside = join(base, 'outside');
    await mkdir(inbox);
    await mkdir(outside);
    await mkdir(join(inbox, 'real'));
    await mkdir(join(inbox, 'plain'));
    await symlink(outside, join(inbox, 'escape'), 'dir');
    await symlink(join(inbox, 'real'), join(inbox, 'alias'), 'dir');
    await writeFile(join(inbox, 'file'), 'x');
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function assertOutsideUntouched(): Promise<void> {
    assert.deepEqual(await readdir(outside), [], 'nothing was written outside the inbox');
  }

  test('resolveInboxPathSafely accepts ordinary names, rooted at realpath(inbox)', async () => {
    assert.equal(await resolveInboxPathSafely(inbox, '/plain/a.jpg'), join(inbox, 'plain', 'a.jpg'));
    assert.equal(await resolveInboxPathSafely(inbox, '/new/dir/a.jpg'), join(inbox, 'new', 'dir', 'a.jpg'));
    assert.equal(await resolveInboxPathSafely(inbox, '/file'), join(inbox, 'file'));
    // a file where a directory is needed is not a safety problem: the write itself fails later
    assert.equal(await resolveInboxPathSafely(inbox, '/file/below'), join(inbox, 'file', 'below'));
  });

  test('resolveInboxPathSafely works through an inbox that is itself a symlink', async () => {
    const viaLink = join(base, 'inbox-link');
    await symlink(inbox, viaLink, 'dir');
    assert.equal(await resolveInboxPathSafely(viaLink, '/plain/a'), join(inbox, 'plain', 'a'));
    await rm(viaLink);
  });

  test('resolveInboxPathSafely refuses a symlinked directory pointing outside', async () => {
    await assert.rejects(
      resolveInboxPathSafely(inbox, '/escape/pwned.txt'),
      (error: unknown) =>
        error instanceof PathOutsideInboxError &&
        error.code === 'ERR_FMQ_PATH_OUTSIDE' &&
        error.path === join(inbox, 'escape'),
    );
    await assertOutsideUntouched();
  });

  test('resolveInboxPathSafely refuses a symlink even when it points inside the inbox', async () => {
    await assert.rejects(resolveInboxPathSafely(inbox, '/alias/a.txt'), PathOutsideInboxError);
    await assert.rejects(resolveInboxPathSafely(inbox, '/escape'), PathOutsideInboxError, 'the last component too');
  });

  test('resolveInboxPathSafely refuses unsafe names before touching the disk', async () => {
    await assert.rejects(resolveInboxPathSafely(inbox, '/../outside/x'), unsafe('dot-segment'));
    await assert.rejects(resolveInboxPathSafely(join(base, 'missing'), '/../x'), UnsafeNameError);
  });

  test('ensureParentDirs creates the parents one by one and returns the real path', async () => {
    const target = await ensureParentDirs(inbox, resolveInboxPath(inbox, '/deep/er/est/f.txt'));
    assert.equal(target, join(inbox, 'deep', 'er', 'est', 'f.txt'));
    assert.ok((await lstat(join(inbox, 'deep', 'er', 'est'))).isDirectory());
    await assert.rejects(lstat(target), { code: 'ENOENT' }, 'the file itself is not created');
    // existing parents are fine
    assert.equal(await ensureParentDirs(inbox, target), target);
  });

  test('ensureParentDirs refuses a symlinked component and writes nothing outside', async () => {
    const lexical = resolveInboxPath(inbox, '/escape/sub/pwned.txt');
    await assert.rejects(ensureParentDirs(inbox, lexical), PathOutsideInboxError);
    await assertOutsideUntouched();
  });

  test('ensureParentDirs refuses a path outside the inbox', async () => {
    await assert.rejects(ensureParentDirs(inbox, join(outside, 'a', 'b')), PathOutsideInboxError);
    await assert.rejects(ensureParentDirs(inbox, join(inbox, '..', 'outside', 'a', 'b')), PathOutsideInboxError);
    await assert.rejects(ensureParentDirs(inbox, inbox), PathOutsideInboxError);
    await assertOutsideUntouched();
  });

  test('ensureParentDirs fails with ENOTDIR when a file is in the way', async () => {
    await assert.rejects(ensureParentDirs(inbox, join(inbox, 'file', 'sub', 'x')), { code: 'ENOTDIR' });
  });
});
