/**
 * Emits the codec of every protocol version from the message model: the shared
 * message types (fmq_msg.ts), one encode/decode module per version
 * (fmq_msg_v<N>.ts) and the table of codecs by version (fmq_codecs.ts).
 */
import {
  type Encoding,
  type FieldModel,
  type MessageModel,
  type ProtocolModel,
  type VersionModel,
  ModelError,
  constantCase,
  encodingOf,
  pascalCase,
} from './model.js'
import { banner } from './banner.js'

/** The TypeScript type a field has in memory, whatever its wire encoding. */
const TS_TYPE: Record<Encoding, string> = {
  'number-1': 'number',
  'number-2': 'number',
  'number-4': 'number',
  'number-8': 'bigint',
  string: 'string',
  longstr: 'string',
  'strings-1': 'string[]',
  'strings-4': 'string[]',
  dictionary: 'Map<string, string>',
  hash: 'Map<string, string>',
  frame: 'Buffer',
  chunk: 'Buffer',
}

/** Fixed octets of an encoding, or undefined when its size depends on the value. */
const FIXED: Partial<Record<Encoding, number>> = { 'number-1': 1, 'number-2': 2, 'number-4': 4, 'number-8': 8 }

/** The FrameReader / FrameWriter / size method of an encoding. */
const method = (encoding: Encoding): string => encoding.replace('-', '')

const isConstant = (field: FieldModel): boolean => field.value !== undefined

/** The fields a message object carries (constants are the codec's business). */
const dataFields = (message: MessageModel): FieldModel[] => message.fields.filter((f) => !isConstant(f))

function tsTypeOf(model: ProtocolModel, message: MessageModel, field: FieldModel): string {
  const types = new Set(model.versions.map((v) => TS_TYPE[encodingOf(v, field, model.source)]))
  if (types.size !== 1) {
    throw new ModelError(model.source, `message ${message.name} field ${field.name}: versions disagree on its kind (${[...types].join(', ')})`)
  }
  return [...types][0]!
}

function jsdoc(text: string, indent = ''): string {
  return text ? `${indent}/** ${text.replace(/\*\//g, '*\\/')} */\n` : ''
}

/** fmq_msg.ts: ids, names, defines and one interface per message. */
export function emitMessages(model: ProtocolModel): string {
  const source = model.source
  let out = banner(source)
  out += `/** ${model.title}: messages shared by every version (${model.versions.map((v) => `version ${v.number}, spec ${v.spec}`).join('; ')}). */\n\n`
  out += `/** spec ${model.versions[0]!.spec}: every message's first frame opens with these two octets. */\n`
  out += `export const SIGNATURE = 0x${model.signature.toString(16)}\n\n`
  for (const define of model.defines) {
    const value = /^\d+$/.test(define.value) ? define.value : JSON.stringify(define.value)
    out += jsdoc(define.doc) + `export const ${constantCase(define.name)} = ${value}\n`
  }
  out += `\n/** The protocol versions this model describes. */\n`
  out += `export const VERSIONS = [${model.versions.map((v) => v.number).join(', ')}] as const\n`
  out += `export type ProtocolVersion = (typeof VERSIONS)[number]\n\n`

  out += `/** Message ids on the wire. */\nexport const MessageId = {\n`
  for (const message of model.messages) out += `  ${constantCase(message.name)}: ${message.id},\n`
  out += `} as const\nexport type MessageId = (typeof MessageId)[keyof typeof MessageId]\n\n`

  out += `/** Message names as the models spell them, by id. */\nexport const MessageName = {\n`
  for (const message of model.messages) out += `  ${message.id}: '${message.name}',\n`
  out += `} as const\nexport type MessageName = (typeof MessageName)[MessageId]\n\n`

  for (const message of model.messages) {
    out += jsdoc(`${message.name} (from ${message.from}): ${message.doc}`)
    out += `export interface ${pascalCase(message.name)} {\n  id: typeof MessageId.${constantCase(message.name)}\n`
    for (const field of dataFields(message)) {
      out += jsdoc(field.doc, '  ') + `  ${field.name}: ${tsTypeOf(model, message, field)}\n`
    }
    out += `}\n\n`
  }

  out += `/** Any FILEMQ message. */\nexport type Message =\n`
  out += model.messages.map((m) => `  | ${pascalCase(m.name)}`).join('\n') + '\n\n'
  out += `/** Message types by model name, for the state machines' typed actions. */\nexport interface MessageByName {\n`
  for (const message of model.messages) out += `  '${message.name}': ${pascalCase(message.name)}\n`
  out += `}\n`
  return out
}

function constantLiteral(field: FieldModel, version: VersionModel): string {
  if (field.value === '$version') return String(version.number)
  return /^\d+$/.test(field.value!) ? field.value! : `'${field.value!.replace(/[\\']/g, '\\$&')}'`
}

