/**
 * The actions of the client's state machine (spec/fmq_client.xml), written by hand against the
 * generated `ClientActions` interface. Actions steer the machine only by raising events; the
 * link (link.ts) carries the state they work on.
 *
 * @packageDocumentation
 */
import { EncodeError } from '../protocol/errors.js'
import {
  MessageId,
  MessageName,
  type Cheezburger,
  type IcanhazOk,
  type Kthxbai,
  type Message,
  type OhaiOk,
  type Orly,
  type Rtfm,
  type Srsly,
} from '../protocol/generated/fmq_msg.js'
import type { ClientActions, ClientSends } from '../protocol/generated/fmq_client_fsm.js'
import { ANONYMOUS, PLAIN, encodePlainResponse } from '../security/sasl.js'
import { computeCache, fitCache } from './cache.js'
import { ClientClosedError, ProtocolError, SubscriptionRefusedError } from './errors.js'
import { backoff } from './options.js'
import type { ServerLink } from './link.js'

/** One instance serves every link; all state lives in the link. */
export class ClientLinkActions implements ClientActions<ServerLink> {
  async prepareGreeting(link: ServerLink): Promise<void> {
    if (link.disposed || link.closing) throw new ClientClosedError()
    link.conversation++
    link.refusal = undefined
    await link.resetConversation()
    link.chooseVersion()
    // Each greeting on a fresh DEALER, so late replies to an older one never reach us.
    if (link.socket === undefined) link.openSocket()
    link.startGreetingTimer()
  }

  signalConnected(link: ServerLink, _message: OhaiOk): void {
    link.clearGreetingTimer()
    link.workingVersion = link.version
    link.failures = 0
    link.announced = true
    // Subscriptions are replayed after every (re)connect and authentication.
    link.unsent = link.owner.subscriptions().filter((path) => !link.refusedPaths.has(path))
    link.startHeartbeat()
    link.owner.publish('connected', { endpoint: link.endpoint, version: link.version })
  }

  getNextSubscription(link: ServerLink): void {
    const next = link.unsent[0]
    if (next === undefined) return
    if (link.prepared?.path === next) {
      link.machine.raise('subscribe')
      return
    }
    if (!link.options.resync) {
      // The cache matters only to a resync (as in the reference): no need to hash anything.
      link.prepared = { path: next, cache: new Map() }
      link.machine.raise('subscribe')
      return
    }
    if (link.preparing === link.conversation) return
    // Hashing runs outside the machine: HUGZ keep being answered while a big inbox is read.
    const conversation = link.conversation
    link.preparing = conversation
    const { inbox, stateDir } = link.owner.paths()
    void computeCache(inbox, stateDir, next)
      .catch((error: unknown) => {
        link.error(error instanceof Error ? error : new Error(String(error)))
        return new Map<string, string>()
      })
      .then((cache) => {
        if (conversation !== link.conversation) return
        link.preparing = undefined
        link.prepared = { path: next, cache }
        void link.post('subscribe', undefined, { conversation })
      })
  }

  prepareSaslResponse(link: ServerLink, message: Orly): void {
    // An ORLY proves the version; the timer restarts to give the server time to check us.
    link.answered = true
    link.workingVersion = link.version
    link.startGreetingTimer()
    const { login, password } = link.options
    const offered = message.mechanisms
    if (login !== undefined && password !== undefined && offered.includes(PLAIN)) {
      try {
        link.yarly = { mechanism: PLAIN, response: encodePlainResponse(login, password) }
      } catch (error) {
        link.deniedReason = error instanceof Error ? error.message : String(error)
        link.machine.raise('no mechanism')
        return
      }
      link.machine.raise('respond')
    } else if (login === undefined && offered.includes(ANONYMOUS)) {
      link.yarly = { mechanism: ANONYMOUS, response: Buffer.alloc(0) }
      link.machine.raise('respond')
    } else {
      link.deniedReason =
        login === undefined
          ? `the server asks for credentials (${offered.join(', ') || 'no mechanism'}) and no login is set`
          : `no usable SASL mechanism (the server offers ${offered.join(', ') || 'none'})`
      link.machine.raise('no mechanism')
    }
  }

  signalAccessDenied(link: ServerLink, message: undefined | Srsly): void {
    const reason = message === undefined ? link.deniedReason : message.reason
    link.announced = false
    link.refusal = reason
    // Stopped for good: no retry storm against a server that said no.
    link.halt()
    link.owner.publish('access-denied', { endpoint: link.endpoint, reason })
    link.owner.linkStopped(link, reason)
  }

