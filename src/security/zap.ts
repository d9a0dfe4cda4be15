/**
 * The process's ZAP handler (ZeroMQ Authentication Protocol, rfc.zeromq.org spec 27), so a
 * CURVE server can let in only the clients whose public keys it knows, as `authorized_keys`
 * does for ssh.
 *
 * libzmq asks the handler bound at `inproc://zeromq.zap.01` of a socket's context about every
 * CURVE handshake. There is one such address per context, and zeromq.js sockets share one
 * context, so one handler serves every server of the process: each server registers a ZAP
 * domain of its own with the check for it. A handshake for a domain nobody registered (a
 * CURVE server without a list of clients) is allowed, as libzmq would without a handler.
 *
 * @packageDocumentation
 */
import { Reply } from 'zeromq'
import { z85Encode } from './curve.js'
import { received, sent } from '../util/interrupted.js'

/** What a ZAP request says about a connecting peer (spec 27). */
export interface ZapRequest {
  readonly domain: string
  /** The peer's IP address, as libzmq gives it. */
  readonly address: string
  /** `NULL`, `PLAIN` or `CURVE`. */
  readonly mechanism: string
  /** For CURVE: the client's long-term public key, in Z85. */
  readonly publicKey: string | undefined
}

/** Whether a peer may complete its handshake. */
export type ZapCheck = (request: ZapRequest) => boolean

const ENDPOINT = 'inproc://zeromq.zap.01'
const checks = new Map<string, ZapCheck>()
let socket: Reply | undefined
let nextDomain = 1

/**
 * Registers `check` under a new ZAP domain, starting the handler if needed; returns the
 * domain to set as the socket's `zapDomain` (before it binds) and a function that removes it.
 *
 * @example
 * ```ts
 * const allowed = new Set(['rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'])
 * const { domain, release } = await registerZapDomain((peer) => peer.publicKey !== undefined && allowed.has(peer.publicKey))
 * router.zapDomain = domain
 * ```
 */
export async function registerZapDomain(check: ZapCheck): Promise<{ domain: string; release: () => void }> {
  if (socket === undefined) {
    const reply = new Reply({ linger: 0 })
    await reply.bind(ENDPOINT)
    socket = reply
    void serve(reply)
  }
  const domain = `filemq-${process.pid}-${nextDomain++}`
  checks.set(domain, check)
  return {
    domain,
    release: () => {
      checks.delete(domain)
      if (checks.size === 0 && socket !== undefined) {
        socket.close()
        socket = undefined
      }
    },
  }
}

/** Answers each request: 200 when the domain's check allows the peer (or no check is registered), 400 otherwise. */
async function serve(reply: Reply): Promise<void> {
  try {
    for await (const frames of received(reply)) {
      const [version, requestId, domain, address, , mechanism, credential] = frames
      const request: ZapRequest = {
        domain: domain?.toString() ?? '',
        address: address?.toString() ?? '',
        mechanism: mechanism?.toString() ?? '',
        publicKey: mechanism?.toString() === 'CURVE' && credential?.length === 32 ? z85Encode(credential) : undefined,
      }
      const check = checks.get(request.domain)
      let allowed = true
      try {
        allowed = check === undefined || check(request)
      } catch {
        allowed = false
      }
      await sent(() => reply.send([version ?? '1.0', requestId ?? '', allowed ? '200' : '400', allowed ? 'OK' : 'client key not allowed', '', '']))
    }
  } catch {
    // closed
  }
}
