/**
 * `fmq passwd`: hash a password for a PLAIN account in a server config.
 *
 * @packageDocumentation
 */
import { createInterface } from 'node:readline'
import { Command } from 'commander'

import { hashPassword } from '../../index.js'
import { CliError, EXIT, EXIT_HELP } from '../errors.js'

interface PasswdFlags {
  login?: string
  group?: string
}

const EXAMPLES = `
Prints an account section to paste under security/plain in a server config (indented for
that place, as in config/server-plain.cfg); the password itself is never printed or stored.

Examples:
  fmq passwd --login admin --group admin          asks twice, without echo
  printf '%s\\n' "$SECRET" | fmq passwd --login ci    reads one line from stdin
${EXIT_HELP}`

/** Reads a line from the terminal without echoing it. */
function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = process.stdin
    process.stderr.write(prompt)
    input.setRawMode(true)
    input.resume()
    input.setEncoding('utf8')
    let text = ''
    const done = (error?: Error): void => {
      input.setRawMode(false)
      input.pause()
      input.off('data', onData)
      process.stderr.write('\n')
      if (error !== undefined) reject(error)
      else resolve(text)
    }
    const onData = (chunk: string): void => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') return done()
        if (char === '\u0003') return done(new CliError('interrupted', EXIT.INTERRUPTED))
        if (char === '\u0004') return done(new CliError('no password given', EXIT.USAGE))
        if (char === '\u007f' || char === '\b') text = text.slice(0, -1)
        else text += char
      }
    }
    input.on('data', onData)
  })
}

/** The first line of stdin (a pipe or a file). */
async function readLine(): Promise<string> {
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    lines.close()
    return line
  }
  throw new CliError('no password on stdin', EXIT.USAGE)
}

/** `name = value`, quoted (ZPL spec 4) so `$` and `=` stay one opaque value. */
const property = (indent: string, name: string, value: string): string => `${indent}${name} = "${value}"`

export function passwdCommand(): Command {
  return new Command('passwd')
    .description('hash a password (argon2id) for an account in a server config')
    .option('--login <name>', 'the account login (printed with the hash)')
    .option('--group <name>', 'the account group', 'guest')
    .addHelpText('after', EXAMPLES)
    .action(async (flags: PasswdFlags) => {
      for (const [name, value] of [['login', flags.login], ['group', flags.group]] as const) {
        if (value !== undefined && /["'\n]/.test(value)) throw new CliError(`--${name} cannot contain quotes or line breaks`, EXIT.USAGE)
      }
      let password: string
      if (process.stdin.isTTY === true) {
        password = await readHidden('Password: ')
        if (password !== (await readHidden('Again: '))) throw new CliError('the passwords differ', EXIT.USAGE)
      } else {
        password = await readLine()
      }
      if (password === '') throw new CliError('the password is empty', EXIT.USAGE)
      const hash = await hashPassword(password)
      const lines = ['        account']
      if (flags.login !== undefined) lines.push(property('            ', 'login', flags.login))
      lines.push(property('            ', 'hash', hash))
      if (flags.group !== undefined) lines.push(property('            ', 'group', flags.group))
      process.stdout.write(lines.join('\n') + '\n')
    })
}