  tryOlderVersion(link: ServerLink, _message: Rtfm | undefined): void {
    link.halt()
    const versions = link.options.versions
    if (link.answered) {
      // The version works (ORLY came back): same version again, after a pause.
      link.scheduleConnect(link.nextDelay())
      return
    }
    // Silence or RTFM: v1 and v2 peers ignore each other's OHAI, so try the next version.
    link.workingVersion = undefined
    const at = versions.indexOf(link.version)
    link.versionIndex = (at + 1) % versions.length
    link.failures++
    // The first round through the versions goes at once; after that, back off.
    const delay = link.failures < versions.length ? 0 : backoff(link.options.reconnectDelay, link.failures - versions.length + 1)
    link.scheduleConnect(delay)
  }

  formatSubscription(link: ServerLink): void {
    link.icanhaz = undefined
    const next = link.unsent[0]
    const prepared = link.prepared
    if (next === undefined || prepared?.path !== next) return
    link.unsent.shift()
    link.prepared = undefined
    link.sent.add(next)
    link.icanhaz = {
      id: MessageId.ICANHAZ,
      path: next,
      options: link.options.resync ? new Map([['RESYNC', '1']]) : new Map(),
      // Version 1 carries at most 255 entries of 255 octets: what does not fit is just sent again.
      cache: fitCache(prepared.cache, link.version),
    }
  }

  signalSubscribed(link: ServerLink, _message: IcanhazOk): void {
    // The server answers subscriptions in the order they were made.
    const path = link.awaitingAnswer.shift()
    if (path === undefined) return
    link.creditOpen = true
    link.owner.publish('subscribed', { endpoint: link.endpoint, path })
    link.owner.subscriptionAccepted(path, link.endpoint)
  }

  refillCredit(link: ServerLink, _message: IcanhazOk | Cheezburger): void {
    if (!link.creditOpen) return
    const { creditWindow, creditSlice } = link.options
    // Top up once a slice of the window is used, never beyond the window.
    if (link.credit <= creditWindow - creditSlice) {
      link.nomCredit = creditWindow - link.credit
      link.credit = creditWindow
      link.machine.raise('credit low')
    }
  }

  signalSubscriptionRefused(link: ServerLink, message: Srsly): void {
    const path = link.awaitingAnswer.shift()
    if (path === undefined) {
      link.error(new ProtocolError(link.endpoint, 'SRSLY', message.reason))
      return
    }
    link.refusedPaths.add(path)
    link.owner.subscriptionRefused(new SubscriptionRefusedError(path, link.endpoint, message.reason))
  }

  async storeFileData(link: ServerLink, message: Cheezburger): Promise<void> {
    const creditLeft = link.creditOpen ? link.credit : 0
    link.credit = Math.max(0, link.credit - message.chunk.length)
    link.lastSequence = message.sequence
    await link.writer.store(message, creditLeft)
  }

  signalDisconnected(link: ServerLink, message: undefined | Kthxbai): void {
    if (!link.announced) return
    link.announced = false
    const reason = link.closing ? 'closed' : message !== undefined ? 'server-closed' : 'expired'
    link.owner.publish('disconnected', { endpoint: link.endpoint, reason })
  }

  reconnect(link: ServerLink, _message: undefined | Kthxbai | Rtfm | Message): void {
    if (link.announced) {
      link.announced = false
      link.owner.publish('disconnected', { endpoint: link.endpoint, reason: 'protocol-error' })
    }
    link.halt()
    link.scheduleConnect(link.nextDelay())
  }

  signalProtocolError(link: ServerLink, message: Rtfm | Message): void {
    const reason = message.id === MessageId.RTFM ? message.reason : ''
    link.error(new ProtocolError(link.endpoint, MessageName[message.id], reason))
  }

  send(link: ServerLink, name: ClientSends): void {
    switch (name) {
      case 'OHAI':
        link.send({ id: MessageId.OHAI })
        return
      case 'YARLY': {
        const yarly = link.yarly
        link.yarly = undefined // it holds a password: do not keep it
        if (yarly !== undefined) link.send({ id: MessageId.YARLY, ...yarly })
        return
      }
      case 'ICANHAZ': {
        const icanhaz = link.icanhaz
        link.icanhaz = undefined
        if (icanhaz === undefined) return
        try {
          if (link.send(icanhaz)) link.awaitingAnswer.push(icanhaz.path)
        } catch (error) {
          if (!(error instanceof EncodeError)) throw error
          // E.g. a path over 255 octets in version 1: this server can never be asked for it.
          link.refusedPaths.add(icanhaz.path)
          link.owner.subscriptionRefused(
            new SubscriptionRefusedError(icanhaz.path, link.endpoint, `cannot be sent in version ${link.version}: ${error.message}`, {
              cause: error,
            }),
          )
        }
        return
      }
      case 'NOM':
        link.send({ id: MessageId.NOM, credit: BigInt(link.nomCredit), sequence: link.lastSequence })
        return
      case 'HUGZ':
        link.send({ id: MessageId.HUGZ })
        return
      case 'HUGZ-OK':
        link.send({ id: MessageId.HUGZ_OK })
        return
      case 'KTHXBAI':
        link.send({ id: MessageId.KTHXBAI })
        return
    }
  }
}
