/**
 * End-to-end with real DMTCP 5.0 (skipped, with the reason printed, unless
 * DMTCP_PREFIX is set or dmtcp_launch is on PATH):
 *  - real dmtcp_launch workers under our coordinator: blocking checkpoint,
 *    kill, restart through the generated script, the program's state continues;
 *  - auto-start through the installed shim, in a COPY of the DMTCP prefix;
 *  - our dmtcp_command against DMTCP's own coordinator with a real worker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { installCoordinatorShim } from '../../src/coordinator-install.js';
import { dmtcpBin, dmtcpSkipReason, ourCommand, ourCoordinator, runClient, startCoordinator } from './dmtcp.js';

if (!dmtcpBin) console.warn(`skipping the real-DMTCP tests: ${dmtcpSkipReason}`);

const COUNTER_C = `
#include <stdio.h>
#include <unistd.h>
/* Writes an ever-increasing counter to argv[1] every 50 ms. After a restart
   from a checkpoint the count continues from the checkpointed value. */
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  for (unsigned long i = 1;; i++) {
    FILE *f = fopen(argv[1], "w");
    if (f) { fprintf(f, "%lu\\n", i); fclose(f); }
    usleep(50000);
  }
}
`;

let work: string;
let counterExe: string;
const children: ChildProcess[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined | null | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function readCount(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

function status(port: number): { num_peers: number; running: boolean } | null {
  const r = runClient(ourCommand, ['--json', '-p', String(port), '-s']);
  return r.status === 0 ? JSON.parse(r.stdout) : null;
}

function background(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const p = spawn(cmd, args, { cwd, stdio: 'ignore', env: { ...process.env, DMTCP_TMPDIR: cwd, ...env } });
  children.push(p);
  return p;
}

beforeAll(() => {
  if (!dmtcpBin) return;
  work = mkdtempSync(path.join(os.tmpdir(), 'ckpt-dmtcp-compat-'));
  writeFileSync(path.join(work, 'counter.c'), COUNTER_C);
  counterExe = path.join(work, 'counter');
  const cc = spawnSync('cc', ['-O1', '-o', counterExe, path.join(work, 'counter.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot compile the test program: ${cc.stderr}`);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!dmtcpBin)('real DMTCP workers with our coordinator', () => {
  it('launch -> blocking checkpoint -> kill -> restart script -> the counter continues', async () => {
    const bin = dmtcpBin as string;
    const coord = await startCoordinator(ourCoordinator, [], { CKPT_DMTCP_BIN_DIR: bin });
    const dir = coord.dir;
    const countFile = path.join(dir, 'count.txt');
    try {
      background(path.join(bin, 'dmtcp_launch'), ['-j', '-h', '127.0.0.1', '-p', String(coord.port), '--no-gzip', '--ckptdir', dir, counterExe, countFile], dir);
      await until('the worker to join', () => status(coord.port)?.running && status(coord.port)?.num_peers === 1);
      await until('the counter to run', () => readCount(countFile) >= 5);

      // DMTCP's own client, blocking checkpoint: answered when complete.
      const before = readCount(countFile);
      const bc = runClient(path.join(bin, 'dmtcp_command'), ['-p', String(coord.port), '-bc']);
      expect(bc.status).toBe(0);
      const images = readdirSync(dir).filter((f) => /^ckpt_counter_.*\.dmtcp$/.test(f));
      expect(images).toHaveLength(1);
      const script = path.join(dir, 'dmtcp_restart_script.sh');
      expect(existsSync(script)).toBe(true);
      expect(readlinkSync(script)).toMatch(/^dmtcp_restart_script_.*\.sh$/);
      expect(readFileSync(script, 'utf8')).toContain(path.join(bin, 'dmtcp_restart'));
      // Our client lists the worker the way DMTCP prints it.
      const l = runClient(ourCommand, ['-p', String(coord.port), '-l']);
      expect(l.stdout).toMatch(/\n1, counter\[\d+:\d+\]@[^,]+, [0-9a-f]+-\d+-[0-9a-f]+, WorkerState::RUNNING, \n/);

      const k = runClient(ourCommand, ['-p', String(coord.port), '-k']);
      expect(k.status).toBe(0);
      await until('the worker to exit', () => status(coord.port)?.num_peers === 0);
      await sleep(200);
      const atKill = readCount(countFile);
      expect(atKill).toBeGreaterThanOrEqual(before);

      background('bash', [script, '--coord-host', '127.0.0.1'], dir);
      await until('the restarted worker to join', () => status(coord.port)?.running && status(coord.port)?.num_peers === 1);
      // The restored process writes again, continuing from its checkpointed
      // count (a fresh start would begin at 1).
      writeFileSync(countFile, '0\n');
      const resumed = await until('the restored counter to write', () => readCount(countFile) || false);
      expect(resumed).toBeGreaterThan(before - 1);
      expect(resumed).toBeLessThanOrEqual(atKill + 40);

      const q = runClient(ourCommand, ['-p', String(coord.port), '-q']);
      expect(q.status).toBe(0);
      expect(await coord.exited).toBe(0);
    } finally {
      await coord.stop();
    }
  });

  it('auto-start through the installed shim (in a copy of the DMTCP prefix)', async () => {
    const prefix = path.join(work, 'dmtcp-copy');
    cpSync(path.dirname(dmtcpBin as string), prefix, { recursive: true, verbatimSymlinks: true });
    const res = await installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: ourCoordinator });
    expect(res.action).toBe('installed');
    const bin = res.bindir;
    const dir = mkdtempSync(path.join(work, 'auto-'));
    const portFile = path.join(dir, 'port');
    const countFile = path.join(dir, 'count.txt');
    const logFile = path.join(dir, 'coord.log');
    background(
      path.join(bin, 'dmtcp_launch'),
      ['--new-coordinator', '--coord-host', '127.0.0.1', '--coord-port', '0', '--port-file', portFile, '--coord-logfile', logFile, '--no-gzip', '--ckptdir', dir, counterExe, countFile],
      dir,
    );
    const port = await until('the port file', () => {
      const t = existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() : '';
      return t ? Number(t) : 0;
    });
    await until('the worker to join', () => status(port)?.running && status(port)?.num_peers === 1);
    // The coordinator that answers is ours, started by DMTCP through the shim.
    const ours = findProcess((exe, args) => exe === ourCoordinator && args.includes('--daemon'));
    expect(ours, 'our dmtcp_coordinator was auto-started').not.toBeNull();
    expect(findProcess((exe) => exe === path.join(bin, 'dmtcp_coordinator.orig'))).toBeNull();

    await until('the counter to run', () => readCount(countFile) >= 5);
    const before = readCount(countFile);
    expect(runClient(path.join(bin, 'dmtcp_command'), ['-p', String(port), '-bc']).status).toBe(0);
    const script = path.join(dir, 'dmtcp_restart_script.sh');
    expect(readFileSync(script, 'utf8')).toContain(path.join(bin, 'dmtcp_restart'));

    // Kill: with --exit-on-last the auto-started coordinator goes away and
    // says so in its log (DMTCP's own CLI test checks this line).
    expect(runClient(ourCommand, ['-p', String(port), '-k']).status).toBe(0);
    await until('the auto-started coordinator to exit', () => !findProcess((exe, args) => exe === ourCoordinator && args.includes('--daemon')));
    expect(readFileSync(logFile, 'utf8')).toContain('DMTCP coordinator exiting');

    // The restart script starts a coordinator again (through the shim) and the counter continues.
    background('bash', [script, '--coord-host', '127.0.0.1'], dir);
    await until('the restarted worker to join', () => status(port)?.running && status(port)?.num_peers === 1);
    writeFileSync(countFile, '0\n');
    const resumed = await until('the restored counter to write', () => readCount(countFile) || false);
    expect(resumed).toBeGreaterThan(before - 1);
    expect(runClient(ourCommand, ['-p', String(port), '-k']).status).toBe(0);
    await until('the coordinator to exit', () => !findProcess((exe, args) => exe === ourCoordinator && args.includes('--daemon')));
  });
});

