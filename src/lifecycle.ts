/**
 * One lifecycle interface for every process ckpt manages (jobs, containers,
 * coordinators): start / stop / send / on / off. `stop()` sends SIGTERM, then
 * SIGKILL after STOP_TIMEOUT_MS, and resolves once the process has exited.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import { CkptError } from './errors.js';
import { isAlive, procId, type ProcId } from './procfs.js';

/** Grace period between SIGTERM and SIGKILL when stopping a process. */
export const STOP_TIMEOUT_MS = 10_000;
/** How often a process we did not start is polled while waiting for it to exit. */
const POLL_MS = 20;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessSpec {
  argv: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Own process group, not killed with the parent's terminal (for --detach). */
  detached?: boolean;
  stdio?: SpawnOptions['stdio'];
}

type Events = { exit: [ExitInfo]; error: [Error] };

/** A process started by this ckpt invocation. */
export class ManagedProcess {
  private child: ChildProcess | null = null;
  private readonly events = new EventEmitter();
  private exitInfo: ExitInfo | null = null;
  private exited: Promise<ExitInfo> | null = null;
  readonly spec: ProcessSpec;

  constructor(spec: ProcessSpec) {
    if (spec.argv.length === 0 || !spec.argv[0]) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'No command to run.');
    this.spec = spec;
  }

  /** The process's stdout when spawned with a pipe. */
  get stdout(): NodeJS.ReadableStream | null {
    return this.child?.stdout ?? null;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Identity (pid + start time) of the running process. */
  get id(): ProcId | null {
    return this.child?.pid ? procId(this.child.pid) : null;
  }

  get exitStatus(): ExitInfo | null {
    return this.exitInfo;
  }

  /** Starts the process; resolves once it has been spawned (rejects if it could not be). */
  async start(): Promise<this> {
    if (this.child) throw new CkptError('ERR_CKPT_STATE', 'Process already started.');
    const [file, ...args] = this.spec.argv;
    const child = spawn(file!, args, {
      env: this.spec.env ?? process.env,
      cwd: this.spec.cwd,
      detached: this.spec.detached ?? false,
      stdio: this.spec.stdio ?? 'inherit',
    });
    this.child = child;
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        this.events.emit('exit', this.exitInfo);
        resolve(this.exitInfo);
      });
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => {
        const e = err as NodeJS.ErrnoException;
        reject(
          new CkptError(e.code === 'ENOENT' ? 'ERR_CKPT_NOT_FOUND' : 'ERR_CKPT_IO', `Cannot run ${file}: ${e.message}`, { cause: err }),
        );
      });
    });
    child.on('error', (err) => this.events.emit('error', err));
    return this;
  }

  /** Resolves with the exit status once the process has exited. */
  async wait(): Promise<ExitInfo> {
    if (!this.exited) throw new CkptError('ERR_CKPT_STATE', 'Process not started.');
    return this.exited;
  }

  /** Sends a signal (to the whole process group when started detached). */
  send(signal: NodeJS.Signals): boolean {
    const pid = this.child?.pid;
    if (!pid || this.exitInfo) return false;
    try {
      process.kill(this.spec.detached ? -pid : pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with the exit status. */
  async stop(timeoutMs: number = STOP_TIMEOUT_MS): Promise<ExitInfo> {
    if (!this.child || !this.exited) throw new CkptError('ERR_CKPT_STATE', 'Process not started.');
    if (this.exitInfo) return this.exitInfo;
    this.send('SIGTERM');
    const timer = setTimeout(() => this.send('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      this.child.stdout?.unpipe();
      this.child.stderr?.unpipe();
      this.child.stdin?.destroy();
    }
  }

  /** Lets the parent exit while the process keeps running. */
  unref(): void {
    this.child?.unref();
  }

  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    this.events.on(event, listener as (...a: unknown[]) => void);
    return this;
  }

  off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    this.events.off(event, listener as (...a: unknown[]) => void);
    return this;
  }
}

/** Waits up to `timeoutMs` for a process we did not start to exit; true if it did. */
export async function waitForExit(id: ProcId, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(id)) {
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

/**
 * Stops a process known only by its identity (started by another ckpt
 * invocation): SIGTERM to it (or its process group), SIGKILL after
 * `timeoutMs`, then waits until it is gone. Returns 'term', 'kill' or 'gone'.
 */
export async function stopProcess(
  id: ProcId,
  opts: { group?: number | null; timeoutMs?: number } = {},
): Promise<'term' | 'kill' | 'gone'> {
  if (!isAlive(id)) return 'gone';
  const target = opts.group && opts.group > 1 ? -opts.group : id.pid;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(target, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  if (await waitForExit(id, opts.timeoutMs ?? STOP_TIMEOUT_MS)) return 'term';
  signal('SIGKILL');
  if (target !== id.pid) {
    try {
      process.kill(id.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await waitForExit(id, 5_000);
  return 'kill';
}
