/**
 * `fmq keygen`: make a CURVE key pair for a server, as CZMQ's zcert does.
 *
 * @packageDocumentation
 */
import { mkdir } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { Command } from 'commander'

import { generateCurveKeyPair, writeCurveKeyPair } from '../../index.js'
import { CliError, EXIT, EXIT_HELP } from '../errors.js'
import { Output, outputOptions, type OutputFlags } from '../output.js'
import { withOutputFlags } from './shared.js'

interface KeygenFlags extends OutputFlags {
  force?: boolean
}

const EXAMPLES = `
Writes NAME (the public key: give it, or the key it prints, to clients) and NAME_secret
(both keys, mode 600: it stays with the server), in ZPL as CZMQ's zcert writes them, and
prints the public key; a missing folder is made (mode 700). Nothing is replaced without --force.

Examples:
  fmq keygen keys/server                          keys/server and keys/server_secret
  fmq server -p ./photos --curve-keys keys/server
  fmq client -C tcp://host:5670 -i ./inbox --server-key keys/server
${EXIT_HELP}`

export function keygenCommand(): Command {
  return withOutputFlags(
    new Command('keygen')
      .description('make a CURVE key pair for encrypted connections (NAME and NAME_secret)')
      .argument('[name]', 'where to write the key files', 'server')
      .option('--force', 'replace key files that exist'),
  )
    .addHelpText('after', EXAMPLES)
    .action(async (name: string, flags: KeygenFlags) => {
      const output = new Output(outputOptions(flags))
      if (name === '' || name.endsWith('/')) throw new CliError(`keygen: "${name}" is not a file name`, EXIT.USAGE)
      const pair = generateCurveKeyPair()
      // `fmq keygen keys/server` on a fresh clone: the folder is made (0700: a secret goes there).
      await mkdir(dirname(name), { recursive: true, mode: 0o700 }).catch(() => undefined) // a failure is said by the write
      const { publicFile, secretFile } = await writeCurveKeyPair(name, pair, { force: flags.force === true, metadata: { name: basename(name) } }).catch(
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') throw new CliError(`keygen: folder ${dirname(name)} does not exist`, EXIT.USAGE, { cause: error })
          throw error
        },
      )
      output.event(
        { type: 'keygen', publicKey: pair.publicKey, publicFile, secretFile },
        `public key ${pair.publicKey}\nwrote ${publicFile} (public) and ${secretFile} (secret, mode 600)`,
      )
    })
}
