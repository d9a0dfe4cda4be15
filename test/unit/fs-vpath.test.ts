/**
 * Virtual paths: normalization and its refusals, segment-prefix matching, joining, and the
 * cache keys of a late joiner's ICANHAZ.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import fc from 'fast-check';

import { UnsafeNameError, type UnsafeNameReason } from '../../src/fs/errors.js';
import {
  cacheKeyMatches,
  covers,
  joinVirtual,
  normalizeSubscription,
  normalizeVirtualPath,
  relativeTo,
  resolveCacheKey,
  resolveCacheKeys,
} from '../../src/fs/vpath.js';

/** Few, similar segments, so that prefixes (and near-prefixes like "a" / "ab") are common. */
const segment = fc.constantFrom('a', 'b', 'ab', 'a.b', 'photos', 'photos2', '...', 'é');
const normalPath = fc.array(segment, { maxLength: 4 }).map((segments) => '/' + segments.join('/'));

function refused(path: string, reason: UnsafeNameReason, run: (path: string) => unknown): void {
  assert.throws(
    () => run(path),
    (error: unknown) => error instanceof UnsafeNameError && error.reason === reason && error.code === 'ERR_FMQ_UNSAFE_NAME',
    `${JSON.stringify(path)} should be refused with ${reason}`,
  );
}

describe('fs-vpath: normalizeSubscription', () => {
  test('collapses duplicate slashes and drops a trailing slash, except for "/"', () => {
    assert.equal(normalizeSubscription('/'), '/');
    assert.equal(normalizeSubscription('//'), '/');
    assert.equal(normalizeSubscription('/photos/'), '/photos');
    assert.equal(normalizeSubscription('//photos///2024//'), '/photos/2024');
    assert.equal(normalizeSubscription('/a/...b/c..'), '/a/...b/c..', 'names merely containing dots are fine');
  });

  test('refuses "..", ".", relative and empty paths and NUL; backslashes on Windows only', () => {
    refused('..', 'not-absolute', normalizeSubscription);
    refused('/..', 'dot-segment', normalizeSubscription);
    refused('/a/../b', 'dot-segment', normalizeSubscription);
    refused('/a/..', 'dot-segment', normalizeSubscription);
    refused('/a/./b', 'dot-segment', normalizeSubscription);
    refused('a', 'not-absolute', normalizeSubscription);
    refused('', 'empty', normalizeSubscription);
    refused('/a\\b', 'backslash', (path) => normalizeSubscription(path, 'win32'));
    refused('/a\\..\\..\\b', 'backslash', (path) => normalizeSubscription(path, 'win32'));
    assert.equal(normalizeSubscription('/a\\..\\..\\b', 'linux'), '/a\\..\\..\\b', 'on Linux one segment named a\\..\\..\\b');
    refused('/a\0b', 'nul', normalizeSubscription);
  });

  test('is idempotent and its output always starts with "/" and never ends with one', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(segment, fc.constant('')), { maxLength: 6 }), (parts) => {
        const normal = normalizeVirtualPath('/' + parts.join('/'));
        assert.equal(normalizeVirtualPath(normal), normal);
        assert.ok(normal.startsWith('/'));
        assert.ok(normal === '/' || !normal.endsWith('/'));
        assert.ok(!normal.includes('//'));
      }),
    );
  });
});

describe('fs-vpath: covers', () => {
  test('matches whole segments only', () => {
    assert.equal(covers('/photos', '/photos'), true);
    assert.equal(covers('/photos', '/photos/x'), true);
    assert.equal(covers('/photos', '/photos2/x'), false);
    assert.equal(covers('/photos', '/photos2'), false);
    assert.equal(covers('/photos/x', '/photos'), false);
    assert.equal(covers('/', '/anything/at/all'), true);
    assert.equal(covers('/', '/'), true);
  });

  test('property: covers(s, p) iff p === s, p starts with s + "/", or s === "/"', () => {
    const related = fc.tuple(normalPath, fc.array(segment, { maxLength: 3 })).map(([s, extra]) => ({
      s,
      p: joinVirtual(s, extra.join('/')),
    }));
    const unrelated = fc.record({ s: normalPath, p: normalPath });
    fc.assert(
      fc.property(fc.oneof(related, unrelated), ({ s, p }) => {
        const expected = p === s || p.startsWith(s + '/') || s === '/';
        assert.equal(covers(s, p), expected);
      }),
      { numRuns: 2000 },
    );
  });

  test('property: relativeTo inverts joinVirtual on covered paths', () => {
    fc.assert(
      fc.property(normalPath, normalPath, (s, p) => {
        const rest = relativeTo(s, p);
        assert.equal(rest === undefined, !covers(s, p));
        if (rest !== undefined) {
          assert.ok(!rest.startsWith('/'));
          assert.equal(joinVirtual(s, rest), p);
        }
      }),
    );
  });
});

