/**
 * Loads the models in spec/ and checks them before anything is generated: the
 * message model (messages, fields, per-version encodings) and the state-machine
 * models (states, events, actions). Every problem is a ModelError naming the file
 * and the element, so a bad model fails with one clear line.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'

export class ModelError extends Error {
  override name = 'ModelError'
  readonly code = 'ERR_FMQ_MODEL'

  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`)
  }
}

/** Wire encodings the codec generator knows how to write and read. */
export const ENCODINGS = [
  'number-1', 'number-2', 'number-4', 'number-8',
  'string', 'longstr', 'strings-1', 'strings-4', 'dictionary', 'hash', 'frame', 'chunk',
] as const
export type Encoding = (typeof ENCODINGS)[number]

export interface FieldModel {
  name: string
  type: string
  doc: string
  /** A constant the field always holds; "$version" is the codec's version number. */
  value?: string
  /** Octets of a "number" field. */
  size?: number
}

export interface MessageModel {
  name: string
  id: number
  from: 'client' | 'server' | 'both'
  doc: string
  fields: FieldModel[]
}

export interface VersionModel {
  number: number
  spec: string
  title: string
  /** Logical type → wire encoding ("number" means number-<size of the field>). */
  types: Map<string, string>
}

export interface ProtocolModel {
  source: string
  name: string
  title: string
  signature: number
  versions: VersionModel[]
  defines: Array<{ name: string; value: string; doc: string }>
  messages: MessageModel[]
}

export interface ActionModel {
  name: string
  /** For "send" only: the message sent. */
  message?: string
}

export interface EventModel {
  name: string
  next?: string
  actions: ActionModel[]
}

export interface StateModel {
  name: string
  inherit?: string
  doc: string
  events: EventModel[]
}

export interface MachineModel {
  source: string
  name: string
  title: string
  role: 'server' | 'client'
  protocol: string
  states: StateModel[]
}

type XmlNode = Record<string, unknown> & { '#text'?: string }

const REPEATED = new Set(['version', 'map', 'define', 'message', 'field', 'state', 'event', 'action'])

function parseXml(text: string, source: string): XmlNode {
  const valid = XMLValidator.validate(text)
  if (valid !== true) {
    throw new ModelError(source, `line ${valid.err.line}: ${valid.err.msg}`)
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    textNodeName: '#text',
    parseAttributeValue: false,
    isArray: (name, _path, _leaf, isAttribute) => !isAttribute && REPEATED.has(name),
  })
  const root = parser.parse(text) as XmlNode
  const top = root['class']
  if (typeof top !== 'object' || top === null) throw new ModelError(source, 'the root element must be <class>')
  return top as XmlNode
}

function list(node: XmlNode, name: string): XmlNode[] {
  const value = node[name]
  return Array.isArray(value) ? (value as XmlNode[]) : []
}

function attribute(node: XmlNode, name: string, source: string, where: string): string {
  const value = node[name]
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ModelError(source, `${where}: attribute "${name}" is required`)
  }
  return value.trim()
}

function optional(node: XmlNode, name: string): string | undefined {
  const value = node[name]
  return typeof value === 'string' ? value.trim() : undefined
}

function prose(node: XmlNode): string {
  return (node['#text'] ?? '').toString().replace(/\s+/g, ' ').trim()
}

function integer(text: string, source: string, where: string): number {
  const value = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(value)) throw new ModelError(source, `${where}: "${text}" is not a whole number`)
  return value
}

/** Upper-case words joined by "-": the shape of a protocol message name. */
export const isMessageName = (name: string): boolean => /^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$/.test(name)
/** Lower-case words joined by single spaces: the shape of states, internal events and actions. */
const isInternalName = (name: string): boolean => /^[a-z][a-z0-9]*( [a-z0-9]+)*$/.test(name)

