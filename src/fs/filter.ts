/**
 * Which files of a mount are published: include and exclude globs, with rsync's habits, so a
 * server leaves out build output and temporary files before anything is announced or sent.
 *
 * @packageDocumentation
 */
import picomatch from 'picomatch'

/** The include and exclude globs of a server; both may be left out. */
export interface PublishFilterOptions {
  /** Globs of files not to publish. */
  exclude?: readonly string[]
  /** Globs of files published even when an exclude pattern matches them. */
  include?: readonly string[]
}

/** Tells whether a file, by its `"/"`-separated path relative to its mount, is published. */
export type PublishFilter = (relativePath: string) => boolean

/** A filter that publishes everything. */
export const PUBLISH_ALL: PublishFilter = () => true

/**
 * Compiles include and exclude globs into a {@link PublishFilter}. A file is published when
 * it matches no exclude pattern, or when it matches an include pattern: includes win over
 * excludes, whatever their order. Patterns are picomatch globs matched against the path
 * relative to the mount, dot files included (`*` matches `.env`), and read as rsync reads
 * them:
 * - a pattern without `/` matches the basename at any depth (`*.tmp`, `.DS_Store`);
 * - a pattern with a `/` is anchored at the mount (`build/**`, `docs/*.pdf`); a leading `/`
 *   only says so (`/notes.txt` is the mount's own `notes.txt`, not one deeper down);
 * - a pattern matching a directory matches everything under it (`.git` leaves out every
 *   `.git` folder, `/build` the top one), and a trailing `/` matches directories only.
 *
 * @example
 * ```ts
 * const published = compilePublishFilter({ exclude: ['*.tmp', '/build/'], include: ['keep.tmp'] })
 * published('a/b.tmp') // false
 * published('a/keep.tmp') // true
 * published('build/out.js') // false
 * ```
 */
export function compilePublishFilter(options: PublishFilterOptions = {}): PublishFilter {
  const exclude = matcher(options.exclude ?? [], 'exclude')
  const include = matcher(options.include ?? [], 'include')
  if (exclude === undefined) return PUBLISH_ALL
  if (include === undefined) return (path) => !exclude(path)
  return (path) => include(path) || !exclude(path)
}

/** Whether a file or one of its folders matches a list of patterns; undefined for no patterns. */
function matcher(patterns: readonly string[], name: string): PublishFilter | undefined {
  if (!Array.isArray(patterns)) throw new TypeError(`${name} must be an array of glob patterns`)
  if (patterns.length === 0) return undefined
  const files: string[] = []
  const folders: string[] = []
  for (const pattern of patterns) {
    if (typeof pattern !== 'string' || pattern.replace(/\/+/g, '') === '') {
      throw new TypeError(`${name} patterns must be non-empty globs, got ${JSON.stringify(pattern)}`)
    }
    const folderOnly = pattern.endsWith('/')
    let glob = pattern.replace(/\/+$/, '')
    const anchored = glob.includes('/')
    glob = glob.replace(/^\/+/, '')
    if (!anchored) glob = `**/${glob}`
    folders.push(glob)
    if (!folderOnly) files.push(glob)
  }
  const options = { dot: true }
  const file = files.length > 0 ? picomatch(files, options) : () => false
  const folder = picomatch(folders, options)
  return (given) => {
    // A path ending in "/" is a folder (a directory published to clients that mirror the tree).
    const isFolder = given.endsWith('/')
    const path = isFolder ? given.slice(0, -1) : given
    if (isFolder ? folder(path) : file(path)) return true
    // rsync does not walk into a folder it leaves out: neither is anything under it published.
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      if (folder(path.slice(0, slash))) return true
    }
    return false
  }
}
