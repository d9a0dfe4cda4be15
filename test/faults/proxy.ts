/**
 * A loopback TCP proxy for fault tests (node:net): it forwards every connection to a target
 * and, on command or on a seeded schedule driven by the octets it forwards, cuts connections
 * (destroy), stalls them (stops forwarding both ways for a while, sockets left open), or
 * half-closes them (FIN towards one side only). Counts the octets each way, so a clean
 * proxy also measures what crossed the wire.
 *
 * @example
 * ```ts
 * const proxy = new FaultyProxy(serverEndpoint)
 * const at = await proxy.listen()                 // tcp://127.0.0.1:PORT for the client
 * proxy.chaos(new Random(seed), { faults: 8, everyBytes: 4 * MiB, stallMs: 2000 })
 * await proxy.calm                                // every fault injected
 * await proxy.close()
 * ```
 */
import { EventEmitter } from 'node:events'
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { Random } from './harness.js'

export const FAULTS = ['drop', 'stall', 'half-close'] as const
export type Fault = (typeof FAULTS)[number]

export interface FaultRecord {
  fault: Fault
  /** Octets forwarded server → client when it was injected. */
  atBytes: number
  connections: number
  detail?: string
}

export interface ChaosOptions {
  /** How many faults to inject before the proxy turns clean. */
  faults: number
  /** Mean octets (server → client) between two faults; each gap is drawn in [0.5, 1.5] of it. */
  everyBytes: number
  /** How long a stall lasts, in ms (make it longer than the heartbeat timeouts). */
  stallMs: number
  /** Which faults to draw from (default all). */
  kinds?: readonly Fault[]
}

interface Pair {
  client: Socket
  server: Socket
  stalled: boolean
}

export class FaultyProxy extends EventEmitter<{ fault: [FaultRecord]; connection: [] }> {
  /** Octets forwarded server → client and client → server. */
  bytesDown = 0
  bytesUp = 0
  /** Connections accepted so far. */
  accepted = 0
  readonly faults: FaultRecord[] = []
  private readonly pairs = new Set<Pair>()
  private readonly server: Server
  private readonly host: string
  private readonly port: number
  private schedule: { random: Random; options: ChaosOptions; next: number; left: number } | undefined
  private settled: () => void = () => undefined
  private readonly timers = new Set<NodeJS.Timeout>()
  /** Resolves once the chaos schedule has injected all its faults. */
  calm: Promise<void> = Promise.resolve()

  /** `target`: a tcp:// endpoint (as a server reports it) or host:port. */
  constructor(target: string) {
    super()
    const match = /^(?:tcp:\/\/)?([^:]+):(\d+)$/.exec(target)
    if (!match) throw new Error(`not a tcp endpoint: ${target}`)
    this.host = match[1] === '*' || match[1] === '0.0.0.0' ? '127.0.0.1' : match[1]!
    this.port = Number(match[2])
    this.server = createServer((client) => this.accept(client))
  }

  /** Starts listening on 127.0.0.1 (a free port unless given); resolves to the endpoint to give clients. */
  listen(port = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', () => {
        const address = this.server.address()
        if (address === null || typeof address === 'string') return reject(new Error('no address'))
        resolve(`tcp://127.0.0.1:${address.port}`)
      })
    })
  }

  get connections(): number {
    return this.pairs.size
  }

  /** Injects faults at random, every `everyBytes` octets or so of forwarded content, `faults` times. */
  chaos(random: Random, options: ChaosOptions): Promise<void> {
    this.schedule = { random, options, next: this.bytesDown + this.gap(random, options), left: options.faults }
    this.calm = new Promise((resolve) => (this.settled = resolve))
    if (options.faults <= 0) this.settled()
    return this.calm
  }

  /** Cuts every connection at once (both sockets destroyed: the peers see a reset or an end). */
  drop(): void {
    const count = this.pairs.size
    for (const pair of [...this.pairs]) this.finish(pair)
    this.record('drop', count)
  }

  /** Stops forwarding on every open connection for `ms`, sockets kept open; new connections are not affected. */
  stall(ms: number): void {
    const stalled = [...this.pairs]
    for (const pair of stalled) {
      pair.stalled = true
      pair.client.pause()
      pair.server.pause()
    }
    this.record('stall', stalled.length, `${ms} ms`)
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      for (const pair of stalled) {
        pair.stalled = false
        if (!pair.client.destroyed) pair.client.resume()
        if (!pair.server.destroyed) pair.server.resume()
      }
    }, ms)
    this.timers.add(timer)
  }

  /** Sends FIN to one side of every connection (the other side's direction stays open). */
  halfClose(towards: 'client' | 'server'): void {
    const count = this.pairs.size
    for (const pair of this.pairs) (towards === 'client' ? pair.client : pair.server).end()
    this.record('half-close', count, `towards the ${towards}`)
  }

  /** Stops listening and cuts whatever is still connected. */
  async close(): Promise<void> {
    this.schedule = undefined
    this.settled()
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    for (const pair of [...this.pairs]) this.finish(pair)
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private accept(client: Socket): void {
    this.accepted++
    const server = connect(this.port, this.host)
    const pair: Pair = { client, server, stalled: false }
    this.pairs.add(pair)
    client.setNoDelay(true)
    server.setNoDelay(true)
    client.on('data', (data: Buffer) => {
      this.bytesUp += data.length
      if (!server.write(data)) {
        client.pause()
        server.once('drain', () => pair.stalled || client.resume())
      }
    })
    server.on('data', (data: Buffer) => {
      this.bytesDown += data.length
      if (!client.write(data)) {
        server.pause()
        client.once('drain', () => pair.stalled || server.resume())
      }
      this.tick()
    })
    // A FIN from one side is passed on (node's allowHalfOpen is off: it ends our side too).
    client.on('end', () => server.end())
    server.on('end', () => client.end())
    for (const socket of [client, server]) {
      socket.on('error', () => this.finish(pair))
      socket.on('close', () => this.finish(pair))
    }
    this.emit('connection')
  }

  private finish(pair: Pair): void {
    if (!this.pairs.delete(pair)) return
    pair.client.destroy()
    pair.server.destroy()
  }

  private gap(random: Random, options: ChaosOptions): number {
    return Math.floor(options.everyBytes * (0.5 + random.next()))
  }

  private tick(): void {
    const schedule = this.schedule
    if (schedule === undefined || this.bytesDown < schedule.next) return
    const { random, options } = schedule
    // Every kind once first (in the schedule's order), then at random: a run with as many
    // faults as kinds is sure to see each of them.
    const kinds = options.kinds ?? FAULTS
    const done = options.faults - schedule.left
    const fault = done < kinds.length ? kinds[done]! : random.pick(kinds)
    if (fault === 'drop') this.drop()
    else if (fault === 'stall') this.stall(options.stallMs)
    else this.halfClose(random.next() < 0.5 ? 'client' : 'server')
    schedule.left--
    schedule.next = this.bytesDown + this.gap(random, options)
    if (schedule.left <= 0) {
      this.schedule = undefined
      this.settled()
    }
  }

  private record(fault: Fault, connections: number, detail?: string): void {
    const record: FaultRecord = { fault, atBytes: this.bytesDown, connections, ...(detail === undefined ? {} : { detail }) }
    this.faults.push(record)
    this.emit('fault', record)
  }
}
