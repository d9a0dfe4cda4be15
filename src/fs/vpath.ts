/**
 * Virtual paths: the names files travel under on the wire. They are always `"/"`-separated
 * and absolute (`"/photos/a.jpg"`), never physical, and literal: `"."` and `".."` are
 * refused rather than resolved, so a virtual path means the same thing on every host.
 *
 * Functions here are pure string work; none touches the file system.
 *
 * @packageDocumentation
 */

import { UnsafeNameError } from './errors.js';

const SLASH = 0x2f;

/**
 * Checks a virtual path and returns its normal form: duplicate slashes collapsed and any
 * trailing slash dropped (except for `"/"` itself).
 *
 * Refused with {@link UnsafeNameError}: the empty string, a path not starting with `"/"`,
 * any `"."` or `".."` segment, a NUL; on Windows also a backslash (a separator there). On
 * Linux a backslash is a character like any other in a file name.
 *
 * @example
 * ```ts
 * normalizeVirtualPath('//photos///2024/') // '/photos/2024'
 * normalizeVirtualPath('/a/../b')          // throws UnsafeNameError, reason 'dot-segment'
 * ```
 */
export function normalizeVirtualPath(path: string, platform: NodeJS.Platform = process.platform): string {
  if (path === '') throw new UnsafeNameError('empty', path, 'a virtual path cannot be empty');
  if (path.charCodeAt(0) !== SLASH) {
    throw new UnsafeNameError('not-absolute', path, `virtual path ${JSON.stringify(path)} must start with "/"`);
  }
  // The common case, already normal ("/a/b.txt"), is returned as it is.
  if (path.length > 1 && !UNCLEAN_NAME.test(path.slice(1)) && (platform !== 'win32' || !path.includes('\\'))) return path;
  if (path.includes('\0')) throw new UnsafeNameError('nul', path);
  // A backslash is a separator on Windows: there it could smuggle in a `..` segment.
  if (platform === 'win32' && path.includes('\\')) throw new UnsafeNameError('backslash', path);
  const segments = path.split('/').filter((segment) => segment !== '');
  for (const segment of segments) {
    if (segment === '.' || segment === '..') throw new UnsafeNameError('dot-segment', path);
  }
  return '/' + segments.join('/');
}

/**
 * Checks a subscription path (the `path` of ICANHAZ) and returns its normal form. The rules
 * are those of {@link normalizeVirtualPath}; a subscription may name something that does not
 * exist yet.
 *
 * @example
 * ```ts
 * normalizeSubscription('/photos/') // '/photos'
 * normalizeSubscription('photos')   // throws UnsafeNameError, reason 'not-absolute'
 * ```
 */
export function normalizeSubscription(path: string, platform: NodeJS.Platform = process.platform): string {
  return normalizeVirtualPath(path, platform);
}

/**
 * Whether a subscription covers a virtual path: a prefix match on whole segments, so
 * `"/photos"` covers `"/photos"` and `"/photos/x"` but not `"/photos2/x"`; `"/"` covers
 * everything. Both arguments must be normalized.
 *
 * @example
 * ```ts
 * covers('/photos', '/photos/2024/a.jpg') // true
 * covers('/photos', '/photos2/a.jpg')     // false
 * ```
 */
export function covers(subscription: string, virtualPath: string): boolean {
  const length = subscription.length;
  if (length === 1) return true; // "/"
  if (virtualPath.length === length) return virtualPath === subscription;
  return (
    virtualPath.length > length &&
    virtualPath.charCodeAt(length) === SLASH &&
    virtualPath.startsWith(subscription)
  );
}

/**
 * The part of `virtualPath` below `subscription`, without a leading slash: `''` when they are
 * equal, `undefined` when the subscription does not cover the path. Both must be normalized.
 *
 * @example
 * ```ts
 * relativeTo('/photos', '/photos/2024/a.jpg') // '2024/a.jpg'
 * relativeTo('/', '/a.jpg')                   // 'a.jpg'
 * relativeTo('/photos', '/music/x')           // undefined
 * ```
 */
export function relativeTo(subscription: string, virtualPath: string): string | undefined {
  if (!covers(subscription, virtualPath)) return undefined;
  if (subscription.length === 1) return virtualPath.slice(1);
  return virtualPath.slice(subscription.length + 1);
}

/**
 * Appends a relative name to a normalized virtual path. Empty segments in `name` are
 * collapsed (so a leading or doubled slash is harmless); `"."`, `".."` and NUL are refused
 * with {@link UnsafeNameError}.
 *
 * @example
 * ```ts
 * joinVirtual('/', 'a.jpg')         // '/a.jpg' (not '//a.jpg')
 * joinVirtual('/photos', '2024/a')  // '/photos/2024/a'
 * joinVirtual('/photos', '')        // '/photos'
 * ```
 */
export function joinVirtual(base: string, name: string): string {
  // The common case, a clean relative name ("a/b.txt"), is joined as it is.
  if (name !== '' && !UNCLEAN_NAME.test(name)) return (base.length === 1 ? '' : base) + '/' + name;
  if (name.includes('\0')) throw new UnsafeNameError('nul', name);
  const segments = name.split('/').filter((segment) => segment !== '');
  for (const segment of segments) {
    if (segment === '.' || segment === '..') throw new UnsafeNameError('dot-segment', name);
  }
  if (segments.length === 0) return base;
  return (base.length === 1 ? '' : base) + '/' + segments.join('/');
}

