/**
 * Portable links (`NAME.ln`): targets inside the mount are followed, targets outside are
 * refused unless allowed, and malformed link files fail with a typed reason.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  InvalidPortableLinkError,
  PathOutsideMountError,
  type InvalidPortableLinkReason,
} from '../../src/fs/errors.js';
import { isPortableLink, portableLinkName, readPortableLink } from '../../src/fs/links.js';

describe('fs-links: names', () => {
  test('isPortableLink wants a name before ".ln"', () => {
    assert.equal(isPortableLink('movie.mp4.ln'), true);
    assert.equal(isPortableLink('dir/movie.ln'), true);
    assert.equal(isPortableLink('.ln'), false);
    assert.equal(isPortableLink('dir/.ln'), false);
    assert.equal(isPortableLink('movie.lnk'), false);
    assert.equal(isPortableLink('kiln'), false);
  });

  test('portableLinkName drops the suffix', () => {
    assert.equal(portableLinkName('videos/movie.mp4.ln'), 'videos/movie.mp4');
    assert.equal(portableLinkName('plain.txt'), 'plain.txt');
  });
});

describe('fs-links: readPortableLink', () => {
  let base: string;
  let mount: string;
  let outsideFile: string;

  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'fmq-links-')));
    mount = join(base, 'mount');
    await mkdir(join(mount, 'releases'), { recursive: true });
    await mkdir(join(mount, 'links'));
    await writeFile(join(mount, 'releases', 'v2.iso'), 'iso');
    outsideFile = join(base, 'secret.txt');
    await writeFile(outsideFile, 'secret');
    await symlink(base, join(mount, 'up'), 'dir');
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function link(name: string, content: string | Buffer): Promise<string> {
    const file = join(mount, 'links', name);
    await writeFile(file, content);
    return file;
  }

  const invalid = (reason: InvalidPortableLinkReason) => (error: unknown) =>
    error instanceof InvalidPortableLinkError && error.reason === reason && error.code === 'ERR_FMQ_BAD_LINK';

  test('a relative target is resolved against the link file directory', async () => {
    const file = await link('rel.iso.ln', '../releases/v2.iso\n');
    assert.equal(await readPortableLink(file, mount), join(mount, 'releases', 'v2.iso'));
  });

  test('an absolute target inside the mount; only the first line counts, trimmed', async () => {
    const file = await link('abs.iso.ln', `\uFEFF  ${join(mount, 'releases', 'v2.iso')}  \r\nignored\n`);
    assert.equal(await readPortableLink(file, mount), join(mount, 'releases', 'v2.iso'));
  });

  test('a target outside the mount is refused, unless allowed', async () => {
    const file = await link('secret.ln', outsideFile);
    await assert.rejects(
      readPortableLink(file, mount),
      (error: unknown) =>
        error instanceof PathOutsideMountError && error.path === outsideFile && error.code === 'ERR_FMQ_PATH_OUTSIDE_MOUNT',
    );
    assert.equal(await readPortableLink(file, mount, { allowOutside: true }), outsideFile);
  });

  test('a target that only looks inside, through a symlinked directory, is refused', async () => {
    const file = await link('sneaky.ln', join(mount, 'up', 'secret.txt'));
    await assert.rejects(readPortableLink(file, mount), PathOutsideMountError);
    const dotted = await link('dotted.ln', '../../secret.txt');
    await assert.rejects(readPortableLink(dotted, mount), PathOutsideMountError);
  });

  test('malformed links fail with a typed reason', async () => {
    await assert.rejects(readPortableLink(await link('empty.ln', ''), mount), invalid('empty'));
    await assert.rejects(readPortableLink(await link('blank.ln', '  \n\nx'), mount), invalid('empty'));
    await assert.rejects(readPortableLink(await link('missing.ln', 'nope.iso'), mount), invalid('missing'));
    await assert.rejects(readPortableLink(await link('dir.ln', '../releases'), mount), invalid('not-a-file'));
    await assert.rejects(readPortableLink(await link('nul.ln', 'a\0b'), mount), invalid('invalid'));
    await assert.rejects(readPortableLink(join(mount, 'links', 'absent.ln'), mount), invalid('missing'));
    await assert.rejects(readPortableLink(join(mount, 'releases'), mount), invalid('not-a-file'));
  });

  test('the link file size is limited', async () => {
    const big = await link('big.ln', '../releases/v2.iso' + ' '.repeat(5000));
    await assert.rejects(readPortableLink(big, mount), invalid('too-large'));
    const atLimit = await link('limit.ln', '../releases/v2.iso'.padEnd(4096, ' '));
    assert.equal(await readPortableLink(atLimit, mount), join(mount, 'releases', 'v2.iso'));
    await assert.rejects(readPortableLink(atLimit, mount, { maxBytes: 100 }), invalid('too-large'));
  });
});
