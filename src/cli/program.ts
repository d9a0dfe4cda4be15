/**
 * The `fmq` command line (started by ./fmq.ts): commander wiring only. The commands live in ./commands, resolve
 * their settings with src/config/settings.ts and call the library; the library throws typed
 * errors, which ./errors.ts turns into one line on stderr and an exit code.
 */
import { Command, CommanderError } from 'commander'

import { clientCommand } from './commands/client.js'
import { keygenCommand } from './commands/keygen.js'
import { passwdCommand } from './commands/passwd.js'
import { relayCommand } from './commands/relay.js'
import { serverCommand } from './commands/server.js'
import { trackCommand } from './commands/track.js'
import { EXIT, EXIT_HELP, fail } from './errors.js'
import { packageVersion as version, tuneAllocator } from '../index.js'

// Before the first chunk: chunk-sized buffers stay in malloc's arenas (src/util/memory.ts).
tuneAllocator()

const EXAMPLES = `
Examples:
  fmq track ./from ./to                          keep ./to an exact mirror of ./from
  fmq server -p ./photos=/photos -b tcp://*:5670
  fmq client -C tcp://host:5670 -s /photos -i ./inbox --resync
  fmq passwd --login admin --group admin         an account section for a server config
  fmq keygen keys/server                          a CURVE key pair (--curve-keys, --server-key)
  fmq COMMAND --help                              more about one command
${EXIT_HELP}`

/** Usage errors as one `fmq: ...` line and exit code 2; help and version exit 0. */
function wire(command: Command): void {
  command
    .exitOverride((error: CommanderError) => {
      if (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version') process.exit(EXIT.OK)
      // Without a subcommand commander shows the help on stderr: a usage error all the same.
      process.exit(EXIT.USAGE)
    })
    .configureOutput({ outputError: (text, write) => write(`fmq: ${text.replace(/^error: /, '')}`) })
  for (const sub of command.commands) wire(sub)
}

const program = new Command('fmq')
  .description('FileMQ: publish folders over ZeroMQ and mirror them on other hosts')
  .version(version(), '-V, --version')
  .addCommand(trackCommand())
  .addCommand(serverCommand())
  .addCommand(clientCommand())
  .addCommand(relayCommand())
  .addCommand(passwdCommand())
  .addCommand(keygenCommand())
  .addHelpText('after', EXAMPLES)
wire(program)

program.parseAsync(process.argv).catch(fail)