describe.skipIf(!dmtcpBin)("our dmtcp_command against DMTCP's coordinator with a real worker", () => {
  it('prints exactly what DMTCP\'s client prints, and checkpoints', async () => {
    const bin = dmtcpBin as string;
    const coord = await startCoordinator(path.join(bin, 'dmtcp_coordinator'));
    try {
      background(path.join(bin, 'dmtcp_launch'), ['-j', '-h', '127.0.0.1', '-p', String(coord.port), '--no-gzip', '--ckptdir', coord.dir, counterExe, path.join(coord.dir, 'c.txt')], coord.dir);
      await until('the worker to join', () => status(coord.port)?.running && status(coord.port)?.num_peers === 1);
      const theirs = path.join(bin, 'dmtcp_command');
      for (const args of [['-s'], ['-l'], ['--json', '-s'], ['--json', '-l'], ['-i', '0'], ['--json', 'i0']]) {
        const a = runClient(ourCommand, ['-p', String(coord.port), ...args]);
        const b = runClient(theirs, ['-p', String(coord.port), ...args]);
        expect({ args, ...a }).toEqual({ args, ...b });
      }
      const bc = runClient(ourCommand, ['--json', '-p', String(coord.port), '-bc']);
      expect(bc.status).toBe(0);
      expect(JSON.parse(bc.stdout)).toMatchObject({ command: 'DMT_BLOCKING_CKPT', command_status: 'DMT_COORD_SUCCESS', num_peers: 1 });
      expect(readdirSync(coord.dir).some((f) => /^ckpt_counter_.*\.dmtcp$/.test(f))).toBe(true);
      expect(runClient(ourCommand, ['-p', String(coord.port), '-q']).status).toBe(0);
      expect(await coord.exited).toBe(0);
    } finally {
      await coord.stop();
    }
  });
});

/** Finds a live process by its executable and arguments. */
function findProcess(match: (exe: string, args: string[]) => boolean): number | null {
  for (const ent of readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const exe = readlinkSync(`/proc/${ent}/exe`);
      const args = readFileSync(`/proc/${ent}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const st = readFileSync(`/proc/${ent}/stat`, 'utf8');
      if (/\) Z /.test(st)) continue; // zombie
      if (match(exe, args)) return Number(ent);
    } catch {
      /* gone, or not ours to read */
    }
  }
  return null;
}
