/**
 * Settings of the `fmq` commands, resolved in layers: built-in defaults < ZPL config file
 * (the keys of the sample configs in config/, which are the reference FileMQ's) < flags.
 * Pure functions: the CLI reads files and the environment, then hands the values in here.
 *
 * A flag given replaces what the config says for that setting; repeatable flags
 * (`--bind`, `--publish`, `--connect`, `--subscribe`) replace the config's whole list.
 *
 * @packageDocumentation
 */
import { ConfigReader, type ConfigWarning, SettingsError } from './reader.js'
import { AccessPolicy, type AccountSpec, accountSpecs } from '../security/accounts.js'
import { ZplNode } from './zpl.js'

export { ConfigWarning, SettingsError } from './reader.js'

/** A folder and the virtual path it is published under. */
export interface Mount {
  location: string
  virtualPath: string
}

/**
 * `DIR`, `DIR=/VPATH` or (as before) `DIR:/VPATH`.
 *
 * @example
 * ```ts
 * parseMount('./photos=/photos') // { location: './photos', virtualPath: '/photos' }
 * ```
 */
export function parseMount(spec: string): Mount {
  if (spec === '') throw new SettingsError('--publish needs a directory')
  for (const separator of ['=/', ':/']) {
    const at = spec.lastIndexOf(separator)
    if (at > 0) return { location: spec.slice(0, at), virtualPath: spec.slice(at + 1) }
  }
  if (spec.endsWith('=')) throw new SettingsError(`--publish ${spec}: the virtual path must start with /`)
  const equals = spec.lastIndexOf('=')
  if (equals > 0) throw new SettingsError(`--publish ${spec}: the virtual path must start with /`)
  return { location: spec, virtualPath: '/' }
}

/**
 * Checks the form of an endpoint, so a typo is one clear line rather than libzmq's "Invalid
 * argument". `tcp://HOST:PORT` (HOST may be `*` and PORT `*` or 0 when binding), `ipc://PATH`,
 * `inproc://NAME`.
 *
 * @example
 * ```ts
 * checkEndpoint('tcp://*:5670', 'bind') // ok
 * checkEndpoint('tcp://nonsense', 'connect') // throws SettingsError
 * ```
 */
export function checkEndpoint(endpoint: string, use: 'bind' | 'connect', source?: string, line = 0): string {
  const bad = (why: string): SettingsError => new SettingsError(`bad endpoint "${endpoint}": ${why}`, source, line)
  const match = /^([a-z]+):\/\/(.+)$/.exec(endpoint)
  if (match === null) throw bad('expected tcp://HOST:PORT or ipc://PATH')
  const [, transport = '', address = ''] = match
  if (transport === 'ipc' || transport === 'inproc') return endpoint
  if (transport !== 'tcp') throw bad(`unknown transport "${transport}" (tcp, ipc or inproc)`)
  const colon = address.lastIndexOf(':')
  if (colon <= 0) throw bad('expected tcp://HOST:PORT')
  const port = address.slice(colon + 1)
  if (use === 'bind' && port === '*') return endpoint
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535 || (use === 'connect' && Number(port) === 0)) {
    throw bad(`"${port}" is not a port number`)
  }
  if (use === 'connect' && address.slice(0, colon) === '*') throw bad('cannot connect to *: give a host name or address')
  return endpoint
}

/**
 * The PLAIN credentials a client config gives: `client/login` + `client/password`, or the
 * reference's `security/plain/login` + `security/plain/password`. A login without a password
 * is left for the caller to judge (a flag or the environment may bring one).
 */
export function configCredentials(read: ConfigReader): { login?: string; password?: string } {
  const login = read.string('client/login') ?? read.string('security/plain/login')
  const password = read.string('client/password') ?? read.string('security/plain/password')
  return { ...(login === undefined ? {} : { login }), ...(password === undefined ? {} : { password }) }
}

