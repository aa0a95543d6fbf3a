/**
 * A job started through a bash wrapper that execs the real program (what
 * pyenv shims, module wrappers and many site scripts do) stays under
 * checkpoint control: bash defines its own getenv/setenv, and the engine must
 * not depend on them to keep its coordinator connection across exec.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';

import { builtinEngine } from '../../src/engines/builtin-adapter.js';
import { ckptOk, cleanupHome, freePort, httpValue, realPython, tempHome, writeServer } from '../apptainer/helpers.js';

const why = builtinEngine.unavailable();
if (why) console.warn(`SKIPPED wrapped-launch test: ${why}`);

let home: string;
beforeEach(() => {
  home = tempHome();
});
afterEach(() => cleanupHome(home));

it.skipIf(why)('env -> bash -> exec python: checkpoint, kill and restart keep the value', async () => {
  const port = await freePort();
  const server = writeServer(home);
  const script = `exec '${realPython()}' '${server}' ${port}`;
  await ckptOk(home, ['launch', '--name', 'wrapped', '--detach', '--', '/usr/bin/env', 'bash', '-c', script]);
  await httpValue(port, 5);
  const r = JSON.parse((await ckptOk(home, ['checkpoint', 'wrapped', '--kill', '--json'])).stdout) as { generation: number; processes?: number };
  expect(r.generation).toBeGreaterThan(0);
  await ckptOk(home, ['restart', 'wrapped', '--detach']);
  expect(await httpValue(port)).toBe('5');
}, 180_000);
