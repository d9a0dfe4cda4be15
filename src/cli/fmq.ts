#!/usr/bin/env node
/**
 * The `fmq` command line: commander wiring only; the library does the work and
 * throws typed errors, which this file turns into one line on stderr and an exit code.
 */
import { readFileSync } from 'node:fs'
import { Command, Option } from 'commander'

import { Client } from '../client/client.js'
import type { ClientEventRecord } from '../client/events.js'
import { loadZplFile, ZplNode } from '../config/zpl.js'
import { Relay, relayOptionsFromConfig } from '../relay/relay.js'
import { Server } from '../server/server.js'

/** The package's version: package.json is two levels up from src/cli, three from dist/src/cli. */
function version(): string {
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'filemq' && pkg.version !== undefined) return pkg.version
    } catch {
      // not this level
    }
  }
  return 'unknown'
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

/** `DIR` or `DIR:/VPATH`: a folder and the virtual path it is published under. */
function mountOf(spec: string): { location: string; virtualPath: string } {
  const at = spec.lastIndexOf(':/')
  return at > 0 ? { location: spec.slice(0, at), virtualPath: spec.slice(at + 1) } : { location: spec, virtualPath: '/' }
}

interface Output {
  json: boolean
}

/** One line per client event: JSON with --json, else words; errors go to stderr. */
function report(output: Output, event: ClientEventRecord): void {
  if (output.json) {
    const { type, ...rest } = event
    const payload = 'error' in rest ? { ...rest, error: rest.error.message, code: (rest.error as { code?: string }).code } : rest
    process.stdout.write(JSON.stringify({ type, ...payload }) + '\n')
    return
  }
  switch (event.type) {
    case 'delivered':
      console.log(`delivered ${event.virtualPath} (${event.size} octets)`)
      break
    case 'deleted':
      console.log(`deleted ${event.virtualPath}`)
      break
    case 'connected':
      console.log(`connected to ${event.endpoint} (version ${event.version})`)
      break
    case 'subscribed':
      console.log(`subscribed to ${event.path} on ${event.endpoint}`)
      break
    case 'disconnected':
      console.log(`disconnected from ${event.endpoint}: ${event.reason}`)
      break
    case 'access-denied':
      console.error(`fmq: ${event.endpoint} refused access: ${event.reason || 'no reason given'}`)
      break
    case 'error':
      console.error(`fmq: ${event.endpoint ? `${event.endpoint}: ` : ''}${event.error.message}`)
      break
    case 'progress':
      break
  }
}

/** Prints the client's events until it closes. */
function follow(client: Client, output: Output): void {
  void (async () => {
    for await (const event of client.events()) report(output, event)
  })()
}

