/**
 * Typed errors of the file-system building blocks. One class per failure, each with a
 * Node-style `code`, `name` set and the underlying `cause` kept, so callers branch on
 * `instanceof` (or `code`) and never on message text.
 *
 * @packageDocumentation
 */

/** Why a name or path was refused by {@link UnsafeNameError}. */
export type UnsafeNameReason =
  /** The name is empty, or names nothing below its root (`"/"` as a file name). */
  | 'empty'
  /** A virtual path that does not start with `"/"`. */
  | 'not-absolute'
  /** A `"."` or `".."` segment: virtual paths are literal, never resolved. */
  | 'dot-segment'
  /** A NUL character, which no file system accepts and C code would truncate at. */
  | 'nul'
  /** A backslash, which is a separator on Windows and would smuggle in extra segments. */
  | 'backslash'
  /** A control character (U+0000–U+001F or U+007F). */
  | 'control-character'
  /** A segment starting with a Windows drive letter such as `C:`. */
  | 'drive-letter'
  /** A character or name Windows reserves (`<>:"|?*`, `CON`, `NUL`, a trailing dot...). */
  | 'reserved-name'
  /** The whole name is longer than 4096 octets of UTF-8. */
  | 'too-long'
  /** One segment is longer than 255 octets of UTF-8. */
  | 'segment-too-long';

/**
 * A name or virtual path that is not safe to use: a subscription with a `..` segment, or a
 * file name from a server that would leave the inbox. `reason` says which rule it broke.
 *
 * @example
 * ```ts
 * try { normalizeSubscription(path) } catch (error) {
 *   if (error instanceof UnsafeNameError) return refuse(`bad path (${error.reason})`)
 *   throw error
 * }
 * ```
 */
export class UnsafeNameError extends Error {
  override name = 'UnsafeNameError';
  readonly code = 'ERR_FMQ_UNSAFE_NAME';

  constructor(
    readonly reason: UnsafeNameReason,
    /** The name as it was given. */
    readonly path: string,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(message ?? `unsafe name ${JSON.stringify(path)}: ${reason}`, options);
  }
}

/**
 * A path that would resolve outside the client's inbox, typically because a directory inside
 * the inbox is a symbolic link. Nothing is written when this is thrown.
 *
 * @example
 * ```ts
 * const target = await resolveInboxPathSafely(inbox, '/photos/a.jpg')
 * // throws PathOutsideInboxError if <inbox>/photos is a symlink
 * ```
 */
export class PathOutsideInboxError extends Error {
  override name = 'PathOutsideInboxError';
  readonly code = 'ERR_FMQ_PATH_OUTSIDE';

  constructor(
    /** The offending physical path. */
    readonly path: string,
    /** The inbox it should have stayed in. */
    readonly inbox: string,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(message ?? `${path} is outside the inbox ${inbox}`, options);
  }
}

/**
 * A physical path that is not inside a mount's location: a portable link whose target
 * leaves the published directory, or a path handed to {@link MountTable.toVirtual} that
 * the mount does not contain.
 *
 * @example
 * ```ts
 * try { await readPortableLink(file, mount.location) } catch (error) {
 *   if (error instanceof PathOutsideMountError) skip(file)
 * }
 * ```
 */
export class PathOutsideMountError extends Error {
  override name = 'PathOutsideMountError';
  readonly code = 'ERR_FMQ_PATH_OUTSIDE_MOUNT';

  constructor(
    /** The offending physical path. */
    readonly path: string,
    /** The mount location it should have stayed in. */
    readonly location: string,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(message ?? `${path} is outside the mount ${location}`, options);
  }
}

/** Why a mount could not be added by {@link InvalidMountError}. */
export type InvalidMountReason =
  /** The physical location is not an absolute path. */
  | 'relative-location'
  /** Another mount already publishes the same virtual path. */
  | 'duplicate-virtual-path';

/**
 * A mount that cannot be added to a {@link MountTable}.
 *
 * @example
 * ```ts
 * table.add('/srv/photos', '/photos')
 * table.add('/srv/other', '/photos') // InvalidMountError, reason 'duplicate-virtual-path'
 * ```
 */
export class InvalidMountError extends Error {
  override name = 'InvalidMountError';
  readonly code = 'ERR_FMQ_INVALID_MOUNT';

  constructor(
    readonly reason: InvalidMountReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Why a portable link could not be followed by {@link InvalidPortableLinkError}. */
export type InvalidPortableLinkReason =
  /** The link file is larger than the limit (4 KiB by default). */
  | 'too-large'
  /** The link file holds no path. */
  | 'empty'
  /** The path holds a NUL character. */
  | 'invalid'
  /** The target (or the link file) does not exist or cannot be resolved; see `cause`. */
  | 'missing'
  /** The target, or the link file itself, is not a regular file. */
  | 'not-a-file';

/**
 * A portable link (`NAME.ln`) that does not lead to a publishable file. A target outside the
 * mount is reported separately, as {@link PathOutsideMountError}.
 *
 * @example
 * ```ts
 * try { await readPortableLink(file, location) } catch (error) {
 *   if (error instanceof InvalidPortableLinkError && error.reason === 'missing') later(file)
 * }
 * ```
 */
export class InvalidPortableLinkError extends Error {
  override name = 'InvalidPortableLinkError';
  readonly code = 'ERR_FMQ_BAD_LINK';

  constructor(
    readonly reason: InvalidPortableLinkReason,
    /** The link file. */
    readonly path: string,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(message ?? `portable link ${path}: ${reason}`, options);
  }
}

/** File system error codes in words, for a person. */
const FS_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EISDIR: 'is a directory',
  EEXIST: 'already exists',
  ENOTEMPTY: 'directory not empty',
  EBUSY: 'in use',
  EMFILE: 'too many open files',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'name too long',
  EXDEV: 'on another file system',
};

/**
 * A file system error code (`ENOENT`, `EEXIST`...) in words; undefined for a code that is
 * not one. For messages that name the path and what went wrong, never a bare code.
 *
 * @example
 * ```ts
 * fsErrorWords('ENOENT') // 'no such file or directory'
 * ```
 */
export function fsErrorWords(code: unknown): string | undefined {
  return typeof code === 'string' ? FS_WORDS[code] : undefined;
}