/** Every `endpoint` of the repeated sections `section`, checked for `use`. */
export function configEndpoints(read: ConfigReader, section: string, use: 'bind' | 'connect'): string[] {
  return read.root.all(section).map((node) => {
    const endpoint = node.at('endpoint')
    if (endpoint === undefined || endpoint.value === '') throw new SettingsError(`${section} needs an endpoint`, read.source, node.line)
    return checkEndpoint(endpoint.value, use, read.source, endpoint.line)
  })
}

const EMPTY = new ZplNode('')

/**
 * The server options a config sets, by the names `new Server(...)` takes. Declared here, not
 * imported: the config layer knows nothing of the server's internals, and a server takes
 * these structurally.
 */
export interface ServerConfigOptions {
  /** Milliseconds between HUGZ to a quiet version-1 client (`server/heartbeat`, read in seconds). */
  heartbeat?: number
  /** Milliseconds of silence after which a version-2 client is forgotten (`server/timeout`). */
  maxSilence?: number
  stateDir?: string
  followOutside?: boolean
  /** Let clients in without credentials (`security/anonymous`; see `AccessPolicy.fromConfig` for what a missing switch means). */
  anonymous?: boolean
  /** Require SASL PLAIN (`security/plain`). */
  plain?: boolean
  /** The `security/plain/account` sections, each knowing its file and lines for errors. */
  accounts?: readonly AccountSpec[]
  /** Milliseconds between reconciling rescans of the published folders (`server/rescan`, read in seconds). */
  rescan?: number
  /** Milliseconds between rescans of folders polled instead of watched (`server/poll`, read in seconds). */
  poll?: number
}

/** The client options a config sets, by the names `new Client(...)` takes (see ServerConfigOptions). */
export interface ClientConfigOptions {
  inbox?: string
  resync?: boolean
  mirror?: boolean
  login?: string
  password?: string
  /** Milliseconds of server silence before HUGZ (`client/heartbeat`, read in seconds). */
  heartbeat?: number
  stateDir?: string
}

/**
 * The server's timings as the reference reads them: `server/heartbeat` in seconds (version 1;
 * HUGZ to a quiet version-1 client, forgotten after three of them), `server/timeout` in
 * milliseconds (version 2: a client silent this long is forgotten), `server/monitor` in
 * seconds (the reference's rescan interval: checked, but unused, as we watch the folders).
 *
 * @example
 * ```ts
 * serverTimings(new ConfigReader(parseZpl('server\n    heartbeat = 1\n'), 'a.cfg')) // { heartbeat: 1000 }
 * ```
 */
export function serverTimings(read: ConfigReader): Pick<ServerConfigOptions, 'heartbeat' | 'maxSilence'> {
  const options: Pick<ServerConfigOptions, 'heartbeat' | 'maxSilence'> = {}
  read.seconds('server/monitor')
  const heartbeat = read.seconds('server/heartbeat')
  if (heartbeat !== undefined) options.heartbeat = heartbeat
  const timeout = read.milliseconds('server/timeout')
  if (timeout !== undefined) options.maxSilence = timeout
  read.flag('server/verbose')
  return options
}

/** The client's timings as the reference reads them: `client/heartbeat` in seconds. */
export function clientTimings(read: ConfigReader): Pick<ClientConfigOptions, 'heartbeat'> {
  const heartbeat = read.seconds('client/heartbeat')
  return heartbeat === undefined ? {} : { heartbeat }
}

/**
 * Who may connect, as the config's `security` section says (nothing when it has none, so the
 * server's defaults stand): the switches as `AccessPolicy.fromConfig` reads them, and the
 * accounts, checked when the server builds them (`new Accounts`), with file:line.
 */
export function serverAccess(read: ConfigReader): Pick<ServerConfigOptions, 'anonymous' | 'plain' | 'accounts'> {
  if (read.root.at('security') === undefined) return {}
  const { anonymous, plain } = AccessPolicy.fromConfig(read.root, read.source)
  return { anonymous, plain, accounts: Object.freeze(accountSpecs(read.root, read.source)) }
}

