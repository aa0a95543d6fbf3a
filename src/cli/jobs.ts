/**
 * Host jobs, DMTCP's habit: `ckpt launch`, `ckpt checkpoint [NAME]`,
 * `ckpt restart`, `ckpt status`, `ckpt list`, `ckpt stop`. Thin: parsing and
 * output only; the work is in src/jobs.ts (imported lazily).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

import { Command } from 'commander';

import { CkptError, ExitCode } from '../errors.js';
import type { RegistryEntry } from '../instances.js';
import type { CheckpointResult, EntryStatus, Jobs } from '../jobs.js';
import type { EngineName } from '../instances.js';
import { addOptions } from './options.js';
import { formatBytes, printJson, table } from './output.js';
import { formatAge, formatDuration, progress } from './progress.js';

async function jobs(): Promise<Jobs> {
  const { Jobs } = await import('../jobs.js');
  return new Jobs();
}

/** The `checkpoint` command, shared by the job form and the Apptainer group. */
export function checkpointCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'checkpoint');
  if (existing) return existing;
  const cmd = program.command('checkpoint');
  cmd.summary('checkpoint a running job (blocks until durable), or manage named checkpoints');
  cmd.description(
    'checkpoint a running job, or manage named checkpoints (Apptainer style)\n\n' +
      '  ckpt checkpoint [NAME]          checkpoint the job NAME (DMTCP style)\n' +
      '  ckpt checkpoint create NAME     create an empty named checkpoint\n' +
      '  ckpt checkpoint list            list named checkpoints\n' +
      '  ckpt checkpoint delete NAME     delete a named checkpoint\n' +
      '  ckpt checkpoint instance NAME   checkpoint a running instance\n\n' +
      'Checkpoints of jobs and instances return once the images are durable.',
  );
  return cmd;
}

/** Derives a job name from a command: its base name plus a short random suffix. */
export function defaultJobName(command: string[]): string {
  const base = path
    .basename(command[0] ?? 'job')
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 40);
  return `${base || 'job'}-${randomBytes(2).toString('hex')}`;
}

/** Human text for a durable checkpoint. */
export function describeCheckpoint(r: CheckpointResult): string {
  const bw = r.bandwidthBytesPerSec ? `, ${formatBytes(r.bandwidthBytesPerSec)}/s` : '';
  return (
    `checkpoint of ${r.kind} "${r.name}" is durable: generation ${r.generation}, ${r.processes} process${r.processes === 1 ? '' : 'es'}, ${formatBytes(r.bytes)}\n` +
    `  freeze ${formatDuration(r.freezeMs)}, durable after ${formatDuration(r.totalMs)}${bw}\n` +
    `  in ${r.dir}${r.checkpoint ? ` (checkpoint "${r.checkpoint}")` : ''}\n` +
    (r.removedByRetention.length ? `  retention removed: ${r.removedByRetention.join(', ')}\n` : '') +
    (r.killed ? `  the ${r.kind} was stopped; restart it with \`${r.kind === 'instance' ? `ckpt instance start --dmtcp-restart ${r.checkpoint ?? r.dir} ...` : `ckpt restart ${r.checkpoint ?? r.dir}`}\`\n` : '')
  );
}

/** Runs a checkpoint with a progress line; shared with `checkpoint instance`. */
export async function runCheckpoint(
  svc: Jobs,
  entry: RegistryEntry,
  opts: { kill?: boolean; timeout?: number; json?: boolean },
): Promise<CheckpointResult> {
  const { dirUsage } = await import('../store.js');
  const dir = entry.checkpointDir ?? '/nonexistent';
  const startBytes = dirUsage(dir).bytes;
  const bar = progress({
    quiet: opts.json,
    extra: () => {
      const now = dirUsage(dir).bytes - startBytes;
      return now > 0 ? `${formatBytes(now)} written` : '';
    },
  });
  try {
    return await svc.checkpoint(entry, { kill: opts.kill, timeoutMs: opts.timeout, onStep: (m) => bar.update(m) });
  } finally {
    bar.done();
  }
}

