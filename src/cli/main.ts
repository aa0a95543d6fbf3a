/**
 * `ckpt` command-line entry point. Each command group lives in its own module
 * that exports `register(program)`; heavy work is imported lazily inside the
 * actions so `ckpt --help` stays fast.
 */
import { Command, CommanderError } from 'commander';

import { CkptError, ExitCode } from '../errors.js';
import { groups } from './groups.js';
import { reportError } from './output.js';

export function buildProgram(): Command {
  const program = new Command('ckpt')
    .description('Transparent checkpoint/restart for long-running Linux jobs and containers')
    .version(process.env.npm_package_version ?? readVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  ckpt --help                     this text
  ckpt coordinator --help         the drop-in dmtcp_coordinator
  ckpt images /scratch/ckpt       list checkpoints found in a directory
  ckpt launch --name sim -- ./sim run a job under checkpoint control
                                  (then: ckpt checkpoint sim, ckpt restart sim)
  ckpt instance start --dmtcp-launch example ./rootfs server 8080
                                  Apptainer-style instance in a rootfs directory
  ckpt doctor                     what this machine supports
  npm run demo                    walkthrough: checkpoint, stop, restart a server

Exit codes: 0 ok, 1 failure, 2 usage error, 3 not found, 4 corrupt/incomplete,
5 conflict (in use / exists), 130 interrupted. See docs/cli.md.`,
  );
  for (const register of groups) register(program);
  reflowDescriptions(program);
  return program;
}

/**
 * Command descriptions are written as paragraphs broken at ~100 columns in
 * the source. Commander wraps help to the terminal width (80 when not a
 * terminal) line by line, which would leave every source line ragged; so
 * lines within a paragraph are joined here and commander does the wrapping.
 * Blank lines and indented lines (lists, examples) are kept as written.
 */
export function reflowDescriptions(cmd: Command): void {
  const d = cmd.description();
  if (d) {
    const plain = (l: string | undefined) => l !== undefined && l !== '' && !/^\s/.test(l);
    const out: string[] = [];
    for (const line of d.split('\n')) {
      if (plain(line) && plain(out[out.length - 1])) out[out.length - 1] += ` ${line}`;
      else out.push(line);
    }
    cmd.description(out.join('\n'));
  }
  for (const sub of cmd.commands) reflowDescriptions(sub);
}

function readVersion(): string {
  return '0.1.0';
}

export async function main(argv: string[] = process.argv): Promise<number> {
  // `ckpt ... | head` closes our stdout early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(ExitCode.Ok);
    throw err;
  });
  const program = buildProgram();
  const wantsJson = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0.
      if (err.exitCode === 0) return ExitCode.Ok;
      return ExitCode.Usage;
    }
    reportError(err, wantsJson);
    return err instanceof CkptError ? err.exitCode : ExitCode.Failure;
  }
}
