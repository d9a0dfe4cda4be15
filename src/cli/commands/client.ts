/**
 * `fmq client`: mirror virtual paths of FILEMQ servers into an inbox.
 *
 * @packageDocumentation
 */
import { stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { Command, InvalidArgumentError, Option } from 'commander'

import {
  AccessRefusedError,
  Client,
  ClientClosedError,
  CurveHandshakeError,
  DryRunUnsupportedError,
  loadCurveKeyPair,
  lockFolder,
  observeClient,
  readCurvePublicKey,
  SubscriptionRefusedError,
  type HttpAddress,
  type StatusServer,
} from '../../index.js'
import { resolveClientSettings } from '../../internal.js'
import { CliError, endpointError, EXIT, EXIT_HELP, fail } from '../errors.js'
import { ClientView, Output, outputOptions, type OutputFlags } from '../output.js'
import { httpAddress, httpOption, serveHttp } from '../http.js'
import { checkDirectory, closeOnSignals, collect, hook, loadConfig, rate, readPasswordFile, withOutputFlags } from './shared.js'

interface ClientCommandFlags extends OutputFlags {
  config?: string
  connect?: string[]
  subscribe?: string[]
  inbox?: string
  resync?: boolean
  mirror?: boolean
  state?: string
  login?: string
  passwordFile?: string
  connectTimeout?: number
  once?: boolean
  dryRun?: boolean
  delete?: boolean
  wholeFile?: boolean
  bwlimit?: number
  onSynced?: string
  serverKey?: string
  curveKeys?: string
  http?: HttpAddress
}

const EXAMPLES = `
Examples:
  fmq client -C tcp://host:5670 -s /photos -i ./inbox
  fmq client -C tcp://host:5670 -i ./inbox --resync --mirror --once     an exact copy, then exit (23: partial)
  fmq client -C tcp://host:5670 -i ./inbox --mirror -n                  a dry run: what that would copy, update, delete
  fmq client -C tcp://host:5670 -i ./inbox --login reader --password-file ~/.fmq-password
  FMQ_PASSWORD=secret fmq client -c config/client.cfg --login reader
  fmq client -c config/client.cfg --json | jq .
  fmq client -C tcp://host:5670 -i ./inbox --server-key keys/server    encrypted (CURVE), the server's public key file

Flags override the config (config/client.cfg shows its keys); a --connect or --subscribe
replaces the config's list. The password comes from --password-file (its first line),
else FMQ_PASSWORD, else the config. Without --once the client keeps running, reconnecting
as needed, until Ctrl-C; partial files are kept and resumed by the next run.
${EXIT_HELP}`

/** Codes of a connect failure that are the endpoint's fault rather than the inbox's. */
const ENDPOINT_FAILURES = new Set(['EINVAL', 'EPROTONOSUPPORT', 'ENODEV', 'EADDRNOTAVAIL'])

function milliseconds(value: string): number {
  const parsed = Number(value)
  if (!/^[0-9]+$/.test(value) || parsed <= 0) throw new InvalidArgumentError('expected a positive number of milliseconds')
  return parsed
}

/** The inbox may not exist yet, but the folder it goes in must. */
async function checkInbox(inbox: string): Promise<void> {
  const info = await stat(inbox).catch(() => undefined)
  if (info !== undefined) {
    if (!info.isDirectory()) throw new CliError(`inbox ${inbox} is not a directory`, EXIT.USAGE)
    return
  }
  await checkDirectory(dirname(resolve(inbox)), `inbox parent directory (of ${inbox})`)
}

export function clientCommand(): Command {
  return withOutputFlags(
    new Command('client')
      .description('mirror virtual paths of FILEMQ servers into an inbox')
      .option('-c, --config <file>', 'ZPL config: client, connect, subscribe and security sections')
      .option('-C, --connect <endpoint>', 'server to mirror from, e.g. tcp://host:5670; repeatable', collect)
      .option('-s, --subscribe <path>', 'virtual path to mirror (default /); repeatable', collect)
      .option('-i, --inbox <dir>', 'folder received files go into (created; its parent must exist)')
      .option('--resync', 'on connect, get every file the inbox lacks')
      .option('--mirror', 'also delete files the server no longer has (implies --resync)')
      .option('--state <dir>', 'state directory (default: <inbox>/.fmq)')
      .addOption(new Option('--login <name>', 'SASL PLAIN login').env('FMQ_LOGIN'))
      .option('--password-file <file>', 'file whose first line is the password (else FMQ_PASSWORD)')
      .option('--connect-timeout <ms>', 'warn (with --once: fail) when a server has not answered within this (default 10000)', milliseconds)
      .option('--once', 'exit once every server has sent all it has (our servers only)')
      .option('-n, --dry-run', 'list what would be copied, updated (and with --mirror deleted), write nothing, exit 0 (our servers only)')
      .option('--no-delete', 'keep files the server deletes (add-only)')
      .option('-W, --whole-file', 'no delta transfer: changed files come whole (faster where the link outruns reading both versions)')
      .option('--bwlimit <rate>', 'at most this many octets per second per server, e.g. 500k, 10M', rate)
      .option('--on-synced <command>', 'run a shell command each time the inbox is complete (FMQ_TARGET=inbox)')
      .option('--server-key <key|file>', "encrypt with CURVE: the server's public key (40 characters) or its key file from fmq keygen")
      .option('--curve-keys <file>', 'with CURVE, this key pair of fmq keygen is the client\'s own (for servers that let in known keys only)')
      .addOption(httpOption('client/http')),
  )
    .addHelpText('after', EXAMPLES)
    .action(async (flags: ClientCommandFlags) => {
      const output = new Output(outputOptions(flags))
      const config = await loadConfig(flags.config)
      const password = flags.passwordFile !== undefined ? await readPasswordFile(flags.passwordFile) : process.env.FMQ_PASSWORD || undefined
      const settings = resolveClientSettings(
        config,
        {
          ...(flags.connect === undefined ? {} : { connect: flags.connect }),
          ...(flags.subscribe === undefined ? {} : { subscribe: flags.subscribe }),
          ...(flags.inbox === undefined ? {} : { inbox: flags.inbox }),
          ...(flags.resync === undefined ? {} : { resync: flags.resync }),
          ...(flags.mirror === undefined ? {} : { mirror: flags.mirror }),
          ...(flags.state === undefined ? {} : { state: flags.state }),
          ...(flags.login === undefined ? {} : { login: flags.login }),
          ...(password === undefined ? {} : { password }),
          ...(flags.connectTimeout === undefined ? {} : { connectTimeout: flags.connectTimeout }),
          ...(flags.serverKey === undefined ? {} : { serverKey: flags.serverKey }),
          ...(flags.curveKeys === undefined ? {} : { curveKeys: flags.curveKeys }),
        },
        flags.config,
      )
      for (const warning of settings.warnings) output.warn(String(warning))
      await checkInbox(settings.inbox)
      // One writer per inbox: a second client on it is refused, naming the first.
      await lockFolder(settings.options.stateDir ?? join(settings.inbox, '.fmq'), 'fmq client')
      const curveServerKey = settings.serverKey === undefined ? undefined : await readCurvePublicKey(settings.serverKey)
      const own = settings.curveKeys === undefined ? undefined : await loadCurveKeyPair(settings.curveKeys)

      const client = new Client({
        ...settings.options,
        ...(curveServerKey === undefined ? {} : { curveServerKey }),
        ...(own === undefined ? {} : { curvePublicKey: own.publicKey, curveSecretKey: own.secretKey }),
        ...(flags.delete === false ? { deletes: false, mirror: false } : {}),
        ...(flags.bwlimit === undefined ? {} : { rateLimit: flags.bwlimit }),
        ...(flags.wholeFile === true ? { delta: false } : {}),
        // A dry run compares as a resync does, and writes nothing.
        ...(flags.dryRun === true ? { dryRun: true, resync: true, mirror: settings.options.mirror || flags.mirror === true } : {}),
      })
      const http = httpAddress(flags.http, config, 'client/http', flags.config)
      // Observed from the start: the status is kept from the client's events.
      const observed = http === undefined ? undefined : observeClient(client, { endpoints: settings.connect })
      let status: StatusServer | undefined
      const once = flags.once === true || flags.dryRun === true
      if (flags.onSynced !== undefined) client.on('synced', hook(flags.onSynced, settings.inbox, output))
      const view = new ClientView(output, { dryRun: flags.dryRun === true })
      let ending = false
      /** Says goodbye, then exits: with `error`'s line and code, or 0. */
      const end = async (error?: unknown): Promise<void> => {
        if (ending) return
        ending = true
        view.stop()
        await status?.close()
        // process.exit follows: the state database's checkpoint is left to the next open.
        await client.close({ exiting: true }).catch(() => undefined)
        if (error !== undefined) fail(error)
        // Entries this client refused, and those the servers said they could not publish.
        const elsewhere = [...serverSkipped.values()].reduce((sum, count) => sum + count, 0)
        const partial = view.finish(elsewhere) || elsewhere > 0
        if (unmatched.size > 0) fail(new CliError(`nothing published matches ${[...unmatched].join(', ')}: check the path (-s)`, EXIT.USAGE))
        process.exit(partial && flags.dryRun !== true ? EXIT.PARTIAL : EXIT.OK)
      }

      /** Subscriptions a server said match nothing it publishes: with --once, exit 2 after the summary. */
      const unmatched = new Set<string>()
      /** What each server's last synced mark said it could not publish. */
      const serverSkipped = new Map<string, number>()
      const answered = new Set<string>()
      const refused = new Set<string>()
      const subscribed = new Map<string, Set<string>>()
      const synced = new Set<string>()
      /** Servers whose security handshake failed, with why: the --once failure says it. */
      const handshakeFailed = new Map<string, CurveHandshakeError>()
      void (async () => {
        for await (const event of client.events()) {
          switch (event.type) {
            case 'error':
              if (event.error instanceof CurveHandshakeError) handshakeFailed.set(event.error.endpoint, event.error)
              // What a dry run should list is not known: a failure, after its one line.
              if (event.error instanceof DryRunUnsupportedError) {
                void end(new CliError(event.error.message, EXIT.FAILURE))
                continue
              }
              break
            case 'connected':
              answered.add(event.endpoint)
              break
            case 'access-denied':
              answered.add(event.endpoint)
              refused.add(event.endpoint)
              // When every server refused, the one line is the fatal one below.
              if (refused.size === settings.connect.length) continue
              break
            case 'synced': {
              const skipped = event.skipped ?? 0
              if (skipped > 0 && skipped !== serverSkipped.get(event.endpoint)) {
                output.error(`${event.endpoint} could not publish ${skipped === 1 ? '1 entry' : `${skipped} entries`} (named in its log): partial`, {
                  type: 'server-skipped',
                  endpoint: event.endpoint,
                  skipped,
                })
              }
              serverSkipped.set(event.endpoint, skipped)
              break
            }
            case 'unmatched':
              unmatched.add(event.path)
              break
            case 'subscribed': {
              const paths = subscribed.get(event.endpoint) ?? new Set<string>()
              paths.add(event.path)
              subscribed.set(event.endpoint, paths)
              break
            }
          }
          view.show(event)
          // 'synced' comes from our servers only: each has sent all it had for every subscription.
          if (once && event.type === 'synced') {
            if ((subscribed.get(event.endpoint)?.size ?? 0) >= settings.subscribe.length) synced.add(event.endpoint)
            if (settings.connect.every((each) => synced.has(each))) void end()
          }
        }
      })()
      closeOnSignals(output, async () => {
        ending = true
        view.stop()
        await status?.close()
        await client.close()
      })
      if (http !== undefined && observed !== undefined) {
        const started = await serveHttp(http, observed, output).catch(async (error: unknown) => {
          await end(error)
          return undefined
        })
        if (started === undefined) return
        status = started
      }

      for (const endpoint of settings.connect) {
        await client.connect(endpoint).catch(async (error: unknown) => {
          const code = (error as { code?: unknown } | undefined)?.code
          await end(typeof code === 'string' && ENDPOINT_FAILURES.has(code) ? endpointError('connect to', endpoint, error) : error)
        })
      }
      for (const path of settings.subscribe) {
        client.subscribe(path).catch((error: unknown) => {
          if (error instanceof AccessRefusedError) void end(error)
          else if (error instanceof SubscriptionRefusedError || error instanceof ClientClosedError) return // reported as an event, or ours
          else void end(error)
        })
      }
      const seconds = `${settings.connectTimeout / 1000} s`
      setTimeout(() => {
        const silent = settings.connect.filter((endpoint) => !answered.has(endpoint))
        if (silent.length === 0 || ending) return
        const why = silent.map((endpoint) => handshakeFailed.get(endpoint)).find((error) => error !== undefined)
        const hint = why === undefined ? '' : ` (${why.message})`
        if (once) void end(new CliError(`no answer from ${silent.join(', ')} within ${seconds}${hint}`, EXIT.FAILURE))
        else output.warn(`no answer from ${silent.join(', ')} within ${seconds}${hint}; still trying`)
      }, settings.connectTimeout).unref()
    })
}
