/**
 * A test peer that behaves, on the wire, as /work/shared/REFERENCE.md describes the reference C
 * FileMQ servers, built on the generated codecs and a zeromq ROUTER:
 *
 * - version 1: heartbeats its clients (HUGZ after `hugzInterval` of client silence, then again),
 *   forgets a client silent for `forgetAfter`, sends data with eof = 0 and ends every file with
 *   an empty chunk; a version-2 OHAI gets silence;
 * - version 2: never sends HUGZ (answers the client's), eof = 1 on the final empty chunk; a
 *   version-1 OHAI gets silence (the reference "gives up");
 * - both: optional PLAIN (ORLY ["PLAIN"] with an empty challenge, SRSLY with an empty reason
 *   on a bad password), RTFM to anything unexpected, content in `chunkSize` (1,000,000)
 *   chunks and never more than the credit the client granted.
 *
 * Hooks send hostile CHEEZBURGERs (any name, offset or size, credit ignored) and any raw
 * message. Also exports the small helpers the client tests share (timeouts, temp dirs).
 */
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Router } from 'zeromq'

import type { ZplNode } from '../../src/config/zpl.js'
import { codecs, type Codec } from '../../src/protocol/generated/fmq_codecs.js'
import { CHUNK_SIZE, CREATE, DELETE, MessageId, type Cheezburger, type Message } from '../../src/protocol/generated/fmq_msg.js'

export interface PeerOptions {
  version: 1 | 2
  /** Where to bind; default `tcp://127.0.0.1:*` (an ephemeral port, read back from lastEndpoint). */
  endpoint?: string
  /** Require SASL PLAIN with this account (no anonymous access). */
  plain?: { login: string; password: string }
  /**
   * A server config read as the reference reads it: version 1 takes `server/heartbeat` in
   * whole seconds (`atoi (value) * 1000`, default 1), version 2 `server/timeout` in
   * milliseconds (default 60000). The millisecond knobs below win over it.
   */
  config?: ZplNode
  /**
   * Version 1 only: HUGZ after this much client silence, then as often. Milliseconds, a test's
   * speed-up (the reference cannot go under a second). Default: `server/heartbeat`, else 1000 ms.
   */
  hugzInterval?: number
  /** Forget a client silent this long (ms). Default: version 1, 3 × hugzInterval; version 2, `server/timeout`, else 60,000. */
  forgetAfter?: number
  /** Content octets per CHEEZBURGER. Default 1,000,000. */
  chunkSize?: number
  /** Subscriptions answered with SRSLY. */
  refuse?: readonly string[]
  /**
   * What an OHAI in another version gets: `silence` (default, what both references do) or
   * `rtfm` (what a compatible server may do instead).
   */
  wrongVersion?: 'silence' | 'rtfm'
}

/** One client as the peer sees it. */
export interface PeerClient {
  readonly id: Buffer
  readonly key: string
  state: 'authenticating' | 'ready'
  /** Credit left: granted by NOM minus content sent. */
  credit: number
  /** The most credit this client ever let the peer hold. */
  maxCredit: number
  /** Credit granted so far, and content sent so far. */
  granted: number
  sent: number
  sequence: bigint
  subscriptions: { path: string; options: Map<string, string>; cache: Map<string, string> }[]
  noms: bigint[]
  lastSeen: number
}

/** What the peer received, in order. */
export interface PeerLogEntry {
  client: string
  message: Message
}

export class ReferencePeer extends EventEmitter {
  readonly clients = new Map<string, PeerClient>()
  readonly log: PeerLogEntry[] = []
  /** Messages the peer could not decode in its version (and answered with silence). */
  undecodable = 0
  /** Routing ids (hex) of the sockets those came from. */
  readonly undecodableFrom: string[] = []
  private readonly codec: Codec
  private readonly chunkSize: number
  /** Answers dropped because their client was gone or not reading. */
  dropped = 0
  private sending: Promise<unknown> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private closed = false

  private constructor(
    private readonly router: Router,
    readonly endpoint: string,
    readonly options: PeerOptions,
  ) {
    super()
    this.codec = codecs[options.version]
    this.chunkSize = options.chunkSize ?? CHUNK_SIZE
    void this.receive()
    const { heartbeat, timeout } = referenceTimings(options.config)
    const interval = options.hugzInterval ?? heartbeat
    if (options.version === 1) {
      const forgetAfter = options.forgetAfter ?? 3 * interval
      this.timer = setInterval(() => this.heartbeat(interval, forgetAfter), Math.max(10, interval / 2))
    } else {
      // Version 2 never sends HUGZ; it forgets a client silent for server/timeout.
      const forgetAfter = options.forgetAfter ?? timeout
      this.timer = setInterval(() => this.heartbeat(Infinity, forgetAfter), Math.max(10, Math.min(1000, forgetAfter / 4)))
    }
    this.timer.unref()
  }