/**
 * Everything a config says to a server, read once: the one mapping from ZPL to the server's
 * options, used alike by `fmq server` (which lays its flags over it), `Relay.fromConfig` and
 * `Server.configure`.
 */
export interface ServerConfig {
  /** Options of `new Server(...)`: only what the config sets. */
  readonly options: ServerConfigOptions
  /** `publish` sections (`location`, `virtual`). */
  readonly publish: readonly Mount[]
  /** `bind/endpoint`s; empty when the config has none. */
  readonly bind: readonly string[]
  /** `security/echo`: a line the reference prints at start-up. */
  readonly echo: string | undefined
  /**
   * The CURVE key file (`security/curve/keys` unless `security/curve = 0`): `NAME` or
   * `NAME_secret` as `fmq keygen NAME` wrote them. Undefined: no CURVE.
   */
  readonly curveKeys: string | undefined
  /** With CURVE, a folder of the public key files of the only clients let in (`security/curve/clients`). */
  readonly clientKeys: string | undefined
  /** Values accepted but doubtful (a heartbeat of 1000 seconds, an unknown key): one line each, with file:line. */
  readonly warnings: readonly ConfigWarning[]
}

/**
 * Reads the server role of a config: `server/heartbeat` in seconds and `server/timeout` in
 * milliseconds (as the reference), `server/rescan` and `server/poll` in seconds,
 * `server/state`, `server/follow-outside`, `publish/location` + `publish/virtual`,
 * `bind/endpoint`, `security/...` (access, accounts, echo, ours `security/curve`). Errors
 * throw with file:line.
 *
 * @example
 * ```ts
 * serverConfig(parseZpl('server\n    heartbeat = 1\n'), 'a.cfg').options // { heartbeat: 1000 }
 * ```
 */
export function serverConfig(config: ZplNode | undefined, source?: string): ServerConfig {
  const read = new ConfigReader(config ?? EMPTY, source)
  const options: ServerConfigOptions = { ...serverTimings(read), ...serverAccess(read) }
  const state = read.string('server/state')
  if (state !== undefined) options.stateDir = state
  // Ours: symbolic and .ln links that leave a mount are published only when this says so.
  const followOutside = read.flag('server/follow-outside')
  if (followOutside !== undefined) options.followOutside = followOutside
  // Ours, in seconds as the reference's other times (server/heartbeat, server/monitor).
  const rescan = read.positive('server/rescan', 'seconds')
  if (rescan !== undefined) options.rescan = Math.round(rescan * 1000)
  const poll = read.positive('server/poll', 'seconds')
  if (poll !== undefined) options.poll = Math.round(poll * 1000)

  const publish = read.root.all('publish').map((section) => {
    const location = section.get('location')
    if (location === undefined || location === '') throw new SettingsError('publish needs a location', source, section.line)
    const virtualPath = section.get('virtual', '/')
    if (!virtualPath.startsWith('/')) {
      throw new SettingsError(`publish/virtual must start with /, got "${virtualPath}"`, source, section.at('virtual')?.line ?? section.line)
    }
    return { location, virtualPath }
  })
  const curveKeys = configCurveKeys(read)
  return Object.freeze({
    options: Object.freeze(options),
    publish: Object.freeze(publish),
    bind: Object.freeze(configEndpoints(read, 'bind', 'bind')),
    echo: read.string('security/echo'),
    curveKeys,
    clientKeys: curveKeys === undefined ? undefined : read.string('security/curve/clients'),
    warnings: Object.freeze(read.warnings),
  })
}

// ---------------------------------------------------------------------------------------
// fmq server

/** The server flags, as commander hands them over (undefined when not given). */
export interface ServerFlags {
  bind?: readonly string[]
  publish?: readonly string[]
  anonymous?: boolean
  state?: string
  /** `--curve-keys FILE`: the server's CURVE key file. */
  curveKeys?: string
  /** `--client-keys DIR`: with CURVE, let in only the clients whose public key files are there. */
  clientKeys?: string
  /** `--follow-outside`: publish what links leaving a mount point to. */
  followOutside?: boolean
  /** `--rescan SECONDS`: between reconciling rescans of the published folders. */
  rescan?: number
  /** `--poll SECONDS`: poll the published folders this often instead of watching them. */
  poll?: number
}

