/**
 * `npm run codegen`: reads the models in spec/, checks them (and the ABNF grammar
 * against the message model), and writes src/protocol/generated/.
 * `npm run codegen -- --check`: regenerates in memory and fails on any difference
 * with what is committed, so generated code can never drift from its models.
 */
import { readFile, readdir, writeFile, mkdir, rm } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkAbnf } from './abnf.js'
import { emitCodec, emitCodecTable, emitMessages } from './emit-codec.js'
import { emitMachine } from './emit-fsm.js'
import { ModelError, loadMachine, loadProtocol } from './model.js'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const OUTPUT = 'src/protocol/generated'

/** The models, relative to the project root. */
export const MODELS = {
  protocol: 'spec/fmq_msg.xml',
  grammar: 'spec/fmq_msg.abnf',
  machines: ['spec/fmq_server.xml', 'spec/fmq_client.xml'],
} as const

/** Every generated file, path relative to the root → content. */
export async function generate(root = ROOT): Promise<Map<string, string>> {
  const read = (path: string): Promise<string> => readFile(join(root, path), 'utf8')
  const protocol = loadProtocol(await read(MODELS.protocol), MODELS.protocol)
  checkAbnf(protocol, await read(MODELS.grammar), MODELS.grammar)

  const files = new Map<string, string>()
  files.set(`${OUTPUT}/fmq_msg.ts`, emitMessages(protocol))
  for (const version of protocol.versions) {
    files.set(`${OUTPUT}/fmq_msg_v${version.number}.ts`, emitCodec(protocol, version))
  }
  files.set(`${OUTPUT}/fmq_codecs.ts`, emitCodecTable(protocol))
  for (const source of MODELS.machines) {
    const machine = loadMachine(await read(source), source, protocol)
    if (machine.protocol !== MODELS.protocol.replace('spec/', '')) {
      throw new ModelError(source, `speaks "${machine.protocol}", but the message model is ${MODELS.protocol}`)
    }
    files.set(`${OUTPUT}/${machine.name}_fsm.ts`, emitMachine(machine, protocol))
  }
  return files
}

/** Paths whose committed content differs from what the models give (missing and stray files included). */
export async function drift(root = ROOT): Promise<string[]> {
  const files = await generate(root)
  const stale: string[] = []
  for (const [path, content] of files) {
    const current = await readFile(join(root, path), 'utf8').catch(() => undefined)
    if (current !== content) stale.push(path)
  }
  const present = await readdir(join(root, OUTPUT)).catch(() => [] as string[])
  for (const name of present) if (!files.has(`${OUTPUT}/${name}`)) stale.push(`${OUTPUT}/${name}`)
  return stale
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--check')) {
    const stale = await drift()
    if (stale.length === 0) {
      console.log(`codegen: ${OUTPUT} matches its models`)
      return 0
    }
    console.error(`codegen: generated code differs from the models; run npm run codegen:\n  ${stale.join('\n  ')}`)
    return 1
  }
  const files = await generate()
  await rm(join(ROOT, OUTPUT), { recursive: true, force: true })
  await mkdir(join(ROOT, OUTPUT), { recursive: true })
  for (const [path, content] of files) await writeFile(join(ROOT, path), content)
  console.log(`codegen: wrote ${[...files.keys()].map((p) => relative(OUTPUT, p)).join(', ')} in ${OUTPUT}`)
  return 0
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof ModelError ? `codegen: ${error.message}` : error)
      process.exit(1)
    },
  )
}
