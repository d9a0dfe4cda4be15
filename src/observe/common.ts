/**
 * What the observers of a server, a client, a relay and a track share: the registry with
 * the process metrics, metrics read from live counters when scraped, the recent log.
 *
 * @packageDocumentation
 */
import { createRequire } from 'node:module'

import type * as PromClient from 'prom-client'
import type { Registry } from 'prom-client'

import { packageVersion } from '../util/version.js'

let promClient: typeof PromClient | undefined

/**
 * prom-client, loaded at first use: it costs about 70 ms of start-up per thread (more under
 * load), which a node without `--http` (and `fmq track --once`, twice) never pays.
 */
function prom(): typeof PromClient {
  promClient ??= createRequire(import.meta.url)('prom-client') as typeof PromClient
  return promClient
}

/** One line of the recent log the page shows. */
export interface RecentEntry {
  time: string
  level: 'info' | 'warn' | 'error'
  text: string
}

/** How many recent lines are kept. */
const RECENT = 50

/** A bounded list of recent warnings and errors, newest last. */
export class RecentLog {
  readonly entries: RecentEntry[] = []

  add(level: RecentEntry['level'], text: string): void {
    this.entries.push({ time: new Date().toISOString(), level, text })
    if (this.entries.length > RECENT) this.entries.shift()
  }
}

/** A registry with prom-client's process metrics (memory, CPU, event-loop lag). */
export function processRegistry(): Registry {
  const { Registry, collectDefaultMetrics } = prom()
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

/**
 * A counter read from a live total when scraped: the node keeps the count (one source of
 * truth), the metric only shows it.
 */
export function totalCounter(registry: Registry, name: string, help: string, value: () => number): void {
  new (prom().Counter)({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset()
      this.inc(value())
    },
  })
}

/** A gauge read when scraped: one value, or one per label value. */
export function liveGauge(registry: Registry, name: string, help: string, value: () => number | ReadonlyMap<string, number>, label?: string): void {
  new (prom().Gauge)({
    name,
    help,
    labelNames: label === undefined ? [] : [label],
    registers: [registry],
    collect() {
      const now = value()
      if (typeof now === 'number') return void this.set(now)
      this.reset()
      for (const [key, each] of now) this.set({ [label!]: key }, each)
    },
  })
}

/** The fields every status opens with. */
export interface NodeFacts {
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
}

/** A node's facts, for a node started at `started` (ms since the epoch). */
export function nodeFacts(started: number): NodeFacts {
  return { version: packageVersion(), pid: process.pid, startedAt: new Date(started).toISOString(), uptimeSeconds: Math.round((Date.now() - started) / 1000) }
}
