/**
 * Section "resume": dataset A from a server in this process (the library's `Server`, whose
 * `stats.contentBytes` counts the file content it sends; the CLI does not report it) to an
 * `fmq client` child. The client is SIGKILLed once its partial file under
 * `<inbox>/.fmq/partial/` holds about half the file, then started again; the octets the
 * server sends after the restart, as a share of the file, should stay ≤ 55%.
 *
 * The first client is paced (--bwlimit: an eighth of the file per second, so about four
 * seconds to the half) so that even a small file is caught close to halfway; the restarted
 * client runs unpaced.
 *
 * @packageDocumentation
 */
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'

import { RESUME_BLOCK, Server } from '../../../src/index.js'
import { bigFile, dataset } from './datasets.js'
import { type Proc, waitUntil } from './proc.js'
import { type Context, fixed, mib, MiB, type SectionResult, table } from './stats.js'
import { fmqClient } from './tools.js'
import { sha1File } from './verify.js'

const TARGET_SHARE = 0.55

/** The size of the (single) partial file in the client's state folder, 0 when none yet. */
async function partialSize(inbox: string): Promise<number> {
  const folder = join(inbox, '.fmq', 'partial')
  try {
    const parts = (await readdir(folder)).filter((name) => name.endsWith('.part'))
    const sizes = await Promise.all(parts.map(async (name) => (await stat(join(folder, name)).catch(() => ({ size: 0 }))).size))
    return Math.max(0, ...sizes)
  } catch {
    return 0
  }
}

/** What the section measured; the fields after `size` are missing when it failed early. */
interface ResumeResult {
  size: number
  partialAtKill?: number
  sentBeforeKill?: number
  sentAfterRestart?: number
  share?: number
  restartMs?: number
  clientRssKiB?: number
  intact?: boolean
  error?: string
  serverErrors?: string[]
}

export async function resume(ctx: Context): Promise<SectionResult> {
  const data = await dataset(ctx.dir, bigFile(ctx.scale), ctx.scale, ctx.log)
  const file = data.files[0]!
  const inbox = join(ctx.work, 'resume-inbox')
  const state = join(ctx.work, 'resume-state')
  await rm(inbox, { recursive: true, force: true })
  await rm(state, { recursive: true, force: true })
  const server = new Server({ stateDir: state })
  const errors: string[] = []
  server.on('error', (error) => errors.push(error.message))
  let raw: ResumeResult = { size: file.size }
  let failures = 0
  let first: Proc | undefined
  try {
    await server.publish(data.root, '/')
    const endpoint = await server.bind('tcp://127.0.0.1:*')
    await server.publisher.whenIndexed()

    const half = Math.floor(file.size / 2)
    first = fmqClient(ctx, endpoint, inbox, ['--bwlimit', String(Math.max(64 * 1024, Math.floor(file.size / 8)))])
    let firstEnded = false
    void first.exited.then(() => (firstEnded = true))
    const reached = await waitUntil(async () => {
      const size = await partialSize(inbox)
      if (size >= half) return size
      return firstEnded ? -1 : undefined
    }, 600_000, 'half of the file in the partial file', 5)
    if (reached < 0) throw new Error(`the first client ended before half the file arrived: ${first.tail()}`)
    await first.stop('SIGKILL')
    const atKill = await partialSize(inbox)
    const before = server.stats.contentBytes

    const second = fmqClient(ctx, endpoint, inbox)
    const exit = await second.exited
    const sent = server.stats.contentBytes - before
    const share = sent / file.size
    const intact = exit.code === 0 && (await sha1File(join(inbox, file.path)).catch(() => '')) === file.sha1
    if (!intact) failures++
    const error = exit.code !== 0 ? `client exited ${exit.code ?? exit.signal}: ${second.tail(3)}` : intact ? undefined : 'SHA-1 differs'
    raw = { size: file.size, partialAtKill: atKill, sentBeforeKill: before, sentAfterRestart: sent, share, restartMs: exit.ms, clientRssKiB: exit.rssKiB, intact, error }
    ctx.log(`resume: killed at ${atKill} octets; after the restart the server sent ${sent} of ${file.size} (${fixed(share * 100, 1)}%), ${intact ? 'SHA-1 ok' : `FAILED (${error})`}`)
  } catch (error) {
    failures++
    raw = { size: file.size, error: (error as Error).message }
    ctx.log(`resume FAILED: ${(error as Error).message}`)
  } finally {
    if (first?.running) await first.stop('SIGKILL')
    await server.close()
    await rm(inbox, { recursive: true, force: true })
    await rm(state, { recursive: true, force: true })
  }
  if (errors.length > 0) raw.serverErrors = errors.slice(0, 5)
  const r = raw
  const markdown = [
    `## Resume (client SIGKILLed halfway through dataset A)`,
    '',
    `File of ${(file.size / MiB).toFixed(1)} MiB; server in the bench process (its content-octet counter), client a child process. Target: at most ${Math.round(TARGET_SHARE * 100)}% sent again; resume points are whole blocks of ${RESUME_BLOCK / MiB} MiB, so on a small file the share runs above the kill point.`,
    '',
    table(
      ['file MiB', 'partial at kill (MiB)', 'sent after restart (MiB)', 'share', 'target met', 'restart to done s', 'client peak RSS (MiB)', 'SHA-1'],
      [
        [
          (file.size / MiB).toFixed(1),
          r.partialAtKill === undefined ? 'n/a' : (r.partialAtKill / MiB).toFixed(1),
          r.sentAfterRestart === undefined ? 'n/a' : (r.sentAfterRestart / MiB).toFixed(1),
          r.share === undefined ? 'n/a' : `${(r.share * 100).toFixed(1)}%`,
          r.share === undefined ? 'n/a' : r.share <= TARGET_SHARE ? 'yes' : 'NO',
          fixed(r.restartMs === undefined ? undefined : r.restartMs / 1000, 3),
          mib(r.clientRssKiB),
          r.intact ? 'ok' : `FAILED${r.error ? ` (${r.error})` : ''}`,
        ],
      ],
    ),
  ].join('\n')
  return { name: 'resume', markdown, raw, failures }
}
