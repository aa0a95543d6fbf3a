/**
 * Helpers for the CLI walkthrough tests: run `bin/ckpt` with a private
 * $CKPT_HOME, build a small root-filesystem directory, talk to the value
 * server.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { VALUE_SERVER_PY } from '../../src/cli/demo.js';

export { freePort, httpValue, realPython } from '../../src/cli/demo.js';

export const ckptBin = path.resolve(__dirname, '../../bin/ckpt');

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ckpt args...` (bounded by `timeoutMs`). */
export async function ckpt(home: string, args: string[], timeoutMs = 90_000, extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [ckptBin, ...args], { env: { ...process.env, CKPT_HOME: home, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Like ckpt() but fails the test with the output when the exit code is not 0. */
export async function ckptOk(home: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const r = await ckpt(home, args, 90_000, extraEnv);
  if (r.status !== 0) throw new Error(`ckpt ${args.join(' ')} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

export function tempHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-cli-test-'));
}

/** Stops every instance and job of `home` (test cleanup), then removes it. */
export function cleanupHome(home: string): void {
  for (const args of [['instance', 'stop', '--all'], ['stop', '--all']]) {
    spawnSync(process.execPath, [ckptBin, ...args, '--grace', '2'], { env: { ...process.env, CKPT_HOME: home }, stdio: 'ignore', timeout: 30_000 });
  }
  fs.rmSync(home, { recursive: true, force: true });
}

/** The value server script, written into `dir`. */
export function writeServer(dir: string): string {
  const p = path.join(dir, 'value-server.py');
  fs.writeFileSync(p, VALUE_SERVER_PY);
  return p;
}

/**
 * A minimal root-filesystem directory built without downloads: the host's
 * /usr is bound into it at run time (--bind /usr:/usr:ro), /bin, /lib and
 * /lib64 are the usual merged-/usr symlinks, and the start script runs the
 * value server with the instance's arguments.
 */
export function buildRootfs(dir: string): string {
  const python = '/usr/bin/python3';
  const root = path.join(dir, 'rootfs');
  for (const d of ['usr', 'etc', 'srv', 'tmp', '.singularity.d']) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const [link, target] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']] as const) {
    fs.symlinkSync(target, path.join(root, link));
  }
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'srv', 'value-server.py'), VALUE_SERVER_PY);
  fs.writeFileSync(path.join(root, '.singularity.d', 'startscript'), `#!/bin/sh\nexec ${python} /srv/value-server.py "$@"\n`, { mode: 0o755 });
  return root;
}

/** True when /usr is merged and holds python3 (the rootfs above relies on both). */
export function usrMerged(): boolean {
  try {
    return fs.readlinkSync('/bin') === 'usr/bin' && fs.readlinkSync('/lib') === 'usr/lib' && fs.existsSync('/usr/bin/python3');
  } catch {
    return false;
  }
}
