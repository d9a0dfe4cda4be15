/**
 * The synchronous variants of the safe inbox resolvers (used by the client's inbox writer)
 * answer exactly as the asynchronous ones do: same path, or same error.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { PathOutsideInboxError, UnsafeNameError } from '../../src/fs/errors.js';
import {
  ensureParentDirs,
  ensureParentDirsSync,
  resolveInboxPath,
  resolveInboxPathSafely,
  resolveInboxPathSafelySync,
} from '../../src/fs/inbox.js';

/** What a call gave: its result, or the class name and code of what it threw. */
async function outcome(call: () => unknown): Promise<unknown> {
  try {
    return { value: await call() };
  } catch (error) {
    return { error: (error as Error).constructor.name, code: (error as NodeJS.ErrnoException).code };
  }
}

describe('fs-inbox: sync variants', () => {
  let base: string;
  let inbox: string;
  let outside: string;

  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'fmq-inbox-sync-')));
    inbox = join(base, 'inbox');
    outside = join(base, 'outside');
    await mkdir(inbox);
    await mkdir(outside);
    await mkdir(join(inbox, 'real'));
    await symlink(outside, join(inbox, 'escape'), 'dir');
    await symlink(join(inbox, 'real'), join(inbox, 'alias'), 'dir');
    await symlink(inbox, join(base, 'inbox-link'), 'dir');
    await writeFile(join(inbox, 'file'), 'x');
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const names = ['/real/a.jpg', '/new/dir/a.jpg', '/file', '/file/below', '/escape/pwned.txt', '/alias/a.txt', '/escape', '/../outside/x', '/a\0b', ''];

  test('resolveInboxPathSafelySync answers as resolveInboxPathSafely, with or without the real root given', async () => {
    for (const root of [inbox, join(base, 'inbox-link')]) {
      for (const name of names) {
        const expected = await outcome(() => resolveInboxPathSafely(root, name));
        assert.deepEqual(await outcome(() => resolveInboxPathSafelySync(root, name)), expected, `${root} ${JSON.stringify(name)}`);
        assert.deepEqual(await outcome(() => resolveInboxPathSafelySync(root, name, realpathSync(root))), expected, `${root} ${JSON.stringify(name)}, root given`);
      }
    }
    assert.throws(() => resolveInboxPathSafelySync(inbox, '/escape/x'), PathOutsideInboxError);
    assert.throws(() => resolveInboxPathSafelySync(join(base, 'missing'), '/../x'), UnsafeNameError);
    assert.deepEqual(await readdir(outside), []);
  });

  test('ensureParentDirsSync answers as ensureParentDirs and creates the same directories', async () => {
    const paths = [
      resolveInboxPath(inbox, '/one/two/f.txt'),
      resolveInboxPath(inbox, '/one/two/f.txt'), // existing parents
      join(base, 'inbox-link', 'via', 'link.txt'), // not below the inbox as given nor its real path
      resolveInboxPath(inbox, '/escape/sub/pwned.txt'),
      resolveInboxPath(inbox, '/alias/sub/x'),
      join(inbox, 'file', 'sub', 'x'),
      join(outside, 'a', 'b'),
      join(inbox, '..', 'outside', 'a', 'b'),
      inbox,
    ];
    for (const path of paths) {
      const sync = await outcome(() => ensureParentDirsSync(inbox, path));
      const withRoot = await outcome(() => ensureParentDirsSync(inbox, path, inbox));
      const expected = await outcome(() => ensureParentDirs(inbox, path));
      assert.deepEqual(sync, expected, path);
      assert.deepEqual(withRoot, expected, `${path}, root given`);
    }
    assert.deepEqual((await readdir(inbox)).sort(), ['alias', 'escape', 'file', 'one', 'real']);
    assert.deepEqual(await readdir(join(inbox, 'real')), []);
    assert.deepEqual(await readdir(outside), [], 'nothing was written outside the inbox');
  });
});
