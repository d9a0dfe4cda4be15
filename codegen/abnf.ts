/**
 * Keeps spec/fmq_msg.abnf and spec/fmq_msg.xml telling the same story: every message
 * of every version has its rule, with the model's id and fields in order, each field
 * resolving to the model's encoding; every rule of that shape is a message of the
 * model; the conversation names only messages the model lets that side send.
 */
import { type ProtocolModel, ModelError, encodingOf } from './model.js'

export interface AbnfRule {
  name: string
  elements: string[]
  line: number
}

/** Rules of an ABNF text: comments dropped, continuation lines joined, names lower-cased (ABNF names are case-blind). */
export function parseAbnf(text: string, source: string): Map<string, AbnfRule> {
  const rules = new Map<string, AbnfRule>()
  let current: AbnfRule | undefined
  text.split(/\r\n|\r|\n/).forEach((raw, index) => {
    const line = raw.replace(/;.*$/, '').trimEnd()
    if (line.trim() === '') return
    if (/^\s/.test(line)) {
      if (!current) throw new ModelError(source, `line ${index + 1}: continuation without a rule`)
      current.elements.push(...line.trim().split(/\s+/))
      return
    }
    const match = /^([A-Za-z][A-Za-z0-9-]*)\s*=\s*(.*)$/.exec(line)
    if (!match) throw new ModelError(source, `line ${index + 1}: expected "name = elements"`)
    const name = match[1]!.toLowerCase()
    if (rules.has(name)) throw new ModelError(source, `line ${index + 1}: rule "${name}" is defined twice`)
    current = { name, elements: match[2]!.trim().split(/\s+/).filter(Boolean), line: index + 1 }
    rules.set(name, current)
  })
  return rules
}

const ruleName = (name: string): string => name.toLowerCase().replace(/_/g, '-')

/** Throws a ModelError naming the first disagreement between grammar and model. */
export function checkAbnf(model: ProtocolModel, text: string, source: string): void {
  const rules = parseAbnf(text, source)
  const fail = (rule: AbnfRule | undefined, message: string): never => {
    throw new ModelError(source, `${rule ? `line ${rule.line}: ` : ''}${message} (model: ${model.source})`)
  }
  const expected = new Set<string>()

  for (const version of model.versions) {
    for (const message of model.messages) {
      const name = `${ruleName(message.name)}-v${version.number}`
      expected.add(name)
      const rule = rules.get(name) ?? fail(undefined, `no rule "${name}" for ${message.name} in version ${version.number}`)
      const [signature, id, ...fields] = rule.elements
      if (signature !== 'signature') fail(rule, `${name} must start with "signature"`)
      if (id !== `%d${message.id}`) fail(rule, `${name} has id ${id ?? 'nothing'}, the model says %d${message.id}`)
      const names = message.fields.map((f) => ruleName(f.name))
      const given = fields.map((f) => f.replace(new RegExp(`-v${version.number}$`), ''))
      if (given.join(' ') !== names.join(' ')) {
        fail(rule, `${name} has fields (${given.join(' ')}), the model says (${names.join(' ')})`)
      }
      message.fields.forEach((field, index) => {
        const element = fields[index]!
        const fieldRule = rules.get(element.toLowerCase()) ?? fail(rule, `${name}: field "${element}" has no rule`)
        const encoding = encodingOf(version, field, model.source)
        if (fieldRule.elements[0] !== encoding) {
          fail(fieldRule, `${element} is "${fieldRule.elements[0]}" but ${message.name}.${field.name} is ${encoding} in version ${version.number}`)
        }
      })
    }
  }

  // A message-shaped rule the model does not know is drift too.
  for (const rule of rules.values()) {
    if (/-v\d+$/.test(rule.name) && rule.elements[0] === 'signature' && !expected.has(rule.name)) {
      fail(rule, `${rule.name} is not a message of any version of the model`)
    }
  }

  for (const rule of rules.values()) {
    for (const element of rule.elements) {
      const said = /^[(]*([CS]):([A-Z][A-Z0-9-]*)/.exec(element)
      if (!said) continue
      const message = model.messages.find((m) => m.name === said[2])
      if (!message) fail(rule, `${said[2]} is not a message of the model`)
      const side = said[1] === 'C' ? 'client' : 'server'
      if (message!.from !== side && message!.from !== 'both') fail(rule, `${said[2]} is sent by the ${message!.from}, not the ${side}`)
    }
  }
}