/** Closes on SIGINT or SIGTERM, then exits. */
function untilSignal(close: () => Promise<void>): void {
  let closing = false
  const stop = (): void => {
    if (closing) return
    closing = true
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

function announce(output: Output, endpoints: readonly string[]): void {
  for (const endpoint of endpoints) {
    if (output.json) process.stdout.write(JSON.stringify({ type: 'listening', endpoint }) + '\n')
    else console.log(`listening on ${endpoint}`)
  }
}

const program = new Command('fmq')
  .description('FileMQ: publish folders over ZeroMQ and mirror them on other hosts')
  .version(version())
  .showHelpAfterError()

program
  .command('server')
  .description('publish folders to FILEMQ clients')
  .option('-c, --config <file>', 'ZPL config (publish, bind and security sections)')
  .option('-p, --publish <dir[:/vpath]>', 'publish a folder (under / unless a virtual path follows); repeatable', collect)
  .option('-b, --bind <endpoint>', 'endpoint to serve on, e.g. tcp://*:5670; repeatable', collect)
  .option('--state <dir>', 'state directory for the index (default: <first folder>/.fmq)')
  .option('--json', 'one JSON object per line')
  .action(async (options: { config?: string; publish?: string[]; bind?: string[]; state?: string; json?: boolean }) => {
    const output = { json: options.json === true }
    const server = new Server(options.state === undefined ? {} : { stateDir: options.state })
    server.on('error', (error) => console.error(`fmq: ${error.message}`))
    untilSignal(() => server.close())
    const endpoints: string[] = []
    if (options.config !== undefined) {
      const root = await loadZplFile(options.config)
      const binds = root.all('bind').map((section) => section.get('endpoint', ''))
      await server.configure(new ZplNode('', '', root.children.filter((node) => node.name !== 'bind')))
      for (const endpoint of binds) if (endpoint !== '') endpoints.push(await server.bind(endpoint))
    }
    for (const spec of options.publish ?? []) {
      const { location, virtualPath } = mountOf(spec)
      await server.publish(location, virtualPath)
    }
    for (const endpoint of options.bind ?? []) endpoints.push(await server.bind(endpoint))
    if (endpoints.length === 0) endpoints.push(await server.bind('tcp://*:5670'))
    announce(output, endpoints)
  })

program
  .command('client')
  .description('mirror virtual paths of FILEMQ servers into an inbox')
  .option('-c, --config <file>', 'ZPL config (client, connect, subscribe and security sections)')
  .option('-C, --connect <endpoint>', 'server to connect to; repeatable', collect)
  .option('-s, --subscribe <path>', 'virtual path to mirror; repeatable (default /)', collect)
  .option('-i, --inbox <dir>', 'folder received files go into')
  .option('--resync', 'on connect, get every file the inbox lacks')
  .option('--mirror', 'with --resync, also delete files the server no longer has')
  .option('--state <dir>', 'state directory (default: <inbox>/.fmq)')
  .addOption(new Option('--login <login>', 'SASL PLAIN login').env('FMQ_LOGIN'))
  .addOption(new Option('--password <password>', 'SASL PLAIN password').env('FMQ_PASSWORD'))
  .option('--json', 'one JSON object per line')
  .action(
    async (options: {
      config?: string
      connect?: string[]
      subscribe?: string[]
      inbox?: string
      resync?: boolean
      mirror?: boolean
      state?: string
      login?: string
      password?: string
      json?: boolean
    }) => {
      const output = { json: options.json === true }
      const fromConfig = options.config === undefined ? undefined : relayOptionsFromConfig(await loadZplFile(options.config))
      const inbox = options.inbox ?? fromConfig?.inbox
      if (inbox === undefined) throw new Error('no inbox: give --inbox or client/inbox in the config')
      const mirror = options.mirror ?? (fromConfig === undefined ? false : fromConfig.client?.mirror === true)
      const client = new Client({
        ...(fromConfig === undefined ? {} : { ...fromConfig.client, resync: fromConfig.client?.resync === true, mirror }),
        ...(options.resync || options.mirror ? { resync: true } : {}),
        ...(options.mirror ? { mirror: true } : {}),
        ...(options.login !== undefined && options.password !== undefined ? { login: options.login, password: options.password } : {}),
        ...(options.state === undefined ? {} : { stateDir: options.state }),
        inbox,
      })
      follow(client, output)
      untilSignal(() => client.close())
      const endpoints = options.connect ?? fromConfig?.upstream ?? []
      if (endpoints.length === 0) throw new Error('no server: give --connect or connect/endpoint in the config')
      for (const endpoint of endpoints) await client.connect(endpoint)
      const paths = options.subscribe ?? (fromConfig?.paths?.length ? fromConfig.paths : ['/'])
      for (const path of paths) void client.subscribe(path).catch(() => undefined) // refusals are reported as events
    },
  )

program
  .command('relay')
  .description('mirror upstream servers into an inbox and serve that inbox to clients downstream')
  .option('-c, --config <file>', 'ZPL config (client and server sections together)')
  .option('-u, --upstream <endpoint>', 'upstream server; repeatable', collect)
  .option('-s, --subscribe <path>', 'virtual path to mirror; repeatable (default /)', collect)
  .option('-i, --inbox <dir>', 'folder received files go into, and that is served')
  .option('-b, --bind <endpoint>', 'endpoint to serve on; repeatable', collect)
  .option('--json', 'one JSON object per line')
  .action(async (options: { config?: string; upstream?: string[]; subscribe?: string[]; inbox?: string; bind?: string[]; json?: boolean }) => {
    const output = { json: options.json === true }
    const overrides = {
      ...(options.upstream ? { upstream: options.upstream } : {}),
      ...(options.subscribe ? { paths: options.subscribe } : {}),
      ...(options.bind ? { bind: options.bind } : {}),
      ...(options.inbox === undefined ? {} : { inbox: options.inbox }),
    }
    let relay: Relay
    if (options.config !== undefined) {
      relay = await Relay.fromConfig(options.config, overrides)
    } else {
      if (options.inbox === undefined) throw new Error('no inbox: give --inbox')
      relay = await Relay.start({ upstream: [], bind: [], ...overrides, inbox: options.inbox })
    }
    relay.server.on('error', (error) => console.error(`fmq: ${error.message}`))
    follow(relay.client, output)
    untilSignal(() => relay.close())
    announce(output, relay.endpoints)
  })

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`fmq: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