/** Parses and validates the message model. */
export function loadProtocol(text: string, source: string): ProtocolModel {
  const top = parseXml(text, source)
  const model: ProtocolModel = {
    source,
    name: attribute(top, 'name', source, '<class>'),
    title: attribute(top, 'title', source, '<class>'),
    signature: integer(attribute(top, 'signature', source, '<class>'), source, 'signature'),
    versions: [],
    defines: [],
    messages: [],
  }
  if (model.signature > 0xffff) throw new ModelError(source, 'the signature must fit in two octets')

  for (const node of list(top, 'version')) {
    const where = '<version>'
    const version: VersionModel = {
      number: integer(attribute(node, 'number', source, where), source, where),
      spec: attribute(node, 'spec', source, where),
      title: attribute(node, 'title', source, where),
      types: new Map(),
    }
    if (model.versions.some((v) => v.number === version.number)) {
      throw new ModelError(source, `version ${version.number} is described twice`)
    }
    for (const map of list(node, 'map')) {
      const type = attribute(map, 'type', source, `version ${version.number} <map>`)
      const encoding = attribute(map, 'encoding', source, `version ${version.number} <map type="${type}">`)
      if (encoding !== 'number' && !(ENCODINGS as readonly string[]).includes(encoding)) {
        throw new ModelError(source, `version ${version.number}: type "${type}" maps to unknown encoding "${encoding}"`)
      }
      if (version.types.has(type)) throw new ModelError(source, `version ${version.number}: type "${type}" is mapped twice`)
      version.types.set(type, encoding)
    }
    model.versions.push(version)
  }
  if (model.versions.length === 0) throw new ModelError(source, 'no <version> is described')

  for (const node of list(top, 'define')) {
    model.defines.push({
      name: attribute(node, 'name', source, '<define>'),
      value: attribute(node, 'value', source, '<define>'),
      doc: prose(node),
    })
  }

  for (const node of list(top, 'message')) {
    const name = attribute(node, 'name', source, '<message>')
    const where = `message ${name}`
    if (!isMessageName(name)) throw new ModelError(source, `${where}: names are upper-case words joined by "-"`)
    const from = attribute(node, 'from', source, where)
    if (from !== 'client' && from !== 'server' && from !== 'both') {
      throw new ModelError(source, `${where}: from must be client, server or both, not "${from}"`)
    }
    const message: MessageModel = {
      name,
      id: integer(attribute(node, 'id', source, where), source, where),
      from,
      doc: prose(node),
      fields: [],
    }
    if (message.id < 1 || message.id > 255) throw new ModelError(source, `${where}: id ${message.id} does not fit in one octet`)
    const twin = model.messages.find((m) => m.id === message.id || m.name === message.name)
    if (twin) throw new ModelError(source, `${where}: duplicate of message ${twin.name} (id ${twin.id})`)

    for (const fieldNode of list(node, 'field')) {
      const field: FieldModel = {
        name: attribute(fieldNode, 'name', source, `${where} <field>`),
        type: attribute(fieldNode, 'type', source, `${where} <field>`),
        doc: prose(fieldNode),
      }
      const fieldWhere = `${where} field ${field.name}`
      if (!/^[a-z][a-z0-9_]*$/.test(field.name)) throw new ModelError(source, `${fieldWhere}: names are lower case`)
      if (message.fields.some((f) => f.name === field.name)) throw new ModelError(source, `${fieldWhere}: duplicate field`)
      const value = optional(fieldNode, 'value')
      if (value !== undefined) field.value = value
      const size = optional(fieldNode, 'size')
      if (size !== undefined) field.size = integer(size, source, fieldWhere)
      for (const version of model.versions) {
        const encoding = encodingOf(version, field, source, fieldWhere)
        if (field.value !== undefined && !['string', 'longstr', 'number-1', 'number-2', 'number-4'].includes(encoding)) {
          throw new ModelError(source, `${fieldWhere}: a constant value needs a string or a number of at most 4 octets`)
        }
        if (field.value === '$version' && !encoding.startsWith('number')) {
          throw new ModelError(source, `${fieldWhere}: "$version" needs a number`)
        }
      }
      message.fields.push(field)
    }
    model.messages.push(message)
  }
  if (model.messages.length === 0) throw new ModelError(source, 'no <message> is described')
  return model
}

/** The wire encoding of a field in one version. */
export function encodingOf(version: VersionModel, field: FieldModel, source = '', where = `field ${field.name}`): Encoding {
  const mapped = version.types.get(field.type)
  if (mapped === undefined) {
    throw new ModelError(source, `${where}: unknown type "${field.type}" in version ${version.number}`)
  }
  if (mapped !== 'number') {
    if (field.size !== undefined) throw new ModelError(source, `${where}: size applies to numbers only`)
    return mapped as Encoding
  }
  if (field.size === undefined || ![1, 2, 4, 8].includes(field.size)) {
    throw new ModelError(source, `${where}: a number needs size 1, 2, 4 or 8`)
  }
  return `number-${field.size}` as Encoding
}

