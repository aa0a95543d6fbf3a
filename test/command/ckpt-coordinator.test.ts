/**
 * `ckpt coordinator [args]`: the native coordinator runs with the same
 * arguments and stdio, signals reach it, and its exit code is ckpt's.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ourCommand, ourCoordinator, runClient } from '../dmtcp-compat/dmtcp.js';

const ckpt = path.resolve(__dirname, '../../bin/ckpt');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ckpt-coordinator-cli-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function startViaCkpt(name: string, extra: string[] = []) {
  const portFile = path.join(dir, `${name}.port`);
  const p = spawn(ckpt, ['coordinator', '--quiet', '--coord-port', '0', '--port-file', portFile, '--timeout', '60', '--ckptdir', dir, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  p.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    p.once('exit', (code, signal) => r({ code, signal })),
  );
  const deadline = Date.now() + 15_000;
  while (!(existsSync(portFile) && readFileSync(portFile, 'utf8').trim())) {
    if (Date.now() > deadline || p.exitCode !== null) {
      p.kill('SIGKILL');
      throw new Error(`ckpt coordinator did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { p, port: Number(readFileSync(portFile, 'utf8').trim()), exited, stderr: () => stderr };
}

describe.skipIf(!existsSync(ourCoordinator))('ckpt coordinator', () => {
  it('runs the native coordinator with the given arguments; quit gives exit 0', async () => {
    const c = await startViaCkpt('quit');
    const s = runClient(ourCommand, ['--json', '-p', String(c.port), '-s']);
    expect(JSON.parse(s.stdout)).toMatchObject({ command_status: 'DMT_COORD_SUCCESS', num_peers: 0 });
    expect(runClient(ourCommand, ['-p', String(c.port), '-q']).status).toBe(0);
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(c.stderr()).toContain('DMTCP coordinator exiting');
  });

  it('forwards SIGTERM to the coordinator and reports 128+15', async () => {
    const c = await startViaCkpt('term');
    c.p.kill('SIGTERM');
    const r = await c.exited;
    expect(r.code === 143 || r.signal === 'SIGTERM').toBe(true);
    // The coordinator itself is gone: nothing answers on its port any more.
    expect(runClient(ourCommand, ['-p', String(c.port), '-s']).status).toBe(2);
  });

  it('propagates usage errors (exit 1) and shows help with examples (exit 0)', () => {
    const bad = spawnSync(ckpt, ['coordinator', '--no-such-option'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    const help = spawnSync(ckpt, ['coordinator', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('ckpt coordinator install --dmtcp-prefix');
    expect(help.stdout).toContain('--port-file');
  });
});
