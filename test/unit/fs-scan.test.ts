/**
 * Scanning a mount: nested directories, empty files and dotfiles are listed; symbolic links
 * out of the mount are never followed; portable links publish their target under NAME.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { scanMount, type ScanOptions, type ScanSkip, type ScannedFile } from '../../src/fs/scan.js';

describe('fs-scan: scanMount', () => {
  let base: string;
  let mount: string;
  let outside: string;

  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'fmq-scan-')));
    mount = join(base, 'mount');
    outside = join(base, 'outside');
    await mkdir(join(mount, 'nested', 'deeper'), { recursive: true });
    await mkdir(join(mount, 'releases'));
    await mkdir(join(mount, 'tmp'));
    await mkdir(outside);

    await writeFile(join(mount, 'a.txt'), 'hello');
    await writeFile(join(mount, 'empty'), '');
    await writeFile(join(mount, '.hidden'), 'h');
    await writeFile(join(mount, 'nested', 'b.txt'), 'bb');
    await writeFile(join(mount, 'nested', 'deeper', 'c.bin'), Buffer.alloc(1000, 7));
    await writeFile(join(mount, 'releases', 'v2.iso'), 'iso-content');
    await utimes(join(mount, 'releases', 'v2.iso'), 1_000_000, 1_000_000);
    await writeFile(join(mount, 'latest.iso.ln'), 'releases/v2.iso\n');
    await writeFile(join(mount, 'a.txt.ln'), 'releases/v2.iso\n'); // shadowed by the real a.txt
    await writeFile(join(mount, 'tmp', 'junk.tmp'), 'junk');
    await writeFile(join(mount, 'scratch.tmp'), 'junk');

    await writeFile(join(outside, 'secret.txt'), 'secret');
    await writeFile(join(mount, 'secret.ln'), join(outside, 'secret.txt'));
    await writeFile(join(mount, 'broken.ln'), 'nowhere');
    await symlink(join(outside, 'secret.txt'), join(mount, 'out-file'), 'file');
    await symlink(outside, join(mount, 'out-dir'), 'dir');
    await symlink(join(mount, 'a.txt'), join(mount, 'in-file'), 'file');
    await symlink(join(mount, 'nested'), join(mount, 'in-dir'), 'dir');
    await symlink(join(mount, 'missing'), join(mount, 'dangling'), 'file');
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function scan(options: ScanOptions = {}): Promise<{ files: Map<string, ScannedFile>; skips: Map<string, ScanSkip> }> {
    const files = new Map<string, ScannedFile>();
    const skips = new Map<string, ScanSkip>();
    for await (const file of scanMount(mount, { ...options, onSkip: (skip) => skips.set(skip.relativePath, skip) })) {
      assert.ok(!files.has(file.relativePath), `${file.relativePath} listed twice`);
      files.set(file.relativePath, file);
    }
    return { files, skips };
  }

  const sorted = <T>(map: Map<string, T>) => [...map.keys()].sort();

  test('lists regular files in nested directories, empty files and dotfiles; skips every symlink by default', async () => {
    const { files, skips } = await scan();
    assert.deepEqual(sorted(files), [
      '.hidden',
      'a.txt',
      'empty',
      'latest.iso',
      'nested/b.txt',
      'nested/deeper/c.bin',
      'releases/v2.iso',
      'scratch.tmp',
      'tmp/junk.tmp',
    ]);
    const c = files.get('nested/deeper/c.bin');
    assert.ok(c);
    assert.equal(c.physicalPath, join(mount, 'nested', 'deeper', 'c.bin'));
    assert.equal(c.contentPath, c.physicalPath);
    assert.equal(c.size, 1000);
    assert.equal(c.mode & constants.S_IFMT, constants.S_IFREG);
    assert.equal(c.linkTarget, undefined);
    assert.equal(files.get('empty')?.size, 0);

    for (const link of ['out-file', 'out-dir', 'in-file', 'in-dir', 'dangling']) {
      assert.equal(skips.get(link)?.reason, 'symlink', link);
    }
    assert.ok(![...files.keys()].some((name) => name.startsWith('out-dir/')), 'the symlinked directory is not walked');
    assert.ok(![...files.keys()].some((name) => name.startsWith('in-dir/')));
  });

  test('a portable link is published under NAME with its target size and mtime', async () => {
    const { files, skips } = await scan();
    const latest = files.get('latest.iso');
    assert.ok(latest);
    const target = join(mount, 'releases', 'v2.iso');
    assert.equal(latest.physicalPath, join(mount, 'latest.iso.ln'));
    assert.equal(latest.linkTarget, target);
    assert.equal(latest.contentPath, target);
    assert.equal(latest.size, 'iso-content'.length);
    assert.equal(latest.mtimeMs, 1_000_000_000);

    assert.equal(skips.get('secret.ln')?.reason, 'outside', 'a link out of the mount is skipped');
    assert.equal(skips.get('broken.ln')?.reason, 'bad-link');
    assert.equal(skips.get('a.txt.ln')?.reason, 'shadowed', 'the real a.txt wins');
    assert.equal(files.get('a.txt')?.size, 'hello'.length);
  });

  test('portable links can be allowed outside, or not resolved at all', async () => {
    const allowed = await scan({ allowLinksOutside: true });
    assert.equal(allowed.files.get('secret')?.contentPath, join(outside, 'secret.txt'));
    const raw = await scan({ portableLinks: false });
    assert.equal(raw.files.get('latest.iso.ln')?.size, 'releases/v2.iso\n'.length);
    assert.equal(raw.files.has('latest.iso'), false);
  });

  test('followSymlinks publishes links to files inside the mount only, and never walks directory links', async () => {
    const { files, skips } = await scan({ followSymlinks: true });
    const inFile = files.get('in-file');
    assert.ok(inFile);
    assert.equal(inFile.physicalPath, join(mount, 'in-file'));
    assert.equal(inFile.contentPath, join(mount, 'a.txt'));
    assert.equal(inFile.size, 'hello'.length);
    assert.equal(skips.get('out-file')?.reason, 'outside');
    assert.equal(skips.get('out-dir')?.reason, 'outside');
    assert.equal(skips.get('in-dir')?.reason, 'directory-link');
    assert.equal(skips.get('dangling')?.reason, 'broken-link');
    assert.ok(![...files.keys()].some((name) => name.startsWith('out-dir/') || name.startsWith('in-dir/')));
  });

  test('exclude patterns leave out files and whole directories', async () => {
    const { files } = await scan({ exclude: ['**/*.tmp', 'nested/deeper/**'] });
    assert.deepEqual(sorted(files), ['.hidden', 'a.txt', 'empty', 'latest.iso', 'nested/b.txt', 'releases/v2.iso']);
  });

  test('a mount reached through a symlink is scanned under the given path', async () => {
    const alias = join(base, 'alias');
    await symlink(mount, alias, 'dir');
    try {
      const found: ScannedFile[] = [];
      for await (const file of scanMount(alias)) found.push(file);
      const latest = found.find((file) => file.relativePath === 'latest.iso');
      assert.equal(found.find((file) => file.relativePath === 'a.txt')?.physicalPath, join(alias, 'a.txt'));
      assert.equal(latest?.linkTarget, join(mount, 'releases', 'v2.iso'), 'links are still confined to the real mount');
    } finally {
      await rm(alias);
    }
  });

  test('an aborted scan rejects; breaking out early is fine', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(async () => {
      for await (const _ of scanMount(mount, { signal: controller.signal })) void _;
    }, { name: 'AbortError' });

    const stopping = new AbortController();
    let seen = 0;
    await assert.rejects(async () => {
      for await (const _ of scanMount(mount, { signal: stopping.signal })) {
        void _;
        seen += 1;
        stopping.abort();
      }
    }, { name: 'AbortError' });
    assert.equal(seen, 1);

    for await (const _ of scanMount(mount)) {
      void _;
      break;
    }
  });

  test('FIFOs are skipped, whether found in the tree or named by a portable link', { skip: process.platform === 'win32' }, async () => {
    const fifo = join(mount, 'pipe');
    execFileSync('mkfifo', [fifo]);
    await writeFile(join(mount, 'pipe-link.ln'), 'pipe');
    try {
      const { files, skips } = await scan();
      assert.equal(files.has('pipe'), false);
      assert.equal(skips.get('pipe')?.reason, 'not-a-file');
      assert.equal(skips.get('pipe')?.kind, 'fifo');
      assert.equal(skips.get('pipe-link.ln')?.reason, 'bad-link');
    } finally {
      await rm(fifo);
      await rm(join(mount, 'pipe-link.ln'));
    }
  });

  test('every UTF-8 name is listed as it is (newline, tab, backslash, glob characters); one that is not UTF-8 is reported', { skip: process.platform !== 'linux' }, async () => {
    const odd = ['new\nline', 'tab\there', 'back\\slash', '[a]*?{b,c}#', ' spaced ', 'dir\nname/inner\\x'];
    const notUtf8 = Buffer.concat([Buffer.from(join(mount, 'bad-')), Buffer.from([0xff, 0xfe])]);
    for (const name of odd) {
      await mkdir(join(mount, name, '..'), { recursive: true });
      await writeFile(join(mount, name), name);
    }
    await writeFile(notUtf8, 'x');
    try {
      const { files, skips } = await scan({ exclude: ['**/*.tmp'] });
      for (const name of odd) assert.equal(files.get(name)?.size, Buffer.byteLength(name), JSON.stringify(name));
      assert.equal(skips.get('bad-\ufffd\ufffd')?.reason, 'bad-name');
      assert.ok(![...files.keys()].some((name) => name.includes('\ufffd')));
    } finally {
      for (const name of odd) await rm(join(mount, name));
      await rm(join(mount, 'dir\nname'), { recursive: true });
      await rm(notUtf8);
    }
  });

  test('a missing location rejects', async () => {
    await assert.rejects(async () => {
      for await (const _ of scanMount(join(base, 'nope'))) void _;
    }, { code: 'ENOENT' });
  });
});
