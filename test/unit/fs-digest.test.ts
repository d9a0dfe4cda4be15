/**
 * SHA-1 of files, streamed: the same digest as hashing the whole buffer at once.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { IncrementalSha1, sha1File, sha1Hex } from '../../src/fs/digest.js';

const reference = (data: Uint8Array): string => createHash('sha1').update(data).digest('hex');

describe('fs-digest', () => {
  let dir: string;
  let bigFile: string;
  let big: Buffer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-digest-'));
    big = randomBytes(3 * 1024 * 1024 + 12345); // a few MiB, not a multiple of the read size
    bigFile = join(dir, 'big.bin');
    await writeFile(bigFile, big);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('sha1File matches crypto.createHash on a few MiB', async () => {
    assert.equal(await sha1File(bigFile), reference(big));
    assert.equal(await sha1File(bigFile, { highWaterMark: 4096 }), reference(big), 'any read size');
  });

  test('sha1File of an empty file is the SHA-1 of nothing', async () => {
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    assert.equal(await sha1File(empty), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  });

  test('sha1File rejects on a missing file and on abort', async () => {
    await assert.rejects(sha1File(join(dir, 'missing')), { code: 'ENOENT' });
    await assert.rejects(sha1File(bigFile, { signal: AbortSignal.abort() }), { name: 'AbortError' });
    const controller = new AbortController();
    const hashing = sha1File(bigFile, { signal: controller.signal, highWaterMark: 1024 });
    controller.abort();
    await assert.rejects(hashing, { name: 'AbortError' });
  });

  test('IncrementalSha1 equals hashing at once, and can resume from a partial file', async () => {
    const sha1 = new IncrementalSha1();
    for (let offset = 0; offset < big.length; offset += 1_000_000) sha1.update(big.subarray(offset, offset + 1_000_000));
    assert.equal(sha1.bytes, big.length);
    assert.equal(sha1.digest(), reference(big));
    assert.equal(sha1.digest(), reference(big), 'digest can be asked again');
    assert.throws(() => sha1.update(big));

    const partial = join(dir, 'partial.bin');
    const cut = 1_500_000;
    await writeFile(partial, big.subarray(0, cut));
    const resumed = await IncrementalSha1.fromFile(partial);
    assert.equal(resumed.bytes, cut);
    resumed.update(big.subarray(cut));
    assert.equal(resumed.digest(), reference(big));
  });

  test('sha1Hex hashes strings as UTF-8 and buffers as is', () => {
    assert.equal(sha1Hex('abc'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(sha1Hex(Buffer.from('abc')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(new IncrementalSha1().update('é').digest(), reference(Buffer.from('é', 'utf8')));
  });
});
