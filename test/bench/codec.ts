/**
 * `npm run bench:codec`: encode and decode rates of the generated codecs, for a
 * 1 MiB CHEEZBURGER (the chunk path) and a NOM (the smallest hot message), in both
 * protocol versions. Each figure is the median of several timed runs.
 */
import { randomBytes } from 'node:crypto'
import { codecs } from '../../src/protocol/generated/fmq_codecs.js'
import { type Message, MessageId, VERSIONS } from '../../src/protocol/generated/fmq_msg.js'

const RUNS = 7
const MIB = 1 << 20

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Operations per second of `work`, run `count` times per timed run. */
function rate(count: number, work: () => void): number {
  const rates: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < count; i++) work()
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    rates.push(count / seconds)
  }
  return median(rates)
}

const cheezburger: Message = {
  id: MessageId.CHEEZBURGER,
  sequence: 42n,
  operation: 1,
  filename: '/photos/2026/holiday/IMG_0042.jpg',
  offset: 5_000_000n,
  eof: 0,
  headers: new Map([['size', '104857600'], ['sha1', 'a'.repeat(40)]]),
  chunk: randomBytes(MIB),
}
const nom: Message = { id: MessageId.NOM, credit: 1_000_000n, sequence: 42n }

const rows: string[][] = [['version', 'message', 'encode', 'decode']]
for (const version of VERSIONS) {
  const codec = codecs[version]
  const bigFrames = codec.encode(cheezburger)
  const smallFrames = codec.encode(nom)
  const bigEncode = rate(500, () => codec.encode(cheezburger))
  const bigDecode = rate(500, () => codec.decode(bigFrames))
  const nomEncode = rate(200_000, () => codec.encode(nom))
  const nomDecode = rate(200_000, () => codec.decode(smallFrames))
  const mibs = (perSecond: number) => `${(perSecond).toFixed(0)} msg/s = ${(perSecond * MIB / 1e6).toFixed(0)} MB/s`
  rows.push([`v${version}`, 'CHEEZBURGER 1 MiB', mibs(bigEncode), mibs(bigDecode)])
  rows.push([`v${version}`, 'NOM', `${(nomEncode / 1e6).toFixed(2)} M msg/s`, `${(nomDecode / 1e6).toFixed(2)} M msg/s`])
}
const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
console.log(`codec rates, median of ${RUNS} runs (node ${process.version})`)
for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '))
