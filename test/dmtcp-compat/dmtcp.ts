/**
 * Test helpers around coordinators: find a real DMTCP installation (for the
 * compatibility tests), start a coordinator (ours or DMTCP's) on a random
 * loopback port, and run dmtcp_command clients.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const repoRoot = path.resolve(__dirname, '../..');
export const releaseDir = path.join(repoRoot, 'build', 'Release');
export const ourCommand = path.join(releaseDir, 'dmtcp_command');
export const ourCoordinator = path.join(releaseDir, 'dmtcp_coordinator');
export const loadgen = path.join(releaseDir, 'ckpt_loadgen');

/** DMTCP's bin directory from DMTCP_PREFIX or from dmtcp_launch on PATH; null when absent. */
export function findDmtcpBin(): string | null {
  const prefix = process.env.DMTCP_PREFIX;
  if (prefix) {
    const bin = path.join(prefix, 'bin');
    return existsSync(path.join(bin, 'dmtcp_launch')) ? bin : null;
  }
  const r = spawnSync('sh', ['-c', 'command -v dmtcp_launch'], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return p ? path.dirname(p) : null;
}

export const dmtcpBin = findDmtcpBin();
export const dmtcpSkipReason =
  'no DMTCP installation found: set DMTCP_PREFIX=/path/to/dmtcp (or put dmtcp_launch on PATH) to run these tests';

export interface RunningCoordinator {
  port: number;
  proc: ChildProcess;
  dir: string;
  /** Resolves with the exit code (or 128+signal). */
  exited: Promise<number>;
  stop(): Promise<number>;
}

/** Starts `exe` (a dmtcp_coordinator) on a kernel-chosen loopback port. */
export async function startCoordinator(exe: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningCoordinator> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ckpt-coord-'));
  const portFile = path.join(dir, 'port');
  const proc = spawn(
    exe,
    ['--quiet', '--coord-port', '0', '--port-file', portFile, '--timeout', '120', '--ckptdir', dir, ...extra],
    // stdin on /dev/null and stdout discarded: DMTCP's coordinator prints a
    // console prompt on every loop iteration.
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, env: { ...process.env, DMTCP_TMPDIR: dir, ...env } },
  );
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<number>((resolve) => {
    proc.once('exit', (code, sig) => resolve(code ?? 128 + (sig ? os.constants.signals[sig] : 0)));
  });
  const deadline = Date.now() + 10_000;
  let port = 0;
  while (Date.now() < deadline) {
    try {
      const text = readFileSync(portFile, 'utf8').trim();
      if (text) {
        port = Number(text);
        break;
      }
    } catch {
      /* not written yet */
    }
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (!port) {
    proc.kill('SIGKILL');
    throw new Error(`coordinator ${exe} did not write its port file; stderr:\n${stderr}`);
  }
  return {
    port,
    proc,
    dir,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

export interface ClientResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a dmtcp_command client synchronously (bounded by a timeout). */
export function runClient(exe: string, args: string[], env: NodeJS.ProcessEnv = {}): ClientResult {
  const clean = { ...process.env };
  for (const k of ['DMTCP_COORD_HOST', 'DMTCP_HOST', 'DMTCP_COORD_PORT', 'DMTCP_PORT']) delete clean[k];
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: 30_000, env: { ...clean, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
