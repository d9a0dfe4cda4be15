/**
 * The mount table: overlapping mounts resolve to the most specific one, subscriptions see the
 * right parts of each mount, and physical paths map back to virtual ones only from inside.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { InvalidMountError, PathOutsideMountError, UnsafeNameError } from '../../src/fs/errors.js';
import { MountTable, isPathInside } from '../../src/fs/mounts.js';

const SHARE = '/srv/share';
const PHOTOS = '/srv/photos';
const RAW = '/mnt/raw';

function table(): MountTable {
  const mounts = new MountTable();
  mounts.add(SHARE, '/');
  mounts.add(PHOTOS, '/photos');
  mounts.add(RAW, '/photos/raw/');
  return mounts;
}

describe('fs-mounts: resolve', () => {
  test('overlapping mounts resolve to the longest matching virtual path', () => {
    const mounts = table();
    assert.deepEqual(
      { ...mounts.resolve('/photos/raw/x.cr2') },
      {
        mount: mounts.owner('/photos/raw'),
        virtualPath: '/photos/raw/x.cr2',
        physicalPath: join(RAW, 'x.cr2'),
        relativePath: 'x.cr2',
      },
    );
    assert.equal(mounts.resolve('/photos/a.jpg')?.physicalPath, join(PHOTOS, 'a.jpg'));
    assert.equal(mounts.resolve('/photos')?.physicalPath, PHOTOS);
    assert.equal(mounts.resolve('/photos/raw')?.physicalPath, RAW);
    assert.equal(mounts.resolve('/docs/b.txt')?.physicalPath, join(SHARE, 'docs', 'b.txt'));
    // segment matching: "/photos2" is not under "/photos"
    assert.equal(mounts.resolve('/photos2/a.jpg')?.physicalPath, join(SHARE, 'photos2', 'a.jpg'));
    assert.equal(mounts.resolve('//photos//a.jpg')?.virtualPath, '/photos/a.jpg');
  });

  test('insertion order does not matter', () => {
    const mounts = new MountTable();
    mounts.add(RAW, '/photos/raw');
    mounts.add(PHOTOS, '/photos');
    mounts.add(SHARE, '/');
    assert.equal(mounts.resolve('/photos/raw/x')?.mount.location, RAW);
    assert.equal(mounts.resolve('/photos/x')?.mount.location, PHOTOS);
    assert.deepEqual(
      mounts.mounts.map((mount) => mount.virtualPath),
      ['/photos/raw', '/photos', '/'],
    );
  });

  test('a path no mount covers resolves to undefined; an unsafe one throws', () => {
    const mounts = new MountTable();
    mounts.add(PHOTOS, '/photos');
    assert.equal(mounts.resolve('/music/a.mp3'), undefined);
    assert.equal(mounts.resolve('/photos2'), undefined);
    assert.throws(() => mounts.resolve('/photos/../etc/passwd'), UnsafeNameError);
  });

  test('owns tells which mount publishes a path where mounts overlap', () => {
    const mounts = table();
    const [raw, photos, share] = mounts.mounts;
    assert.ok(raw && photos && share);
    assert.equal(mounts.owns(share, '/photos/a.jpg'), false, 'hidden by /photos');
    assert.equal(mounts.owns(photos, '/photos/a.jpg'), true);
    assert.equal(mounts.owns(photos, '/photos/raw/x'), false, 'hidden by /photos/raw');
    assert.equal(mounts.owns(share, '/photos2/a.jpg'), true);
  });
});

describe('fs-mounts: mountsUnder', () => {
  const views = (mounts: MountTable, subscription: string) =>
    mounts.mountsUnder(subscription).map(({ mount, virtualPath, physicalPath, relativePath }) => ({
      mount: mount.virtualPath,
      virtualPath,
      physicalPath,
      relativePath,
    }));

  test('"/" sees every mount, whole, most general first', () => {
    assert.deepEqual(views(table(), '/'), [
      { mount: '/', virtualPath: '/', physicalPath: SHARE, relativePath: '' },
      { mount: '/photos', virtualPath: '/photos', physicalPath: PHOTOS, relativePath: '' },
      { mount: '/photos/raw', virtualPath: '/photos/raw', physicalPath: RAW, relativePath: '' },
    ]);
  });

  test('a subscription inside a mount sees only that part of it, and mounts below whole', () => {
    assert.deepEqual(views(table(), '/photos/2024/'), [
      { mount: '/photos', virtualPath: '/photos/2024', physicalPath: join(PHOTOS, '2024'), relativePath: '2024' },
    ]);
    assert.deepEqual(views(table(), '/photos'), [
      { mount: '/photos', virtualPath: '/photos', physicalPath: PHOTOS, relativePath: '' },
      { mount: '/photos/raw', virtualPath: '/photos/raw', physicalPath: RAW, relativePath: '' },
    ]);
    assert.deepEqual(views(table(), '/docs/a'), [
      { mount: '/', virtualPath: '/docs/a', physicalPath: join(SHARE, 'docs', 'a'), relativePath: 'docs/a' },
    ]);
  });

  test('mounts entirely hidden by a more specific one are left out', () => {
    const mounts = new MountTable();
    mounts.add(SHARE, '/');
    mounts.add(PHOTOS, '/a');
    mounts.add(RAW, '/a/b/c');
    assert.deepEqual(views(mounts, '/a/b'), [
      { mount: '/a', virtualPath: '/a/b', physicalPath: join(PHOTOS, 'b'), relativePath: 'b' },
      { mount: '/a/b/c', virtualPath: '/a/b/c', physicalPath: RAW, relativePath: '' },
    ]);
  });

  test('a subscription nothing covers sees nothing; segment matching applies', () => {
    const mounts = new MountTable();
    mounts.add(PHOTOS, '/photos');
    assert.deepEqual(views(mounts, '/photos2'), []);
    assert.deepEqual(views(mounts, '/music'), []);
    assert.throws(() => mounts.mountsUnder('/photos/..'), UnsafeNameError);
  });
});

describe('fs-mounts: add and toVirtual', () => {
  test('add refuses relative locations, duplicates and unsafe virtual paths', () => {
    const mounts = new MountTable();
    mounts.add(PHOTOS, '/photos');
    assert.throws(
      () => mounts.add('relative/dir', '/x'),
      (error: unknown) => error instanceof InvalidMountError && error.reason === 'relative-location',
    );
    assert.throws(
      () => mounts.add(SHARE, '/photos/'),
      (error: unknown) => error instanceof InvalidMountError && error.reason === 'duplicate-virtual-path',
    );
    assert.throws(() => mounts.add(SHARE, '/a/../photos'), UnsafeNameError);
    assert.throws(() => mounts.add(SHARE, 'photos'), UnsafeNameError);
    assert.equal(mounts.size, 1);
  });

  test('toVirtual maps physical paths inside the mount', () => {
    const mounts = table();
    const photos = mounts.owner('/photos');
    const share = mounts.owner('/');
    assert.ok(photos && share);
    assert.equal(mounts.toVirtual(photos, join(PHOTOS, '2024', 'a.jpg')), '/photos/2024/a.jpg');
    assert.equal(mounts.toVirtual(photos, PHOTOS), '/photos');
    assert.equal(mounts.toVirtual(photos, PHOTOS + '/'), '/photos');
    assert.equal(mounts.toVirtual(share, join(SHARE, 'b.txt')), '/b.txt');
    assert.equal(mounts.toVirtual(photos, join(PHOTOS, '..foo')), '/photos/..foo');
  });

  test('toVirtual refuses paths outside the mount location', () => {
    const mounts = table();
    const photos = mounts.owner('/photos');
    assert.ok(photos);
    for (const outside of ['/srv/photos2/a.jpg', '/srv', '/srv/photos/../share/x', '/etc/passwd', '/']) {
      assert.throws(
        () => mounts.toVirtual(photos, outside),
        (error: unknown) => error instanceof PathOutsideMountError && error.location === PHOTOS,
        outside,
      );
    }
  });

  test('isPathInside is strict and segment-wise', () => {
    assert.equal(isPathInside('/srv/photos', '/srv/photos/a'), true);
    assert.equal(isPathInside('/srv/photos', '/srv/photos'), false);
    assert.equal(isPathInside('/srv/photos', '/srv/photos2/a'), false);
    assert.equal(isPathInside('/srv/photos', '/srv/photos/../x'), false);
  });
});
