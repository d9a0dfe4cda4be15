/**
 * A test peer that talks to a server as REFERENCE.md says the reference C clients do:
 * - version 1: sends its first NOM right after ICANHAZ (before ICANHAZ-OK), never sends
 *   HUGZ, answers every HUGZ with HUGZ-OK;
 * - version 2: waits for ICANHAZ-OK before its first NOM, sends HUGZ after a quiet second.
 * Both grant 5,000,000 octets first, then top up in 1,000,000-octet slices whenever their
 * own count of credit left drops below 4,000,001; both take an empty chunk as end of file.
 * Files are kept in memory. It also counts what it received, for the tests' assertions.
 */
import { Dealer } from 'zeromq'
import { codecs } from '../../src/protocol/generated/fmq_codecs.js'
import { type Message, MessageId, type ProtocolVersion } from '../../src/protocol/generated/fmq_msg.js'
import type { ZplNode } from '../../src/config/zpl.js'
import { encodePlainResponse } from '../../src/security/sasl.js'
import { atoi } from './reference-server.js'

export interface ReferenceClientOptions {
  version: ProtocolVersion
  login?: string
  password?: string
  /** First NOM (default 5,000,000) and top-up slice (default 1,000,000); 0 disables top-ups. */
  firstCredit?: number
  slice?: number
  /** Answer HUGZ (default true). */
  answerHugz?: boolean
  /**
   * A client config read as the reference reads it: `client/heartbeat` in whole seconds
   * (`atoi (value) * 1000`, default 1): how long a version-2 client waits on a silent server
   * before it sends HUGZ.
   */
  config?: ZplNode
  /**
   * Not the reference: read a ZeroMQ message of several frames as several version-2 messages,
   * a frame each (what a client that asked BATCH=1 gets; spec/fmq_msg.xml, BATCH).
   */
  batch?: boolean
}

export class ReferenceClient {
  readonly socket = new Dealer({ linger: 0 })
  readonly files = new Map<string, Buffer>()
  readonly deleted: string[] = []
  readonly received: Message[] = []
  /** Frames of each ZeroMQ message received, in order. */
  readonly frameCounts: number[] = []
  /** File content octets received in CHEEZBURGERs. */
  contentBytes = 0
  private readonly partial = new Map<string, Buffer[]>()
  private creditLeft = 0
  private lastSequence = 0n
  private heard = Date.now()
  private readonly timer: NodeJS.Timeout
  private readonly waiters: Array<() => void> = []
  private readonly loop: Promise<void>

  constructor(readonly options: ReferenceClientOptions) {
    const heartbeat = options.config?.get('client/heartbeat')
    const interval = heartbeat === undefined ? 1000 : atoi(heartbeat) * 1000
    this.timer = setInterval(() => {
      if (options.version === 2 && Date.now() - this.heard >= interval) void this.send({ id: MessageId.HUGZ })
    }, Math.max(10, Math.min(250, interval / 4)))
    this.loop = this.run()
  }

  get codec() {
    return codecs[this.options.version]
  }

  async connect(endpoint: string): Promise<void> {
    this.socket.connect(endpoint)
  }

  async send(message: Message): Promise<void> {
    await this.socket.send(this.codec.encode(message))
  }

  async sendRaw(frames: Buffer[]): Promise<void> {
    await this.socket.send(frames)
  }

  async hello(): Promise<void> {
    await this.send({ id: MessageId.OHAI })
  }

  /** ICANHAZ, and for version 1 the first NOM at once, as the reference 1.x does. */
  async subscribe(path: string, options: Record<string, string> = {}, cache: Record<string, string> = {}): Promise<void> {
    await this.send({ id: MessageId.ICANHAZ, path, options: new Map(Object.entries(options)), cache: new Map(Object.entries(cache)) })
    if (this.options.version === 1) await this.grantFirst()
  }

  async grant(credit: number): Promise<void> {
    this.creditLeft += credit
    await this.send({ id: MessageId.NOM, credit: BigInt(credit), sequence: this.options.version === 1 ? 0n : this.lastSequence })
  }

  private async grantFirst(): Promise<void> {
    await this.grant(this.options.firstCredit ?? 5_000_000)
  }

  /** Resolves once `check` holds, or rejects after `ms`. */
  async until(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 50).unref()
      })
    }
  }

  last(id: Message['id']): Message | undefined {
    return [...this.received].reverse().find((m) => m.id === id)
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    this.socket.close()
    await this.loop
  }

  private async run(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        this.heard = Date.now()
        this.frameCounts.push(frames.length)
        const batch = this.options.batch === true && this.options.version === 2 && frames.length > 1
        for (const message of batch ? frames.map((frame) => this.codec.decode([frame])) : [this.codec.decode(frames)]) {
          this.received.push(message)
          await this.on(message)
        }
        for (const wake of this.waiters.splice(0)) wake()
      }
    } catch {
      // closed
    }
  }

  private async on(message: Message): Promise<void> {
    switch (message.id) {
      case MessageId.ORLY:
        await this.send({
          id: MessageId.YARLY,
          mechanism: 'PLAIN',
          response: encodePlainResponse(this.options.login ?? '', this.options.password ?? ''),
        })
        break
      case MessageId.ICANHAZ_OK:
        if (this.options.version === 2) await this.grantFirst()
        break
      case MessageId.HUGZ:
        if (this.options.answerHugz ?? true) await this.send({ id: MessageId.HUGZ_OK })
        break
      case MessageId.CHEEZBURGER: {
        this.lastSequence = message.sequence
        if (message.operation === 2) {
          this.files.delete(message.filename)
          this.deleted.push(message.filename)
          break
        }
        this.contentBytes += message.chunk.length
        this.creditLeft -= message.chunk.length
        if (message.chunk.length === 0) {
          this.files.set(message.filename, Buffer.concat(this.partial.get(message.filename) ?? []))
          this.partial.delete(message.filename)
        } else {
          if (message.offset === 0n) this.partial.set(message.filename, [])
          this.partial.get(message.filename)?.push(Buffer.from(message.chunk))
        }
        const slice = this.options.slice ?? 1_000_000
        while (slice > 0 && this.creditLeft < 4_000_001) await this.grant(slice)
        break
      }
    }
  }
}
