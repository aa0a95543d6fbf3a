/**
 * `ckpt coordinator [dmtcp_coordinator args...]`: runs the drop-in native
 * coordinator with exactly the given arguments (stdio inherited, signals
 * forwarded, exit code propagated).
 * `ckpt coordinator install --dmtcp-prefix DIR [--uninstall] [--json]`: makes
 * DMTCP's own launcher auto-start our coordinator.
 */
import type { Command } from 'commander';

import { CkptError } from '../errors.js';
import { printJson } from './output.js';

const EXAMPLES = `
Examples:
  ckpt coordinator --port 7779 --ckptdir /scratch/ckpt     serve on port 7779
  ckpt coordinator --daemon --coord-port 0 --port-file pf  background, random port written to pf
  ckpt coordinator --bind 127.0.0.1 --allow 10.0.0.0/8     restrict who may connect
  ckpt coordinator install --dmtcp-prefix /opt/dmtcp       let dmtcp_launch auto-start this coordinator
  ckpt coordinator install --dmtcp-prefix /opt/dmtcp --uninstall`;

const INSTALL_EXAMPLES = `
DMTCP's dmtcp_launch and dmtcp_restart start <their own bin directory>/dmtcp_coordinator (not the one
on PATH). This command puts a small shim script there that runs ckpt's coordinator, and keeps DMTCP's
original as dmtcp_coordinator.orig; --uninstall puts the original back exactly as it was. Both are
idempotent.

Examples:
  sudo ckpt coordinator install --dmtcp-prefix /opt/dmtcp
  sudo ckpt coordinator install --dmtcp-prefix /opt/dmtcp --uninstall
  ckpt coordinator install --dmtcp-prefix ~/dmtcp --json

Exit codes: 0 ok; 2 usage; 3 no bin/dmtcp_launch under the prefix, or the coordinator is not built;
5 dmtcp_coordinator.orig exists and is not ours; 1 any other failure (e.g. directory not writable).`;

function isHelp(args: string[]): boolean {
  return args.length === 1 && (args[0] === '--help' || args[0] === '-h');
}

export function register(program: Command): void {
  // Everything after the command name belongs to the native executable
  // (e.g. its own --version and -h HOST), so ckpt's global options are only
  // recognised before the command name.
  program.enablePositionalOptions();
  const coordinator = program
    .command('coordinator')
    .summary('run the drop-in dmtcp_coordinator, or install it into a DMTCP installation')
    .description(
      'Runs the native drop-in dmtcp_coordinator with the given arguments (all of its options work; see\n' +
        'below), or installs it so that DMTCP starts it automatically (`install`).',
    )
    .usage('[dmtcp_coordinator options] [port] | install --dmtcp-prefix DIR [--uninstall] [--json]')
    .helpOption(false)
    .allowUnknownOption()
    .passThroughOptions()
    .allowExcessArguments()
    .argument('[args...]', 'arguments for dmtcp_coordinator')
    .action(async (args: string[]) => {
      const { runNative } = await import('./run-native.js');
      if (isHelp(args)) {
        process.stdout.write(`${coordinator.helpInformation()}${EXAMPLES}\n\nOptions of dmtcp_coordinator:\n`);
      }
      process.exitCode = await runNative('dmtcp_coordinator', args);
    });

  coordinator
    .command('install')
    // Subcommands inherit the parent's pass-through settings; install parses
    // its own options.
    .helpOption('-h, --help', 'show this help')
    .allowUnknownOption(false)
    .passThroughOptions(false)
    .allowExcessArguments(false)
    .description("put ckpt's coordinator where DMTCP's dmtcp_launch/dmtcp_restart start one (keeps the original)")
    .requiredOption('--dmtcp-prefix <dir>', 'DMTCP installation prefix (the directory with bin/dmtcp_launch)')
    .option('--uninstall', "restore DMTCP's own dmtcp_coordinator")
    .option('--coordinator <path>', 'native coordinator the shim runs (default: the one built with ckpt)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', INSTALL_EXAMPLES)
    .action(async (opts: { dmtcpPrefix: string; uninstall?: boolean; coordinator?: string; json?: boolean }) => {
      const mod = await import('../coordinator-install.js');
      const fn = opts.uninstall ? mod.uninstallCoordinatorShim : mod.installCoordinatorShim;
      let res;
      try {
        res = await fn({ dmtcpPrefix: opts.dmtcpPrefix, ...(opts.coordinator ? { coordinator: opts.coordinator } : {}) });
      } catch (err) {
        if (err instanceof TypeError) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', err.message);
        throw err;
      }
      if (opts.json) {
        printJson({ ...res, apptainerAdvice: mod.apptainerAdvice(res) });
        return;
      }
      const lines: string[] = [];
      switch (res.action) {
        case 'installed':
          lines.push(`Installed: ${res.shim} now runs ${res.coordinator}.`);
          lines.push(res.original ? `DMTCP's coordinator is kept as ${res.original}.` : 'There was no DMTCP coordinator to keep.');
          break;
        case 'updated':
          lines.push(`Updated the shim ${res.shim}; it runs ${res.coordinator}.`);
          break;
        case 'unchanged':
          lines.push(`Already installed: ${res.shim} runs ${res.coordinator}.`);
          break;
        case 'uninstalled':
          lines.push(
            res.original
              ? `Uninstalled: ${res.original} is DMTCP's own coordinator again.`
              : `Uninstalled: removed the shim ${res.shim} (there was no original to restore).`,
          );
          break;
        case 'not-installed':
          lines.push(`Nothing to uninstall: ${res.shim} is not a ckpt shim.`);
          break;
      }
      if (res.action !== 'uninstalled' && res.action !== 'not-installed') {
        lines.push(`Undo with: ckpt coordinator install --uninstall --dmtcp-prefix ${opts.dmtcpPrefix}`);
        lines.push('');
        lines.push(mod.apptainerAdvice(res));
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