/** What `fmq server` runs with: the config's {@link ServerConfig} with the flags laid over it. */
export interface ServerSettings extends ServerConfig {
  /** The config's `bind` sections, the flags' or, with neither, the registered port. */
  readonly bind: readonly string[]
  /**
   * The CURVE key file to load (`--curve-keys`, else `security/curve/keys` unless
   * `security/curve = 0`). Undefined: no CURVE.
   */
  readonly curveKeys: string | undefined
  /**
   * A folder of client public key files (`--client-keys`, else `security/curve/clients`):
   * with CURVE, only those clients get in. Undefined: any client with the server's key.
   */
  readonly clientKeys: string | undefined
}

/** Built-in defaults of `fmq server`. */
export const SERVER_DEFAULTS = Object.freeze({
  /** FileMQ's registered port, on every interface. */
  bind: Object.freeze(['tcp://*:5670']),
})

/**
 * Resolves `fmq server`'s settings: defaults < config ({@link serverConfig}) < flags. A
 * flag replaces what the config says for that setting; `--anonymous` lets clients in without
 * a login whatever the config's `security` says (its accounts stay usable).
 *
 * @example
 * ```ts
 * resolveServerSettings(parseZpl('bind\n    endpoint = tcp://*:6000\n'), { bind: ['tcp://*:7000'] }).bind // ['tcp://*:7000']
 * ```
 */
export function resolveServerSettings(config: ZplNode | undefined, flags: ServerFlags, source?: string): ServerSettings {
  const fromConfig = serverConfig(config, source)
  const options: ServerConfigOptions = { ...fromConfig.options }
  if (flags.state !== undefined) options.stateDir = flags.state
  if (flags.followOutside !== undefined) options.followOutside = flags.followOutside
  if (flags.rescan !== undefined) options.rescan = Math.round(flags.rescan * 1000)
  if (flags.poll !== undefined) options.poll = Math.round(flags.poll * 1000)
  if (flags.anonymous === true) options.anonymous = true
  const publish = flags.publish !== undefined ? flags.publish.map(parseMount) : fromConfig.publish
  const bind =
    flags.bind !== undefined ? flags.bind.map((endpoint) => checkEndpoint(endpoint, 'bind')) : fromConfig.bind.length > 0 ? fromConfig.bind : SERVER_DEFAULTS.bind
  return Object.freeze({
    ...fromConfig,
    options: Object.freeze(options),
    publish: Object.freeze([...publish]),
    bind: Object.freeze([...bind]),
    curveKeys: flags.curveKeys ?? fromConfig.curveKeys,
    clientKeys: flags.clientKeys ?? fromConfig.clientKeys,
  })
}

/**
 * `security/curve/keys`, unless `security/curve = 0`. `security/curve` switches like
 * `security/plain` (1 or 0, nothing meaning 1) and carries the key file beneath it.
 */
function configCurveKeys(read: ConfigReader): string | undefined {
  const curve = read.root.at('security/curve')
  if (curve === undefined) return undefined
  if (curve.value !== '' && curve.value !== '1' && curve.value !== '0') {
    throw new SettingsError(`security/curve must be 1 or 0, got "${curve.value}"`, read.source, curve.line)
  }
  if (curve.value === '0') return undefined
  const keys = curve.at('keys')
  if (keys === undefined || keys.value === '') {
    throw new SettingsError('security/curve needs keys = FILE, the key file of fmq keygen (e.g. keys = "keys/server")', read.source, keys?.line ?? curve.line)
  }
  return keys.value
}

// ---------------------------------------------------------------------------------------
// fmq client

