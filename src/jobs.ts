/**
 * Running, checkpointing, restarting and stopping jobs (`ckpt launch`) and
 * instances (`ckpt instance start`). One code path for both: a job is an
 * instance on the host that may stay in the foreground.
 *
 * Order of a start: validate everything (names, engine, image, restart
 * source) -> reserve the name in the registry -> start a coordinator on a
 * free port -> start the job (directly, or under bwrap) -> record its
 * processes -> wait until its processes joined the coordinator.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { applyRetention, chooseRestart, compressDmtcpImages, expandDmtcpImages, newestCompleteGeneration, recordedStopMs, scanGenerations, withImagesLock, type GenerationInfo } from './checkpoints.js';
import { coordinatorCommand, startCoordinator, stopCoordinator, type CommandReply } from './coordproc.js';
import type { Engine, EngineContext, ExecSpec, RestartSource } from './engines/engine.js';
import { requireEngine } from './engines/engine.js';
import { CkptError } from './errors.js';
import { Registry, type CoordinatorRef, type EngineName, type EntryKind, type RegistryEntry } from './instances.js';
import { nativeBinDir, packageRoot } from './native.js';
import { ManagedProcess, stopProcess, waitForExit, type ExitInfo } from './lifecycle.js';
import { describePortOwner, isAlive, listeningPorts, portOwner, procId, processTree } from './procfs.js';
import {
  bwrapArgv,
  CONTAINER_CHECKPOINT_DIR,
  CONTAINER_ENGINE_DIR,
  CONTAINER_LIB_DIR,
  entrypoint,
  findBwrap,
  probeBwrap,
  validateImage,
  type BindMount,
} from './runtime/bwrap.js';
import { dirUsage, ensurePrivateDir, fsyncTree, securePermissions, Store, validateName, writeFileAtomic } from './store.js';

/** How often a watcher looks for new generations. */
export const WATCH_POLL_MS = 1_000;
/** How long a plain instance must survive its start to count as started. */
export const PLAIN_START_CHECK_MS = 300;
/** How long a started job has to connect to its coordinator before `start` reports failure. */
export const JOIN_TIMEOUT_MS = 60_000;
/** How long `checkpoint --kill` waits for the job to exit after its checkpoint. */
export const KILL_WAIT_MS = 30_000;
/** How long to wait for the images of a finished checkpoint to show up as a complete generation. */
export const DURABLE_WAIT_MS = 60_000;

export interface StartOptions {
  kind: EntryKind;
  name: string;
  /** 'auto' (restarts only): the engine that wrote the newest complete generation. */
  engine: EngineName | 'auto';
  /** Host: the command. Container: the arguments appended to the start script. */
  command: string[];
  /** Root-filesystem directory, or null for the host. */
  image: string | null;
  binds?: BindMount[];
  /** Named checkpoint to write into (created if missing when `createCheckpoint`). */
  checkpoint: string | null;
  /** Explicit checkpoint directory (`--ckptdir`), used when `checkpoint` is null. */
  ckptdir?: string | null;
  createCheckpoint?: boolean;
  interval?: number | null;
  keep?: number | null;
  /** Restart from this checkpoint instead of launching. */
  restart?: { generation?: number } | null;
  /** Return at once (instances always do). */
  detach: boolean;
  /** Set internally: this start created the named checkpoint (removed again if it stays empty). */
  createdCheckpoint?: boolean;
  coordPort?: number;
  /** Extra environment for the job. */
  env?: NodeJS.ProcessEnv;
  /** Called with progress messages for people. */
  onStep?: (message: string) => void;
}

interface Started {
  entry: RegistryEntry;
  restartedFrom: RestartSource | null;
  proc: ManagedProcess;
}

export interface StartResult {
  entry: RegistryEntry;
  restartedFrom: RestartSource | null;
  /** Foreground runs: how the job ended. */
  exit?: ExitInfo;
}

/**
 * What ckpt remembers about the job in its checkpoint directory
 * (`.ckpt-job.json`): where its output went (a restored process reopens the
 * same file, so the restarted instance's log is that file) and the TCP ports
 * it listened on at the last checkpoint (checked before a restart), and the
 * command it was launched with (shown by `ckpt status` after a restart).
 */
export interface JobMeta {
  log: string | null;
  ports: number[];
  command: string[];
}
const META_FILE = '.ckpt-job.json';

/**
 * For a container image: its checked root and a bubblewrap that works here;
 * both null for a host job.
 */
