/**
 * File-system building blocks of FileMQ: virtual paths, mounts, the inbox, portable links,
 * scanning and digests. Pure pieces, no sockets.
 *
 * @packageDocumentation
 */

export {
  InvalidMountError,
  InvalidPortableLinkError,
  PathOutsideInboxError,
  PathOutsideMountError,
  UnsafeNameError,
  type InvalidMountReason,
  type InvalidPortableLinkReason,
  type UnsafeNameReason,
} from './errors.js';
export {
  cacheKeyMatches,
  covers,
  joinVirtual,
  normalizeSubscription,
  normalizeVirtualPath,
  relativeTo,
  resolveCacheKey,
  resolveCacheKeys,
} from './vpath.js';
export { MountTable, isPathInside, type Mount, type MountView, type ResolvedPath } from './mounts.js';
export {
  MAX_NAME_BYTES,
  MAX_SEGMENT_BYTES,
  ensureParentDirs,
  inboxSegments,
  resolveInboxPath,
  resolveInboxPathSafely,
} from './inbox.js';
export {
  MAX_PORTABLE_LINK_BYTES,
  PORTABLE_LINK_SUFFIX,
  isPortableLink,
  portableLinkName,
  readPortableLink,
  type ReadPortableLinkOptions,
} from './links.js';
export { scanMount, type ScanOptions, type ScanSkip, type ScanSkipReason, type ScannedFile } from './scan.js';
export { IncrementalSha1, SHA1_READ_BYTES, sha1File, sha1Hex, type Sha1FileOptions } from './digest.js';
