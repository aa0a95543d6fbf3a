/**
 * Apptainer's grammar: `ckpt checkpoint create|list|delete|instance` and
 * `ckpt instance start|stop|list|logs`, with the same words and arguments
 * as `apptainer checkpoint ...` / `apptainer instance ...`.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Command } from 'commander';

import { CkptError } from '../errors.js';
import type { EngineName, RegistryEntry } from '../instances.js';
import type { Jobs } from '../jobs.js';
import { checkpointCommand, describeCheckpoint, runCheckpoint } from './jobs.js';
import { addOptions } from './options.js';
import { formatBytes, printJson, table } from './output.js';
import { formatAge, progress } from './progress.js';

async function jobs(): Promise<Jobs> {
  const { Jobs } = await import('../jobs.js');
  return new Jobs();
}

export interface CheckpointSummary {
  name: string;
  path: string;
  bytes: number;
  generations: number;
  newestGeneration: number | null;
  lastCheckpoint: string | null;
  inUseBy: string[];
}

async function summarize(svc: Jobs, name: string, users: RegistryEntry[]): Promise<CheckpointSummary> {
  const { dirUsage } = await import('../store.js');
  const { scanGenerations } = await import('../checkpoints.js');
  const dir = svc.store.checkpointDir(name);
  const gens = await scanGenerations(dir).catch(() => []);
  const complete = gens.filter((g) => g.complete);
  const newest = complete[0] ?? null;
  const usage = dirUsage(dir);
  const t = newest?.timeMs ?? (complete.length ? usage.newestMtimeMs : null);
  return {
    name,
    path: dir,
    bytes: usage.bytes,
    generations: complete.length,
    newestGeneration: newest?.generation ?? null,
    lastCheckpoint: t ? new Date(t).toISOString() : null,
    inUseBy: users.filter((u) => u.checkpoint === name).map((u) => `${u.kind === 'instance' ? 'instance' : 'job'}:${u.name}`),
  };
}

function registerCheckpointGroup(program: Command): void {
  const group = checkpointCommand(program);

  const create = group.command('create').description('create an empty named checkpoint').argument('<name>', 'checkpoint name');
  addOptions(create, ['json']);
  create.addHelpText('after', `\nNames: 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit.\n\nExamples:\n  ckpt checkpoint create example\n  ckpt instance start --dmtcp-launch example ./rootfs server 8080`);
  create.action(async (name: string, _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<{ json?: boolean }>();
    const svc = await jobs();
    const dir = svc.store.createCheckpoint(name);
    if (o.json) printJson({ name, path: dir });
    else process.stdout.write(`created checkpoint "${name}" (${dir})\n`);
  });

  const list = group.command('list').description('list named checkpoints: size, generations, last checkpoint, in use by');
  addOptions(list, ['json']);
  list.addHelpText('after', '\nExamples:\n  ckpt checkpoint list\n  ckpt checkpoint list --json');
  list.action(async (_o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<{ json?: boolean }>();
    const svc = await jobs();
    const users = await svc.registry.list();
    const rows = await Promise.all(svc.store.listCheckpoints().map((n) => summarize(svc, n, users)));
    if (o.json) return printJson(rows);
    if (rows.length === 0) {
      process.stdout.write(`No checkpoints in ${svc.store.checkpointsDir}. Create one with \`ckpt checkpoint create NAME\`.\n`);
      return;
    }
    process.stdout.write(
      table(
        ['NAME', 'SIZE', 'GENERATIONS', 'LAST CHECKPOINT', 'IN USE BY'],
        rows.map((r) => [r.name, formatBytes(r.bytes), String(r.generations), r.lastCheckpoint ? formatAge(Date.now() - Date.parse(r.lastCheckpoint)) : '-', r.inUseBy.join(', ') || '-']),
      ),
    );
  });

  const del = group.command('delete').description('delete a named checkpoint and its images').argument('<name>', 'checkpoint name');
  addOptions(del, ['force', 'json']);
  del.addHelpText('after', '\nRefuses while a running instance or job uses the checkpoint, unless --force.\n\nExamples:\n  ckpt checkpoint delete example\n  ckpt checkpoint delete example --force');
  del.action(async (name: string, _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<{ force?: boolean; json?: boolean }>();
    const svc = await jobs();
    svc.store.requireCheckpoint(name);
    const users = await svc.registry.usersOf(name);
    if (users.length > 0 && !o.force) {
      const who = users.map((u) => `${u.kind} "${u.name}"`).join(', ');
      const stopCmd = users.map((u) => (u.kind === 'instance' ? `ckpt instance stop ${u.name}` : `ckpt stop ${u.name}`)).join('; ');
      throw new CkptError('ERR_CKPT_BUSY', `Checkpoint "${name}" is in use by ${who}. Stop it first (${stopCmd}), or use --force. Nothing was deleted.`);
    }
    // Wait for a background compression of its images to finish first.
    const { withImagesLock } = await import('../checkpoints.js');
    await withImagesLock(svc.store.checkpointDir(name), () => svc.store.deleteCheckpoint(name));
    if (o.json) printJson({ name, deleted: true });
    else process.stdout.write(`deleted checkpoint "${name}"\n`);
  });

  const inst = group.command('instance').description('checkpoint a running instance; blocks until the images are durable').argument('<instance>', 'instance name');
  addOptions(inst, ['kill', 'timeout', 'json']);
  inst.addHelpText('after', '\nExamples:\n  ckpt checkpoint instance server\n  ckpt checkpoint instance server --kill');
  inst.action(async (name: string, _o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals<{ kill?: boolean; timeout?: number; json?: boolean }>();
    const svc = await jobs();
    const entry = await svc.registry.require('instance', name);
    if (!entry.checkpoint) {
      throw new CkptError('ERR_CKPT_STATE', `Instance "${name}" was started without --dmtcp-launch/--dmtcp-restart, so it cannot be checkpointed. Restart it with \`ckpt instance start --dmtcp-launch NAME ...\`.`);
    }
    const r = await runCheckpoint(svc, entry, o);
    if (o.json) printJson(r);
    else process.stdout.write(describeCheckpoint(r));
  });
}

function registerInstanceGroup(program: Command): void {
  const group = program.command('instance').description('run containers (or host commands) as named background instances, Apptainer style');
  group.addHelpText(
    'after',
    `
Examples:
  ckpt instance start --dmtcp-launch example ./rootfs server 8080
  ckpt instance list
  ckpt instance logs server
  ckpt instance stop server`,
  );

  const start = group
    .command('start')
    .description('start an instance from a root-filesystem directory (or --host), optionally under checkpoint control')
    .argument('<args...>', 'IMAGE INSTANCE [ARGS...], or with --host: INSTANCE -- CMD [ARGS...]');
  addOptions(start, ['dmtcpLaunch', 'dmtcpRestart', 'engine', 'host', 'bind', 'json']);
  start.addHelpText(
    'after',
    `
IMAGE is a root-filesystem directory (an Apptainer sandbox, a debootstrap tree,
an unpacked OCI image). It runs under bubblewrap in unprivileged user, pid and
mount namespaces; the checkpoint is bound at /.checkpoint, the engine
read-only at /.ckpt-engine; the entry point is /.singularity.d/startscript (or
/.ckpt/startscript) with ARGS appended. The network is the host's.

Examples:
  ckpt checkpoint create example
  ckpt instance start --dmtcp-launch example ./rootfs server 8080
  ckpt instance start --dmtcp-restart example ./rootfs restarted 8080
  ckpt instance start --dmtcp-launch example --host server -- python3 app.py 8080
  ckpt instance start --engine dmtcp --dmtcp-launch example ./rootfs server 8080`,
  );
  start.action(async (args: string[], o: { dmtcpLaunch?: string; dmtcpRestart?: string; engine: EngineName; host?: boolean; bind?: string[]; json?: boolean }, cmd: Command) => {
    // A restart without --engine uses the engine that wrote the images.
    const engine = o.dmtcpRestart && cmd.getOptionValueSource('engine') === 'default' ? 'auto' : o.engine;
    if (o.dmtcpLaunch && o.dmtcpRestart) throw new CkptError('ERR_CKPT_USAGE', 'Use either --dmtcp-launch or --dmtcp-restart, not both.');
    let image: string | null = null;
    let name: string;
    let rest: string[];
    if (o.host) {
      [name = '', ...rest] = args;
      if (rest.length === 0 && !o.dmtcpRestart) throw new CkptError('ERR_CKPT_USAGE', 'With --host give the command after --: `ckpt instance start --host NAME -- CMD [ARGS...]`.');
    } else {
      if (args.length < 2) throw new CkptError('ERR_CKPT_USAGE', 'Give IMAGE and INSTANCE: `ckpt instance start [options] IMAGE INSTANCE [ARGS...]` (or --host INSTANCE -- CMD).');
      [image = '', name = '', ...rest] = args;
    }
    const { validateName } = await import('../store.js');
    const { parseBind } = await import('../runtime/bwrap.js');
    validateName(name, 'instance');
    const checkpoint = o.dmtcpLaunch ?? o.dmtcpRestart ?? null;
    if (checkpoint) validateName(checkpoint, 'checkpoint');
    if (o.bind?.length && o.host) throw new CkptError('ERR_CKPT_USAGE', '--bind applies to containers only; drop it with --host.');
    const binds = (o.bind ?? []).map(parseBind);
    const svc = await jobs();
    if (!checkpoint) {
      // Apptainer's plain instance: no checkpoint control.
      const plain = await svc.startPlain({ kind: 'instance', name, engine: 'builtin', command: rest, image, binds, checkpoint: null, detach: true });
      const e = plain.entry;
      if (o.json) printJson({ name: e.name, pid: e.leader.pid, engine: null, image: e.image, checkpoint: null, generation: null, coordinatorPort: null, ports: e.ports, log: e.log });
      else process.stdout.write(`instance "${e.name}" started without checkpoint control (use --dmtcp-launch NAME for that); pid ${e.leader.pid}, logs: ckpt instance logs ${e.name}\n`);
      return;
    }
    const bar = progress({ quiet: o.json });
    const result = await svc
      .start({
        kind: 'instance',
        name,
        engine,
        command: rest,
        image,
        binds,
        checkpoint,
        createCheckpoint: false,
        restart: o.dmtcpRestart ? {} : null,
        detach: true,
        onStep: (m) => bar.update(m),
      })
      .finally(() => bar.done());
    const e = result.entry;
    if (o.json) {
      printJson({ name: e.name, pid: e.leader.pid, engine: e.engine, image: e.image, checkpoint: e.checkpoint, generation: result.restartedFrom?.generation ?? null, coordinatorPort: e.coordinator.port, ports: e.ports, log: e.log });
      return;
    }
    const what = result.restartedFrom ? `restarted from generation ${result.restartedFrom.generation} of "${checkpoint}"` : `started (checkpoints go to "${checkpoint}")`;
    process.stdout.write(`instance "${e.name}" ${what}; pid ${e.leader.pid}, logs: ckpt instance logs ${e.name}\n`);
  });

  const stop = group.command('stop').description('stop an instance (SIGTERM, then SIGKILL after a grace period)').argument('[instance]', 'instance name');
  addOptions(stop, ['all', 'stopTimeout', 'json']);
  stop.addHelpText('after', '\nCheckpoints are kept. Examples:\n  ckpt instance stop server\n  ckpt instance stop --all');
  stop.action(async (name: string | undefined, o: { all?: boolean; grace?: number; json?: boolean }) => {
    if (!name && !o.all) throw new CkptError('ERR_CKPT_USAGE', 'Name an instance to stop, or use --all. See `ckpt instance list`.');
    if (name && o.all) throw new CkptError('ERR_CKPT_USAGE', 'Give either a name or --all, not both.');
    const svc = await jobs();
    const entries = o.all ? await svc.registry.list('instance') : [await svc.registry.require('instance', name!)];
    const stopped = [];
    for (const e of entries) stopped.push({ name: e.name, how: await svc.stop(e, o.grace) });
    if (o.json) return printJson(stopped);
    if (stopped.length === 0) process.stdout.write('No instances were running.\n');
    for (const s of stopped) process.stdout.write(`stopped instance "${s.name}"${s.how === 'kill' ? ' (it ignored SIGTERM; killed)' : ''}\n`);
  });

  const list = group.command('list').description('list running instances');
  addOptions(list, ['json']);
  list.addHelpText('after', '\nExamples:\n  ckpt instance list\n  ckpt instance list --json');
  list.action(async (o: { json?: boolean }) => {
    const svc = await jobs();
    const entries = await svc.registry.list('instance');
    for (const e of entries) await svc.refreshPorts(e);
    const rows = entries.map((e) => ({
      name: e.name,
      pid: e.leader.pid,
      engine: e.engine,
      image: e.image ?? '(host)',
      checkpoint: e.checkpoint,
      ports: e.ports,
      coordinatorPort: e.coordinator.port,
      startedAt: e.startedAt,
      log: e.log,
    }));
    if (o.json) return printJson(rows);
    if (rows.length === 0) {
      process.stdout.write('No instances are running. Start one with `ckpt instance start`.\n');
      return;
    }
    process.stdout.write(
      table(
        ['INSTANCE', 'PID', 'ENGINE', 'IMAGE', 'CHECKPOINT', 'PORTS', 'STARTED'],
        rows.map((r) => [r.name, String(r.pid), r.engine ?? '-', r.image, r.checkpoint ?? '-', r.ports.join(',') || '-', formatAge(Date.now() - Date.parse(r.startedAt))]),
      ),
    );
  });

  const logs = group.command('logs').description("print an instance's output (stdout and stderr)").argument('<instance>', 'instance name');
  addOptions(logs, ['tail', 'follow', 'json']);
  logs.addHelpText('after', '\nExamples:\n  ckpt instance logs server\n  ckpt instance logs server -n 20 -f');
  logs.action(async (name: string, o: { lines?: number; follow?: boolean; json?: boolean }) => {
    const svc = await jobs();
    const { validateName } = await import('../store.js');
    validateName(name, 'instance');
    const entry = await svc.registry.get('instance', name);
    // Logs outlive the instance: they stay in its run directory until the name is reused.
    const logFile = entry?.log ?? `${svc.store.runRoot}/instance-${name}/output.log`;
    if (!fs.existsSync(logFile)) {
      throw new CkptError('ERR_CKPT_NOT_FOUND', `No instance named "${name}" is running and no log of one exists. See \`ckpt instance list\`.`);
    }
    let text = fs.readFileSync(logFile, 'utf8');
    if (o.lines) text = text.split('\n').slice(-(o.lines + 1)).join('\n');
    if (o.json) return printJson({ name, log: logFile, running: entry !== null, output: text });
    process.stdout.write(text);
    if (!o.follow) return;
    let offset = fs.statSync(logFile).size;
    for (;;) {
      await sleep(250);
      const size = fs.statSync(logFile).size;
      if (size > offset) {
        const fd = fs.openSync(logFile, 'r');
        const buf = Buffer.alloc(size - offset);
        fs.readSync(fd, buf, 0, buf.length, offset);
        fs.closeSync(fd);
        process.stdout.write(buf);
        offset = size;
      }
      if (entry && !(await svc.registry.get('instance', name))) return;
    }
  });
}

export function register(program: Command): void {
  registerCheckpointGroup(program);
  registerInstanceGroup(program);
}