function containerSetup(image: string | null | undefined): { root: string | null; bwrap: string | null } {
  if (!image) return { root: null, bwrap: null };
  const root = validateImage(image);
  const bwrap = findBwrap();
  const why = probeBwrap(bwrap);
  if (why) throw new CkptError('ERR_CKPT_UNSUPPORTED', why);
  return { root, bwrap };
}

export function readJobMeta(ckptdir: string): JobMeta {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(ckptdir, META_FILE), 'utf8')) as Partial<JobMeta>;
    return {
      log: typeof m.log === 'string' ? m.log : null,
      ports: Array.isArray(m.ports) ? m.ports.filter((p) => Number.isInteger(p)) : [],
      command: Array.isArray(m.command) ? m.command.filter((a): a is string => typeof a === 'string') : [],
    };
  } catch {
    return { log: null, ports: [], command: [] };
  }
}

function writeJobMeta(ckptdir: string, meta: JobMeta): void {
  writeFileAtomic(path.join(ckptdir, META_FILE), `${JSON.stringify(meta)}\n`);
}

/** Where a container sees its output file (bound from the host; stable across restarts). */
const CONTAINER_LOG = '/.ckpt-log/output.log';

export class Jobs {
  readonly store: Store;
  readonly registry: Registry;

  constructor(store: Store = new Store()) {
    this.store = store;
    this.registry = new Registry(store);
  }

