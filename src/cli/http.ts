/**
 * `--http [HOST:]PORT` of the commands that run (server, client): the flag, the ZPL key
 * beside it, and starting the status endpoint (src/observe).
 *
 * @packageDocumentation
 */
import { InvalidArgumentError, Option } from 'commander'

import { type HttpAddress, parseHttpAddress, type StatusSource, StatusServer, type ZplNode } from '../index.js'
import { CliError, EXIT } from './errors.js'
import type { Output } from './output.js'

/** The `--http` option; `key` is the ZPL key it overrides (`server/http`), if any. */
export function httpOption(key?: string): Option {
  const config = key === undefined ? '' : `; config ${key}`
  return new Option('--http <[host:]port>', `serve /metrics, /api/status and a status page here (a bare port: 127.0.0.1 only${config})`).argParser((value: string) => {
    try {
      return parseHttpAddress(value)
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message)
    }
  })
}

/** The address to serve on: the flag, else the config's key, else none (off by default). */
export function httpAddress(flag: HttpAddress | undefined, config: ZplNode | undefined, key: string, source?: string): HttpAddress | undefined {
  if (flag !== undefined) return flag
  const node = config?.at(key)
  if (node === undefined || node.value === '') return undefined
  try {
    return parseHttpAddress(node.value)
  } catch (error) {
    throw new CliError(`${source === undefined ? '' : `${source}:${node.line}: `}${key}: ${(error as Error).message}`, EXIT.USAGE)
  }
}

/** Starts the status endpoint and says where; a port in use is a runtime failure (exit 1). */
export async function serveHttp(address: HttpAddress, source: StatusSource, output: Output): Promise<StatusServer> {
  const http = await StatusServer.start(address, source).catch((error: unknown) => {
    throw new CliError((error as Error).message, EXIT.FAILURE, { cause: error })
  })
  output.event({ type: 'http', url: http.url }, `status page on ${http.url} (metrics at ${http.url}metrics)`)
  return http
}
