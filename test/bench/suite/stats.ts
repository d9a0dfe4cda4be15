/**
 * Small numeric and formatting helpers shared by the sections, and the context they run in.
 *
 * @packageDocumentation
 */

export const MiB = 1024 * 1024

/** What every section gets: resolved flags, paths, what the machine has. */
export interface Context {
  repo: string
  /** `node <cli>` runs the built fmq CLI. */
  cli: string
  /** Datasets cache and work folders live here. */
  dir: string
  /** This run's scratch folder (removed at the end). */
  work: string
  scale: number
  rounds: number
  /** Receivers at once in the fanout section, one table per count (`--clients`, default [10]). */
  clients?: readonly number[]
  /** Datasets of the mirror section, by letter (`--datasets`, default all: A, B, C). */
  datasets?: readonly string[]
  tools: ReadonlySet<Tool>
  rsync: string | undefined
  log(line: string): void
}

export const TOOLS = ['fmq-track', 'fmq-tcp', 'cp', 'rsync'] as const
export type Tool = (typeof TOOLS)[number]

/** The median: the middle value, or the mean of the two middle ones. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** The value at quantile `q` (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export const fixed = (value: number | undefined, digits = 2): string =>
  value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits)

/** Octets in the unit that suits them (B, KiB, MiB, GiB). */
export function octets(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  const units = ['B', 'KiB', 'MiB', 'GiB']
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`
}

/** A rate: one decimal below 10, whole numbers above. */
export const rate = (value: number | undefined): string => fixed(value, value !== undefined && value < 10 ? 1 : 0)

/** "1 round", "2 rounds". */
export const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`

export const mib = (kib: number | undefined): string => (kib === undefined ? 'n/a' : (kib / 1024).toFixed(0))

/** A Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** What a section hands back: its Markdown, raw data for the JSON, and how many runs failed. */
export interface SectionResult {
  name: string
  markdown: string
  raw: unknown
  failures: number
}

/** The items in their order, rotated by `round`: the tools take turns at going first. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const shift = round % Math.max(1, items.length)
  return [...items.slice(shift), ...items.slice(0, shift)]
}

/** A timed run of one round, as the ratios and the RSS column need it. */
export interface Timed {
  round: number
  ms: number
  verified: boolean
  /** Peak RSS in KiB per process of the run (undefined when not measured). */
  rss: Record<string, number | undefined>
}

/** Per round, `tool`'s time over `base`'s, where both verified; then the median. */
export function ratio(runs: Readonly<Record<string, readonly Timed[] | undefined>>, tool: string, base: string): number | undefined {
  const mine = runs[tool]
  const theirs = runs[base]
  if (mine === undefined || theirs === undefined) return undefined
  const ratios: number[] = []
  for (const run of mine) {
    const other = theirs.find((r) => r.round === run.round)
    if (run.verified && other?.verified) ratios.push(run.ms / other.ms)
  }
  return ratios.length === 0 ? undefined : median(ratios)
}

/** The peak RSS of each process over `runs`, in MiB: "server 94 / client 422", or n/a. */
export function peakRss(runs: readonly Pick<Timed, 'rss'>[]): string {
  const peaks = new Map<string, number | undefined>()
  for (const run of runs) {
    for (const [name, kib] of Object.entries(run.rss)) {
      const before = peaks.get(name)
      peaks.set(name, kib === undefined ? before : Math.max(before ?? 0, kib))
    }
  }
  return peaks.size === 0 ? 'n/a' : [...peaks].map(([name, kib]) => `${name} ${mib(kib)}`).join(' / ')
}
