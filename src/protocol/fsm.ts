/**
 * The engine that runs a generated state machine (src/protocol/generated/*_fsm.ts)
 * for one peer. Events are handled one at a time, in order; an event raised by an
 * action is handled right after the actions of the current transition, before any
 * queued event, as in the Guide's Libero machines.
 */
import type { Message } from './generated/fmq_msg.js'

/** One step of a transition: calls an action of the hand-written actions object. */
export type Step<A> = (actions: A, context: any, message: Message | undefined) => void | Promise<void>

export interface Transition<A, S extends string> {
  readonly next?: S
  readonly actions: readonly Step<A>[]
}

/** A generated table: for each state, the events it answers (superstates already flattened). */
export interface MachineTable<A, S extends string, E extends string> {
  readonly initial: S
  readonly states: Readonly<Record<S, Readonly<Partial<Record<E | '*', Transition<A, S>>>>>>
}

export interface MachineHooks<S extends string, E extends string> {
  /** An internal event the current state does not name: ignored, reported here. */
  unhandled?(state: S, event: E): void
  /** An action threw or rejected: the rest of the transition is skipped, the machine goes on. */
  error?(error: unknown, state: S, event: E): void
  /** Every transition, for tracing. */
  trace?(from: S, event: E, to: S): void
}

/** Protocol messages are the upper-case events; only they match the "*" wildcard. */
const isMessageEvent = (event: string): boolean => event.charCodeAt(0) >= 65 && event.charCodeAt(0) <= 90

/**
 * One peer's machine.
 *
 * @example
 * ```ts
 * const machine = new Machine(serverTable, actions, client)
 * await machine.handle('OHAI', message)   // resolves once the event and those it raised are done
 * ```
 */
export class Machine<A, S extends string, E extends string, C = unknown> {
  state: S
  private raised: E | undefined
  private tail: Promise<void> = Promise.resolve()

  constructor(
    private readonly table: MachineTable<A, S, E>,
    private readonly actions: A,
    readonly context: C,
    private readonly hooks: MachineHooks<S, E> = {},
  ) {
    this.state = table.initial
  }

  /** Called by an action: the event to handle once the current transition's actions are done. */
  raise(event: E): void {
    this.raised = event
  }

  /** Queues an event (with the message that is the event, for protocol messages). */
  handle(event: E, message?: Message): Promise<void> {
    this.tail = this.tail.then(() => this.run(event, message))
    return this.tail
  }

  private async run(first: E, message: Message | undefined): Promise<void> {
    let event: E | undefined = first
    while (event !== undefined) {
      const events = this.table.states[this.state]
      const transition = events[event] ?? (isMessageEvent(event) ? events['*'] : undefined)
      if (transition === undefined) {
        this.hooks.unhandled?.(this.state, event)
        return
      }
      this.raised = undefined
      try {
        for (const step of transition.actions) {
          const pending = step(this.actions, this.context, message)
          if (pending) await pending
        }
      } catch (error) {
        this.hooks.error?.(error, this.state, event)
        this.raised = undefined
      }
      const from = this.state
      if (transition.next !== undefined) this.state = transition.next
      this.hooks.trace?.(from, event, this.state)
      event = this.raised
      message = undefined
    }
  }
}
