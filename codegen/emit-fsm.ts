/**
 * Emits a state machine from its model: the states, the events, a typed actions
 * interface (one method per action named in the model, so a hand-written actions
 * class that misses one fails the typecheck) and the flat transition table the
 * engine in src/protocol/fsm.ts runs.
 */
import {
  type MachineModel,
  type ProtocolModel,
  camelCase,
  constantCase,
  flatten,
  isMessageName,
  pascalCase,
} from './model.js'
import { banner } from './banner.js'

const quote = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`

/** The in-memory type of the message that triggers an event: a message, or undefined for internal events. */
function payloadOf(event: string): string {
  if (event === '*') return 'Message'
  return isMessageName(event) ? `MessageByName[${quote(event)}]` : 'undefined'
}

export function emitMachine(machine: MachineModel, protocol: ProtocolModel): string {
  const Role = pascalCase(machine.role)
  const peer = machine.role === 'server' ? 'client' : 'server'
  const Actions = `${Role}Actions`
  const Event = `${Role}Event`
  const State = `${Role}State`

  // What the machine can receive, what it sends, and which events each action runs on.
  const received = protocol.messages.filter((m) => m.from === peer || m.from === 'both').map((m) => m.name)
  const internal = new Set<string>()
  const sent = new Set<string>()
  const triggers = new Map<string, Set<string>>()
  const where = new Map<string, Set<string>>()
  for (const state of machine.states) {
    for (const event of state.events) {
      if (event.name !== '*' && !isMessageName(event.name)) internal.add(event.name)
      for (const action of event.actions) {
        if (action.name === 'send') {
          sent.add(action.message!)
          continue
        }
        if (!triggers.has(action.name)) triggers.set(action.name, new Set())
        if (!where.has(action.name)) where.set(action.name, new Set())
        triggers.get(action.name)!.add(payloadOf(event.name))
        where.get(action.name)!.add(`${event.name} in ${state.name}`)
      }
    }
  }

  let out = banner(machine.source)
  out += `/**\n * ${machine.title}: states, events, the actions interface and the transition table.\n`
  out += ` * The engine is src/protocol/fsm.ts; the actions are written by hand in src/${machine.role}/.\n */\n`
  out += `import type { MachineTable } from '../fsm.js'\n`
  out += `import type { Message, MessageByName } from './fmq_msg.js'\n\n`

  out += `/** States of the ${machine.role}'s machine. */\nexport const ${State} = {\n`
  for (const state of machine.states) out += `  ${constantCase(state.name)}: ${quote(state.name)},\n`
  out += `} as const\nexport type ${State} = (typeof ${State})[keyof typeof ${State}]\n\n`

  out += `/** Protocol messages the ${machine.role} receives from its ${peer}. */\n`
  out += `export type ${Role}MessageEvent = ${received.map(quote).join(' | ')}\n`
  out += `/** Internal events: raised by the ${machine.role}'s own loop or by an action. */\n`
  out += `export type ${Role}InternalEvent = ${[...internal].map(quote).join(' | ')}\n`
  out += `export type ${Event} = ${Role}MessageEvent | ${Role}InternalEvent\n`
  out += `/** Messages the ${machine.role} sends with "send X". */\n`
  out += `export type ${Role}Sends = ${[...sent].map(quote).join(' | ')}\n\n`

  out += `/**\n * The actions of the ${machine.role}'s machine, one method per action of ${machine.source}.\n`
  out += ` * An action steers the machine only by raising an event; the second argument is the\n`
  out += ` * message that triggered the event (undefined for internal events).\n */\n`
  out += `export interface ${Actions}<C> {\n`
  for (const [action, payloads] of triggers) {
    out += `  /** "${action}": on ${[...where.get(action)!].join('; ')}. */\n`
    out += `  ${camelCase(action)}(${peer}: C, message: ${[...payloads].join(' | ')}): void | Promise<void>\n`
  }
  out += `  /** "send X": encodes and sends message X, whose fields earlier actions have set. */\n`
  out += `  send(${peer}: C, name: ${Role}Sends): void | Promise<void>\n}\n\n`

  out += `/** The transition table, with superstates flattened: state → event → actions and next state. */\n`
  out += `export const ${camelCase(machine.role)}Table: MachineTable<${Actions}<any>, ${State}, ${Event}> = {\n`
  out += `  initial: ${quote(machine.states[0]!.name)},\n  states: {\n`
  for (const state of machine.states) {
    out += `    ${quote(state.name)}: {\n`
    for (const event of flatten(machine, state)) {
      const key = event.name === '*' ? `'*'` : quote(event.name)
      const steps = event.actions.map((action) =>
        action.name === 'send'
          ? `(a, c) => a.send(c, ${quote(action.message!)})`
          : `(a, c, m) => a.${camelCase(action.name)}(c, m as ${payloadOf(event.name)})`,
      )
      const next = event.next ? `next: ${quote(event.next)}, ` : ''
      out += `      ${key}: { ${next}actions: [${steps.join(', ')}] },\n`
    }
    out += `    },\n`
  }
  out += `  },\n}\n`
  return out
}