  /** Resolves the checkpoint directory of a start; creates it when allowed. */
  private resolveCheckpointDir(opts: StartOptions): string {
    if (opts.checkpoint) {
      if (this.store.hasCheckpoint(opts.checkpoint)) return this.store.checkpointDir(opts.checkpoint);
      if (opts.createCheckpoint) return this.store.createCheckpoint(opts.checkpoint);
      return this.store.requireCheckpoint(opts.checkpoint);
    }
    if (!opts.ckptdir) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'No checkpoint name or directory given.');
    const dir = path.resolve(opts.ckptdir);
    if (opts.restart) {
      if (!fs.existsSync(dir)) throw new CkptError('ERR_CKPT_NOT_FOUND', `Checkpoint directory ${dir} does not exist.`);
      return dir;
    }
    return ensurePrivateDir(dir);
  }

  /**
   * Starts an instance without checkpoint control (Apptainer's plain
   * `instance start IMAGE NAME`): no coordinator, no engine.
   */
  async startPlain(opts: StartOptions): Promise<StartResult> {
    validateName(opts.name, opts.kind);
    if (!opts.image && opts.command.length === 0) {
      throw new CkptError('ERR_CKPT_USAGE', 'No command given: put it after `--`.');
    }
    const { root, bwrap } = containerSetup(opts.image);
    const runDir = this.store.runDir(opts.kind, opts.name);
    const log = path.join(runDir, 'output.log');
    const entry: RegistryEntry = {
      kind: opts.kind,
      name: opts.name,
      engine: null,
      leader: procId(process.pid)!,
      pgid: null,
      coordinator: { host: '127.0.0.1', port: 0, proc: null, portFile: null },
      checkpoint: null,
      checkpointDir: null,
      image: root,
      command: opts.command,
      runDir,
      log,
      ports: [],
      keep: null,
      interval: null,
      detached: true,
      startedAt: new Date().toISOString(),
      restartedFrom: null,
    };
    await this.registry.add(entry);
    let proc: ManagedProcess | null = null;
    try {
      const argv = root
        ? bwrapArgv(bwrap!, {
            root,
            checkpointDir: null,
            engineDir: null,
            libDir: null,
            binds: [...(opts.binds ?? []), { source: log, target: CONTAINER_LOG, readOnly: false }],
            command: ['/bin/sh', '-c', `exec >>${CONTAINER_LOG} 2>&1 && exec "$@"`, 'ckpt-output', ...entrypoint(root, opts.command)],
          })
        : opts.command;
      const fd = fs.openSync(log, 'a', 0o600);
      proc = new ManagedProcess({ argv, env: { ...process.env, ...opts.env, CKPT_NAME: opts.name, CKPT_KIND: opts.kind }, detached: true, stdio: ['ignore', fd, fd] });
      try {
        await proc.start();
      } finally {
        fs.closeSync(fd);
      }
      entry.leader = proc.id ?? entry.leader;
      entry.pgid = proc.pid;
      await this.registry.update(entry.kind, entry.name, { leader: entry.leader, pgid: entry.pgid });
      // Give a broken start script a moment to fail visibly.
      await sleep(PLAIN_START_CHECK_MS);
      if (proc.exitStatus) {
        const tail = readTail(log);
        throw new CkptError('ERR_CKPT_IO', `The instance "${opts.name}" exited at start (exit code ${proc.exitStatus.code}).${tail ? `\n--- ${log} ---\n${tail}` : ''}`);
      }
      proc.unref();
      void this.refreshPorts(entry);
      return { entry, restartedFrom: null };
    } catch (err) {
      if (proc?.pid && !proc.exitStatus) await proc.stop(2_000).catch(() => {});
      await this.registry.remove(entry.kind, entry.name).catch(() => {});
      throw err;
    }
  }

  /** Starts a job or instance (see the module comment for the order). */
  async start(opts: StartOptions): Promise<StartResult> {
    validateName(opts.name, opts.kind);
    if (opts.checkpoint !== null) validateName(opts.checkpoint, 'checkpoint');
    if (!opts.image && opts.command.length === 0 && !opts.restart) {
      throw new CkptError('ERR_CKPT_USAGE', 'No command given: put it after `--`, e.g. `ckpt launch -- ./my-program arg`.');
    }
    const { root, bwrap } = containerSetup(opts.image);
    // Fail on an empty, incomplete or foreign checkpoint before anything starts.
    const label = opts.checkpoint ? `Checkpoint "${opts.checkpoint}"` : `Directory ${opts.ckptdir}`;
    if (opts.restart && opts.checkpoint) this.store.requireCheckpoint(opts.checkpoint);
    // A named engine is checked before anything is created on disk.
    if (opts.engine !== 'auto') await requireEngine(opts.engine);
    const created = Boolean(opts.checkpoint && opts.createCheckpoint && !this.store.hasCheckpoint(opts.checkpoint));
    const ckptdir = this.resolveCheckpointDir(opts);
    let engineName: EngineName = opts.engine === 'auto' ? 'builtin' : opts.engine;
    if (opts.engine === 'auto' && opts.restart) {
      // Restart with the engine that wrote the images.
      const newest = await newestCompleteGeneration(ckptdir).catch(() => null);
      if (newest) engineName = newest.format === 'dmtcp' ? 'dmtcp' : 'builtin';
    }
    const engine = await requireEngine(engineName);
    opts = { ...opts, engine: engineName, createdCheckpoint: created };
    if (opts.restart && engine.name === 'dmtcp') {
      // Compressed DMTCP images are expanded for dmtcp_restart, and the
      // background compressor must not touch them until the job runs again.
      return this.relayed(opts, async (relay) => this.afterStart(opts, await withImagesLock(ckptdir, () => this.startIn(opts, engine, ckptdir, root, bwrap, label, relay))));
    }
    return this.relayed(opts, async (relay) => this.afterStart(opts, await this.startIn(opts, engine, ckptdir, root, bwrap, label, relay)));
  }

  /** Foreground runs relay signals from the start on (see SignalRelay). */
  private async relayed<T>(opts: StartOptions, fn: (relay: SignalRelay | null) => Promise<T>): Promise<T> {
    if (opts.detach) return fn(null);
    const relay = new SignalRelay().install();
    try {
      return await fn(relay);
    } finally {
      relay.uninstall();
    }
  }

  /** Reserves the name, starts the coordinator and the job, and waits until the job has joined. */
  private async startIn(
    opts: StartOptions,
    engine: Engine,
    ckptdir: string,
    root: string | null,
    bwrap: string | null,
    label: string,
    relay: SignalRelay | null,
  ): Promise<Started> {
    const step = opts.onStep ?? (() => {});
    let source = opts.restart ? await chooseRestart(ckptdir, { generation: opts.restart.generation, formats: engine.formats, label }) : null;
    if (source) await this.checkPortsFree(ckptdir);
    let expanded: string[] = [];
    if (source && source.format === 'dmtcp') {
      const x = await expandDmtcpImages(ckptdir, source.images);
      source = { ...source, images: x.images };
      expanded = x.created;
    }

    const runDir = this.store.runDir(opts.kind, opts.name);
    const meta = readJobMeta(ckptdir);
    // A restored process writes to the file its output went to before; keep using that log.
    const log = !opts.detach ? null : source && meta.log && fs.existsSync(path.dirname(meta.log)) ? meta.log : path.join(runDir, 'output.log');
    const self = procId(process.pid)!;
    const entry: RegistryEntry = {
      kind: opts.kind,
      name: opts.name,
      engine: engine.name,
      leader: self,
      pgid: null,
      coordinator: { host: '127.0.0.1', port: 0, proc: null, portFile: null },
      checkpoint: opts.checkpoint,
      checkpointDir: ckptdir,
      image: root,
      // A restart has no command of its own: show the one the job was launched with.
      command: opts.command.length > 0 || !source ? opts.command : meta.command,
      runDir,
      log,
      ports: [],
      keep: opts.keep ?? null,
      interval: opts.interval ?? null,
      detached: opts.detach,
      startedAt: new Date().toISOString(),
      restartedFrom: source ? { dir: source.dir, generation: source.generation } : null,
      createdCheckpoint: Boolean(opts.createdCheckpoint),
    };
    try {
      await this.registry.add(entry);
    } catch (err) {
      await this.dropEmptyCheckpoint(entry);
      throw err;
    }
    let coord: CoordinatorRef | null = null;
    let proc: ManagedProcess | null = null;
    try {
      step(`starting a coordinator`);
      coord = (await this.joinable(opts.coordPort)) ?? await startCoordinator({
        ckptdir,
        runDir,
        port: opts.coordPort ?? 0,
        interval: opts.interval ?? 0,
        dmtcpBinDir: engine.name === 'dmtcp' ? path.join(engine.hostDir(), 'bin') : null,
      });
      entry.coordinator = coord;
      await this.registry.update(entry.kind, entry.name, { coordinator: coord });
      step(`coordinator listening on ${coord.host}:${coord.port}`);

      const ctx: EngineContext = {
        coordHost: coord.host,
        coordPort: coord.port,
        ckptdir: root ? CONTAINER_CHECKPOINT_DIR : ckptdir,
        engineDir: root ? CONTAINER_ENGINE_DIR : engine.hostDir(),
        libDir: root ? CONTAINER_LIB_DIR : nativeBinDir(),
        container: root !== null,
      };
      const command = root ? entrypoint(root, opts.command) : opts.command;
      const spec: ExecSpec = source ? await engine.restart(ctx, source) : engine.launch(ctx, command);
      if (!source) writeJobMeta(ckptdir, { log, ports: [], command: opts.command });
      // In a container the output file is opened inside, at a fixed path, so
      // the path an engine records is valid in the next container too.
      const inner = root && log ? ['/bin/sh', '-c', `exec >>${CONTAINER_LOG} 2>&1 && exec "$@"`, 'ckpt-output', ...spec.argv] : spec.argv;
      const argv = root
        ? bwrapArgv(bwrap!, {
            root,
            checkpointDir: ckptdir,
            engineDir: engine.hostDir(),
            libDir: nativeBinDir(),
            binds: [...(opts.binds ?? []), ...(log ? [{ source: log, target: CONTAINER_LOG, readOnly: false }] : [])],
            command: inner,
            capAdd: spec.capAdd,
            // The engine's variables (LD_PRELOAD and friends name container
            // paths) apply inside the container, not to bwrap itself.
            env: spec.env,
          })
        : spec.argv;
      const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, CKPT_NAME: opts.name, CKPT_KIND: opts.kind };
      if (!root) {
        for (const [k, v] of Object.entries(spec.env)) {
          if (v === undefined) delete env[k];
          else env[k] = v;
        }
      }
      let stdio: 'inherit' | ['ignore', number, number] = 'inherit';
      let logFd: number | null = null;
      if (entry.log) {
        fs.mkdirSync(path.dirname(entry.log), { recursive: true, mode: 0o700 });
        logFd = fs.openSync(entry.log, 'a', 0o600);
        stdio = ['ignore', logFd, logFd];
      }
      step(source ? `restarting generation ${source.generation} from ${ckptdir}` : `starting ${command.join(' ')}`);
      proc = new ManagedProcess({ argv, env, detached: opts.detach, stdio });
      try {
        await proc.start();
      } finally {
        if (logFd !== null) fs.closeSync(logFd);
      }
      const leader = proc.id;
      if (!leader) throw new CkptError('ERR_CKPT_IO', `The job exited at once${entry.log ? `; see ${entry.log}` : ''}.`);
      relay?.attach(leader.pid);
      entry.leader = leader;
      entry.pgid = opts.detach ? leader.pid : null;
      await this.registry.update(entry.kind, entry.name, { leader, pgid: entry.pgid });

      try {
        await this.waitJoined(entry, proc, source !== null);
      } finally {
        // The restored processes no longer need the expanded copies; the compressed images stay.
        for (const f of expanded) fs.rmSync(f, { force: true });
      }
      step(source ? 'restarted' : 'running');
      void this.refreshPorts(entry);
      return { entry, restartedFrom: source, proc };
    } catch (err) {
      if (proc?.pid && !proc.exitStatus) await proc.stop(2_000).catch(() => {});
      if (coord) await stopCoordinator(coord).catch(() => {});
      await this.registry.remove(entry.kind, entry.name).catch(() => {});
      await this.dropEmptyCheckpoint(entry);
      throw err;
    }
  }

  /**
   * A named checkpoint that `launch` created for a job that ended without
   * ever checkpointing is removed, so short runs leave no clutter. Only ever
   * an auto-created one, and only when the indexer finds no image in it.
   */
  private async dropEmptyCheckpoint(entry: RegistryEntry): Promise<void> {
    if (!entry.createdCheckpoint || !entry.checkpoint || !entry.checkpointDir) return;
    try {
      if ((await scanGenerations(entry.checkpointDir)).length > 0) return;
      if ((await this.registry.usersOf(entry.checkpoint)).length > 0) return;
      await this.store.deleteCheckpoint(entry.checkpoint);
    } catch {
      /* best effort: an empty directory is harmless */
    }
  }

  /** After the job runs: return at once (detached) or stay with it until it ends. */
  private async afterStart(opts: StartOptions, started: Started): Promise<StartResult> {
    const { entry, restartedFrom, proc } = started;
    if (opts.detach) {
      proc.unref();
      if (entry.keep || entry.interval) spawnHelper(this.store, ['_watch', entry.kind, entry.name]);
      return { entry, restartedFrom };
    }
    try {
      const exit = await this.foreground(entry, proc);
      return { entry, restartedFrom, exit };
    } catch (err) {
      if (!proc.exitStatus) await proc.stop(2_000).catch(() => {});
      throw err;
    }
  }

  /**
   * `--coord-port P` names a port: when a coordinator already answers there,
   * the job joins it (ckpt will not stop a coordinator it did not start);
   * when something else holds it, startCoordinator explains who.
   */
  private async joinable(port: number | undefined): Promise<CoordinatorRef | null> {
    if (!port || !portOwner(port)) return null;
    const ref: CoordinatorRef = { host: '127.0.0.1', port, proc: null, portFile: null };
    try {
      const reply = await coordinatorCommand(ref, ['s'], { timeoutMs: 3_000 });
      return reply.command_status === 'DMT_COORD_SUCCESS' ? ref : null;
    } catch {
      return null;
    }
  }

  /** Refuses a restart when a port the checkpointed job listened on is taken. */
  private async checkPortsFree(ckptdir: string): Promise<void> {
    for (const port of readJobMeta(ckptdir).ports) {
      const owner = portOwner(port);
      if (owner) {
        const who = owner.pid ? (await this.registry.list()).find((e) => processTree(e.leader.pid).includes(owner.pid!)) : undefined;
        const hint = who ? ` That is ${who.kind} "${who.name}": stop it first (\`ckpt ${who.kind === 'instance' ? 'instance stop' : 'stop'} ${who.name}\`).` : ' Stop that process first.';
        throw new CkptError('ERR_CKPT_ADDR_IN_USE', `Cannot restart: the checkpointed job listens on port ${port}, but ${describePortOwner(owner)}.${hint}`);
      }
    }
  }

  /**
   * Waits until the job's processes have joined the coordinator (and, on a
   * restart, are running again); fails with the log's tail if the job exits.
   */
  private async waitJoined(entry: RegistryEntry, proc: ManagedProcess, restart: boolean): Promise<void> {
    const deadline = Date.now() + JOIN_TIMEOUT_MS;
    for (;;) {
      if (proc.exitStatus) {
        const tail = entry.log ? readTail(entry.log) : '';
        const how = proc.exitStatus.signal ? `signal ${proc.exitStatus.signal}` : `exit code ${proc.exitStatus.code}`;
        // A short job may legitimately finish before we look: in the
        // foreground its exit status is the result.
        if (!entry.detached && !restart) return;
        throw new CkptError(
          restart ? 'ERR_CKPT_CORRUPT' : 'ERR_CKPT_IO',
          `The ${entry.kind} "${entry.name}" ${restart ? 'failed to restart' : 'exited at start'} (${how}).${tail ? `\n--- ${entry.log} ---\n${tail}` : ''}`,
        );
      }
      let reply: CommandReply | null = null;
      try {
        reply = await coordinatorCommand(entry.coordinator, ['s'], { timeoutMs: 5_000 });
      } catch {
        /* coordinator busy or starting; retry */
      }
      if (reply && (reply.num_peers ?? 0) > 0 && (!restart || reply.running)) return;
      if (Date.now() > deadline) {
        throw new CkptError(
          'ERR_CKPT_TIMEOUT',
          `The ${entry.kind} "${entry.name}" did not connect to its coordinator within ${JOIN_TIMEOUT_MS / 1000} s${entry.log ? `; see ${entry.log}` : ''}.`,
        );
      }
      await sleep(50);
    }
  }

  /** Foreground: forward signals, apply retention after interval checkpoints, clean up at exit. */
  private async foreground(entry: RegistryEntry, proc: ManagedProcess): Promise<ExitInfo> {
    const stop = new AbortController();
    const watcher = this.watch(entry, stop.signal);
    try {
      return await proc.wait();
    } finally {
      stop.abort();
      await watcher;
      await stopCoordinator(entry.coordinator).catch(() => {});
      await this.registry.remove(entry.kind, entry.name, entry.leader).catch(() => {});
      await this.finalRetention(entry);
      await this.dropEmptyCheckpoint(entry);
    }
  }

  /** Once the job is gone, `--keep` applies to what its last (interval) checkpoints left. */
  private async finalRetention(entry: RegistryEntry): Promise<void> {
    if (!entry.keep || !entry.checkpointDir) return;
    await applyRetention(entry.checkpointDir, entry.keep).catch(() => []);
  }

  /**
   * While the job runs: after every new complete generation (interval
   * checkpoints included) restrict the images' permissions and apply
   * `--keep`. Foreground runs do this in the ckpt process; detached runs
   * with --interval or --keep in a `ckpt _watch` process.
   */
  async watch(entry: RegistryEntry, signal?: AbortSignal): Promise<void> {
    const dir = entry.checkpointDir;
    if ((!entry.keep && !entry.interval) || !dir) return;
    let last: string | null = null;
    while (!signal?.aborted && isAlive(entry.leader)) {
      await sleep(WATCH_POLL_MS, undefined, { signal }).catch(() => {});
      if (signal?.aborted) break;
      try {
        const g = await newestCompleteGeneration(dir);
        const key = g ? `${g.computation}/${g.generation}` : null;
        if (g && key !== last) {
          last = key;
          securePermissions(dir);
          if (entry.keep) await applyRetention(dir, entry.keep);
          if (g.format === 'dmtcp') await compressDmtcpImages(dir);
        }
      } catch {
        /* the next round retries */
      }
    }
  }

  /** Records the TCP ports the job listens on (shown by list; checked before restarts). */
  async refreshPorts(entry: RegistryEntry): Promise<number[]> {
    if (!isAlive(entry.leader)) return entry.ports;
    const coordPid = entry.coordinator.proc?.pid;
    const ports = listeningPorts(processTree(entry.leader.pid).filter((p) => p !== coordPid)).filter((p) => p !== entry.coordinator.port);
    entry.ports = ports;
    await this.registry.update(entry.kind, entry.name, { ports }).catch(() => null);
    return ports;
  }

  /**
   * Checkpoints a running job or instance and returns once the images are
   * durable (a complete, committed generation newer than before exists).
   */
  async checkpoint(entry: RegistryEntry, opts: { kill?: boolean; timeoutMs?: number; onStep?: (m: string) => void } = {}): Promise<CheckpointResult> {
    const step = opts.onStep ?? (() => {});
    if (!entry.engine || !entry.checkpointDir) {
      throw new CkptError(
        'ERR_CKPT_STATE',
        `The ${entry.kind} "${entry.name}" runs without checkpoint control (started without --dmtcp-launch/--dmtcp-restart), so it cannot be checkpointed.`,
      );
    }
    const checkpointDir = entry.checkpointDir;
    const engine = await requireEngine(entry.engine);
    const before = await newestCompleteGeneration(checkpointDir).catch(() => null);
    const ports = await this.refreshPorts(entry);
    const started = Date.now();
    step(opts.kill ? 'checkpointing, then stopping' : 'checkpointing');
    const reply = await coordinatorCommand(entry.coordinator, [opts.kill ? 'kc' : 'bc'], { timeoutMs: opts.timeoutMs ?? 0 });
    if (reply.command_status === 'DMT_COORD_NOT_RUNNING') {
      throw new CkptError(
        'ERR_CKPT_STATE',
        `The ${entry.kind} "${entry.name}" cannot be checkpointed now: a checkpoint is already in progress, or none of its processes is connected. Retry in a moment; see \`ckpt ${entry.kind === 'instance' ? 'instance list' : 'status'}\`.`,
      );
    }
    if (reply.command_status !== 'DMT_COORD_SUCCESS') {
      throw new CkptError('ERR_CKPT_PROTOCOL', `The coordinator refused the checkpoint (${reply.command_status}).`);
    }
    const roundTripMs = Date.now() - started;
    if (opts.kill) {
      step('waiting for the job to exit');
      if (!(await waitForExit(entry.leader, KILL_WAIT_MS))) {
        await stopProcess(entry.leader, { group: entry.pgid });
      }
    }
    step('waiting for the images to be durable');
    const gen = await this.waitDurable(checkpointDir, before, engine, opts.timeoutMs, started);
    if (gen.format === 'dmtcp') {
      // DMTCP renames its raw images into place without fsync: make them durable
      // (images, saved files, restart script, directories) before saying so.
      for (const d of new Set(gen.processes.map((p) => path.dirname(path.join(checkpointDir, p.path))))) fsyncTree(d);
      fsyncTree(checkpointDir, { depth: 0 });
    }
    const totalMs = Date.now() - started;
    // The blocking round trip is the freeze only when the processes stay
    // stopped until their images are written (DMTCP, the built-in engine's
    // stopped mode); forked checkpoints resume first and record how long
    // they were stopped in their image headers.
    const recorded = recordedStopMs(gen);
    const freezeMs = recorded !== null ? Math.round(recorded * 100) / 100 : roundTripMs;
    securePermissions(checkpointDir);
    writeJobMeta(checkpointDir, { log: entry.log, ports, command: entry.command });
    let removed: string[] = [];
    if (entry.keep) removed = await applyRetention(checkpointDir, entry.keep);
    if (gen.format === 'dmtcp' && gen.processes.some((p) => p.encoding === 'raw')) spawnHelper(this.store, ['_compress', checkpointDir]);
    if (opts.kill) {
      await stopCoordinator(entry.coordinator).catch(() => {});
      await this.registry.remove(entry.kind, entry.name, entry.leader).catch(() => {});
    }
    const bytes = gen.bytes;
    return {
      name: entry.name,
      kind: entry.kind,
      checkpoint: entry.checkpoint,
      dir: checkpointDir,
      generation: gen.generation,
      computation: gen.computation,
      processes: gen.processes.length,
      images: gen.processes.map((p) => path.resolve(checkpointDir, p.path)),
      bytes,
      freezeMs,
      freezeSource: recorded !== null ? 'engine' : 'round-trip',
      totalMs,
      bandwidthBytesPerSec: totalMs > 0 ? Math.round((bytes * 1000) / totalMs) : null,
      killed: Boolean(opts.kill),
      removedByRetention: removed,
    };
  }

  private async waitDurable(checkpointDir: string, before: GenerationInfo | null, engine: Engine, timeoutMs: number | undefined, since: number): Promise<GenerationInfo> {
    const wait = timeoutMs && timeoutMs > 0 ? timeoutMs : DURABLE_WAIT_MS;
    const deadline = Date.now() + wait;
    let last: GenerationInfo | null = null;
    for (;;) {
      last = await newestCompleteGeneration(checkpointDir);
      if (last && (!before || last.generation !== before.generation || last.computation !== before.computation)) {
        if (engine.formats.includes(last.format)) return last;
      }
      // The built-in engine refuses what it cannot checkpoint with a reason file; the job continues.
      const refusal = findRefusal(checkpointDir, since);
      if (refusal) {
        throw new CkptError('ERR_CKPT_UNSUPPORTED', `${refusal.text} (${refusal.path}). The job keeps running; nothing was checkpointed.`);
      }
      if (Date.now() > deadline) {
        throw new CkptError(
          'ERR_CKPT_INCOMPLETE',
          `The checkpoint finished but no new complete generation appeared in ${checkpointDir} within ${wait / 1000} s; see \`ckpt images ${checkpointDir}\`.`,
        );
      }
      await sleep(25);
    }
  }

  /** Stops a job or instance: SIGTERM to its process group, SIGKILL after the grace period, then its coordinator. */
  async stop(entry: RegistryEntry, timeoutMs?: number): Promise<'term' | 'kill' | 'gone'> {
    const how = await stopProcess(entry.leader, { group: entry.pgid, timeoutMs });
    await stopCoordinator(entry.coordinator).catch(() => {});
    await this.registry.remove(entry.kind, entry.name, entry.leader);
    await this.finalRetention(entry);
    await this.dropEmptyCheckpoint(entry);
    return how;
  }

  /** Status of one entry for `list`/`status`: coordinator view and resources. */
  async describe(entry: RegistryEntry): Promise<EntryStatus> {
    let reply: CommandReply | null = null;
    if (entry.coordinator.port > 0) {
      try {
        reply = await coordinatorCommand(entry.coordinator, ['s'], { timeoutMs: 3_000 });
      } catch {
        reply = null;
      }
    }
    const newest = entry.checkpointDir ? await newestCompleteGeneration(entry.checkpointDir).catch(() => null) : null;
    return {
      kind: entry.kind,
      name: entry.name,
      engine: entry.engine,
      pid: entry.leader.pid,
      coordinator: `${entry.coordinator.host}:${entry.coordinator.port}`,
      coordinatorPort: entry.coordinator.port,
      processes: reply?.num_peers ?? null,
      running: reply ? Boolean(reply.running) : null,
      ports: entry.ports,
      checkpoint: entry.checkpoint,
      checkpointDir: entry.checkpointDir,
      image: entry.image,
      log: entry.log,
      startedAt: entry.startedAt,
      lastGeneration: newest?.generation ?? null,
      checkpointBytes: entry.checkpointDir ? dirUsage(entry.checkpointDir).bytes : 0,
      command: entry.command,
    };
  }
}

