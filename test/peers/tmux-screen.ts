/**
 * A command run on a real pseudo-terminal (a tmux pane of its own server), its screen read as
 * a person would see it: tests poll the screen for the text they expect, with a timeout,
 * never after a fixed wait. tmux is Debian's package (`apt-get install tmux`; .ci/run installs it).
 */
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Whether tmux is installed. */
export function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Printed after the command ends, with its exit code: `FMQ-EXIT=0`. */
export const EXIT_MARK = 'FMQ-EXIT='

const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`

let sessions = 0

export class TmuxScreen {
  private constructor(private readonly socket: string) {}

  /**
   * Runs `argv` in a new pane of `width`×`height`; once it ends the pane prints
   * {@link EXIT_MARK} and its exit code and stays, so the last screen can be read.
   */
  static async start(argv: readonly string[], options: { width?: number; height?: number; cwd?: string } = {}): Promise<TmuxScreen> {
    const socket = `fmq-test-${process.pid}-${sessions++}`
    const line = `${argv.map(quote).join(' ')}; echo ${EXIT_MARK}$?; exec sleep 3600`
    await run('tmux', ['-L', socket, '-f', '/dev/null', 'new-session', '-d', '-s', 'fmq', '-x', String(options.width ?? 160), '-y', String(options.height ?? 30), ...(options.cwd ? ['-c', options.cwd] : []), line])
    return new TmuxScreen(socket)
  }

  /** What the pane shows now, trailing blank lines left out. */
  async screen(): Promise<string> {
    const { stdout } = await run('tmux', ['-L', this.socket, 'capture-pane', '-p', '-t', 'fmq'])
    return stdout.replace(/\s+$/, '')
  }

  /** Polls the screen until `match` accepts it; rejects after `ms` with the last screen. */
  async waitFor(match: RegExp | ((screen: string) => boolean), ms: number, what: string): Promise<string> {
    const test = typeof match === 'function' ? match : (screen: string) => match.test(screen)
    const deadline = Date.now() + ms
    let last = ''
    for (;;) {
      last = await this.screen()
      if (test(last)) return last
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; the screen:\n${last}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** The command's exit code, once it ended (waiting up to `ms`). */
  async exitCode(ms: number): Promise<number> {
    const screen = await this.waitFor(new RegExp(`${EXIT_MARK}\\d+`), ms, 'the command to end')
    return Number(new RegExp(`${EXIT_MARK}(\\d+)`).exec(screen)![1])
  }

  /** Types keys, as tmux names them (`C-c`). */
  async keys(...keys: string[]): Promise<void> {
    await run('tmux', ['-L', this.socket, 'send-keys', '-t', 'fmq', ...keys])
  }

  async close(): Promise<void> {
    await run('tmux', ['-L', this.socket, 'kill-server']).catch(() => undefined)
  }
}
