/**
 * `fmq relay`: mirror upstream servers into an inbox and serve that inbox downstream.
 *
 * @packageDocumentation
 */
import { Command, Option } from 'commander'

import { loadCurveKeyPair, observeRelay, readCurvePublicKey, Relay, type HttpAddress, type RelayOptions } from '../../index.js'
import { checkEndpoint } from '../../internal.js'
import { CliError, endpointError, EXIT, EXIT_HELP } from '../errors.js'
import { announceListening, ClientView, Output, outputOptions, type OutputFlags } from '../output.js'
import { httpOption, serveHttp } from '../http.js'
import { closeOnSignals, collect, readPasswordFile, withOutputFlags } from './shared.js'

interface RelayCommandFlags extends OutputFlags {
  config?: string
  upstream?: string[]
  subscribe?: string[]
  inbox?: string
  bind?: string[]
  curveKeys?: string
  serverKey?: string
  login?: string
  passwordFile?: string
  http?: HttpAddress
}

const EXAMPLES = `
Examples:
  fmq relay -u tcp://origin:5670 -i ./mirror -b tcp://*:5671
  fmq relay -c config/relay.cfg
  fmq relay -u tcp://origin:5670 -i ./mirror -b tcp://*:5671 --login reader --password-file ~/.fmq-password
  fmq relay -u tcp://origin:5670 --server-key keys/origin -i ./mirror -b tcp://*:5671 --curve-keys keys/relay
                                                  CURVE both ways: origin's public key, the relay's own pair
${EXIT_HELP}`

export function relayCommand(): Command {
  return withOutputFlags(
    new Command('relay')
      .description('mirror upstream servers into an inbox and serve that inbox to clients downstream')
      .option('-c, --config <file>', 'ZPL config: client and server sections together')
      .option('-u, --upstream <endpoint>', 'upstream server; repeatable', collect)
      .option('-s, --subscribe <path>', 'virtual path to mirror (default /); repeatable', collect)
      .option('-i, --inbox <dir>', 'folder received files go into, and that is served')
      .option('-b, --bind <endpoint>', 'endpoint to serve on; repeatable', collect)
      .option('--curve-keys <file>', 'downstream: encrypt with CURVE, with this key pair of fmq keygen')
      .option('--server-key <key|file>', "upstream: the servers' CURVE public key, or its key file")
      .addOption(new Option('--login <name>', 'upstream: SASL PLAIN login').env('FMQ_LOGIN'))
      .option('--password-file <file>', 'upstream: file whose first line is the password (else FMQ_PASSWORD)')
      .addOption(httpOption()),
  )
    .addHelpText('after', EXAMPLES)
    .action(async (flags: RelayCommandFlags) => {
      const output = new Output(outputOptions(flags))
      for (const endpoint of flags.upstream ?? []) checkEndpoint(endpoint, 'connect')
      for (const endpoint of flags.bind ?? []) checkEndpoint(endpoint, 'bind')
      const password = flags.passwordFile !== undefined ? await readPasswordFile(flags.passwordFile) : process.env.FMQ_PASSWORD || undefined
      if (flags.login !== undefined && password === undefined) throw new CliError(`no password for login "${flags.login}": give --password-file FILE or set FMQ_PASSWORD`, EXIT.USAGE)
      if (flags.login === undefined && flags.passwordFile !== undefined) throw new CliError('a password needs a login: give --login NAME', EXIT.USAGE)
      const login = flags.login === undefined || password === undefined ? {} : { login: flags.login, password }
      const overrides: Partial<RelayOptions> = {
        ...(flags.upstream ? { upstream: flags.upstream } : {}),
        ...(flags.subscribe ? { paths: flags.subscribe } : {}),
        ...(flags.bind ? { bind: flags.bind } : {}),
        ...(flags.inbox === undefined ? {} : { inbox: flags.inbox }),
        // One writer per inbox: a second relay (or client) on it is refused, naming the first.
        lockAs: 'fmq relay',
        ...(flags.curveKeys === undefined ? {} : { server: { curve: await loadCurveKeyPair(flags.curveKeys) } }),
        client: { ...login, ...(flags.serverKey === undefined ? {} : { curveServerKey: await readCurvePublicKey(flags.serverKey) }) },
      }
      let relay: Relay
      try {
        if (flags.config !== undefined) {
          relay = await Relay.fromConfig(flags.config, overrides, (warning) => output.warn(String(warning)))
        } else {
          if (flags.inbox === undefined) throw new CliError('no inbox: give --inbox or -c FILE', EXIT.USAGE)
          relay = await Relay.start({ upstream: [], bind: [], ...overrides, inbox: flags.inbox })
        }
      } catch (error) {
        const code = (error as { code?: unknown } | undefined)?.code
        if (code === 'EADDRINUSE' || code === 'EINVAL' || code === 'EPROTONOSUPPORT') throw endpointError('bind', (flags.bind ?? []).join(', ') || 'the configured endpoint', error)
        throw error
      }
      relay.server.on('error', (error) => output.error(error.message))
      const view = new ClientView(output)
      // Refused by every upstream (a wrong login): nothing will ever come; exit as fmq client does.
      const refused = new Set<string>()
      void (async () => {
        for await (const event of relay.client.events()) {
          view.show(event)
          if (event.type !== 'access-denied') continue
          refused.add(event.endpoint)
          if (refused.size < relay.upstream.length) continue
          view.stop()
          await relay.close()
          process.exit(EXIT.ACCESS_DENIED)
        }
      })()
      const status = flags.http === undefined ? undefined : await serveHttp(flags.http, observeRelay(relay), output).catch(async (error: unknown) => {
        await relay.close()
        throw error
      })
      closeOnSignals(output, async () => {
        view.stop()
        await status?.close()
        await relay.close()
      })
      announceListening(output, relay.endpoints)
    })
}
