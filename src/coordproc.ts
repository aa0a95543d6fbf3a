/**
 * Running a coordinator for a job or instance, and talking to it.
 *
 * ckpt starts the drop-in `dmtcp_coordinator` executable (build/Release) on
 * a kernel-chosen port with a port file, in its own process group so it
 * outlives the ckpt command that started it (`--detach`, instances). Commands
 * go through the `dmtcp_command` executable with `--json`: the protocol codec
 * lives in native code only.
 *
 * CKPT_COORDINATOR / CKPT_DMTCP_COMMAND name other drop-in executables
 * (for example DMTCP's own, to compare).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { CkptError } from './errors.js';
import type { CoordinatorRef } from './instances.js';
import { stopProcess } from './lifecycle.js';
import { nativeBinDir } from './native.js';
import { describePortOwner, isAlive, portOwner, procId } from './procfs.js';

/** How long a freshly started coordinator has to write its port file. */
export const COORDINATOR_START_TIMEOUT_MS = 10_000;
/** How long `ckpt` waits for a non-blocking command reply. */
export const COMMAND_TIMEOUT_MS = 15_000;

function executable(envVar: string, name: string): string {
  const override = process.env[envVar];
  if (override) return override;
  const p = path.join(nativeBinDir(), name);
  if (!fs.existsSync(p)) {
    throw new CkptError(
      'ERR_CKPT_NOT_FOUND',
      `${p} is missing: the native part of ckpt is not built. Run \`npm rebuild ckpt\` (or \`bash scripts/dev-build.sh\` in a checkout).`,
    );
  }
  return p;
}

export function coordinatorExecutable(): string {
  return executable('CKPT_COORDINATOR', 'dmtcp_coordinator');
}

export function commandExecutable(): string {
  return executable('CKPT_DMTCP_COMMAND', 'dmtcp_command');
}

export interface StartCoordinatorOptions {
  /** Where the restart scripts go (--ckptdir). */
  ckptdir: string;
  /** Directory for the port file and the log. */
  runDir: string;
  /** 0 (default) lets the kernel choose a free port. */
  port?: number;
  /** Interval checkpoints, seconds (0 = off). */
  interval?: number;
  /** DMTCP's bin directory, for the restart scripts the coordinator writes (DMTCP engine). */
  dmtcpBinDir?: string | null;
}

/** Starts a coordinator in its own process group and waits for its port. */
export async function startCoordinator(opts: StartCoordinatorOptions): Promise<CoordinatorRef> {
  const port = opts.port ?? 0;
  if (port !== 0) {
    const owner = portOwner(port);
    if (owner) {
      throw new CkptError('ERR_CKPT_ADDR_IN_USE', `${describePortOwner(owner)}. Pick another --coord-port, or leave it out to get a free one.`);
    }
  }
  const portFile = path.join(opts.runDir, 'coordinator.port');
  fs.rmSync(portFile, { force: true });
  const logFile = path.join(opts.runDir, 'coordinator.log');
  const log = fs.openSync(logFile, 'a', 0o600);
  const args = ['--exit-on-last', '-q', '--coord-port', String(port), '--port-file', portFile, '--ckptdir', opts.ckptdir];
  if (opts.interval) args.push('--interval', String(opts.interval));
  const exe = coordinatorExecutable();
  // Jobs are local: ours listens on loopback only (another drop-in may not know --bind).
  if (!process.env.CKPT_COORDINATOR) {
    args.push('--bind', '127.0.0.1');
    if (opts.dmtcpBinDir) args.push('--dmtcp-bin-dir', opts.dmtcpBinDir);
  }
  const child = spawn(exe, args, { detached: true, stdio: ['ignore', log, log], cwd: opts.runDir });
  fs.closeSync(log);
  let exit: { code: number | null; signal: string | null } | null = null;
  child.once('exit', (code, signal) => (exit = { code, signal }));
  child.once('error', () => (exit = { code: -1, signal: null }));
  child.unref();
  const deadline = Date.now() + COORDINATOR_START_TIMEOUT_MS;
  for (;;) {
    let text = '';
    try {
      text = fs.readFileSync(portFile, 'utf8').trim();
    } catch {
      /* not yet */
    }
    if (/^\d+$/.test(text) && Number(text) > 0 && child.pid) {
      return { host: '127.0.0.1', port: Number(text), proc: procId(child.pid), portFile };
    }
    if (exit) {
      const tail = readTail(logFile);
      throw new CkptError('ERR_CKPT_IO', `The coordinator (${exe}) exited at start (${JSON.stringify(exit)}).${tail ? `\n${tail}` : ''}`);
    }
    if (Date.now() > deadline) {
      if (child.pid) process.kill(child.pid, 'SIGKILL');
      throw new CkptError('ERR_CKPT_TIMEOUT', `The coordinator did not report its port within ${COORDINATOR_START_TIMEOUT_MS / 1000} s; see ${logFile}.`);
    }
    await sleep(10);
  }
}

function readTail(file: string, max = 2000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-max).trim();
  } catch {
    return '';
  }
}

/** Reply of `dmtcp_command --json` (schema version 1). */
export interface CommandReply {
  schema_version: number;
  command: string;
  command_status: string;
  num_peers?: number;
  running?: boolean;
  checkpoint_interval?: number;
  workers?: string;
}

export interface CommandOptions {
  /** Milliseconds; 0 waits forever (blocking checkpoints of big jobs). */
  timeoutMs?: number;
}

/** Sends one command (`s`, `l`, `c`, `bc`, `kc`, `k`, `q`, `i N`) and returns the JSON reply. */
export async function coordinatorCommand(coord: CoordinatorRef, command: string[], opts: CommandOptions = {}): Promise<CommandReply> {
  const exe = commandExecutable();
  const args = ['--coord-host', coord.host, '--coord-port', String(coord.port), '--json', ...command];
  const timeoutMs = opts.timeoutMs ?? COMMAND_TIMEOUT_MS;
  return new Promise<CommandReply>((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let timedOut = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, timeoutMs)
        : null;
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new CkptError('ERR_CKPT_IO', `Cannot run ${exe}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code) => {
      if (timer) clearTimeout(timer);
      if (timedOut) {
        reject(new CkptError('ERR_CKPT_TIMEOUT', `The coordinator on port ${coord.port} did not answer \`${command.join(' ')}\` within ${timeoutMs / 1000} s.`));
        return;
      }
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as CommandReply);
      } catch {
        reject(new CkptError('ERR_CKPT_PROTOCOL', `Unexpected answer from ${exe} (exit ${code}): ${(out + err).trim().slice(0, 400)}`));
      }
    });
  });
}

/** Whether a coordinator answers on its port. */
export function coordinatorReachable(coord: CoordinatorRef): boolean {
  if (coord.proc && !isAlive(coord.proc)) return false;
  const r = spawnSync(commandExecutable(), ['--coord-host', coord.host, '--coord-port', String(coord.port), '--json', 's'], {
    encoding: 'utf8',
    timeout: COMMAND_TIMEOUT_MS,
  });
  return r.status === 0;
}

/** Stops a coordinator ckpt started: `quit`, then signals if it lingers. */
export async function stopCoordinator(coord: CoordinatorRef): Promise<void> {
  if (!coord.proc || !isAlive(coord.proc)) return;
  try {
    await coordinatorCommand(coord, ['q'], { timeoutMs: 3_000 });
  } catch {
    /* fall through to signals */
  }
  await stopProcess(coord.proc, { timeoutMs: 2_000 });
  if (coord.portFile) fs.rmSync(coord.portFile, { force: true });
}
