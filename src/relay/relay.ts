/**
 * A relay: one node that is a client of upstream servers and a server of its own inbox at
 * once (the Guide's "every node can be a server and a client"), so files fan out through a
 * tree: origin → relays → leaves. What the client receives is renamed into the inbox only
 * once complete and verified, and the server publishes the inbox, so a relay forwards a file
 * only when it has all of it; deletions travel the same way (the client removes the file,
 * the server's watcher logs and forwards the deletion). Both halves share the node's state
 * directory and database (`<inbox>/.fmq/fmq.db`), which the server never publishes.
 *
 * @packageDocumentation
 */
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'

import { Client } from '../client/client.js'
import { STATE_DIR_NAME, type ClientOptions } from '../client/options.js'
import { type ConfigWarning, SettingsError } from '../config/reader.js'
import { clientConfig, serverConfig } from '../config/settings.js'
import { loadZplFile, type ZplNode } from '../config/zpl.js'
import { type FolderLock, lockFolder } from '../fs/lock.js'
import { readCurvePublicKey } from '../security/curve.js'
import { loadServerKeys, type ServerOptions } from '../server/options.js'
import { Server } from '../server/server.js'

/** Options of {@link Relay.start}. */
export interface RelayOptions {
  /** Upstream servers to mirror from (at least one). */
  upstream: readonly string[]
  /** Virtual paths to subscribe to upstream. Default `['/']`. */
  paths: readonly string[]
  /** Where received files land; this folder is what the relay publishes. */
  inbox: string
  /** The virtual path the inbox is published under. Default `/`. */
  virtualPath: string
  /** Endpoints to serve downstream clients on (at least one). */
  bind: readonly string[]
  /** Options of the client half; `resync` and `mirror` default to true. */
  client: Partial<ClientOptions>
  /** Options of the server half (access and accounts included). */
  server: Partial<ServerOptions>
  /**
   * Takes the inbox's lock (`lockFolder`) in this command's name before anything starts: one
   * writer per inbox, as `fmq client` and `fmq track` take theirs. Default: no lock.
   */
  lockAs: string
}

/** A relay's configuration does not say enough to start it. */
export class RelayConfigError extends Error {
  override readonly name = 'RelayConfigError'
  readonly code = 'ERR_FMQ_RELAY_CONFIG'
}

/**
 * Client of upstream servers and server of its inbox, in one process.
 *
 * @example
 * ```ts
 * const relay = await Relay.start({ upstream: ['tcp://origin:5670'], inbox: '/srv/mirror', bind: ['tcp://*:5670'] })
 * // ...
 * await relay.close()
 * ```
 */
export class Relay {
  private constructor(
    readonly client: Client,
    readonly server: Server,
    /** The endpoints actually bound (a port 0 resolved). */
    readonly endpoints: readonly string[],
    /** The upstream servers it mirrors from. */
    readonly upstream: readonly string[],
    /** The inbox's lock, when it took one (`lockAs`). */
    private readonly lock?: FolderLock,
  ) {}

  /** Starts the server half (publish the inbox, bind), then the client half (connect, subscribe). */
  static async start(options: Partial<RelayOptions> & Pick<RelayOptions, 'inbox' | 'upstream' | 'bind'>): Promise<Relay> {
    if (options.upstream.length === 0) throw new RelayConfigError('a relay needs at least one upstream server')
    if (options.bind.length === 0) throw new RelayConfigError('a relay needs at least one endpoint to bind')
    const inbox = resolve(options.inbox)
    const stateDir = resolve(options.client?.stateDir ?? options.server?.stateDir ?? join(inbox, STATE_DIR_NAME))
    await mkdir(inbox, { recursive: true })
    const server = new Server({ ...options.server, stateDir })
    const client = new Client({ resync: true, mirror: true, ...options.client, inbox, stateDir })
    let lock: FolderLock | undefined
    try {
      // Before anything reads or writes the inbox.
      if (options.lockAs !== undefined) lock = await lockFolder(stateDir, options.lockAs)
      await server.publish(inbox, options.virtualPath ?? '/')
      const endpoints: string[] = []
      for (const endpoint of options.bind) endpoints.push(await server.bind(endpoint))
      for (const endpoint of options.upstream) await client.connect(endpoint)
      for (const path of options.paths ?? ['/']) void client.subscribe(path).catch(() => undefined) // refusals arrive as error events
      return new Relay(client, server, endpoints, [...options.upstream], lock)
    } catch (error) {
      await client.close()
      await server.close()
      await lock?.release()
      throw error
    }
  }