  /** Binds a new peer; retries briefly while a just-closed peer still holds the endpoint. */
  static async start(options: PeerOptions): Promise<ReferencePeer> {
    const endpoint = options.endpoint ?? 'tcp://127.0.0.1:*'
    for (let attempt = 0; ; attempt++) {
      const router = new Router({ linger: 0, mandatory: true, sendTimeout: 5000 })
      try {
        await router.bind(endpoint)
        return new ReferencePeer(router, router.lastEndpoint ?? endpoint, options)
      } catch (error) {
        router.close()
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw error
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }

  /** The first (or only) client in the ready state with a subscription, once there is one. */
  async waitForSubscriber(timeoutMs = 5000, path?: string): Promise<PeerClient> {
    const find = (): PeerClient | undefined =>
      [...this.clients.values()].find(
        (client) => client.state === 'ready' && client.subscriptions.some((sub) => path === undefined || sub.path === path),
      )
    const found = find()
    if (found !== undefined) return found
    return withTimeout(
      new Promise<PeerClient>((resolve) => {
        const check = (): void => {
          const client = find()
          if (client === undefined) return
          this.off('subscribed', check)
          resolve(client)
        }
        this.on('subscribed', check)
      }),
      timeoutMs,
      'a subscriber',
    )
  }

  /** Waits until `count` messages of type `id` have been received in all (counting earlier ones). */
  async waitForMessages(id: number, count: number, timeoutMs = 5000): Promise<Message[]> {
    if (this.received(id).length >= count) return this.received(id)
    return withTimeout(
      new Promise<Message[]>((resolve) => {
        const check = (): void => {
          const found = this.received(id)
          if (found.length < count) return
          this.off('message', check)
          resolve(found)
        }
        this.on('message', check)
      }),
      timeoutMs,
      `${count} messages of id ${id} (have ${this.received(id).length})`,
    )
  }

  /** Messages of one type received so far. */
  received(id: number): Message[] {
    return this.log.filter((entry) => entry.message.id === id).map((entry) => entry.message)
  }

  /**
   * Sends a whole file, honouring credit, as the reference does; resolves after the final empty
   * chunk. `from` starts at that offset instead, as a server resuming a partial file does;
   * headers go on the first chunk sent (and the final one).
   */
  async sendFile(client: PeerClient, name: string, content: Buffer, headers = new Map<string, string>(), from = 0): Promise<void> {
    let offset = from
    while (offset < content.length) {
      const length = Math.min(this.chunkSize, content.length - offset)
      await this.waitForCredit(client, length)
      await this.cheezburger(client, {
        filename: name,
        offset: BigInt(offset),
        headers: offset === from ? headers : new Map(),
        chunk: content.subarray(offset, offset + length),
      })
      offset += length
    }
    await this.endFile(client, name, content.length, headers)
  }

  /** The final, empty chunk of a file: eof = 0 in version 1, eof = 1 in version 2. */
  async endFile(client: PeerClient, name: string, size: number, headers = new Map<string, string>()): Promise<void> {
    await this.cheezburger(client, {
      filename: name,
      offset: BigInt(size),
      eof: this.options.version === 2 ? 1 : 0,
      headers,
      chunk: Buffer.alloc(0),
    })
  }

  /** Sends several files in order to one client (default: the first subscriber). */
  async sendFiles(files: Iterable<readonly [string, Buffer]>, to?: PeerClient): Promise<void> {
    const client = to ?? (await this.waitForSubscriber())
    for (const [name, content] of files) await this.sendFile(client, name, content)
  }

  /** A delete: operation 2, empty chunk. */
  async sendDelete(client: PeerClient, name: string): Promise<void> {
    await this.cheezburger(client, { operation: DELETE, filename: name, chunk: Buffer.alloc(0) })
  }

  /**
   * Hostile hook: any CHEEZBURGER, credit ignored (but counted). Missing fields default to a
   * create of "/x" at offset 0 with an empty chunk; the sequence is filled in.
   */
  async cheezburger(client: PeerClient, fields: Partial<Omit<Cheezburger, 'id' | 'sequence'>>): Promise<void> {
    const chunk = fields.chunk ?? Buffer.alloc(0)
    client.credit -= chunk.length
    client.sent += chunk.length
    await this.send(client, {
      id: MessageId.CHEEZBURGER,
      sequence: client.sequence++,
      operation: fields.operation ?? CREATE,
      filename: fields.filename ?? '/x',
      offset: fields.offset ?? 0n,
      eof: fields.eof ?? 0,
      headers: fields.headers ?? new Map(),
      chunk,
    })
  }

  /** Hostile hook: raw frames to a client (e.g. a malformed message). */
  async sendFrames(client: PeerClient, frames: Buffer[]): Promise<void> {
    await this.router.send([client.id, ...frames])
  }

  /** Any message, in the peer's version. */
  async send(client: PeerClient, message: Message): Promise<void> {
    const frames = [client.id, ...this.codec.encode(message)]
    // One send at a time (zeromq.js refuses a second while one is in progress): in turn.
    const sent = this.sending.then(() => this.router.send(frames))
    this.sending = sent.catch(() => undefined)
    await sent
  }

  /** Waits until `client` holds at least `octets` of credit. */
  async waitForCredit(client: PeerClient, octets: number, timeoutMs = 5000): Promise<void> {
    if (client.credit >= octets) return
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = (who: PeerClient): void => {
          if (who !== client || client.credit < octets) return
          this.off('credit', check)
          resolve()
        }
        this.on('credit', check)
      }),
      timeoutMs,
      `${octets} octets of credit (holding ${client.credit})`,
    )
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.router.close()
  }

  private async receive(): Promise<void> {
    try {
      for await (const [id, ...frames] of this.router) {
        if (id === undefined) continue
        let message: Message
        try {
          message = this.codec.decode(frames)
        } catch {
          // A v2 OHAI to a v1 server, a v1 OHAI to a v2 server, or garbage: silence.
          this.undecodable++
          this.undecodableFrom.push(id.toString('hex'))
          this.emit('undecodable', id)
          if (this.options.wrongVersion === 'rtfm' && frames[0]?.[2] === MessageId.OHAI) {
            await this.router.send([id, ...this.codec.encode({ id: MessageId.RTFM, reason: 'version' })])
          }
          continue
        }
        try {
          await this.handle(id, message)
        } catch (error) {
          // An answer to a client that is gone (EHOSTUNREACH) or not reading (EAGAIN): the
          // reference's ROUTER drops it without a word, and goes on serving the others.
          if (!undeliverable(error)) throw error
          this.dropped++
        }
      }
    } catch (error) {
      if (!this.closed) this.emit('failure', error)
    }
  }

  private async handle(id: Buffer, message: Message): Promise<void> {
    const key = id.toString('hex')
    this.log.push({ client: key, message })
    this.emit('message', key, message)
    let client = this.clients.get(key)
    if (client !== undefined) client.lastSeen = Date.now()

    if (message.id === MessageId.OHAI) {
      // OHAI at any time restarts the conversation.
      client = {
        id,
        key,
        state: this.options.plain === undefined ? 'ready' : 'authenticating',
        credit: 0,
        maxCredit: 0,
        granted: 0,
        sent: 0,
        sequence: 0n,
        subscriptions: [],
        noms: [],
        lastSeen: Date.now(),
      }
      this.clients.set(key, client)
      if (this.options.plain === undefined) await this.send(client, { id: MessageId.OHAI_OK })
      else await this.send(client, { id: MessageId.ORLY, mechanisms: ['PLAIN'], challenge: Buffer.alloc(0) })
      return
    }
    const stranger: PeerClient = { id, key, state: 'authenticating', credit: 0, maxCredit: 0, granted: 0, sent: 0, sequence: 0n, subscriptions: [], noms: [], lastSeen: 0 }
    if (client === undefined) {
      // A client we do not know (forgotten, or talking to a new server): RTFM.
      if (message.id !== MessageId.KTHXBAI) await this.send(stranger, { id: MessageId.RTFM, reason: '' })
      return
    }

    switch (message.id) {
      case MessageId.YARLY: {
        if (client.state !== 'authenticating') break
        const plain = this.options.plain
        const expected = plain === undefined ? undefined : Buffer.from(`\0${plain.login}\0${plain.password}`)
        if (message.mechanism === 'PLAIN' && expected !== undefined && message.response.equals(expected)) {
          client.state = 'ready'
          await this.send(client, { id: MessageId.OHAI_OK })
        } else {
          this.clients.delete(key)
          await this.send(client, { id: MessageId.SRSLY, reason: '' })
        }
        return
      }
      case MessageId.ICANHAZ: {
        if (client.state !== 'ready') break
        if (this.options.refuse?.includes(message.path)) {
          await this.send(client, { id: MessageId.SRSLY, reason: 'not for you' })
          return
        }
        client.subscriptions.push({ path: message.path, options: message.options, cache: message.cache })
        await this.send(client, { id: MessageId.ICANHAZ_OK })
        this.emit('subscribed', client)
        return
      }
      case MessageId.NOM: {
        if (client.state !== 'ready') break
        client.noms.push(message.credit)
        client.credit += Number(message.credit)
        client.granted += Number(message.credit)
        client.maxCredit = Math.max(client.maxCredit, client.credit)
        this.emit('credit', client)
        return
      }
      case MessageId.HUGZ:
        await this.send(client, { id: MessageId.HUGZ_OK })
        return
      case MessageId.HUGZ_OK:
        return
      case MessageId.KTHXBAI:
        this.clients.delete(key)
        this.emit('goodbye', client)
        return
      default:
        break
    }
    // The wrong message in the wrong state: RTFM, empty reason, as the reference does.
    this.clients.delete(key)
    await this.send(client, { id: MessageId.RTFM, reason: '' })
  }

  private heartbeat(interval: number, forgetAfter: number): void {
    const now = Date.now()
    for (const [key, client] of this.clients) {
      const silence = now - client.lastSeen
      if (silence >= forgetAfter) {
        this.clients.delete(key) // forgotten without a word
        this.emit('forgotten', client)
      } else if (silence >= interval && client.state === 'ready') {
        void this.send(client, { id: MessageId.HUGZ }).catch(() => undefined)
      }
    }
  }
}