/** Parses and validates a state-machine model against the message model it speaks. */
export function loadMachine(text: string, source: string, protocol: ProtocolModel): MachineModel {
  const top = parseXml(text, source)
  const role = attribute(top, 'role', source, '<class>')
  if (role !== 'server' && role !== 'client') throw new ModelError(source, `role must be server or client, not "${role}"`)
  const machine: MachineModel = {
    source,
    name: attribute(top, 'name', source, '<class>'),
    title: attribute(top, 'title', source, '<class>'),
    role,
    protocol: attribute(top, 'protocol', source, '<class>'),
    states: [],
  }
  const peer = role === 'server' ? 'client' : 'server'
  const byName = new Map(protocol.messages.map((m) => [m.name, m]))

  for (const node of list(top, 'state')) {
    const state: StateModel = { name: attribute(node, 'name', source, '<state>'), doc: prose(node), events: [] }
    const where = `state "${state.name}"`
    if (!isInternalName(state.name)) throw new ModelError(source, `${where}: names are lower-case words`)
    if (machine.states.some((s) => s.name === state.name)) throw new ModelError(source, `${where}: duplicate state`)
    const inherit = optional(node, 'inherit')
    if (inherit !== undefined) state.inherit = inherit

    for (const eventNode of list(node, 'event')) {
      const event: EventModel = { name: attribute(eventNode, 'name', source, `${where} <event>`), actions: [] }
      const eventWhere = `${where} event "${event.name}"`
      if (event.name !== '*') {
        if (isMessageName(event.name)) {
          const message = byName.get(event.name)
          if (!message) throw new ModelError(source, `${eventWhere}: no such message in ${protocol.source}`)
          if (message.from !== peer && message.from !== 'both') {
            throw new ModelError(source, `${eventWhere}: a ${role} never receives ${event.name}`)
          }
        } else if (!isInternalName(event.name)) {
          throw new ModelError(source, `${eventWhere}: events are MESSAGE-NAMES or lower-case words`)
        }
      }
      if (state.events.some((e) => e.name === event.name)) throw new ModelError(source, `${eventWhere}: duplicate event`)
      const next = optional(eventNode, 'next')
      if (next !== undefined) event.next = next

      for (const actionNode of list(eventNode, 'action')) {
        const action: ActionModel = { name: attribute(actionNode, 'name', source, `${eventWhere} <action>`) }
        if (!isInternalName(action.name)) throw new ModelError(source, `${eventWhere}: action "${action.name}" is not lower-case words`)
        const message = optional(actionNode, 'message')
        if (action.name === 'send') {
          if (message === undefined) throw new ModelError(source, `${eventWhere}: "send" needs a message`)
          const sent = byName.get(message)
          if (!sent) throw new ModelError(source, `${eventWhere}: sends unknown message "${message}"`)
          if (sent.from !== role && sent.from !== 'both') throw new ModelError(source, `${eventWhere}: a ${role} never sends ${message}`)
          action.message = message
        } else if (message !== undefined) {
          throw new ModelError(source, `${eventWhere}: only "send" takes a message`)
        }
        event.actions.push(action)
      }
      state.events.push(event)
    }
    machine.states.push(state)
  }

  if (machine.states.length === 0) throw new ModelError(source, 'no <state> is described')
  const names = new Set(machine.states.map((s) => s.name))
  for (const state of machine.states) {
    if (state.inherit !== undefined && !names.has(state.inherit)) {
      throw new ModelError(source, `state "${state.name}" inherits unknown state "${state.inherit}"`)
    }
    for (const event of state.events) {
      if (event.next !== undefined && !names.has(event.next)) {
        throw new ModelError(source, `state "${state.name}" event "${event.name}": next state "${event.next}" does not exist`)
      }
    }
    // A superstate chain must end: a loop would make event look-up run forever.
    const seen = new Set<string>()
    for (let s: StateModel | undefined = state; s; s = machine.states.find((x) => x.name === s!.inherit)) {
      if (seen.has(s.name)) throw new ModelError(source, `state "${state.name}" inherits itself through "${s.name}"`)
      seen.add(s.name)
    }
  }
  return machine
}

/** The events a state answers, its own first, then its superstates' (the generated table is flat). */
export function flatten(machine: MachineModel, state: StateModel): EventModel[] {
  const events = new Map<string, EventModel>()
  for (let s: StateModel | undefined = state; s; s = machine.states.find((x) => x.name === s!.inherit)) {
    for (const event of s.events) if (!events.has(event.name)) events.set(event.name, event)
  }
  return [...events.values()]
}

/** "store client subscription" → "storeClientSubscription"; "OHAI-OK" → "OhaiOk". */
export function camelCase(name: string): string {
  const pascal = pascalCase(name)
  return pascal.charAt(0).toLowerCase() + pascal.slice(1)
}

export function pascalCase(name: string): string {
  return name
    .split(/[\s_-]+/)
    .filter(Boolean)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase())
    .join('')
}

/** "OHAI-OK" → "OHAI_OK"; "chunk size" → "CHUNK_SIZE". */
export function constantCase(name: string): string {
  return name.toUpperCase().replace(/[\s-]+/g, '_')
}
