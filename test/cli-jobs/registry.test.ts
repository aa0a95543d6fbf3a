import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { Registry, withLockFile, type RegistryEntry } from '../../src/instances.js';
import { procId } from '../../src/procfs.js';
import { Store } from '../../src/store.js';

const root = path.resolve(__dirname, '../..');
let home: string;
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-reg-'));
});
afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

function entry(name: string, leader = procId(process.pid)!): RegistryEntry {
  return {
    kind: 'instance',
    name,
    engine: 'builtin',
    leader,
    pgid: null,
    coordinator: { host: '127.0.0.1', port: 1, proc: null, portFile: null },
    checkpoint: 'c',
    checkpointDir: '/nonexistent',
    image: null,
    command: ['true'],
    runDir: '/nonexistent',
    log: null,
    ports: [],
    keep: null,
    interval: null,
    detached: true,
    startedAt: new Date().toISOString(),
    restartedFrom: null,
  };
}

describe('instance registry', () => {
  it('adds, finds, updates and removes entries; duplicate names are refused', async () => {
    const reg = new Registry(new Store(home));
    await reg.add(entry('a'));
    await expect(reg.add(entry('a'))).rejects.toMatchObject({ code: 'ERR_CKPT_EXISTS' });
    await reg.update('instance', 'a', { ports: [8080] });
    expect((await reg.get('instance', 'a'))?.ports).toEqual([8080]);
    expect(await reg.usersOf('c')).toHaveLength(1);
    await expect(reg.require('instance', 'b')).rejects.toMatchObject({ code: 'ERR_CKPT_NOT_FOUND' });
    expect(await reg.remove('instance', 'a')).toBe(true);
    expect(await reg.list()).toEqual([]);
    expect(fs.statSync(reg.file).mode & 0o777).toBe(0o600);
  });

  it('drops stale entries: a dead pid, or a live pid with another start time', async () => {
    const reg = new Registry(new Store(home));
    const child = spawn('true');
    await new Promise((r) => child.once('exit', r));
    const me = procId(process.pid)!;
    await reg.transaction((entries) => {
      entries.push(entry('dead', { pid: child.pid!, startTime: 1 }));
      entries.push(entry('recycled', { pid: process.pid, startTime: me.startTime + 1 }));
      entries.push(entry('live'));
    });
    expect((await reg.list()).map((e) => e.name)).toEqual(['live']);
    // The stale entries are gone from the file, not only hidden.
    const file = JSON.parse(fs.readFileSync(reg.file, 'utf8')) as { entries: RegistryEntry[] };
    expect(file.entries.map((e) => e.name)).toEqual(['live']);
  });

  it('never loses or tears entries under many concurrent writer processes', async () => {
    const store = new Store(home);
    store.init();
    const writers = 8;
    const perWriter = 15;
    // The writers run the built module (dist/, made by `npm install`) in separate processes.
    const script = `
      import { Registry } from ${JSON.stringify(path.join(root, 'dist/instances.js'))};
      import { Store } from ${JSON.stringify(path.join(root, 'dist/store.js'))};
      const [home, id, n, leaderPid, leaderStart] = process.argv.slice(1);
      const reg = new Registry(new Store(home));
      for (let i = 0; i < Number(n); i++) {
        await reg.add({ kind: 'instance', name: 'w' + id + '-' + i, engine: 'builtin',
          leader: { pid: Number(leaderPid), startTime: Number(leaderStart) }, pgid: null,
          coordinator: { host: '127.0.0.1', port: 1, proc: null, portFile: null }, checkpoint: null,
          checkpointDir: '/x', image: null, command: [], runDir: '/x', log: null, ports: [], keep: null,
          interval: null, detached: true, startedAt: '', restartedFrom: null });
        if (i % 3 === 0) await reg.update('instance', 'w' + id + '-' + i, { ports: [i] });
      }
    `;
    const me = procId(process.pid)!;
    const runs = Array.from({ length: writers }, (_, id) =>
      new Promise<number>((resolve) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script, home, String(id), String(perWriter), String(me.pid), String(me.startTime)], {
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        c.once('exit', (code) => resolve(code ?? -1));
      }),
    );
    expect(await Promise.all(runs)).toEqual(Array(writers).fill(0));
    const names = (await new Registry(store).list()).map((e) => e.name).sort();
    expect(names).toHaveLength(writers * perWriter);
    expect(new Set(names).size).toBe(writers * perWriter);
    expect(fs.readdirSync(store.instancesDir).sort()).toEqual(['registry.json']);
  });

  it('takes over a lock left by a dead process', async () => {
    const lock = path.join(home, 'x.lock');
    const child = spawn('true');
    await new Promise((r) => child.once('exit', r));
    fs.writeFileSync(lock, `${child.pid} 12345 token`);
    expect(await withLockFile(lock, () => 42)).toBe(42);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('serialises critical sections', async () => {
    const lock = path.join(home, 'y.lock');
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        withLockFile(lock, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 2));
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
  });

  it('sets aside a damaged registry file instead of failing every command', async () => {
    const reg = new Registry(new Store(home));
    new Store(home).init();
    fs.writeFileSync(reg.file, '{"version":1,"entries":[');
    const warn = process.emitWarning;
    process.emitWarning = () => {};
    try {
      expect(await reg.list()).toEqual([]);
    } finally {
      process.emitWarning = warn;
    }
    expect(fs.readdirSync(path.dirname(reg.file)).some((f) => f.startsWith('registry.json.corrupt-'))).toBe(true);
  });
});
