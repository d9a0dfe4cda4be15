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
  anonymous?: boolean
  /** Milliseconds between reconciling rescans of the published folders (`server/rescan`, read in seconds). */
  rescan?: number
  /** Milliseconds between rescans of folders polled instead of watched (`server/poll`, read in seconds). */
  poll?: number
}

/** The client options a config sets, by the names `new Client(...)` takes (see ServerConfigOptions). */
export interface ClientConfigOptions {
  inbox: string
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

/** What `fmq server` runs with. */
export interface ServerSettings {
  readonly bind: readonly string[]
  readonly publish: readonly Mount[]
  /** Options of `new Server(...)`. */
  readonly options: ServerConfigOptions
  /** The config's `security` section (access switches, accounts), for `server.configure`; with `--anonymous` applied. */
  readonly security: ZplNode | undefined
  /** Values accepted but doubtful (a heartbeat of 1000 seconds): one line each, with file:line. */
  readonly warnings: readonly ConfigWarning[]
  /** `security/echo`: a line the reference prints at start-up. */
  readonly echo: string | undefined
  /**
   * The CURVE key file to load (`--curve-keys`, else `security/curve/keys` unless
   * `security/curve = 0`): `NAME` or `NAME_secret` as `fmq keygen NAME` wrote them. Undefined: no CURVE.
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
 * Resolves `fmq server`'s settings: defaults < config (`server/heartbeat` in seconds, `server/timeout` in milliseconds,
 * `server/rescan` and `server/poll` in seconds, `server/state`, `server/follow-outside`, `publish/location` + `publish/virtual`, `bind/endpoint`, `security/...`,
 * ours `security/curve/keys`) < flags.
 *
 * @example
 * ```ts
 * resolveServerSettings(parseZpl('bind\n    endpoint = tcp://*:6000\n'), { bind: ['tcp://*:7000'] }).bind // ['tcp://*:7000']
 * ```
 */
export function resolveServerSettings(config: ZplNode | undefined, flags: ServerFlags, source?: string): ServerSettings {
  const read = new ConfigReader(config ?? EMPTY, source)
  const options: ServerConfigOptions = {}
  Object.assign(options, serverTimings(read))
  const state = flags.state ?? read.string('server/state')
  if (state !== undefined) options.stateDir = state
  // Ours: symbolic and .ln links that leave a mount are published only when this says so.
  const followOutside = flags.followOutside ?? read.flag('server/follow-outside')
  if (followOutside !== undefined) options.followOutside = followOutside
  // Ours, in seconds as the reference's other times (server/heartbeat, server/monitor).
  const rescan = flags.rescan ?? read.positive('server/rescan')
  if (rescan !== undefined) options.rescan = Math.round(rescan * 1000)
  const poll = flags.poll ?? read.positive('server/poll')
  if (poll !== undefined) options.poll = Math.round(poll * 1000)

  const publish: Mount[] =
    flags.publish !== undefined
      ? flags.publish.map(parseMount)
      : read.root.all('publish').map((section) => {
          const location = section.get('location')
          if (location === undefined || location === '') throw new SettingsError('publish needs a location', source, section.line)
          const virtualPath = section.get('virtual', '/')
          if (!virtualPath.startsWith('/')) {
            throw new SettingsError(`publish/virtual must start with /, got "${virtualPath}"`, source, section.at('virtual')?.line ?? section.line)
          }
          return { location, virtualPath }
        })

  const fromConfig = configEndpoints(read, 'bind', 'bind')
  const bind = flags.bind !== undefined ? flags.bind.map((endpoint) => checkEndpoint(endpoint, 'bind')) : fromConfig.length > 0 ? fromConfig : [...SERVER_DEFAULTS.bind]

  let security = read.root.at('security')
  if (flags.anonymous === true) {
    if (security === undefined) options.anonymous = true
    else security = withValue(security, 'anonymous', '1')
  }
  return Object.freeze({
    bind: Object.freeze(bind),
    publish: Object.freeze(publish),
    options: Object.freeze(options),
    security,
    echo: read.string('security/echo'),
    warnings: Object.freeze(read.warnings),
    curveKeys: flags.curveKeys ?? configCurveKeys(read),
    clientKeys: flags.clientKeys ?? (configCurveKeys(read) === undefined ? undefined : read.string('security/curve/clients')),
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

/** `section` with its child `name` set to `value` (replaced in place, or added first). */
function withValue(section: ZplNode, name: string, value: string): ZplNode {
  const found = section.children.some((child) => child.name === name)
  const children = found
    ? section.children.map((child) => (child.name === name ? new ZplNode(name, value, child.children, child.line) : child))
    : [new ZplNode(name, value), ...section.children]
  return new ZplNode(section.name, section.value, children, section.line)
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

/** What `fmq client` runs with. */
export interface ClientSettings {
  readonly connect: readonly string[]
  readonly subscribe: readonly string[]
  readonly inbox: string
  /** Milliseconds to wait for a server's answer before warning (or, with `--once`, giving up). */
  readonly connectTimeout: number
  /** Options of `new Client(...)`. */
  readonly options: ClientConfigOptions
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
  const read = new ConfigReader(config ?? EMPTY, source)
  const inbox = flags.inbox ?? read.string('client/inbox')
  if (inbox === undefined || inbox === '') throw new SettingsError('no inbox: give --inbox, or client/inbox in the config')

  const fromConfig = configEndpoints(read, 'connect', 'connect')
  const connect = flags.connect !== undefined ? flags.connect.map((endpoint) => checkEndpoint(endpoint, 'connect')) : fromConfig
  if (connect.length === 0) throw new SettingsError('no server: give --connect, or connect/endpoint in the config')

  const configPaths = read.root.all('subscribe').map((section) => section.get('path', '/'))
  const subscribe = flags.subscribe ?? (configPaths.length > 0 ? configPaths : CLIENT_DEFAULTS.subscribe)
  for (const path of subscribe) if (!path.startsWith('/')) throw new SettingsError(`subscription "${path}" must start with /`)

  const mirror = flags.mirror ?? read.flag('client/mirror') ?? CLIENT_DEFAULTS.mirror
  const resync = flags.resync === true || mirror || (read.flag('client/resync') ?? CLIENT_DEFAULTS.resync)

  const { login: configLogin, password: configPassword } = configCredentials(read)
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

  const options: ClientConfigOptions = { inbox, resync, mirror: resync && mirror }
  if (login !== undefined && password !== undefined) Object.assign(options, { login, password })
  Object.assign(options, clientTimings(read))
  const state = flags.state ?? read.string('client/state')
  if (state !== undefined) options.stateDir = state
  const serverKey = flags.serverKey ?? read.string('client/curve/server-key')
  if (serverKey === '') {
    const what = flags.serverKey !== undefined ? '--server-key' : 'client/curve/server-key'
    throw new SettingsError(`${what} is empty: give the server's public key or its key file`, flags.serverKey !== undefined ? undefined : source, read.line('client/curve/server-key'))
  }
  return Object.freeze({
    connect: Object.freeze([...connect]),
    subscribe: Object.freeze([...subscribe]),
    inbox,
    connectTimeout,
    options: Object.freeze(options),
    serverKey,
    curveKeys: flags.curveKeys ?? read.string('client/curve/keys'),
    warnings: Object.freeze(read.warnings),
  })
}