/** The client flags (and what the CLI read for them: the password file, the environment). */
export interface ClientFlags {
  connect?: readonly string[]
  subscribe?: readonly string[]
  inbox?: string
  resync?: boolean
  mirror?: boolean
  state?: string
  login?: string
  /** From `--password-file` or `FMQ_PASSWORD`. */
  password?: string
  connectTimeout?: number
  /** `--server-key KEY|FILE`: the server's CURVE public key, or a key file holding it. */
  serverKey?: string
  /** `--curve-keys FILE`: the client's own CURVE key pair (for servers that let in only known keys). */
  curveKeys?: string
}

/**
 * Everything a config says to a client, read once: the one mapping from ZPL to the client's
 * options, used alike by `fmq client` (which lays its flags over it) and `Relay.fromConfig`.
 */
export interface ClientConfig {
  /** Options of `new Client(...)`: only what the config sets (a login maybe without its password: the caller judges). */
  readonly options: ClientConfigOptions
  /** `connect/endpoint`s. */
  readonly connect: readonly string[]
  /** `subscribe/path`s. */
  readonly subscribe: readonly string[]
  /** `client/curve/server-key`: the servers' CURVE public key or its key file. */
  readonly serverKey: string | undefined
  /** `client/curve/keys`: the client's own CURVE key pair file. */
  readonly curveKeys: string | undefined
  /** `client/virtual`: where a relay publishes its inbox. */
  readonly virtualPath: string | undefined
  /** Values accepted but doubtful (a heartbeat of 1000 seconds, an unknown key): one line each, with file:line. */
  readonly warnings: readonly ConfigWarning[]
  /** The config line of a key, for errors the caller finds (0 when unknown). */
  line(path: string): number
}

/**
 * Reads the client role of a config: `client/inbox`, `client/resync`, `client/mirror`,
 * `client/heartbeat` in seconds (as the reference), `client/state`, `client/login` +
 * `client/password` or `security/plain/login` + `security/plain/password`,
 * `connect/endpoint`, `subscribe/path`, ours `client/curve/...` and `client/virtual`.
 * Errors throw with file:line.
 *
 * @example
 * ```ts
 * clientConfig(parseZpl('client\n    heartbeat = 1\n'), 'a.cfg').options // { heartbeat: 1000 }
 * ```
 */
export function clientConfig(config: ZplNode | undefined, source?: string): ClientConfig {
  const read = new ConfigReader(config ?? EMPTY, source)
  const options: ClientConfigOptions = { ...configCredentials(read), ...clientTimings(read) }
  const inbox = read.string('client/inbox')
  if (inbox !== undefined && inbox !== '') options.inbox = inbox
  const resync = read.flag('client/resync')
  if (resync !== undefined) options.resync = resync
  const mirror = read.flag('client/mirror')
  if (mirror !== undefined) options.mirror = mirror
  const state = read.string('client/state')
  if (state !== undefined) options.stateDir = state
  const subscribe = read.root.all('subscribe').map((section) => {
    const path = section.get('path', '/')
    if (!path.startsWith('/')) throw new SettingsError(`subscription "${path}" must start with /`, source, section.at('path')?.line ?? section.line)
    return path
  })
  const serverKey = read.string('client/curve/server-key')
  if (serverKey === '') throw new SettingsError("client/curve/server-key is empty: give the server's public key or its key file", source, read.line('client/curve/server-key'))
  return Object.freeze({
    options: Object.freeze(options),
    connect: Object.freeze(configEndpoints(read, 'connect', 'connect')),
    subscribe: Object.freeze(subscribe),
    serverKey,
    curveKeys: read.string('client/curve/keys'),
    virtualPath: read.string('client/virtual'),
    warnings: Object.freeze(read.warnings),
    line: (path: string) => read.line(path),
  })
}

/** What `fmq client` runs with. */
export interface ClientSettings {
  readonly connect: readonly string[]
  readonly subscribe: readonly string[]
  readonly inbox: string
  /** Milliseconds to wait for a server's answer before warning (or, with `--once`, giving up). */
  readonly connectTimeout: number
  /** Options of `new Client(...)`. */
  readonly options: ClientConfigOptions & { readonly inbox: string }
  /** The servers' CURVE public key or a key file (`--server-key`, else `client/curve/server-key`); read by the CLI. */
  readonly serverKey: string | undefined
  /** The client's own CURVE key pair file (`--curve-keys`, else `client/curve/keys`); read by the CLI. Default: a fresh pair per link. */
  readonly curveKeys: string | undefined
  /** Values accepted but doubtful (a heartbeat of 1000 seconds): one line each, with file:line. */
  readonly warnings: readonly ConfigWarning[]
}