function statusRows(list: EntryStatus[]): string[][] {
  return list.map((s) => [
    s.name,
    s.engine ?? '-',
    String(s.pid),
    s.processes === null ? '?' : `${s.processes}${s.running === false ? ' (busy)' : ''}`,
    s.ports.join(',') || '-',
    s.lastGeneration === null ? '-' : String(s.lastGeneration),
    s.checkpoint ?? s.checkpointDir ?? '-',
    formatAge(Date.now() - Date.parse(s.startedAt)),
  ]);
}

export function register(program: Command): void {
  // ckpt launch
  const launch = program
    .command('launch')
    .description('run a command under checkpoint control (stays in the foreground until it ends, like dmtcp_launch)')
    .argument('<command...>', 'the command and its arguments, after --');
  addOptions(launch, ['engine', 'ckptdir', 'interval', 'keep', 'name', 'detach', 'coordPort', 'json']);
  launch.addHelpText(
    'after',
    `
A coordinator is started on a free port for each job (no collisions); its
port file is in $CKPT_HOME/run/job-NAME/. Images go to the named checkpoint
NAME in $CKPT_HOME/checkpoints (or --ckptdir DIR).

Examples:
  ckpt launch --name sim -- ./simulate --steps 1000000
  ckpt launch --name sim --interval 600 --keep 3 --detach -- ./simulate
  ckpt launch --engine dmtcp --ckptdir /scratch/ckpt -- python3 train.py`,
  );
  launch.action(async (command: string[], o: { engine: EngineName; ckptdir?: string; interval?: number; keep?: number; name?: string; detach?: boolean; coordPort?: number; json?: boolean }) => {
    const svc = await jobs();
    const name = o.name ?? defaultJobName(command);
    const bar = progress({ quiet: o.json });
    const result = await svc
      .start({
        kind: 'job',
        name,
        engine: o.engine,
        command,
        image: null,
        checkpoint: o.ckptdir ? null : name,
        ckptdir: o.ckptdir ?? null,
        createCheckpoint: true,
        interval: o.interval ?? null,
        keep: o.keep ?? null,
        detach: Boolean(o.detach),
        coordPort: o.coordPort,
        onStep: (m) => (o.detach ? bar.update(m) : undefined),
      })
      .finally(() => bar.done());
    if (o.detach) {
      const e = result.entry;
      if (o.json) printJson({ name: e.name, pid: e.leader.pid, coordinatorPort: e.coordinator.port, checkpointDir: e.checkpointDir, log: e.log });
      else
        process.stdout.write(
          `job "${e.name}" running (pid ${e.leader.pid}, coordinator port ${e.coordinator.port})\n` +
            `  output: ${e.log}\n  checkpoint it: ckpt checkpoint ${e.name}\n  stop it:       ckpt stop ${e.name}\n`,
        );
      return;
    }
    const exit = result.exit;
    if (o.json) printJson({ name, exitCode: exit?.code ?? null, signal: exit?.signal ?? null });
    process.exitCode = exit?.signal ? 128 + signalNumber(exit.signal) : (exit?.code ?? ExitCode.Failure);
  });

  // ckpt checkpoint [NAME]
  const checkpoint = checkpointCommand(program).argument('[name]', 'the job (optional when only one runs)');
  addOptions(checkpoint, ['kill', 'timeout', 'json']);
  checkpoint.addHelpText(
    'after',
    `
Blocks until the images are durable (the generation's manifest is written),
then prints where they are, their size, the freeze time and the bandwidth.

Examples:
  ckpt checkpoint sim
  ckpt checkpoint sim --kill            checkpoint, then stop the job
  ckpt checkpoint sim --json --timeout 600
  ckpt checkpoint create example        (Apptainer style; see the subcommands)`,
  );
  checkpoint.action(async (name: string | undefined, o: { kill?: boolean; timeout?: number; json?: boolean }) => {
    const svc = await jobs();
    const entry = await pickJob(svc, name);
    const r = await runCheckpoint(svc, entry, o);
    if (o.json) printJson(r);
    else process.stdout.write(describeCheckpoint(r));
  });

  // ckpt restart [NAME|DIR]
  const restart = program
    .command('restart')
    .description('restart the newest complete checkpoint of a job (stays in the foreground, like dmtcp_restart)')
    .argument('[checkpoint]', 'a checkpoint name (see `ckpt checkpoint list`) or a directory; optional when there is one checkpoint');
  addOptions(restart, ['generation', 'engine', 'name', 'detach', 'keep', 'interval', 'coordPort', 'json']);
  restart.addHelpText(
    'after',
    `
The newest complete generation is found by the indexer; incomplete or
corrupt generations are skipped (use --generation to pick one). Restarting
from an empty or corrupt checkpoint fails without changing anything.

Examples:
  ckpt restart sim
  ckpt restart sim --detach
  ckpt restart /scratch/ckpt --engine dmtcp --generation 4`,
  );
  restart.action(async (given: string | undefined, o: { generation?: number; engine: EngineName; name?: string; detach?: boolean; keep?: number; interval?: number; coordPort?: number; json?: boolean }, cmd: Command) => {
    // Without --engine, restart with the engine that wrote the images.
    const engine = cmd.getOptionValueSource('engine') === 'default' ? 'auto' : o.engine;
    const svc = await jobs();
    const { validateName } = await import('../store.js');
    const target = given ?? onlyCheckpoint(svc);
    const isDir = target.includes('/') || (fs.existsSync(target) && fs.statSync(target).isDirectory() && !svc.store.hasCheckpoint(target));
    const checkpoint = isDir ? null : validateName(target, 'checkpoint');
    const name = o.name ?? (checkpoint ?? defaultJobName([path.basename(path.resolve(target))]));
    const bar = progress({ quiet: o.json });
    const result = await svc
      .start({
        kind: 'job',
        name,
        engine,
        command: [],
        image: null,
        checkpoint,
        ckptdir: isDir ? target : null,
        restart: { generation: o.generation },
        interval: o.interval ?? null,
        keep: o.keep ?? null,
        detach: Boolean(o.detach),
        coordPort: o.coordPort,
        onStep: (m) => bar.update(m),
      })
      .finally(() => bar.done());
    const e = result.entry;
    const gen = result.restartedFrom?.generation;
    if (o.detach) {
      if (o.json) printJson({ name: e.name, pid: e.leader.pid, generation: gen, coordinatorPort: e.coordinator.port, log: e.log });
      else process.stdout.write(`job "${e.name}" restarted from generation ${gen} (pid ${e.leader.pid}); output: ${e.log}\n`);
      return;
    }
    const exit = result.exit;
    if (o.json) printJson({ name, generation: gen, exitCode: exit?.code ?? null, signal: exit?.signal ?? null });
    process.exitCode = exit?.signal ? 128 + signalNumber(exit.signal) : (exit?.code ?? ExitCode.Failure);
  });

  // ckpt status [NAME]
  const status = program.command('status').description('show running jobs in detail: processes, coordinator, ports, checkpoints').argument('[name]', 'one job');
  addOptions(status, ['json']);
  status.addHelpText('after', '\nExamples:\n  ckpt status\n  ckpt status sim --json');
  status.action(async (name: string | undefined, o: { json?: boolean }) => {
    const svc = await jobs();
    const entries = name ? [await svc.registry.require('job', name)] : await svc.registry.list('job');
    const list = await Promise.all(entries.map((e) => svc.describe(e)));
    if (o.json) return printJson(name ? list[0] : list);
    if (list.length === 0) {
      process.stdout.write('No jobs are running. Start one with `ckpt launch -- CMD`.\n');
      return;
    }
    for (const s of list) {
      process.stdout.write(
        `${s.name}  (${s.engine} engine)\n` +
          `  command      ${s.command.join(' ')}\n` +
          `  pid          ${s.pid}\n` +
          `  coordinator  ${s.coordinator}  processes: ${s.processes ?? '?'}${s.running === false ? ' (checkpoint in progress)' : ''}\n` +
          `  ports        ${s.ports.join(', ') || '-'}\n` +
          `  checkpoints  ${s.checkpointDir}  newest generation: ${s.lastGeneration ?? '-'}  ${formatBytes(s.checkpointBytes)}\n` +
          `  output       ${s.log ?? '(terminal)'}\n` +
          `  started      ${s.startedAt}\n`,
      );
    }
  });

  // ckpt list
  const list = program.command('list').description('list running jobs');
  addOptions(list, ['json']);
  list.addHelpText('after', '\nExamples:\n  ckpt list\n  ckpt list --json | jq -r ".[].name"');
  list.action(async (o: { json?: boolean }) => {
    const svc = await jobs();
    const entries = await svc.registry.list('job');
    const rows = await Promise.all(entries.map((e) => svc.describe(e)));
    if (o.json) return printJson(rows);
    if (rows.length === 0) {
      process.stdout.write('No jobs are running. Start one with `ckpt launch -- CMD`.\n');
      return;
    }
    process.stdout.write(table(['NAME', 'ENGINE', 'PID', 'PROCS', 'PORTS', 'GEN', 'CHECKPOINT', 'STARTED'], statusRows(rows)));
  });

  registerWatch(program);
  registerCompress(program);

  // ckpt stop NAME|--all
  const stop = program.command('stop').description('stop a running job (SIGTERM, then SIGKILL after a grace period)').argument('[name]', 'the job');
  addOptions(stop, ['all', 'stopTimeout', 'json']);
  stop.addHelpText('after', '\nCheckpoints are kept. Examples:\n  ckpt stop sim\n  ckpt stop --all');
  stop.action(async (name: string | undefined, o: { all?: boolean; grace?: number; json?: boolean }) => {
    const svc = await jobs();
    if (!name && !o.all) throw new CkptError('ERR_CKPT_USAGE', 'Name a job to stop, or use --all. See `ckpt list`.');
    if (name && o.all) throw new CkptError('ERR_CKPT_USAGE', 'Give either a name or --all, not both.');
    const entries = o.all ? await svc.registry.list('job') : [await svc.registry.require('job', name!)];
    const stopped = [];
    for (const e of entries) stopped.push({ name: e.name, how: await svc.stop(e, o.grace) });
    if (o.json) return printJson(stopped);
    if (stopped.length === 0) process.stdout.write('No jobs were running.\n');
    for (const s of stopped) process.stdout.write(`stopped job "${s.name}"${s.how === 'kill' ? ' (it ignored SIGTERM; killed)' : ''}\n`);
  });
}