/** A send that failed for its one client only: gone (EHOSTUNREACH) or not reading (EAGAIN). */
function undeliverable(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'EHOSTUNREACH' || code === 'EAGAIN'
}

/** The reference's `atoi`: leading digits, else 0 ("1.5" is 1, "soon" is 0). */
export function atoi(value: string | undefined): number {
  const match = /^\s*[-+]?\d+/.exec(value ?? '')
  return match === null ? 0 : Number.parseInt(match[0], 10)
}

/**
 * Timings from a server config in the reference's units: `server/heartbeat` whole seconds
 * (version 1, default 1), `server/timeout` milliseconds (version 2, default 60000).
 */
export function referenceTimings(config: ZplNode | undefined): { heartbeat: number; timeout: number } {
  const heartbeat = config?.get('server/heartbeat')
  const timeout = config?.get('server/timeout')
  return {
    heartbeat: heartbeat === undefined ? 1000 : atoi(heartbeat) * 1000,
    timeout: timeout === undefined ? 60_000 : atoi(timeout),
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the client tests.

/** Rejects with a clear message if `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The next event `name` of `emitter` whose payload passes `accept`, within `ms`. */
export function nextEvent<T>(
  emitter: { on(name: string, listener: (payload: T) => void): unknown; off(name: string, listener: (payload: T) => void): unknown },
  name: string,
  accept: (payload: T) => boolean = () => true,
  ms = 5000,
): Promise<T> {
  let listener: ((payload: T) => void) | undefined
  const promise = new Promise<T>((resolve) => {
    listener = (payload: T): void => {
      if (!accept(payload)) return
      emitter.off(name, listener!)
      resolve(payload)
    }
    emitter.on(name, listener)
  })
  return withTimeout(promise, ms, `event ${name}`).finally(() => emitter.off(name, listener!))
}

/** Every payload of event `name` from now on. */
export function record<T>(emitter: { on(name: string, listener: (payload: T) => void): unknown }, name: string): T[] {
  const seen: T[] = []
  emitter.on(name, (payload: T) => seen.push(payload))
  return seen
}

/** A fresh temporary directory and a function that removes it. */
export async function tempDir(prefix = 'fmq-client-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, remove: () => rm(path, { recursive: true, force: true }) }
}

/** The transports every integration test runs on. */
export const TRANSPORTS = ['tcp', 'ipc'] as const
export type Transport = (typeof TRANSPORTS)[number]

/** A bind endpoint for a transport: an ephemeral tcp port, or a socket file in `dir`. */
export function bindEndpoint(transport: Transport, dir: string, name = 'peer'): string {
  return transport === 'tcp' ? 'tcp://127.0.0.1:*' : `ipc://${join(dir, `${name}.sock`)}`
}
