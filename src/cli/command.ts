/**
 * `ckpt command ...`: runs the native drop-in dmtcp_command with exactly the
 * given arguments (stdio inherited, signals forwarded, exit code propagated).
 */
import type { Command } from 'commander';

const EXAMPLES = `
Examples:
  ckpt command -p 7779 --status            status of the coordinator on port 7779
  ckpt command --json --bcheckpoint        checkpoint and wait until it is complete
  ckpt command --timeout 10 -bc            ... but give up after 10 s (exit code 124)
  ckpt command -i 3600                     checkpoint every hour
  ckpt command --quit                      kill the computation and stop the coordinator

Text output, --json output and exit codes are those of DMTCP's dmtcp_command (docs/compat.md).`;

export function register(program: Command): void {
  // Everything after the command name belongs to the native executable
  // (e.g. its own --version and -h HOST), so ckpt's global options are only
  // recognised before the command name.
  program.enablePositionalOptions();
  const command = program
    .command('command')
    .summary('send a command to a coordinator (the drop-in dmtcp_command)')
    .description('Runs the native drop-in dmtcp_command with the given arguments; see its options below.')
    .usage('[dmtcp_command options] COMMAND')
    .helpOption(false)
    .allowUnknownOption()
    .passThroughOptions()
    .allowExcessArguments()
    .argument('[args...]', 'arguments for dmtcp_command')
    .action(async (args: string[]) => {
      const { runNative } = await import('./run-native.js');
      if (args.length === 1 && args[0] === '--help') {
        // dmtcp_command exits 1 after --help (DMTCP compatibility); the ckpt
        // command follows ckpt's convention: help is a success.
        process.stdout.write(`${command.helpInformation()}${EXAMPLES}\n\n`);
        await runNative('dmtcp_command', args);
        process.exitCode = 0;
        return;
      }
      process.exitCode = await runNative('dmtcp_command', args);
    });
}