/**
 * The virtual path a cache key names, or `undefined` if the key is unusable. A key starting
 * with `"/"` is a full virtual path; any other key is relative to the subscribed path. With a
 * `"/"` subscription, `"name"` and `"/name"` both give `"/name"` (the reference joins them into
 * `"//name"`, matches nothing and resends everything).
 *
 * Cache keys come from the client, so a bad one never throws: it just matches nothing.
 *
 * @example
 * ```ts
 * resolveCacheKey('/photos', 'a.jpg')       // '/photos/a.jpg'
 * resolveCacheKey('/photos', '/music/b.mp3') // '/music/b.mp3'
 * resolveCacheKey('/', 'a.jpg')             // '/a.jpg'
 * resolveCacheKey('/', '../etc/passwd')     // undefined
 * ```
 */
export function resolveCacheKey(subscription: string, key: string): string | undefined {
  if (key === '') return undefined;
  try {
    return key.charCodeAt(0) === SLASH ? normalizeVirtualPath(key) : joinVirtual(subscription, key);
  } catch (error) {
    if (error instanceof UnsafeNameError) return undefined;
    throw error;
  }
}

/**
 * Whether a cache key (see {@link resolveCacheKey}) names `virtualPath` under `subscription`.
 *
 * @example
 * ```ts
 * cacheKeyMatches('/', 'a.jpg', '/a.jpg')            // true
 * cacheKeyMatches('/', '/a.jpg', '/a.jpg')           // true
 * cacheKeyMatches('/photos', 'a.jpg', '/photos/a.jpg') // true
 * ```
 */
export function cacheKeyMatches(subscription: string, key: string, virtualPath: string): boolean {
  return resolveCacheKey(subscription, key) === virtualPath;
}

/**
 * Turns the `cache` of an ICANHAZ into a map from virtual path to SHA-1, dropping unusable
 * keys. Digests are lower-cased: the C reference formats them in upper case, `sha1File` in
 * lower case, and both must compare equal.
 *
 * @example
 * ```ts
 * const cache = resolveCacheKeys('/photos', Object.entries(icanhaz.cache))
 * if (cache.get('/photos/a.jpg') === await sha1File(file)) skipIt()
 * ```
 */
export function resolveCacheKeys(
  subscription: string,
  entries: Iterable<readonly [string, string]>,
): Map<string, string> {
  const resolved = new Map<string, string>();
  for (const [key, digest] of entries) {
    const virtualPath = resolveCacheKey(subscription, key);
    if (virtualPath !== undefined) resolved.set(virtualPath, digest.toLowerCase());
  }
  return resolved;
}

/**
 * Orders two virtual paths by their Unicode code points, which is the octet order of their
 * UTF-8 (and SQLite's BINARY collation): the order of cache parts (ICANHAZ option MORE=1).
 * JavaScript's `<` compares UTF-16 code units, which put U+E000..U+FFFF after the surrogate
 * pairs of U+10000 and above; this shifts them back.
 *
 * @example
 * ```ts
 * ['/b', '/a/x', '/a-c'].sort(compareVirtualPaths) // ['/a-c', '/a/x', '/b']
 * ```
 */
export function compareVirtualPaths(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/**
 * Sorts virtual paths in place by {@link compareVirtualPaths}: with the engine's own string
 * order (UTF-16 code units, far faster than a comparator) when no path holds a code unit from
 * U+D800 up, where that order and code point order part.
 *
 * @example
 * ```ts
 * sortVirtualPaths(['/b', '/a']) // ['/a', '/b']
 * ```
 */
export function sortVirtualPaths(paths: string[]): string[] {
  return paths.some((path) => HIGH_UNIT.test(path)) ? paths.sort(compareVirtualPaths) : paths.sort();
}

/**
 * Sorts items in place by a path each holds, as {@link sortVirtualPaths} sorts paths (the
 * engine's order when it is code point order).
 *
 * @example
 * ```ts
 * sortByVirtualPath([['b', 1], ['a', 2]], ([path]) => path) // [['a', 2], ['b', 1]]
 * ```
 */
export function sortByVirtualPath<T>(items: T[], pathOf: (item: T) => string): T[] {
  if (items.some((item) => HIGH_UNIT.test(pathOf(item)))) return items.sort((a, b) => compareVirtualPaths(pathOf(a), pathOf(b)));
  return items.sort((a, b) => {
    const x = pathOf(a);
    const y = pathOf(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

const HIGH_UNIT = /[\uD800-\uFFFF]/;

/** What {@link joinVirtual} must look at segment by segment: a NUL, a leading, trailing or doubled "/", a "." or ".." segment. */
const UNCLEAN_NAME = /\0|^\/|\/$|\/\/|(?:^|\/)\.\.?(?:\/|$)/;

/** A UTF-16 code unit's place in code point order: surrogates (U+10000 and above) after U+FFFF. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
