/**
 * `fmq track SRC DST`: keep DST an exact mirror of SRC (track/track.ts: a server and a client
 * in this process). With `--once`, exit as soon as DST matches SRC, which our server says
 * exactly (the SYNCED mark), with 23 rather than 0 when entries were skipped; else keep
 * following changes until Ctrl-C. Each entry skipped is one `fmq: skipped PATH: REASON` line.
 *
 * @packageDocumentation
 */
import { Command } from 'commander'

import { observeTrack, type ClientEventRecord, type HttpAddress, type StatusServer } from '../../index.js'
import { Track, TrackError } from '../../internal.js'
import { CliError, EXIT, EXIT_HELP, fail } from '../errors.js'
import { ClientView, Output, outputOptions, type OutputFlags } from '../output.js'
import { httpOption, serveHttp } from '../http.js'
import { closeOnSignals, collect, hook, rate, RESCAN_HELP, seconds, withOutputFlags } from './shared.js'

interface TrackFlags extends OutputFlags {
  once?: boolean
  dryRun?: boolean
  delete?: boolean
  exclude?: string[]
  include?: string[]
  bwlimit?: number
  onSynced?: string
  rescan?: number
  poll?: number
  http?: HttpAddress
}

const EXAMPLES = `
Examples:
  fmq track ./photos /backup/photos                 mirror, then follow changes until Ctrl-C
  fmq track ./photos /backup/photos --once          mirror once, exit 0 when DST matches SRC (23 if entries were skipped)
  fmq track ./src ./copy --exclude '*.tmp' --exclude node_modules/ --include keep.tmp
  fmq track ./data ./copy --no-delete --bwlimit 10M --on-synced 'echo complete'
  fmq track ./photos /backup/photos -n               a dry run: list what would be copied, updated, deleted

DST is made an exact copy of SRC: files in DST that are not in SRC are deleted (unless
--no-delete). State (index, partial files) lives in DST/.fmq; an interrupted run resumes.
One fmq at a time per DST: a second one exits 2, naming the first's pid.
What cannot be mirrored (an unreadable file or folder, a FIFO, socket or device, a name that
is not UTF-8) is skipped, each named on stderr as "fmq: skipped PATH: REASON".
${RESCAN_HELP}
${EXIT_HELP}`

/** An event's payload without its `endpoint`, nor that endpoint in an error's words. */
function withoutEndpoint(payload: object): object {
  const { endpoint, ...rest } = payload as { endpoint?: unknown; error?: unknown }
  if (typeof endpoint === 'string' && rest.error instanceof Error) {
    rest.error.message = rest.error.message.replaceAll(`${endpoint}: `, '').replaceAll(endpoint, 'the server half')
  }
  return rest
}

export function trackCommand(): Command {
  return withOutputFlags(
    new Command('track')
      .description('keep DST an exact mirror of SRC (a server and a client in this process)')
      .argument('<src>', 'folder to mirror')
      .argument('<dst>', 'folder to keep identical to SRC (created if needed)')
      .option('--once', 'exit 0 as soon as DST matches SRC (23 if entries were skipped)')
      .option('-n, --dry-run', 'list what would be copied, updated and deleted, write nothing, exit 0')
      .option('--no-delete', 'keep files in DST that are deleted in SRC (add-only)')
      .option('--exclude <glob>', 'leave out matching files (rsync-like: no "/" matches any depth); repeatable', collect)
      .option('--include <glob>', 'keep matching files even when excluded; repeatable', collect)
      .option('--bwlimit <rate>', 'at most this many octets per second, e.g. 500k, 10M', rate)
      .option('--on-synced <command>', 'run a shell command each time DST becomes complete (FMQ_TARGET=DST)')
      .option('--rescan <seconds>', 'rescan SRC for what the watcher missed this often (default 3600)', seconds)
      .option('--poll <seconds>', 'no inotify: rescan SRC this often instead (NFS, SMB, FUSE)', seconds)
      .addOption(httpOption()),
  )
    .addHelpText('after', EXAMPLES)
    .action(async (src: string, dst: string, flags: TrackFlags) => {
      const output = new Output(outputOptions(flags))
      // A dry run is a run once that writes nothing.
      const once = flags.once === true || flags.dryRun === true
      const view = new ClientView(output, { relative: true, dryRun: flags.dryRun === true })
      let track: Track
      try {
        track = await Track.start(src, dst, {
          keepDeleted: flags.delete === false,
          server: {
            ...(flags.exclude ? { exclude: flags.exclude } : {}),
            ...(flags.include ? { include: flags.include } : {}),
            // Once: SRC as it is now, as rsync copies it; nothing to watch for.
            ...(once ? { watch: false } : {}),
            ...(flags.rescan === undefined ? {} : { rescan: Math.round(flags.rescan * 1000) }),
            ...(flags.poll === undefined ? {} : { poll: Math.round(flags.poll * 1000) }),
          },
          client: { ...(flags.bwlimit === undefined ? {} : { rateLimit: flags.bwlimit }), ...(flags.dryRun === true ? { dryRun: true } : {}) },
        })
      } catch (error) {
        view.stop()
        if (error instanceof TrackError) fail(new CliError(error.message, EXIT.USAGE))
        throw error
      }
      for (const type of ['delivered', 'deleted', 'progress', 'queued', 'planned', 'synced', 'error'] as const) {
        // The endpoint is the track's private socket: nothing a person needs to see.
        track.on(type, (payload: object) => view.show({ type, ...withoutEndpoint(payload) } as ClientEventRecord))
      }
      // Those met by SRC's first scan came before anyone could listen.
      for (const entry of track.skipped) view.skips.add(entry)
      track.on('skipped', (entry) => view.skips.add(entry))
      // The server half's log: an inotify limit reached is a warning; a rescan and why, with -v.
      track.on('log', (level, text) => (level === 'warn' ? output.warn(text) : output.event({ type: 'log', text }, text, 2)))
      // The server half stopped on an error (the track closed itself): one line, exit 1, never an abort.
      track.on('failed', (error) => {
        view.stop()
        fail(new CliError(error.message, EXIT.FAILURE))
      })
      if (flags.onSynced !== undefined) track.on('synced', hook(flags.onSynced, track.target, output))
      let status: StatusServer | undefined
      if (flags.http !== undefined) {
        // Listening now, before the held events of the first sync are passed on.
        const source = observeTrack(track, track.source, track.target)
        status = await serveHttp(flags.http, source, output).catch(async (error: unknown) => {
          view.stop()
          await track.close()
          throw error
        })
      }
      closeOnSignals(
        output,
        async () => {
          view.stop()
          await status?.close()
          await track.close()
        },
        () => track.halt(),
      )
      if (once) {
        await track.firstSync
        view.stop()
        await status?.close()
        await track.close({ exiting: true })
        const partial = view.finish()
        process.exit(partial && flags.dryRun !== true ? EXIT.PARTIAL : EXIT.OK)
      }
    })
}
