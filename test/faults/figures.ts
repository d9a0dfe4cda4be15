/**
 * Figures the fault tests measure (kills survived, bytes resent, server memory, ...): each
 * is printed at once and, when FMQ_FAULT_FIGURES names a file, appended to it as one JSON
 * line, so `npm run test:faults` (run.ts) can print them all in one table at the end.
 *
 * @example
 * ```ts
 * recordFigure('client kills survived', 10)
 * recordFigure('max server RSS', 61.2, 'MiB')
 * ```
 */
import { appendFileSync } from 'node:fs'

/** One line of the figures file. */
export interface Figure {
  name: string
  value: number | string
  unit?: string
  /** The test file that recorded it. */
  file?: string
}

export function recordFigure(name: string, value: number | string, unit?: string): void {
  const figure: Figure = { name, value, ...(unit === undefined ? {} : { unit }), file: callerFile() }
  const target = process.env.FMQ_FAULT_FIGURES
  if (target !== undefined && target !== '') appendFileSync(target, JSON.stringify(figure) + '\n')
  // A line starting with '#' is shown by node:test's reporters as a diagnostic.
  console.log(`figure: ${name} = ${value}${unit === undefined ? '' : ` ${unit}`}`)
}

/** Reads a figures file back (lines that do not parse are skipped). */
export function parseFigures(text: string): Figure[] {
  const figures: Figure[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try {
      figures.push(JSON.parse(line) as Figure)
    } catch {
      // a line cut short by a killed test process
    }
  }
  return figures
}

/** The basename of the test file that called recordFigure, from the stack. */
function callerFile(): string | undefined {
  const stack = new Error().stack?.split('\n') ?? []
  for (const line of stack.slice(3)) {
    const match = /([^/\\(]+\.test\.ts)/.exec(line)
    if (match) return match[1]
  }
  return undefined
}
