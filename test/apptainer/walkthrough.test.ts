/**
 * The Apptainer walkthrough end to end, through the real `ckpt` CLI:
 * checkpoint create; instance start --dmtcp-launch; GET 0; POST 1; GET 1;
 * checkpoint instance; instance stop; instance start --dmtcp-restart at once;
 * GET 1; instance stop; checkpoint delete. With the built-in engine and, when
 * DMTCP is installed, with --engine dmtcp; on --host and in a root-filesystem
 * directory under bubblewrap.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

import { builtinEngine } from '../../src/engines/builtin-adapter.js';
import { dmtcpPrefix } from '../../src/engines/dmtcp.js';
import { probeBwrap } from '../../src/runtime/bwrap.js';
import { buildRootfs, ckpt, ckptOk, cleanupHome, freePort, httpValue, realPython, tempHome, usrMerged, writeServer } from './helpers.js';

const python = realPython();
const noBuiltin = builtinEngine.unavailable();
const noDmtcp = dmtcpPrefix() ? null : 'DMTCP not found (set DMTCP_PREFIX)';
const noBwrap = probeBwrap() ?? (usrMerged() ? null : 'the test root filesystem needs a merged /usr with /usr/bin/python3 on the host');

for (const [why, what] of [
  [noBuiltin, 'built-in engine'],
  [noDmtcp, 'DMTCP engine'],
  [noBwrap, 'container walkthroughs'],
] as const) {
  if (why) console.warn(`SKIPPED ${what}: ${why}`);
}

type Mode = 'host' | 'rootfs';

async function walkthrough(engine: 'builtin' | 'dmtcp', mode: Mode): Promise<void> {
  const home = tempHome();
  try {
    const port = await freePort();
    const server = writeServer(home);
    const root = mode === 'rootfs' ? buildRootfs(home) : null;
    const start = (flag: '--dmtcp-launch' | '--dmtcp-restart', name: string) =>
      root
        ? ['instance', 'start', '--engine', engine, flag, 'example', '--bind', '/usr:/usr:ro', root, name, String(port)]
        : ['instance', 'start', '--engine', engine, flag, 'example', '--host', name, '--', python, server, String(port)];

    await ckptOk(home, ['checkpoint', 'create', 'example']);
    await ckptOk(home, start('--dmtcp-launch', 'server'));
    expect(await httpValue(port)).toBe('0');
    await httpValue(port, 1);
    expect(await httpValue(port)).toBe('1');

    const cp = await ckptOk(home, ['checkpoint', 'instance', 'server', '--json']);
    const result = JSON.parse(cp.stdout) as { generation: number; bytes: number; images: string[]; dir: string };
    expect(result.bytes).toBeGreaterThan(0);
    // Durable when the command returns: the images named are there, readable only by their owner.
    for (const img of result.images) expect(fs.statSync(img).mode & 0o077).toBe(0);
    expect(fs.statSync(result.dir).mode & 0o777).toBe(0o700);

    const list = JSON.parse((await ckptOk(home, ['checkpoint', 'list', '--json'])).stdout) as Array<{ name: string; generations: number; inUseBy: string[] }>;
    expect(list).toMatchObject([{ name: 'example', generations: 1, inUseBy: ['instance:server'] }]);

    await ckptOk(home, ['instance', 'stop', 'server']);
    // At once: the port may still have connections in TIME_WAIT.
    await ckptOk(home, start('--dmtcp-restart', 'restarted'));
    expect(await httpValue(port)).toBe('1');
    const instances = JSON.parse((await ckptOk(home, ['instance', 'list', '--json'])).stdout) as Array<{ name: string; ports: number[] }>;
    expect(instances.map((i) => i.name)).toEqual(['restarted']);

    await ckptOk(home, ['instance', 'stop', 'restarted']);
    await ckptOk(home, ['checkpoint', 'delete', 'example']);
    expect(JSON.parse((await ckptOk(home, ['checkpoint', 'list', '--json'])).stdout)).toEqual([]);
    expect(JSON.parse((await ckptOk(home, ['instance', 'list', '--json'])).stdout)).toEqual([]);
  } finally {
    cleanupHome(home);
  }
}

describe('Apptainer walkthrough', () => {
  it.skipIf(noBuiltin)('built-in engine on --host', () => walkthrough('builtin', 'host'), 180_000);
  it.skipIf(noBuiltin || noBwrap)('built-in engine in a root-filesystem directory', () => walkthrough('builtin', 'rootfs'), 180_000);
  it.skipIf(noDmtcp)('DMTCP engine on --host', () => walkthrough('dmtcp', 'host'), 180_000);
  it.skipIf(noDmtcp || noBwrap)('DMTCP engine in a root-filesystem directory', () => walkthrough('dmtcp', 'rootfs'), 180_000);
});
