/**
 * `ckpt check`: the restarter's checks on their own. A checkpoint of a server
 * is restartable while its port is free, is reported as not restartable (with
 * the port named, exit 1) while something else listens there, and nothing is
 * changed by checking.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { afterEach, beforeEach, expect, it } from 'vitest';

import { builtinEngine } from '../../src/engines/builtin-adapter.js';
import { ckpt, ckptOk, cleanupHome, freePort, httpValue, realPython, tempHome, writeServer } from '../apptainer/helpers.js';

const why = builtinEngine.unavailable();
if (why) console.warn(`SKIPPED ckpt check tests: ${why}`);

let home: string;
beforeEach(() => {
  home = tempHome();
});
afterEach(() => cleanupHome(home));

interface Report {
  ok: boolean;
  processes: Array<{ pid: number; program: string }>;
  issues: Array<{ level: string; message: string }>;
}

it.skipIf(why)('reports a checkpoint restartable, then not while its port is taken', async () => {
  const port = await freePort();
  const server = writeServer(home);
  await ckptOk(home, ['launch', '--name', 'web', '--detach', '--', realPython(), server, String(port)]);
  await httpValue(port, 3);
  await ckptOk(home, ['checkpoint', 'web', '--kill']);

  const comp = fs.readdirSync(path.join(home, 'checkpoints', 'web')).find((n) => /^[0-9a-f]+-\d+-[0-9a-f]+$/.test(n));
  expect(comp).toBeDefined();
  const latest = path.join(home, 'checkpoints', 'web', comp!, 'latest');
  const before = fs.readdirSync(fs.realpathSync(latest)).sort();

  const good = JSON.parse((await ckptOk(home, ['check', '--json', latest])).stdout) as Report;
  expect(good.ok).toBe(true);
  expect(good.processes).toHaveLength(1);
  expect(good.issues.filter((i) => i.level === 'error')).toEqual([]);

  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  try {
    const r = await ckpt(home, ['check', latest]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(String(port));
    expect(r.stdout).toContain('not restartable here now');
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }

  // Checking changed nothing, and the checkpoint still restarts.
  expect(fs.readdirSync(fs.realpathSync(latest)).sort()).toEqual(before);
  await ckptOk(home, ['restart', 'web', '--detach']);
  expect(await httpValue(port)).toBe('3');
}, 180_000);

it('names a missing path with exit code 3', async () => {
  const r = await ckpt(home, ['check', path.join(home, 'nope')]);
  expect(r.status).toBe(3);
  expect(r.stderr).toContain('No such image or directory');
});
