/**
 * An rsync daemon on 127.0.0.1 for one run: its own config and port, ready when the port
 * accepts connections, stopped (SIGTERM to the daemon) afterwards.
 *
 * @packageDocumentation
 */
import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { join } from 'node:path'

import { Proc, rssFile, waitUntil } from './proc.js'

export interface Module {
  name: string
  path: string
  readOnly: boolean
}

/** A free TCP port on 127.0.0.1 (the kernel's pick, released again at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

function accepts(port: number): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(undefined))
  })
}

export class RsyncDaemon {
  private constructor(
    readonly port: number,
    readonly proc: Proc,
  ) {}

  /** Starts a daemon serving `modules`; resolves once its port accepts connections. */
  static async start(work: string, modules: readonly Module[]): Promise<RsyncDaemon> {
    const port = await freePort()
    const root = process.getuid?.() === 0
    const config = join(work, `rsyncd-${port}.conf`)
    const lines = [`use chroot = no`, `log file = ${join(work, `rsyncd-${port}.log`)}`]
    if (root) lines.push('uid = root', 'gid = root')
    for (const module of modules) lines.push(`[${module.name}]`, `path = ${module.path}`, `read only = ${module.readOnly ? 'yes' : 'no'}`)
    await writeFile(config, `${lines.join('\n')}\n`)
    const proc = new Proc('rsync', ['--daemon', '--no-detach', '--address=127.0.0.1', `--port=${port}`, `--config=${config}`], {
      rssFile: rssFile(work, 'rsyncd'),
    })
    let ended = false
    void proc.exited.then(
      () => (ended = true),
      () => (ended = true),
    )
    await waitUntil(async () => {
      if (ended) throw new Error(`the rsync daemon exited at start: ${proc.tail()}`)
      return accepts(port)
    }, 10_000, 'the rsync daemon to accept connections')
    return new RsyncDaemon(port, proc)
  }

  url(module: string, path = ''): string {
    return `rsync://127.0.0.1:${this.port}/${module}/${path}`
  }

  /** Stops the daemon; its peak RSS (KiB, its reaped children included) when measured. */
  async stop(): Promise<number | undefined> {
    return (await this.proc.stop('SIGTERM')).rssKiB
  }
}

/** `rsync --version`'s first line, or undefined when rsync is not installed. */
export function rsyncVersion(): string | undefined {
  const result = spawnSync('rsync', ['--version'], { encoding: 'utf8' })
  return result.status === 0 ? result.stdout.split('\n')[0]?.replace(/\s+/g, ' ').trim() : undefined
}

/**
 * rsync's version, installing it with apt-get once when missing and running as root;
 * undefined when it cannot be had (the rsync columns then read n/a).
 */
export function ensureRsync(log: (line: string) => void): string | undefined {
  const version = rsyncVersion()
  if (version !== undefined) return version
  if (process.getuid?.() !== 0) {
    log('rsync is not installed (and not root to install it): skipping rsync, its ratios read n/a')
    return undefined
  }
  log('rsync is not installed: running apt-get install -y rsync')
  const install = spawnSync('apt-get', ['install', '-y', 'rsync'], { stdio: 'inherit' })
  if (install.status !== 0) log('apt-get install rsync failed: skipping rsync, its ratios read n/a')
  const after = rsyncVersion()
  if (after === undefined && install.status === 0) log('rsync still missing after apt-get: skipping rsync')
  return after
}
