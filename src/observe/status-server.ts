/**
 * The read-only HTTP endpoint of a node (`--http HOST:PORT`): Prometheus metrics at
 * `/metrics`, the status as JSON at `/api/status`, and a live status page at `/`.
 *
 * @packageDocumentation
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'

import { STATUS_PAGE } from './page.js'

/** What a node shows: its status object and its metrics. */
export interface StatusSource<Status extends object = object> {
  /** The status as `/api/status` serves it: plain JSON, never a secret. */
  status(): Status
  /** The metrics `/metrics` serves. */
  readonly registry: Registry
}

/** Where to listen: a host and a port. */
export interface HttpAddress {
  readonly host: string
  readonly port: number
}

/** `--http` was not `PORT` or `HOST:PORT`. */
export class InvalidHttpAddressError extends RangeError {
  override readonly name = 'InvalidHttpAddressError'
  readonly code = 'ERR_FMQ_HTTP_ADDRESS'

  constructor(readonly address: string) {
    super(`invalid HTTP address '${address}': expected PORT or HOST:PORT (e.g. 8080, 127.0.0.1:8080, [::1]:8080)`)
  }
}

/** The HTTP endpoint could not listen (the port is in use, the address is not this host's...). */
export class HttpListenError extends Error {
  override readonly name = 'HttpListenError'
  readonly code = 'ERR_FMQ_HTTP_LISTEN'

  constructor(
    readonly address: HttpAddress,
    options: ErrorOptions,
  ) {
    const code = (options.cause as { code?: unknown } | undefined)?.code
    const why = code === 'EADDRINUSE' ? 'address already in use' : code === 'EADDRNOTAVAIL' ? 'address not available on this host' : code === 'EACCES' ? 'permission denied' : String((options.cause as Error | undefined)?.message ?? options.cause)
    super(`cannot serve HTTP on ${formatAddress(address)}: ${why}`, options)
  }
}

/**
 * Parses `--http`: a bare port binds the loopback interface only (127.0.0.1), so the status
 * is never exposed by accident; `HOST:PORT` (or `[IPv6]:PORT`) binds where it says.
 *
 * @example
 * ```ts
 * parseHttpAddress('8080')         // { host: '127.0.0.1', port: 8080 }
 * parseHttpAddress('0.0.0.0:8080') // { host: '0.0.0.0', port: 8080 }
 * ```
 */
export function parseHttpAddress(value: string): HttpAddress {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):)?([0-9]{1,5})$/.exec(value.trim())
  const port = match === null ? NaN : Number(match[2])
  if (match === null || port > 65535) throw new InvalidHttpAddressError(value)
  const host = match[1] === undefined ? '127.0.0.1' : match[1].replace(/^\[(.*)\]$/, '$1')
  return { host, port }
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddress(address: HttpAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`
}

/**
 * The HTTP endpoint of one node. GET only; anything else is 405.
 *
 * @example
 * ```ts
 * const http = await StatusServer.start(parseHttpAddress('8080'), observeServer(server))
 * console.log(http.url) // http://127.0.0.1:8080/
 * await http.close()
 * ```
 */
export class StatusServer {
  private constructor(
    private readonly http: HttpServer,
    /** The address actually bound (port 0 becomes the one chosen). */
    readonly address: HttpAddress,
  ) {}

  /** Listens; rejects with {@link HttpListenError} when it cannot. */
  static async start(address: HttpAddress, source: StatusSource): Promise<StatusServer> {
    const http = createServer((request, response) => {
      handle(source, request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        response.end(`internal error: ${(error as Error).message}\n`)
      })
    })
    await new Promise<void>((resolve, reject) => {
      http.once('error', (error) => reject(new HttpListenError(address, { cause: error })))
      http.listen(address.port, address.host, () => resolve())
    })
    const bound = http.address() as AddressInfo
    return new StatusServer(http, { host: address.host, port: bound.port })
  }

  /** The page's URL. */
  get url(): string {
    return `http://${formatAddress(this.address)}/`
  }

  /** Stops listening and ends open connections (a page's keep-alive must not hold the process). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve())
      this.http.closeAllConnections()
    })
  }
}

async function handle(source: StatusSource, request: IncomingMessage, response: ServerResponse): Promise<void> {
  // Read-only: nothing here changes the node.
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
    response.end('read-only: GET only\n')
    return
  }
  const path = new URL(request.url ?? '/', 'http://localhost').pathname
  const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }
  switch (path) {
    case '/metrics': {
      const text = await source.registry.metrics()
      response.writeHead(200, { ...headers, 'content-type': source.registry.contentType })
      response.end(text)
      return
    }
    case '/api/status':
      response.writeHead(200, { ...headers, 'content-type': 'application/json; charset=utf-8' })
      response.end(JSON.stringify(source.status(), null, 1))
      return
    case '/':
      response.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'" })
      response.end(STATUS_PAGE)
      return
    default:
      response.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' })
      response.end('not found: try /, /api/status or /metrics\n')
  }
}