/** Built-in defaults of `fmq client`. */
export const CLIENT_DEFAULTS = Object.freeze({
  subscribe: Object.freeze(['/']),
  connectTimeout: 10_000,
  resync: false,
  mirror: false,
})

/**
 * Resolves `fmq client`'s settings: defaults < config (`client/inbox`, `client/resync`,
 * `client/mirror`, `client/heartbeat` in seconds, `client/state`, `client/login` + `client/password` or
 * `security/plain/login` + `security/plain/password`, `connect/endpoint`, `subscribe/path`, ours
 * `client/curve/server-key`) < flags. `--mirror` implies `--resync`.
 *
 * @example
 * ```ts
 * resolveClientSettings(undefined, { connect: ['tcp://127.0.0.1:5670'], inbox: 'in' }).subscribe // ['/']
 * ```
 */
export function resolveClientSettings(config: ZplNode | undefined, flags: ClientFlags, source?: string): ClientSettings {
  const fromConfig = clientConfig(config, source)
  const inbox = flags.inbox ?? fromConfig.options.inbox
  if (inbox === undefined || inbox === '') throw new SettingsError('no inbox: give --inbox, or client/inbox in the config')

  const connect = flags.connect !== undefined ? flags.connect.map((endpoint) => checkEndpoint(endpoint, 'connect')) : fromConfig.connect
  if (connect.length === 0) throw new SettingsError('no server: give --connect, or connect/endpoint in the config')

  const subscribe = flags.subscribe ?? (fromConfig.subscribe.length > 0 ? fromConfig.subscribe : CLIENT_DEFAULTS.subscribe)
  for (const path of subscribe) if (!path.startsWith('/')) throw new SettingsError(`subscription "${path}" must start with /`)

  const mirror = flags.mirror ?? fromConfig.options.mirror ?? CLIENT_DEFAULTS.mirror
  const resync = flags.resync === true || mirror || (fromConfig.options.resync ?? CLIENT_DEFAULTS.resync)

  const { login: configLogin, password: configPassword } = fromConfig.options
  const login = flags.login ?? configLogin
  // A password from the config belongs to the config's login only.
  const password = flags.password ?? (flags.login === undefined || flags.login === configLogin ? configPassword : undefined)
  if (login !== undefined && (password === undefined || password === '')) {
    throw new SettingsError(`no password for login "${login}": give --password-file FILE or set FMQ_PASSWORD`)
  }
  if (login === undefined && flags.password !== undefined) throw new SettingsError('a password needs a login: give --login NAME')

  const connectTimeout = flags.connectTimeout ?? CLIENT_DEFAULTS.connectTimeout
  if (!Number.isFinite(connectTimeout) || connectTimeout <= 0) {
    throw new SettingsError(`--connect-timeout must be a positive number of milliseconds, got ${String(connectTimeout)}`)
  }

  const { login: _login, password: _password, ...rest } = fromConfig.options
  const options = { ...rest, inbox, resync, mirror: resync && mirror }
  if (login !== undefined && password !== undefined) Object.assign(options, { login, password })
  if (flags.state !== undefined) options.stateDir = flags.state
  if (flags.serverKey === '') throw new SettingsError("--server-key is empty: give the server's public key or its key file")
  return Object.freeze({
    connect: Object.freeze([...connect]),
    subscribe: Object.freeze([...subscribe]),
    inbox,
    connectTimeout,
    options: Object.freeze(options),
    serverKey: flags.serverKey ?? fromConfig.serverKey,
    curveKeys: flags.curveKeys ?? fromConfig.curveKeys,
    warnings: fromConfig.warnings,
  })
}