export interface CheckpointResult {
  name: string;
  kind: EntryKind;
  checkpoint: string | null;
  dir: string;
  generation: number;
  computation: string;
  processes: number;
  images: string[];
  bytes: number;
  /**
   * How long the job was stopped: as the engine recorded it (the built-in
   * engine's forked checkpoints, which resume before writing), otherwise the
   * blocking checkpoint round trip (request until the job ran again).
   */
  freezeMs: number;
  /** Where freezeMs comes from: 'engine' (image headers) or 'round-trip'. */
  freezeSource: 'engine' | 'round-trip';
  /** Until the images were durable. */
  totalMs: number;
  bandwidthBytesPerSec: number | null;
  killed: boolean;
  removedByRetention: string[];
}

export interface EntryStatus {
  kind: EntryKind;
  name: string;
  engine: EngineName | null;
  pid: number;
  coordinator: string;
  coordinatorPort: number;
  processes: number | null;
  running: boolean | null;
  ports: number[];
  checkpoint: string | null;
  checkpointDir: string | null;
  image: string | null;
  log: string | null;
  startedAt: string;
  lastGeneration: number | null;
  checkpointBytes: number;
  command: string[];
}

/**
 * Relays the signals a foreground ckpt receives (a batch system's SIGTERM,
 * SIGHUP) to every process of its job, from the moment the start begins: a
 * signal that arrives before the job exists is delivered once it does. A
 * terminal's Ctrl-C already reaches the job (same process group), so SIGINT is
 * only relayed when stdin is not a terminal.
 */