/** Hidden: compresses the raw DMTCP images of a checkpoint directory after a checkpoint. */
function registerCompress(program: Command): void {
  const cmd = new Command('_compress').argument('<dir>').description('compress DMTCP images in the background');
  cmd.action(async (dir: string) => {
    const { compressDmtcpImages } = await import('../checkpoints.js');
    const r = await compressDmtcpImages(dir);
    if (r.generations) process.stdout.write(`${new Date().toISOString()} compressed ${r.generations} DMTCP generation(s) in ${dir}: ${formatBytes(r.inBytes)} -> ${formatBytes(r.outBytes)}\n`);
  });
  program.addCommand(cmd, { hidden: true });
}

/** Hidden: the watcher a detached job with --interval/--keep runs in (Jobs.watch). */
function registerWatch(program: Command): void {
  const watch = new Command('_watch').argument('<kind>').argument('<name>').description('apply retention while a detached job runs');
  watch.action(async (kind: string, name: string) => {
    const svc = await jobs();
    const entry = await svc.registry.get(kind === 'instance' ? 'instance' : 'job', name);
    if (entry) await svc.watch(entry);
  });
  program.addCommand(watch, { hidden: true });
}

/** The store's only checkpoint (for `ckpt restart` without a name). */
function onlyCheckpoint(svc: Jobs): string {
  const all = svc.store.listCheckpoints();
  if (all.length === 1) return all[0]!;
  if (all.length === 0) throw new CkptError('ERR_CKPT_NOT_FOUND', `There are no checkpoints in ${svc.store.checkpointsDir}; name a checkpoint directory to restart.`);
  throw new CkptError('ERR_CKPT_USAGE', `Several checkpoints exist (${all.join(', ')}): name the one to restart.`);
}

async function pickJob(svc: Jobs, name: string | undefined): Promise<RegistryEntry> {
  if (name) {
    const { validateName } = await import('../store.js');
    return svc.registry.require('job', validateName(name, 'job'));
  }
  const all = await svc.registry.list('job');
  if (all.length === 1) return all[0]!;
  if (all.length === 0) throw new CkptError('ERR_CKPT_NOT_FOUND', 'No job is running. Start one with `ckpt launch -- CMD`, or see `ckpt instance list` for instances.');
  throw new CkptError('ERR_CKPT_USAGE', `Several jobs run (${all.map((e) => e.name).join(', ')}): name the one to checkpoint.`);
}

function signalNumber(sig: NodeJS.Signals): number {
  return os.constants.signals[sig] ?? 1;
}
