/**
 * `ckpt check IMAGE|DIR...`: the checks the built-in engine's restarter runs
 * before it touches anything (CPU features the image needs, the kernel's vDSO
 * layout, files and ports the processes need, address collisions), run on
 * their own so a restart can be planned or a problem explained in advance.
 */
import type { Command } from 'commander';

import { ExitCode } from '../errors.js';
import { printJson } from './output.js';

export function register(program: Command): void {
  program
    .command('check')
    .summary('tell whether built-in engine images can be restarted on this machine now')
    .description(
      'Run the restarter\'s own checks on images of the built-in engine without restarting anything: ' +
        'CPU features the images need, the kernel\'s vDSO layout, files and ports the processes need, ' +
        'and address collisions. Takes image files, a generation directory (gen-N) or a computation ' +
        'directory (its `latest` generation is checked).',
    )
    .argument('<path...>', 'image files or checkpoint directories')
    .option('--json', 'print {ok, processes[], issues[]} as JSON')
    .addHelpText(
      'after',
      `
Examples:
  ckpt check ~/.local/share/ckpt/jobs/myjob/98ff-40000-1a2b3c/latest
  ckpt check ckpt/98ff-40000-1a2b3c/gen-3/*.ckpt
  ckpt check --json ckpt/98ff-40000-1a2b3c && ckpt restart ckpt

Exit codes: 0 restartable here, 1 a check failed (each problem is named), 3 no such path,
4 an image is damaged.`,
    )
    .action(async (paths: string[], o: { json?: boolean }) => {
      const { checkImage } = await import('../engines/builtin.js');
      const report = checkImage(paths);
      if (o.json) printJson(report);
      else {
        for (const p of report.processes)
          process.stdout.write(
            `${p.path}: pid ${p.pid} (parent ${p.ppid}) ${p.program}, generation ${p.generation}, ` +
              `${p.regions} regions, ${p.fds} descriptors\n`,
          );
        for (const i of report.issues) process.stderr.write(`ckpt: ${i.level}: ${i.message}\n`);
        process.stdout.write(
          report.ok
            ? 'restartable on this machine now\n'
            : 'not restartable here now: fix the errors above (a busy port or missing file can be freed or restored), then run `ckpt check` again\n',
        );
      }
      if (!report.ok) process.exitCode = ExitCode.Failure;
    });
}
