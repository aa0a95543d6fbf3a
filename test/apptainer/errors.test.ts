/**
 * Bad input gets a clear error, a non-zero exit code, and loses nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { builtinEngine } from '../../src/engines/builtin-adapter.js';
import { dmtcpPrefix } from '../../src/engines/dmtcp.js';
import { ckpt, ckptOk, cleanupHome, freePort, httpValue, realPython, tempHome, writeServer } from './helpers.js';

const python = realPython();
// Any engine will do for the engine-independent checks.
const engine = builtinEngine.unavailable() === null ? 'builtin' : dmtcpPrefix() ? 'dmtcp' : null;
if (!engine) console.warn('SKIPPED error cases that need a running instance: no checkpoint engine is available');

describe('bad input (no instance needed)', () => {
  let home: string;
  beforeAll(() => {
    home = tempHome();
  });
  afterAll(() => cleanupHome(home));

  it.each([
    [['instance', 'stop', 'nope'], 3, /No running instance named "nope"/],
    [['instance', 'logs', 'nope'], 3, /No instance named "nope"/],
    [['checkpoint', 'instance', 'nope'], 3, /No running instance named "nope"/],
    [['checkpoint', 'delete', 'nope'], 3, /No checkpoint named "nope".*ckpt checkpoint create nope/],
    [['checkpoint', 'nope'], 3, /No running job named "nope"/],
    [['stop', 'nope'], 3, /No running job named "nope"/],
    [['restart', 'nope'], 3, /No checkpoint named "nope"/],
    [['instance', 'start', '--dmtcp-restart', 'nope', '--host', 'x', '--', 'true'], 3, /No checkpoint named "nope"/],
    [['instance', 'start', '--dmtcp-launch', 'nope', '--host', 'x', '--', 'true'], 3, /No checkpoint named "nope"/],
    [['checkpoint', 'create', '../escape'], 2, /path separators/],
    [['checkpoint', 'create', '.hidden'], 2, /Invalid checkpoint name/],
    [['instance', 'start', '--dmtcp-launch', 'a/b', '--host', 'x', '--', 'true'], 2, /Invalid checkpoint name/],
    [['instance', 'start', '--dmtcp-launch', 'ok', '--host', 'bad name', '--', 'true'], 2, /Invalid instance name/],
    [['instance', 'start', '--engine', 'nope', '--dmtcp-launch', 'ok', '--host', 'x', '--', 'true'], 2, /Unknown engine "nope"/],
    [['instance', 'start', '--dmtcp-launch', 'a', '--dmtcp-restart', 'a', '--host', 'x', '--', 'true'], 2, /either --dmtcp-launch or --dmtcp-restart/],
    [['instance', 'start', '--dmtcp-launch', 'ok', '/nonexistent-rootfs', 'x'], 3, /does not exist/],
    [['launch', '--interval', 'soon', '--', 'true'], 2, /Invalid --interval "soon"/],
    [['launch', '--keep', '0', '--', 'true'], 2, /Invalid --keep "0"/],
    [['launch', '--name', 'list', '--', 'true'], 2, /reserved/],
    [['stop'], 2, /--all/],
  ])('ckpt %j exits %i with a clear message', async (args, code, message) => {
    const r = await ckpt(home, args as string[]);
    expect(r.status).toBe(code);
    expect(r.stderr).toMatch(message as RegExp);
    // JSON mode reports the same error as a document.
    const j = await ckpt(home, [...(args as string[]), '--json']);
    if (j.status === code && j.stdout.trim().startsWith('{')) expect(JSON.parse(j.stdout)).toHaveProperty('error.code');
  });

  it('refuses an empty checkpoint on restart and keeps it', async () => {
    await ckptOk(home, ['checkpoint', 'create', 'empty']);
    const r = await ckpt(home, ['instance', 'start', '--engine', engine ?? 'builtin', '--dmtcp-restart', 'empty', '--host', 'x', '--', 'true']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/empty|no checkpoint images|not built|not installed/);
    expect(fs.existsSync(path.join(home, 'checkpoints', 'empty'))).toBe(true);
    expect(JSON.parse((await ckptOk(home, ['instance', 'list', '--json'])).stdout)).toEqual([]);
  });
});

describe.skipIf(!engine)('bad input around a running instance', () => {
  let home: string;
  let port: number;
  let server: string;
  beforeAll(async () => {
    home = tempHome();
    port = await freePort();
    server = writeServer(home);
    await ckptOk(home, ['checkpoint', 'create', 'example']);
    await ckptOk(home, ['instance', 'start', '--engine', engine!, '--dmtcp-launch', 'example', '--host', 'server', '--', python, server, String(port)]);
    await httpValue(port, 5);
  }, 120_000);
  afterAll(() => cleanupHome(home));

  it('refuses a duplicate instance name and leaves the first one running', async () => {
    const r = await ckpt(home, ['instance', 'start', '--engine', engine!, '--dmtcp-launch', 'example', '--host', 'server', '--', python, server, String(port + 1)]);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/already running.*ckpt instance stop server/);
    expect(await httpValue(port)).toBe('5');
  });

  it('refuses to delete a checkpoint in use, and --force is the way round it', async () => {
    const r = await ckpt(home, ['checkpoint', 'delete', 'example']);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/in use by instance "server".*Nothing was deleted/);
    expect(fs.existsSync(path.join(home, 'checkpoints', 'example'))).toBe(true);
  });

  it('refuses a restart while the checkpointed port is taken, naming the owner', async () => {
    await ckptOk(home, ['checkpoint', 'instance', 'server']);
    const r = await ckpt(home, ['instance', 'start', '--engine', engine!, '--dmtcp-restart', 'example', '--host', 'second', '--', 'x']);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain(`port ${port}`);
    expect(r.stderr).toMatch(/instance "server"/);
    expect(await httpValue(port)).toBe('5');
  });

  it('refuses to restart a corrupt checkpoint and deletes nothing', async () => {
    await ckptOk(home, ['instance', 'stop', 'server']);
    const images = JSON.parse((await ckptOk(home, ['checkpoint', 'list', '--json'])).stdout) as Array<{ path: string }>;
    const dir = images[0]!.path;
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && /\.(ckpt|dmtcp)$/.test(e.name)) files.push(p);
      }
    };
    walk(dir);
    expect(files.length).toBeGreaterThan(0);
    if (engine === 'builtin') {
      // A flipped byte inside the data: the header and trailer still look fine, the restarter's
      // chunk checksums catch it; the images stay exactly as they were.
      const flip = (f: string) => {
        const fd = fs.openSync(f, 'r+');
        const at = Math.floor(fs.statSync(f).size / 2);
        const b = Buffer.alloc(1);
        fs.readSync(fd, b, 0, 1, at);
        b[0] = b[0]! ^ 0xff;
        fs.writeSync(fd, b, 0, 1, at);
        fs.closeSync(fd);
      };
      for (const f of files) flip(f);
      const flipped = files.map((f) => fs.readFileSync(f));
      const bad = await ckpt(home, ['instance', 'start', '--dmtcp-restart', 'example', '--host', 'flipped', '--', 'x']);
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/failed to restart|corrupt|checksum/i);
      files.forEach((f, i) => expect(fs.readFileSync(f).equals(flipped[i]!)).toBe(true));
      expect(JSON.parse((await ckptOk(home, ['instance', 'list', '--json'])).stdout)).toEqual([]);
      for (const f of files) flip(f);
    }
    // Truncate every image in the middle.
    for (const f of files) fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2));
    const before = files.map((f) => fs.statSync(f).size);
    const r = await ckpt(home, ['instance', 'start', '--engine', engine!, '--dmtcp-restart', 'example', '--host', 'again', '--', 'x']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/incomplete|corrupt|truncat/i);
    expect(files.map((f) => fs.statSync(f).size)).toEqual(before);
    expect(JSON.parse((await ckptOk(home, ['instance', 'list', '--json'])).stdout)).toEqual([]);
  });
});
