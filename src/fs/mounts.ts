/**
 * The server's mount table: which physical directory publishes which virtual path. Mounts
 * may overlap (`"/"` and `"/photos"`); a virtual path belongs to the most specific mount that
 * covers it, as with Unix mounts, so a deeper mount hides whatever the shallower one holds at
 * the same place.
 *
 * @packageDocumentation
 */

import { isAbsolute, join, relative, resolve, sep } from 'node:path';

import { InvalidMountError, PathOutsideMountError } from './errors.js';
import { covers, joinVirtual, normalizeVirtualPath, relativeTo } from './vpath.js';

/** One published directory. */
export interface Mount {
  /** The absolute physical directory, normalized. */
  readonly location: string;
  /** The virtual path it is published under, normalized. */
  readonly virtualPath: string;
}

/** A virtual path resolved to the mount that owns it. */
export interface ResolvedPath {
  readonly mount: Mount;
  /** The normalized virtual path. */
  readonly virtualPath: string;
  /** Where it lives on disk (it may not exist). */
  readonly physicalPath: string;
  /** The virtual path relative to the mount, `"/"`-separated; `''` for the mount itself. */
  readonly relativePath: string;
}

/** The part of one mount that a subscription can see, for listing. */
export interface MountView {
  readonly mount: Mount;
  /** The virtual path of the visible part: the mount's own, or the subscription inside it. */
  readonly virtualPath: string;
  /** The physical directory of the visible part. */
  readonly physicalPath: string;
  /** The visible part relative to the mount, `"/"`-separated; `''` for the whole mount. */
  readonly relativePath: string;
}

/**
 * Whether `path` lies strictly inside the directory `root` (lexically: neither is resolved
 * against symbolic links, so pass real paths when that matters).
 *
 * @example
 * ```ts
 * isPathInside('/srv/photos', '/srv/photos/a.jpg') // true
 * isPathInside('/srv/photos', '/srv/photos2')      // false
 * isPathInside('/srv/photos', '/srv/photos')       // false
 * ```
 */
export function isPathInside(root: string, path: string): boolean {
  const rel = relative(resolve(root), resolve(path));
  return rel !== '' && rel !== '..' && !rel.startsWith('..' + sep) && !isAbsolute(rel);
}

/**
 * The mounts a server publishes.
 *
 * @example
 * ```ts
 * const mounts = new MountTable()
 * mounts.add('/srv/share', '/')
 * mounts.add('/srv/photos', '/photos')
 * mounts.resolve('/photos/a.jpg')?.physicalPath // '/srv/photos/a.jpg'
 * mounts.resolve('/docs/b.txt')?.physicalPath   // '/srv/share/docs/b.txt'
 * ```
 */
export class MountTable implements Iterable<Mount> {
  /** Most specific first, so the first covering mount is the owner. */
  private readonly byDepth: Mount[] = [];

  /**
   * Publishes a physical directory under a virtual path and returns the new mount.
   *
   * @throws {@link InvalidMountError} if `location` is not absolute or `virtualPath` is
   *   already mounted; {@link UnsafeNameError} if `virtualPath` is not a valid virtual path.
   */
  add(location: string, virtualPath: string): Mount {
    if (!isAbsolute(location)) {
      throw new InvalidMountError('relative-location', `mount location ${location} is not an absolute path`);
    }
    const mount: Mount = Object.freeze({
      location: resolve(location),
      virtualPath: normalizeVirtualPath(virtualPath),
    });
    if (this.byDepth.some((other) => other.virtualPath === mount.virtualPath)) {
      throw new InvalidMountError(
        'duplicate-virtual-path',
        `virtual path ${mount.virtualPath} is already mounted`,
      );
    }
    this.byDepth.push(mount);
    this.byDepth.sort((a, b) => b.virtualPath.length - a.virtualPath.length);
    return mount;
  }

  /** The mounts, most specific first. */
  get mounts(): readonly Mount[] {
    return this.byDepth.slice();
  }