function encodeCase(model: ProtocolModel, version: VersionModel, message: MessageModel): string {
  const id = `MessageId.${constantCase(message.name)}`
  let fixed = 3
  const sized: string[] = []
  const writes: string[] = []
  const frames: string[] = []
  for (const field of message.fields) {
    const encoding = encodingOf(version, field, model.source)
    const value = isConstant(field) ? constantLiteral(field, version) : `message.${field.name}`
    const name = `'${field.name}'`
    if (encoding === 'frame') {
      frames.push(`frameOf(${value})`)
      continue
    }
    const octets = FIXED[encoding]
    if (octets !== undefined) fixed += octets
    else sized.push(`size.${method(encoding)}(${value}, ${name})`)
    writes.push(`      writer.${method(encoding)}(${value}, ${name})\n`)
  }
  // A chunk that ends the first frame may come with room reserved before it (wire.ts,
  // withHeadroom): the frame is then written around it, and the chunk is never copied.
  const last = message.fields.filter((field) => encodingOf(version, field, model.source) !== 'frame').at(-1)
  const tail = last !== undefined && encodingOf(version, last, model.source) === 'chunk' && !isConstant(last) ? `, message.${last.name}` : ''
  let out = `    case ${id}: {\n`
  out += `      const writer = new FrameWriter(${[String(fixed), ...sized].join(' + ')}, ${id}${tail})\n`
  out += writes.join('')
  out += `      return [${['writer.done()', ...frames].join(', ')}]\n    }\n`
  return out
}

function decodeCase(model: ProtocolModel, version: VersionModel, message: MessageModel): string {
  const id = `MessageId.${constantCase(message.name)}`
  let out = `    case ${id}: {\n`
  const properties: string[] = [`id: ${id}`]
  for (const field of message.fields) {
    const encoding = encodingOf(version, field, model.source)
    const read = `reader.${method(encoding)}('${field.name}')`
    if (isConstant(field)) {
      const check = encoding.startsWith('number') ? 'expectVersion' : 'expectText'
      out += `      reader.${check}(${constantLiteral(field, version)}, ${read}, '${field.name}')\n`
    } else {
      // Fields are read in wire order: object literal properties evaluate in source order.
      properties.push(`${field.name}: ${read}`)
    }
  }
  out += `      message = { ${properties.join(', ')} }\n      break\n    }\n`
  return out
}

/** fmq_msg_v<N>.ts: encode and decode for one version. */
export function emitCodec(model: ProtocolModel, version: VersionModel): string {
  let out = banner(model.source)
  out += `/**\n * ${version.title} (spec ${version.spec}).\n *\n`
  out += ` * \`encode\` returns the ZeroMQ frames of a message; \`decode\` takes them back and\n`
  out += ` * throws MalformedMessageError (NoSignatureError for non-FILEMQ input) on anything else.\n */\n`
  out += `import { EncodeError, MalformedMessageError } from '../errors.js'\n`
  out += `import { FrameReader, FrameWriter, frameOf, size } from '../wire.js'\n`
  out += `import { type Message, MessageId } from './fmq_msg.js'\n\n`
  out += `export const VERSION = ${version.number}\n\n`

  out += `/** Encodes a message as its ZeroMQ frames; frame fields are passed on, not copied. */\n`
  out += `export function encode(message: Message): Buffer[] {\n  switch (message.id) {\n`
  for (const message of model.messages) out += encodeCase(model, version, message)
  out += `    default:\n      throw new EncodeError('out-of-range', 'id', \`no message has id \${(message as { id: unknown }).id}\`)\n  }\n}\n\n`

  out += `/** Decodes one message from its ZeroMQ frames; octet fields are views of the frames. */\n`
  out += `export function decode(frames: readonly Buffer[]): Message {\n`
  out += `  const reader = FrameReader.open(frames)\n  let message: Message\n  switch (reader.id) {\n`
  for (const message of model.messages) out += decodeCase(model, version, message)
  out += `    default:\n      throw new MalformedMessageError('unknown-id', \`no message has id \${reader.id}\`)\n  }\n`
  out += `  reader.end()\n  return message\n}\n`
  return out
}

/** fmq_codecs.ts: the codecs by version number. */
export function emitCodecTable(model: ProtocolModel): string {
  let out = banner(model.source)
  out += `import type { Message, ProtocolVersion } from './fmq_msg.js'\n`
  for (const version of model.versions) out += `import * as v${version.number} from './fmq_msg_v${version.number}.js'\n`
  out += `\n/** A codec of one protocol version. */\nexport interface Codec {\n  readonly VERSION: number\n`
  out += `  encode(message: Message): Buffer[]\n  decode(frames: readonly Buffer[]): Message\n}\n\n`
  out += `/** Every codec, by protocol version. */\nexport const codecs: Readonly<Record<ProtocolVersion, Codec>> = {\n`
  for (const version of model.versions) out += `  ${version.number}: v${version.number},\n`
  out += `}\n`
  return out
}
