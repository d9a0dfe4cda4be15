/**
 * Watches an inbox while a client fills it and checks every file that appears or changes
 * under a final name: read at once (through its own descriptor, so a rename over it later
 * does not matter), its size and SHA-256 must be one of the versions the source had. One
 * fs.watch per folder (folders that appear are watched and scanned as they come); the state
 * folder `.fmq`, where partial files legitimately live, is left out.
 */
import { watch, type FSWatcher } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { sha256File, type Manifest } from './harness.js'

export interface TornSighting {
  path: string
  size: number
  sha256: string
  expected: string
}

export class TornWatcher {
  /** Files read and found to be a whole version of their source. */
  checked = 0
  /** Files seen under a final name that were no whole version of their source. */
  readonly torn: TornSighting[] = []
  private readonly watchers = new Map<string, FSWatcher>()
  private readonly busy = new Map<string, Promise<void>>()
  private readonly again = new Set<string>()
  private closed = false

  /**
   * @param accept - relative path → the size and SHA-256 of each version the file may have.
   */
  constructor(
    private readonly inbox: string,
    private readonly accept: (path: string) => ReadonlyArray<{ size: number; sha256: string }>,
  ) {}

  /** Accepts only the one version a manifest has of each file. */
  static fromManifest(inbox: string, manifest: Manifest): TornWatcher {
    return new TornWatcher(inbox, (path) => {
      const file = manifest.get(path)
      return file === undefined ? [] : [file]
    })
  }

  async start(): Promise<void> {
    await this.watchFolder(this.inbox)
  }

  /** Stops watching, after the checks under way. */
  async stop(): Promise<void> {
    this.closed = true
    for (const watcher of this.watchers.values()) watcher.close()
    this.watchers.clear()
    while (this.busy.size > 0) await Promise.all([...this.busy.values()])
  }

  private async watchFolder(dir: string): Promise<void> {
    if (this.closed || this.watchers.has(dir)) return
    if (relative(this.inbox, dir).split(sep).includes('.fmq')) return
    let watcher: FSWatcher
    try {
      watcher = watch(dir, (_event, name) => {
        if (name !== null) this.look(join(dir, name.toString()))
      })
    } catch {
      return // gone already
    }
    watcher.on('error', () => this.watchers.delete(dir))
    this.watchers.set(dir, watcher)
    // What came before the watch started.
    for (const name of await readdir(dir).catch(() => [] as string[])) this.look(join(dir, name))
  }

  /** Checks a path now, or again once the check under way ends. */
  private look(path: string): void {
    if (this.closed) return
    if (this.busy.has(path)) {
      this.again.add(path)
      return
    }
    const run = this.check(path).finally(() => {
      this.busy.delete(path)
      if (this.again.delete(path)) this.look(path)
    })
    this.busy.set(path, run)
  }

  private async check(path: string): Promise<void> {
    const rel = relative(this.inbox, path)
    if (rel.split(sep).includes('.fmq')) return
    const info = await lstat(path).catch(() => undefined)
    if (info === undefined) return // deleted, or renamed away
    if (info.isDirectory()) return this.watchFolder(path)
    if (!info.isFile()) return
    let got: { size: number; sha256: string }
    try {
      got = await sha256File(path)
    } catch {
      return // gone between lstat and open
    }
    const versions = this.accept(rel)
    if (versions.some((version) => version.size === got.size && version.sha256 === got.sha256)) {
      this.checked++
      return
    }
    this.torn.push({
      path: rel,
      ...got,
      expected: versions.length === 0 ? 'no such file in the source' : versions.map((v) => `${v.size} octets ${v.sha256.slice(0, 12)}`).join(' or '),
    })
  }
}