class SignalRelay {
  private target: number | null = null;
  private pending: NodeJS.Signals[] = [];
  private readonly signals: NodeJS.Signals[] = process.stdin.isTTY ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  private readonly handler = (sig: NodeJS.Signals) => this.deliver(sig);
  private readonly ignore = () => {};

  install(): this {
    for (const s of this.signals) process.on(s, this.handler);
    if (process.stdin.isTTY) process.on('SIGINT', this.ignore);
    return this;
  }

  uninstall(): void {
    for (const s of this.signals) process.off(s, this.handler);
    process.off('SIGINT', this.ignore);
  }

  /** The job's first process: from now on signals go to its whole tree. */
  attach(pid: number): void {
    this.target = pid;
    for (const sig of this.pending.splice(0)) this.deliver(sig);
  }

  /** True when a signal arrived (the start should give up if the job does not exist yet). */
  get signalled(): boolean {
    return this.pending.length > 0;
  }

  private deliver(sig: NodeJS.Signals): void {
    if (this.target === null) {
      this.pending.push(sig);
      return;
    }
    for (const pid of processTree(this.target)) {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone meanwhile */
      }
    }
  }
}

/** A `<process>.error` file the built-in engine wrote at or after `since` (ms), up to 3 levels down. */
function findRefusal(dir: string, since: number): { path: string; text: string } | null {
  const walk = (d: string, depth: number): { path: string; text: string } | null => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return null;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isFile() && e.name.endsWith('.error')) {
        try {
          if (fs.statSync(p).mtimeMs >= since - 1000) return { path: p, text: fs.readFileSync(p, 'utf8').trim() || 'checkpoint refused' };
        } catch {
          /* removed meanwhile */
        }
      } else if (e.isDirectory() && depth < 3) {
        const r = walk(p, depth + 1);
        if (r) return r;
      }
    }
    return null;
  };
  return walk(dir, 0);
}

/** Starts a hidden `ckpt` helper command detached, with its output in the store's run directory. */
function spawnHelper(store: Store, args: string[]): void {
  const bin = path.join(packageRoot, 'bin', 'ckpt');
  ensurePrivateDir(store.runRoot);
  const log = fs.openSync(path.join(store.runRoot, 'helpers.log'), 'a', 0o600);
  const child = spawn(process.execPath, [bin, ...args], { detached: true, stdio: ['ignore', log, log], env: { ...process.env, CKPT_HOME: store.home } });
  fs.closeSync(log);
  child.unref();
}

function readTail(file: string, max = 1500): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-max).trim();
  } catch {
    return '';
  }
}
