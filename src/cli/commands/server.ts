/**
 * `fmq server`: publish folders to FILEMQ clients.
 *
 * @packageDocumentation
 */
import { Command } from 'commander'

import { loadServerKeys, observeServer, Server, SettingsError, type HttpAddress, type StatusServer } from '../../index.js'
import { resolveServerSettings } from '../../internal.js'
import { endpointError, EXIT_HELP } from '../errors.js'
import { httpAddress, httpOption, serveHttp } from '../http.js'
import { announceListening, Output, outputOptions, type OutputFlags, SkipReport } from '../output.js'
import { checkDirectory, closeOnSignals, collect, loadConfig, RESCAN_HELP, seconds, withOutputFlags } from './shared.js'

interface ServerCommandFlags extends OutputFlags {
  config?: string
  bind?: string[]
  publish?: string[]
  anonymous?: boolean
  state?: string
  exclude?: string[]
  include?: string[]
  curveKeys?: string
  clientKeys?: string
  followOutside?: boolean
  rescan?: number
  poll?: number
  http?: HttpAddress
}

const EXAMPLES = `
Examples:
  fmq server -p ./photos=/photos                  publish ./photos as /photos on tcp://*:5670
  fmq server -p ./a -p ./logs=/logs -b tcp://127.0.0.1:6000
  fmq server -c config/server-plain.cfg           publish, bind and accounts from a ZPL config
  fmq server -c config/server-plain.cfg --anonymous --bind tcp://*:5671
  fmq server -c config/server-plain.cfg --http 9100   a status page, /api/status and /metrics on 127.0.0.1:9100
  fmq keygen keys/server && fmq server -p ./photos --curve-keys keys/server
                                                  encrypted (CURVE); clients need --server-key keys/server

Flags override the config: a --bind or --publish replaces the config's bind or publish sections.
What cannot be published (an unreadable file or folder, a FIFO, socket or device, a name that
is not UTF-8) is skipped, each named once on stderr as "fmq: skipped PATH: REASON" (PATH
relative to its folder); clients are told how many, and fmq client --once then exits 23.
Accounts for PLAIN logins live in the config (security/plain/account); see fmq passwd.
CURVE: --curve-keys or security/curve/keys (config/server-curve.cfg) names the key pair of
fmq keygen (NAME or NAME_secret; the secret file must be mode 600); every client must then
give the public key (fmq client --server-key).
${RESCAN_HELP}
${EXIT_HELP}`

export function serverCommand(): Command {
  return withOutputFlags(
    new Command('server')
      .description('publish folders to FILEMQ clients')
      .option('-c, --config <file>', 'ZPL config: server, publish, bind and security sections')
      .option('-b, --bind <endpoint>', 'endpoint to serve on (default tcp://*:5670); repeatable', collect)
      .option('-p, --publish <dir[=/vpath]>', 'publish a folder, under / unless a virtual path follows; repeatable', collect)
      .option('--anonymous', 'let clients in without a login, whatever the config says')
      .option('--state <dir>', 'state directory for the file index (default: <first folder>/.fmq)')
      .option('--exclude <glob>', 'do not publish matching files (rsync-like: no "/" matches any depth); repeatable', collect)
      .option('--include <glob>', 'publish matching files even when excluded; repeatable', collect)
      .option('--follow-outside', 'publish what symbolic and .ln links leaving a published folder point to (default: not published)')
      .option('--rescan <seconds>', 'rescan the published folders for what the watcher missed this often (default 3600; config server/rescan)', seconds)
      .option('--poll <seconds>', 'no inotify: rescan the published folders this often instead (NFS, SMB, FUSE; config server/poll)', seconds)
      .option('--curve-keys <file>', 'encrypt with CURVE, with this key pair of fmq keygen (NAME or NAME_secret)')
      .option('--client-keys <dir>', 'with CURVE, let in only clients whose public key file (fmq keygen) is in this folder')
      .addOption(httpOption('server/http')),
  )
    .addHelpText('after', EXAMPLES)
    .action(async (flags: ServerCommandFlags) => {
      const output = new Output(outputOptions(flags))
      const config = await loadConfig(flags.config)
      const settings = resolveServerSettings(config, flags, flags.config)
      for (const warning of settings.warnings) output.warn(String(warning))
      for (const mount of settings.publish) await checkDirectory(mount.location, 'publish directory', true)
      if (settings.clientKeys !== undefined && settings.curveKeys === undefined) throw new SettingsError('--client-keys needs CURVE: give --curve-keys (or security/curve/keys) too')
      const { curve, curveClients } = await loadServerKeys(settings)
      const http = httpAddress(flags.http, config, 'server/http', flags.config)

      const server = new Server({
        ...settings.options,
        ...(curve === undefined ? {} : { curve }),
        ...(curveClients === undefined ? {} : { curveClients }),
        ...(flags.exclude === undefined ? {} : { exclude: flags.exclude }),
        ...(flags.include === undefined ? {} : { include: flags.include }),
      })
      server.on('error', (error) => output.error(error.message))
      // Each entry of a published folder that cannot be published: one line, once (clients hear the count).
      const skips = new SkipReport(output)
      server.on('skipped', ({ path, reason, code, location, virtualPath }) => skips.add({ path, reason, code, location, virtualPath }))
      server.on('log', (level, text) => (level === 'warn' ? output.warn(text) : output.event({ type: 'log', text }, text, 2)))
      server.on('reloaded', (what, text) => output.event({ type: 'reloaded', what, text }, text))
      const endpoints: string[] = []
      let status: StatusServer | undefined
      try {
        // Edits to the config's accounts and to the client keys are taken up as they happen, the flags still laid over them.
        if (flags.config !== undefined || settings.clientKeys !== undefined) {
          await server.watchAccess({
            ...(flags.config === undefined ? {} : { config: flags.config }),
            ...(settings.clientKeys === undefined ? {} : { clientKeys: settings.clientKeys }),
            read: (root, source) => resolveServerSettings(root, flags, source),
          })
        }
        for (const mount of settings.publish) await server.publish(mount.location, mount.virtualPath)
        for (const endpoint of settings.bind) {
          endpoints.push(await server.bind(endpoint).catch((error: unknown) => Promise.reject(endpointError('bind', endpoint, error))))
        }
        if (http !== undefined) status = await serveHttp(http, observeServer(server), output)
      } catch (error) {
        await server.close()
        throw error
      }
      closeOnSignals(output, async () => {
        await status?.close()
        await server.close()
      })
      if (settings.echo !== undefined && settings.echo !== '') output.event({ type: 'echo', text: settings.echo }, settings.echo)
      if (curve !== undefined) {
        output.event(
          { type: 'curve', publicKey: curve.publicKey, file: curve.file, ...(curveClients === undefined ? {} : { clients: curveClients.length }) },
          `CURVE encryption on; clients need the public key ${curve.publicKey}${curveClients === undefined ? '' : `; only the ${curveClients.length} client keys of ${settings.clientKeys} get in`}`,
        )
      }
      announceListening(output, endpoints)
    })
}
