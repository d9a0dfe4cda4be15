/**
 * Reloading who may connect while the server runs: the `security` section of its config file
 * (access switches, accounts) and the folder of CURVE client keys, watched with chokidar.
 * These are a few files, unlike the published tree, which keeps its own per-folder watcher
 * (src/fs/watcher.ts). A reload serves the connections after it: a session already in was
 * let in by what held then, and stays. A broken edit (a ZPL syntax error, an account without
 * a password, a key file that is not one) is reported with its file and line, and the last
 * good settings stay.
 *
 * @packageDocumentation
 */
import { resolve } from 'node:path'

import type { FSWatcher } from 'chokidar'

import type { ConfigWarning, ServerConfigOptions } from '../config/settings.js'
import { loadZplFile, type ZplNode } from '../config/zpl.js'
import { AccessPolicy, Accounts } from '../security/accounts.js'
import { loadCurvePublicKeys } from '../security/curve.js'
import { DEFAULT_SERVER_OPTIONS } from './options.js'

/** What to watch, and how to read the config (see `Server.watchAccess`). */
export interface AccessReload {
  /** The config file whose `security` section (access switches, accounts) is read again when it changes. */
  config?: string
  /** The folder of the CURVE client public keys let in (`fmq keygen` public files), read again when a file in it changes. */
  clientKeys?: string
  /**
   * Reads the config as it now is into server options, for the layers over the config (`fmq
   * server`'s `--anonymous`). Default: the config, under the options given to the server.
   */
  read?: (root: ZplNode, source: string) => { readonly options: ServerConfigOptions; readonly warnings: readonly ConfigWarning[] }
}

/** Who may connect now. */
export interface Access {
  readonly policy: AccessPolicy
  readonly accounts: Accounts
  /** The CURVE client keys let in; undefined: any key. */
  readonly clients: ReadonlySet<string> | undefined
}

/** How the reloader reaches the server. */
export interface AccessHooks {
  access(): Access
  /** The default `read`. */
  read: NonNullable<AccessReload['read']>
  apply(change: Partial<Access>): void
  /** A change taken up. */
  reloaded(what: 'accounts' | 'client-keys', text: string): void
  /** A change not taken up (a broken edit), or a watch that failed. */
  log(level: 'info' | 'warn', text: string): void
}

/** Milliseconds of quiet after a change before it is read: an editor's save is several events. */
const QUIET = 50

/**
 * Watches the config file and the client keys folder, and applies each change.
 *
 * @example
 * ```ts
 * const reloader = await AccessReloader.start({ config: 'server.cfg' }, hooks)
 * await reloader.close()
 * ```
 */
export class AccessReloader {
  private readonly timers = new Map<'config' | 'keys', NodeJS.Timeout>()
  /** The reload in progress: one at a time, in the order of the changes. */
  private running: Promise<void> = Promise.resolve()
  private closed = false

  private constructor(
    private readonly watcher: FSWatcher,
    private readonly reload: AccessReload,
    private readonly hooks: AccessHooks,
  ) {}

  /** Starts watching; resolves once chokidar is ready, so an edit after this is seen. */
  static async start(reload: AccessReload, hooks: AccessHooks): Promise<AccessReloader> {
    const config = reload.config === undefined ? undefined : resolve(reload.config)
    const keys = reload.clientKeys === undefined ? undefined : resolve(reload.clientKeys)
    const paths = [config, keys].filter((path): path is string => path !== undefined)
    // Editors save by writing a new file and renaming it over the old one: `atomic` takes that for one change.
    // Loaded here: a server without a config to reload never pays for chokidar at start-up.
    const { watch } = await import('chokidar')
    const watcher = watch(paths, { ignoreInitial: true, depth: 0, atomic: true })
    const reloader = new AccessReloader(watcher, reload, hooks)
    watcher.on('all', (_event, path) => {
      const absolute = resolve(path)
      if (absolute === config) reloader.schedule('config')
      else if (keys !== undefined && (absolute === keys || absolute.startsWith(`${keys}/`))) reloader.schedule('keys')
    })
    watcher.on('error', (error) => hooks.log('warn', `watching ${paths.join(' and ')} for changes: ${(error as Error).message}`))
    await new Promise<void>((ready) => watcher.once('ready', ready))
    return reloader
  }

  async close(): Promise<void> {
    this.closed = true
    for (const timer of this.timers.values()) clearTimeout(timer)
    await this.watcher.close()
    await this.running
  }

  private schedule(what: 'config' | 'keys'): void {
    clearTimeout(this.timers.get(what))
    this.timers.set(
      what,
      setTimeout(() => {
        this.timers.delete(what)
        if (this.closed) return
        this.running = this.running.then(() => (what === 'config' ? this.reloadConfig() : this.reloadKeys()))
      }, QUIET),
    )
  }

  private async reloadConfig(): Promise<void> {
    const file = this.reload.config!
    let next: Pick<Access, 'policy' | 'accounts'>
    try {
      const { options, warnings } = (this.reload.read ?? this.hooks.read)(await loadZplFile(file), file)
      for (const warning of warnings) this.hooks.log('warn', String(warning))
      next = {
        policy: new AccessPolicy({ anonymous: options.anonymous ?? DEFAULT_SERVER_OPTIONS.anonymous, plain: options.plain ?? DEFAULT_SERVER_OPTIONS.plain }),
        accounts: new Accounts(options.accounts ?? [], file),
      }
    } catch (error) {
      // The errors of the config name its file and line already.
      this.hooks.log('warn', `${(error as Error).message}: not reloaded, the accounts and access stay as they were`)
      return
    }
    const before = this.hooks.access()
    this.hooks.apply(next)
    const logins = (accounts: Accounts): Set<string> => new Set(accounts.list().map((account) => account.login))
    const [had, has] = [logins(before.accounts), logins(next.accounts)]
    const added = [...has].filter((login) => !had.has(login))
    const removed = [...had].filter((login) => !has.has(login))
    const changes = [added.length > 0 ? `added ${added.join(', ')}` : '', removed.length > 0 ? `removed ${removed.join(', ')}` : ''].filter((part) => part !== '')
    this.hooks.reloaded(
      'accounts',
      `accounts reloaded from ${file}: ${has.size} account${has.size === 1 ? '' : 's'}${changes.length > 0 ? ` (${changes.join('; ')})` : ''}; ` +
        `anonymous ${next.policy.anonymous ? 'on' : 'off'}, PLAIN ${next.policy.plain ? 'on' : 'off'}; for new connections`,
    )
  }

  private async reloadKeys(): Promise<void> {
    const folder = this.reload.clientKeys!
    let keys: string[]
    try {
      keys = await loadCurvePublicKeys(folder)
    } catch (error) {
      this.hooks.log('warn', `client keys in ${folder} not reloaded: ${(error as Error).message}; the last good keys stay`)
      return
    }
    const had = this.hooks.access().clients ?? new Set<string>()
    const has = new Set(keys)
    this.hooks.apply({ clients: has })
    const added = keys.filter((key) => !had.has(key)).length
    const removed = [...had].filter((key) => !has.has(key)).length
    this.hooks.reloaded('client-keys', `client keys reloaded from ${folder}: ${has.size} key${has.size === 1 ? '' : 's'} (${added} added, ${removed} removed); for new connections`)
  }
}
