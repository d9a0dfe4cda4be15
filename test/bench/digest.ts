/**
 * `npm run bench:digest`: the digests a peer could use, measured in CPU time (this machine is
 * shared; CPU time is what a digest costs, whatever else runs): a GiB fed in chunks of
 * 1,000,000 octets (the chunk size on the wire) from 256 distinct buffers, so the data is not
 * in the caches, as received data is not; and 4 KiB files, one hash each. Each figure is the
 * median of several runs. Why XXH128 is hash-wasm's XXH3-128: BENCHMARKS.md, "Digest".
 */
import { createHash, randomBytes } from 'node:crypto'

import { xxh3 } from '@node-rs/xxhash'
import { createBLAKE3, createXXHash128 } from 'hash-wasm'

import { createContentHash, Xxh128Hash, xxh128Kind, xxh128WasmReady } from '../../src/fs/digest.js'

const RUNS = 5
const GIB = 1 << 30
const CHUNK = 1_000_000

interface Streaming {
  update(data: Uint8Array): void
  digest(): unknown
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** CPU milliseconds of `work`. */
function cpu(work: () => void): number {
  const start = process.cpuUsage()
  work()
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000
}

const chunks = Array.from({ length: 256 }, () => randomBytes(CHUNK))
const small = randomBytes(4096)
const blake3 = await createBLAKE3()
const wasmXxh128 = await createXXHash128()
await xxh128WasmReady()

const candidates: Array<{ name: string; stream?: () => Streaming; once?: (data: Uint8Array) => unknown }> = [
  { name: 'SHA-1 (node:crypto, OpenSSL)', stream: () => createHash('sha1') },
  { name: `XXH128 as used (fs/digest.ts: ${xxh128Kind === 'native' ? 'native/xxh128.c' : 'hash-wasm XXH3-128'})`, stream: () => createContentHash('xxh128') },
  { name: 'XXH3-128 (hash-wasm through fs/digest.ts Xxh128Hash)', stream: () => new Xxh128Hash() },
  { name: 'XXH3-128 (@node-rs/xxhash, one-shot per chunk)', once: (data) => xxh3.xxh128(data) },
  {
    name: 'XXH3-64 (@node-rs/xxhash, streaming; 64 bits only)',
    stream: () => {
      const hash = xxh3.Xxh3.withSeed()
      return { update: (data) => hash.update(data), digest: () => hash.digest() }
    },
  },
  {
    name: 'BLAKE3 (hash-wasm)',
    stream: () => {
      blake3.init()
      return { update: (data) => blake3.update(data), digest: () => blake3.digest('binary') }
    },
  },
  {
    name: 'XXH3-128 (hash-wasm, bare)',
    stream: () => {
      wasmXxh128.init()
      return { update: (data) => wasmXxh128.update(data), digest: () => wasmXxh128.digest('hex') }
    },
  },
]

console.log('| digest | ms CPU per GiB (1 MB chunks, cold) | GB/s | 4 KiB files per s |')
console.log('|---|---|---|---|')
for (const { name, stream, once } of candidates) {
  const perGib = median(
    Array.from({ length: RUNS }, () =>
      cpu(() => {
        if (once !== undefined) {
          for (let i = 0; i * CHUNK < GIB; i++) once(chunks[i % chunks.length]!)
          return
        }
        const hash = stream!()
        for (let i = 0; i * CHUNK < GIB; i++) hash.update(chunks[i % chunks.length]!)
        hash.digest()
      }),
    ),
  )
  const files = 50_000
  const smallMs = median(
    Array.from({ length: RUNS }, () =>
      cpu(() => {
        for (let i = 0; i < files; i++) {
          if (once !== undefined) once(small)
          else {
            const hash = stream!()
            hash.update(small)
            hash.digest()
          }
        }
      }),
    ),
  )
  console.log(`| ${name} | ${perGib.toFixed(0)} | ${(GIB / perGib / 1e6).toFixed(2)} | ${Math.round(files / (smallMs / 1000)).toLocaleString('en-US')} |`)
}