describe('fs-vpath: relativeTo and joinVirtual', () => {
  test('relativeTo strips the subscription and its slash', () => {
    assert.equal(relativeTo('/photos', '/photos/2024/a.jpg'), '2024/a.jpg');
    assert.equal(relativeTo('/photos', '/photos'), '');
    assert.equal(relativeTo('/', '/a.jpg'), 'a.jpg');
    assert.equal(relativeTo('/', '/'), '');
    assert.equal(relativeTo('/photos', '/photos2/a.jpg'), undefined);
  });

  test('joinVirtual never produces "//" and refuses dot segments', () => {
    assert.equal(joinVirtual('/', 'a.jpg'), '/a.jpg');
    assert.equal(joinVirtual('/', '/a.jpg'), '/a.jpg');
    assert.equal(joinVirtual('/photos', '2024//a.jpg'), '/photos/2024/a.jpg');
    assert.equal(joinVirtual('/photos', ''), '/photos');
    assert.equal(joinVirtual('/', ''), '/');
    refused('../x', 'dot-segment', (name) => joinVirtual('/photos', name));
    refused('a/./x', 'dot-segment', (name) => joinVirtual('/photos', name));
    refused('a\0x', 'nul', (name) => joinVirtual('/photos', name));
  });
});

describe('fs-vpath: cache keys', () => {
  test('with a "/" subscription, "name" and "/name" both match "/name"', () => {
    assert.equal(cacheKeyMatches('/', 'name', '/name'), true);
    assert.equal(cacheKeyMatches('/', '/name', '/name'), true);
    assert.equal(cacheKeyMatches('/', 'dir/name', '/dir/name'), true);
    assert.equal(resolveCacheKey('/', 'name'), '/name', 'not "//name" as the reference joins it');
    assert.equal(cacheKeyMatches('/', 'name', '/other'), false);
  });

  test('with a "/photos" subscription, relative keys are below it and absolute keys are full paths', () => {
    assert.equal(cacheKeyMatches('/photos', 'a.jpg', '/photos/a.jpg'), true);
    assert.equal(cacheKeyMatches('/photos', '2024/a.jpg', '/photos/2024/a.jpg'), true);
    assert.equal(cacheKeyMatches('/photos', '/photos/a.jpg', '/photos/a.jpg'), true);
    assert.equal(cacheKeyMatches('/photos', '/a.jpg', '/photos/a.jpg'), false);
    assert.equal(cacheKeyMatches('/photos', 'a.jpg', '/a.jpg'), false);
    assert.equal(cacheKeyMatches('/photos', '//photos//a.jpg', '/photos/a.jpg'), true);
  });

  test('unusable keys match nothing instead of throwing', () => {
    for (const key of ['', '../etc/passwd', '/photos/../etc/passwd', 'a/./b', 'a\0b']) {
      assert.equal(resolveCacheKey('/photos', key), undefined, JSON.stringify(key));
    }
    // On Linux a backslash is part of a name: a client holding such a file must be able to say so.
    assert.equal(resolveCacheKey('/photos', 'a\\b'), process.platform === 'win32' ? undefined : '/photos/a\\b');
  });

  test('resolveCacheKeys maps keys to virtual paths and lower-cases digests', () => {
    const digest = 'A9993E364706816ABA3E25717850C26C9CD0D89D';
    const cache = resolveCacheKeys('/photos', [
      ['a.jpg', digest],
      ['/music/b.mp3', digest],
      ['../escape', digest],
    ]);
    assert.deepEqual(
      [...cache],
      [
        ['/photos/a.jpg', digest.toLowerCase()],
        ['/music/b.mp3', digest.toLowerCase()],
      ],
    );
  });
});
