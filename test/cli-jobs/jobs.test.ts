/**
 * Host jobs through the real CLI: launch (foreground and --detach),
 * checkpoint (blocking, with figures), --kill, restart, list/status, stop,
 * retention.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { indexImages } from '../../src/images.js';

import { builtinEngine } from '../../src/engines/builtin-adapter.js';
import { dmtcpPrefix } from '../../src/engines/dmtcp.js';
import { ckpt, ckptOk, cleanupHome, freePort, httpValue, realPython, tempHome, writeServer } from '../apptainer/helpers.js';

const python = realPython();
const engines = [
  ['builtin', builtinEngine.unavailable()],
  ['dmtcp', dmtcpPrefix() ? null : 'DMTCP not found (set DMTCP_PREFIX)'],
] as const;
for (const [name, why] of engines) if (why) console.warn(`SKIPPED host-job tests with the ${name} engine: ${why}`);

let home: string;
beforeEach(() => {
  home = tempHome();
});
afterEach(() => cleanupHome(home));

describe.each(engines)('host jobs with the %s engine', (engine, why) => {
  it.skipIf(why)('launch --detach, checkpoint with figures, --kill, restart, list, status, stop', async () => {
    const port = await freePort();
    const server = writeServer(home);
    const launched = JSON.parse((await ckptOk(home, ['launch', '--engine', engine, '--name', 'web', '--detach', '--json', '--', python, server, String(port)])).stdout) as {
      name: string;
      coordinatorPort: number;
    };
    expect(launched.name).toBe('web');
    expect(launched.coordinatorPort).toBeGreaterThan(0);
    expect(launched.coordinatorPort).not.toBe(7779);
    await httpValue(port, 7);

    const jobs = JSON.parse((await ckptOk(home, ['list', '--json'])).stdout) as Array<{ name: string; ports: number[]; processes: number }>;
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ name: 'web', processes: 1 });
    const status = JSON.parse((await ckptOk(home, ['status', 'web', '--json'])).stdout) as { name: string; checkpoint: string };
    expect(status).toMatchObject({ name: 'web', checkpoint: 'web' });

    // The only running job may be checkpointed without naming it.
    const first = JSON.parse((await ckptOk(home, ['checkpoint', '--json'])).stdout) as {
      generation: number;
      bytes: number;
      freezeMs: number;
      freezeSource: string;
      totalMs: number;
    };
    expect(first.bytes).toBeGreaterThan(0);
    expect(first.totalMs).toBeGreaterThanOrEqual(first.freezeMs);
    if (engine === 'builtin') {
      // Forked checkpoints resume before the image is written; the engine
      // records how long the job was stopped, which is less than the time
      // until the images were durable.
      expect(first.freezeSource).toBe('engine');
      expect(first.freezeMs).toBeGreaterThan(0);
      expect(first.freezeMs).toBeLessThan(first.totalMs);
    } else {
      expect(first.freezeSource).toBe('round-trip');
    }
    const text = (await ckptOk(home, ['checkpoint', 'web', '--kill'])).stdout;
    expect(text).toMatch(/durable: generation \d+/);
    expect(text).toMatch(/freeze .*durable after/);
    expect(JSON.parse((await ckptOk(home, ['list', '--json'])).stdout)).toEqual([]);

    const restarted = JSON.parse((await ckptOk(home, ['restart', 'web', '--engine', engine, '--detach', '--json'])).stdout) as { generation: number };
    expect(restarted.generation).toBeGreaterThan(first.generation);
    expect(await httpValue(port)).toBe('7');
    // The restarted job still shows the command it was launched with.
    const again = JSON.parse((await ckptOk(home, ['status', 'web', '--json'])).stdout) as { command: string[] };
    expect(again.command).toEqual([python, server, String(port)]);
    await ckptOk(home, ['stop', 'web']);
    expect(JSON.parse((await ckptOk(home, ['list', '--json'])).stdout)).toEqual([]);
  }, 180_000);

  it.skipIf(why)('--keep N leaves the newest N complete generations', async () => {
    const port = await freePort();
    const server = writeServer(home);
    await ckptOk(home, ['launch', '--engine', engine, '--name', 'kept', '--keep', '1', '--detach', '--', python, server, String(port)]);
    await httpValue(port);
    const a = JSON.parse((await ckptOk(home, ['checkpoint', 'kept', '--json'])).stdout) as { generation: number };
    const b = JSON.parse((await ckptOk(home, ['checkpoint', 'kept', '--json'])).stdout) as { generation: number };
    expect(b.generation).toBeGreaterThan(a.generation);
    // Retention ran either in this command or in the job's watcher: the end state is what counts.
    const list = JSON.parse((await ckptOk(home, ['checkpoint', 'list', '--json'])).stdout) as Array<{ generations: number; newestGeneration: number }>;
    expect(list[0]).toMatchObject({ generations: 1, newestGeneration: b.generation });
    await ckptOk(home, ['stop', 'kept']);
  }, 180_000);

  it.skipIf(why)('--interval checkpoints a detached job by itself and its watcher applies --keep', async () => {
    const port = await freePort();
    const server = writeServer(home);
    await ckptOk(home, ['launch', '--engine', engine, '--name', 'tick', '--interval', '1', '--keep', '2', '--detach', '--', python, server, String(port)]);
    await httpValue(port, 3);
    const dir = path.join(home, 'checkpoints', 'tick');
    const generations = async () => (await indexImages([dir])).generations.filter((g) => g.complete).map((g) => g.generation);
    let newest = 0;
    const deadline = Date.now() + 60_000;
    while (newest < 4 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      newest = Math.max(0, ...(fs.existsSync(dir) ? await generations() : []));
    }
    expect(newest).toBeGreaterThanOrEqual(4);
    // While the job runs, its watcher trims to 2 complete generations after each new one
    // (without it there would be 4 or more by now): wait for such a moment.
    let trimmed = false;
    const until = Date.now() + 20_000;
    while (!trimmed && Date.now() < until) {
      trimmed = (await generations()).length <= 2;
      if (!trimmed) await new Promise((r) => setTimeout(r, 100));
    }
    expect(trimmed).toBe(true);
    // And once stopped, --keep holds for what the last checkpoints left.
    await ckptOk(home, ['stop', 'tick']);
    const left = await generations();
    expect(left.length).toBeLessThanOrEqual(2);
    expect(Math.max(...left)).toBeGreaterThanOrEqual(newest);
  }, 180_000);

  it.skipIf(why)('SIGTERM to a foreground launch ends the whole job and cleans up', async () => {
    const { spawn } = await import('node:child_process');
    const { ckptBin } = await import('../apptainer/helpers.js');
    const fg = spawn(process.execPath, [ckptBin, 'launch', '--engine', engine, '--name', 'term', '--', python, '-c', 'import time; time.sleep(300)'], {
      env: { ...process.env, CKPT_HOME: home },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => fg.once('exit', (code) => r(code)));
    let pid = 0;
    const deadline = Date.now() + 30_000;
    while (!pid && Date.now() < deadline) {
      const jobs = JSON.parse((await ckptOk(home, ['list', '--json'])).stdout) as Array<{ pid: number; processes: number | null }>;
      if (jobs[0]?.processes) pid = jobs[0].pid;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(pid).toBeGreaterThan(0);
    const { processTree } = await import('../../src/procfs.js');
    const tree = processTree(pid);
    fg.kill('SIGTERM');
    expect(await exited).toBe(143);
    const { isAlive, procId } = await import('../../src/procfs.js');
    const ids = tree.map((p) => procId(p)).filter((x) => x !== null);
    const until = Date.now() + 10_000;
    while (ids.some(isAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(ids.filter(isAlive)).toEqual([]);
    expect(JSON.parse((await ckptOk(home, ['list', '--json'])).stdout)).toEqual([]);
  }, 120_000);

  it.skipIf(why)('launch stays in the foreground and returns the job exit code', async () => {
    const r = await ckpt(home, ['launch', '--engine', engine, '--name', 'fg', '--', python, '-c', 'import time, sys; time.sleep(0.5); sys.exit(3)']);
    expect(r.status).toBe(3);
    expect(JSON.parse((await ckptOk(home, ['list', '--json'])).stdout)).toEqual([]);
  }, 120_000);
});

describe('DMTCP images are compressed after the job resumed', () => {
  it.skipIf(engines[1][1])('compresses in the background and restarts from the compressed images', async () => {
    const port = await freePort();
    const server = writeServer(home);
    await ckptOk(home, ['launch', '--engine', 'dmtcp', '--name', 'z', '--detach', '--', python, server, String(port)]);
    await httpValue(port, 42);
    const r = JSON.parse((await ckptOk(home, ['checkpoint', 'z', '--json'])).stdout) as { dir: string; generation: number };
    // Durable first (raw, fsync'ed), compressed afterwards: wait for the wrapped images (bounded).
    const encodings = async () => (await indexImages([r.dir])).generations.flatMap((g) => g.processes.map((p) => p.encoding));
    const deadline = Date.now() + 60_000;
    while (!(await encodings()).every((e) => e === 'wrapped') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    expect(await encodings()).toEqual(['wrapped']);
    const gens = (await indexImages([r.dir])).generations;
    expect(gens[0]).toMatchObject({ complete: true, generation: r.generation });
    await ckptOk(home, ['stop', 'z']);
    await ckptOk(home, ['restart', 'z', '--engine', 'dmtcp', '--detach']);
    expect(await httpValue(port)).toBe('42');
    // The expanded copy used by dmtcp_restart is gone again; the compressed image stays.
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else files.push(e.name);
      }
    };
    walk(r.dir);
    expect(files.filter((f) => f.endsWith('.dmtcp'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.dmtcp.ckpt'))).toHaveLength(1);
    await ckptOk(home, ['stop', 'z']);
  }, 180_000);
});

describe('a program the engine cannot handle', () => {
  it.skipIf(engines[0][1])('fails the checkpoint with the reason at checkpoint time, and the job goes on', async () => {
    const script = path.join(home, 'holds-deleted.py');
    // Holds a deleted file open (the built-in engine refuses that) and stays alive.
    fs.writeFileSync(script, `import os, sys, time\nf = open(sys.argv[1], "w")\nos.unlink(sys.argv[1])\nprint("ready", flush=True)\ntime.sleep(300)\n`);
    await ckptOk(home, ['launch', '--name', 'odd', '--detach', '--', python, script, path.join(home, 'scratch')]);
    const r = await ckpt(home, ['checkpoint', 'odd']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/checkpoint refused: .*deleted file/);
    expect(r.stderr).toMatch(/keeps running/);
    expect(JSON.parse((await ckptOk(home, ['list', '--json'])).stdout)).toMatchObject([{ name: 'odd', processes: 1 }]);
    await ckptOk(home, ['stop', 'odd']);
  }, 120_000);
});