  get size(): number {
    return this.byDepth.length;
  }

  [Symbol.iterator](): Iterator<Mount> {
    return this.mounts[Symbol.iterator]();
  }

  /**
   * The mount that owns a virtual path (the most specific one covering it), or `undefined`.
   * The path must be normalized.
   */
  owner(virtualPath: string): Mount | undefined {
    // A loop, not find() and a closure: asked once per file a scan publishes.
    for (const mount of this.byDepth) if (covers(mount.virtualPath, virtualPath)) return mount;
    return undefined;
  }

  /**
   * Whether `mount` owns `virtualPath`, i.e. no more specific mount hides it there. A listing
   * of a mount keeps only the files its mount owns.
   */
  owns(mount: Mount, virtualPath: string): boolean {
    return this.owner(virtualPath) === mount;
  }

  /**
   * Resolves a virtual path to its owning mount and physical path, or `undefined` if no
   * mount covers it.
   *
   * @throws {@link UnsafeNameError} if `virtualPath` is not a valid virtual path.
   */
  resolve(virtualPath: string): ResolvedPath | undefined {
    const normal = normalizeVirtualPath(virtualPath);
    const mount = this.owner(normal);
    if (mount === undefined) return undefined;
    const relativePath = relativeTo(mount.virtualPath, normal) ?? '';
    return {
      mount,
      virtualPath: normal,
      physicalPath: toPhysical(mount.location, relativePath),
      relativePath,
    };
  }

  /**
   * The parts of the mounts a subscription can see, most general first: every mount inside
   * the subscription, whole, and the most specific mount containing the subscription, only
   * from the subscribed path down (a subscription `"/a/b"` under mount `"/a"` reads `b` of that
   * mount). A mount entirely hidden by a more specific one is left out; hidden parts of the
   * views that remain are found with {@link MountTable.owns}.
   *
   * @throws {@link UnsafeNameError} if `subscription` is not a valid virtual path.
   *
   * @example
   * ```ts
   * // mounts '/' and '/photos'
   * mounts.mountsUnder('/')          // both, whole
   * mounts.mountsUnder('/photos/x')  // '/photos' from 'x' down
   * ```
   */
  mountsUnder(subscription: string): MountView[] {
    const normal = normalizeVirtualPath(subscription);
    const views: MountView[] = [];
    let container: Mount | undefined;
    for (const mount of this.byDepth) {
      if (covers(normal, mount.virtualPath)) {
        views.push({ mount, virtualPath: mount.virtualPath, physicalPath: mount.location, relativePath: '' });
      } else if (container === undefined && covers(mount.virtualPath, normal)) {
        container = mount; // the first one found is the most specific
      }
    }
    // A mount at the subscription itself (inside it, so listed above) hides every container.
    if (container !== undefined && !this.byDepth.some((mount) => mount.virtualPath === normal)) {
      const relativePath = relativeTo(container.virtualPath, normal) ?? '';
      views.push({
        mount: container,
        virtualPath: normal,
        physicalPath: toPhysical(container.location, relativePath),
        relativePath,
      });
    }
    return views.reverse();
  }

  /**
   * The virtual path of a physical path inside `mount`. Lexical: symbolic links are not
   * resolved.
   *
   * @throws {@link PathOutsideMountError} if the path is not the mount's location or inside it.
   *
   * @example
   * ```ts
   * mounts.toVirtual(photos, '/srv/photos/2024/a.jpg') // '/photos/2024/a.jpg'
   * ```
   */
  toVirtual(mount: Mount, physicalPath: string): string {
    const absolute = resolve(physicalPath);
    if (absolute !== mount.location && !isPathInside(mount.location, absolute)) {
      throw new PathOutsideMountError(absolute, mount.location);
    }
    return joinVirtual(mount.virtualPath, relative(mount.location, absolute).split(sep).join('/'));
  }
}

function toPhysical(location: string, relativePath: string): string {
  return relativePath === '' ? location : join(location, ...relativePath.split('/'));
}