  /**
   * Starts a relay from a ZPL config, read by the one mapping of each role, as `fmq client`
   * and `fmq server` read it: the client's sections (`client/inbox`, `client/resync`,
   * `client/mirror`, `client/heartbeat` in seconds, `client/login` and `client/password` or
   * `security/plain/login` and `security/plain/password`, repeated `connect/endpoint` and
   * `subscribe/path`) and the server's (`server/heartbeat` in seconds and `server/timeout` in
   * milliseconds, as the reference reads them, `server/rescan`, `security/...`, repeated
   * `bind/endpoint`). Doubtful values (a heartbeat of 1000 seconds) go to `onWarning`. The
   * inbox is published under `/` unless `client/virtual` says otherwise. CURVE:
   * `client/curve/server-key` (upstream's public key or key file) and `security/curve/keys`
   * and `security/curve/clients` (the relay's own key pair and the clients let in,
   * downstream); `overrides.client.curveServerKey` and `overrides.server.curve` win.
   */
  static async fromConfig(config: string | ZplNode, overrides: Partial<RelayOptions> = {}, onWarning?: (warning: ConfigWarning) => void): Promise<Relay> {
    const root = typeof config === 'string' ? await loadZplFile(config) : config
    const source = typeof config === 'string' ? config : undefined
    const warnings: ConfigWarning[] = []
    const options = relayOptionsFromConfig(root, source, warnings, overrides.client?.login !== undefined)
    for (const warning of warnings) onWarning?.(warning)
    const inbox = overrides.inbox ?? options.inbox
    if (inbox === undefined) throw new RelayConfigError('the config sets no client/inbox')
    const { serverKey } = clientConfig(root, source)
    if (serverKey !== undefined && overrides.client?.curveServerKey === undefined) options.client = { ...options.client, curveServerKey: await readCurvePublicKey(serverKey) }
    const server = serverConfig(root, source)
    const keys = await loadServerKeys(overrides.server?.curve === undefined ? server : { clientKeys: server.clientKeys })
    return Relay.start({
      ...options,
      ...overrides,
      inbox,
      upstream: overrides.upstream ?? options.upstream,
      bind: overrides.bind ?? options.bind,
      client: { ...options.client, ...overrides.client },
      server: { ...options.server, ...keys, ...overrides.server },
    })
  }

  async close(): Promise<void> {
    await this.client.close()
    await this.server.close()
    await this.lock?.release()
  }
}

/** The relay options a ZPL config sets (see {@link Relay.fromConfig}), but the CURVE keys, which are files to read. */
export function relayOptionsFromConfig(
  root: ZplNode,
  source?: string,
  warnings: ConfigWarning[] = [],
  /** A login given otherwise (a flag): the config's need not be complete. */
  loginGiven = false,
): Partial<RelayOptions> & Pick<RelayOptions, 'upstream' | 'bind'> {
  const client = clientConfig(root, source)
  const server = serverConfig(root, source)
  const { login, password, inbox, state, ...clientOptions } = { ...client.options, state: client.options.stateDir ?? server.options.stateDir }
  if (!loginGiven && login !== undefined && (password === undefined || password === '')) {
    throw new SettingsError(`no password for login "${login}" (client/password or security/plain/password)`, source, client.line('client/login') || client.line('security/plain/login'))
  }
  // One config for both halves: a key both roles read is reported once.
  const seen = new Set<string>()
  for (const warning of [...client.warnings, ...server.warnings]) {
    if (seen.has(String(warning))) continue
    seen.add(String(warning))
    warnings.push(warning)
  }
  const { stateDir: _serverState, ...serverOptions } = server.options
  return {
    upstream: client.connect,
    paths: client.subscribe,
    bind: server.bind,
    ...(inbox === undefined ? {} : { inbox }),
    ...(client.virtualPath === undefined ? {} : { virtualPath: client.virtualPath }),
    client: {
      ...clientOptions,
      resync: clientOptions.resync ?? true,
      mirror: clientOptions.mirror ?? true,
      ...(login !== undefined && password !== undefined && password !== '' ? { login, password } : {}),
      ...(state === undefined ? {} : { stateDir: state }),
    },
    server: serverOptions,
  }
}
