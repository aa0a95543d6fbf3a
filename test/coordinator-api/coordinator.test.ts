/**
 * The TypeScript Coordinator API: lifecycle, validation, error codes, events
 * fed from the native loop (with a synthetic worker), and clean process exit
 * at every lifecycle stage.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Coordinator, type CheckpointCompletedEvent, type WorkerInfo } from '../../src/coordinator.js';
import { CkptError } from '../../src/errors.js';
import { S, SyntheticWorker, T } from './worker.js';

const repoRoot = path.resolve(__dirname, '../..');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ckpt-coord-api-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function once<T>(c: Coordinator, event: 'workerJoined' | 'workerLeft' | 'checkpointStarted' | 'checkpointCompleted' | 'restartCompleted'): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' event within 10 s`)), 10_000);
    c.once(event, (e: unknown) => {
      clearTimeout(t);
      resolve(e as T);
    });
  });
}

describe('Coordinator lifecycle', () => {
  it('starts and stops repeatedly, each time on a fresh port', async () => {
    for (let i = 0; i < 15; i++) {
      const c = new Coordinator();
      const exits: number[] = [];
      c.on('exit', (e) => exits.push(e.code));
      const { port } = await c.start({ port: 0, ckptdir: dir, logLevel: 'none' });
      expect(port).toBeGreaterThan(0);
      expect(c.running).toBe(true);
      expect(c.status()).toMatchObject({ port, numPeers: 0, running: false, compId: '0-0-0' });
      const e = await c.stop();
      expect(e.code).toBe(0);
      expect(exits).toEqual([0]);
      expect(c.running).toBe(false);
      // Idempotent, and the object refuses a second start.
      await c.stop();
      await expect(c.start({ port: 0 })).rejects.toMatchObject({ code: 'ERR_CKPT_STATE' });
    }
  });

  it('a port in use rejects with ERR_CKPT_ADDR_IN_USE', async () => {
    const a = new Coordinator();
    const { port } = await a.start({ port: 0, ckptdir: dir });
    const b = new Coordinator();
    const err = await b.start({ port, ckptdir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CkptError);
    expect((err as CkptError).code).toBe('ERR_CKPT_ADDR_IN_USE');
    expect((err as CkptError).message).toContain(String(port));
    await a.stop();
  });

  it('validates every option before anything reaches C++', async () => {
    const c = new Coordinator();
    await expect(c.start({ port: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(c.start({ port: 65536 })).rejects.toBeInstanceOf(RangeError);
    await expect(c.start({ port: 1.5 })).rejects.toBeInstanceOf(RangeError);
    await expect(c.start({ port: '7779' as unknown as number })).rejects.toBeInstanceOf(TypeError);
    await expect(c.start({ bind: 'localhost' })).rejects.toThrow(/IPv4 address/);
    await expect(c.start({ allow: ['10.0.0.0/33'] })).rejects.toBeInstanceOf(RangeError);
    await expect(c.start({ allow: ['10.0.0/8'] })).rejects.toBeInstanceOf(TypeError);
    await expect(c.start({ allow: '10.0.0.0/8' as unknown as string[] })).rejects.toBeInstanceOf(TypeError);
    await expect(c.start({ interval: -5 })).rejects.toBeInstanceOf(RangeError);
    await expect(c.start({ exitOnLast: 1 as unknown as boolean })).rejects.toBeInstanceOf(TypeError);
    await expect(c.start({ logLevel: 'loud' as unknown as 'note' })).rejects.toBeInstanceOf(TypeError);
    await expect(c.start({ prot: 1 } as unknown as object)).rejects.toThrow(/unknown option 'prot'/);
    await expect(c.start({ ckptdir: path.join(dir, 'missing') })).rejects.toMatchObject({ code: 'ERR_CKPT_NOT_FOUND' });
    // Still startable after rejected options.
    await c.start({ port: 0, bind: '127.0.0.1', allow: ['127.0.0.0/8'], ckptdir: dir });
    await expect(c.checkpoint({ blocking: 'yes' as unknown as boolean })).rejects.toBeInstanceOf(TypeError);
    await expect(c.setCheckpointInterval(-1)).rejects.toBeInstanceOf(RangeError);
    await c.setCheckpointInterval(30);
    expect(c.status().interval).toBe(30);
    await c.stop();
  });

  it('commands on a coordinator that is not running fail with ERR_CKPT_STATE', async () => {
    const c = new Coordinator();
    expect(() => c.status()).toThrow(CkptError);
    await expect(c.checkpoint()).rejects.toMatchObject({ code: 'ERR_CKPT_STATE' });
    await c.start({ port: 0, ckptdir: dir });
    await expect(c.checkpoint()).rejects.toMatchObject({ code: 'ERR_CKPT_STATE', message: expect.stringContaining('not running') });
    await c.stop();
    await expect(c.kill()).rejects.toMatchObject({ code: 'ERR_CKPT_STATE' });
  });
});

describe('Coordinator events from a synthetic worker', () => {
  it('workerJoined, checkpointStarted, checkpointCompleted (with figures), restartCompleted, workerLeft', async () => {
    const c = new Coordinator();
    const { port } = await c.start({ port: 0, ckptdir: dir });
    const image = path.join(dir, 'ckpt_synthetic.dmtcp');
    writeFileSync(image, Buffer.alloc(12345, 7));

    const joined = once<WorkerInfo>(c, 'workerJoined');
    const w = await SyntheticWorker.connect(port);
    const accept = await w.join('synthetic');
    expect(accept.virtualPid).toBeGreaterThan(0);
    const info = await joined;
    expect(info).toMatchObject({ hostname: 'testhost', virtualPid: expect.any(Number) });

    // Wait until the coordinator has seen INIT_OR_EXEC (RUNNING).
    for (let i = 0; i < 200 && !c.status().running; i++) await new Promise((r) => setTimeout(r, 10));
    expect(c.status()).toMatchObject({ numPeers: 1, running: true });

    const started = once<{ generation: number; workers: number }>(c, 'checkpointStarted');
    const completed = once<CheckpointCompletedEvent>(c, 'checkpointCompleted');
    const barriers = ['DMT:SUSPEND', 'DMT:CHECKPOINT', 'Plugin::One', 'DMT:WriteCkpt'];
    const [reply] = await Promise.all([c.checkpoint({ blocking: true }), w.checkpoint(barriers, image)]);
    expect(reply.numPeers).toBe(1);
    expect(await started).toMatchObject({ generation: 1, workers: 1 });
    const ck = await completed;
    expect(ck).toMatchObject({ generation: 1, workers: 1, barriers: 4, images: [image], bytes: 12345 });
    expect(ck.durationMs).toBeGreaterThanOrEqual(0);
    expect(ck.restartScript).toMatch(/dmtcp_restart_script_.*\.sh$/);
    const compGroup = { ...(await (async () => ({ ...accept.compGroup, generation: 1 }))()) };

    // The worker leaves; the computation is empty.
    const left = once<WorkerInfo>(c, 'workerLeft');
    w.close();
    expect((await left).upid).toBe(info.upid.replace(/-\d+-/, `-${accept.virtualPid}-`));
    expect(c.status().numPeers).toBe(0);

    // It comes back from its image: one restart worker, one restart barrier.
    const restarted = once<{ workers: number; barriers: number }>(c, 'restartCompleted');
    const r = await SyntheticWorker.connect(port);
    r.id = { ...w.id };
    r.send({ type: T.DMT_RESTART_WORKER, state: S.RESTARTING, compGroup, numPeers: 1, realPid: 4242 }, 'testhost\0synthetic\0');
    await r.expect('DMT_ACCEPT');
    r.send({ type: T.DMT_BARRIER, state: S.RESTARTING, barrier: 'DMT:Restart' });
    await r.expect('DMT_BARRIER_RELEASED');
    r.send({ type: T.DMT_WORKER_RESUMING, state: S.RUNNING });
    expect(await restarted).toMatchObject({ workers: 1, barriers: 1 });
    r.close();
    await c.stop();
  });

  it('quit() kills the workers and ends the coordinator; kill() keeps it', async () => {
    const c = new Coordinator();
    const { port } = await c.start({ port: 0, ckptdir: dir });
    const w = await SyntheticWorker.connect(port);
    await w.join();
    await c.kill();
    expect((await w.expect('DMT_KILL_PEER')).typeName).toBe('DMT_KILL_PEER');
    w.close();
    expect(c.running).toBe(true);
    const w2 = await SyntheticWorker.connect(port);
    // Kill in progress until the last worker is gone; retry the hello until accepted.
    for (let i = 0; i < 100 && c.status().killInProgress; i++) await new Promise((r) => setTimeout(r, 10));
    await w2.join();
    const exit = c.quit();
    expect((await w2.expect('DMT_KILL_PEER')).typeName).toBe('DMT_KILL_PEER');
    expect(await exit).toMatchObject({ code: 0 });
    expect(c.running).toBe(false);
    w2.close();
  });
});

/** Runs `body` (ESM, with `Coordinator` and `net` in scope) in a child node and returns its exit status. */
function child(body: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const script = `import { Coordinator } from ${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))};
import net from 'node:net';
${body}`;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const t = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stderr });
    });
  });
}

describe('process exit with a coordinator at each lifecycle stage', () => {
  const stages: [string, string][] = [
    ['constructed, never started', `new Coordinator();`],
    ['start() still in flight', `const c = new Coordinator(); c.start({ port: 0 }); process.exit(0);`],
    ['running, process.exit()', `const c = new Coordinator(); await c.start({ port: 0 }); process.exit(0);`],
    ['running, unref()ed, natural exit', `const c = new Coordinator(); await c.start({ port: 0 }); c.unref();`],
    [
      'running with a connected client, process.exit()',
      `const c = new Coordinator(); const { port } = await c.start({ port: 0 });
       const s = net.connect(port, '127.0.0.1'); await new Promise((r) => s.once('connect', r));
       setTimeout(() => process.exit(0), 50);`,
    ],
    [
      'blocking checkpoint pending, process.exit()',
      `const c = new Coordinator(); await c.start({ port: 0 }); c.checkpoint({ blocking: true }).catch(() => {}); process.exit(0);`,
    ],
    ['stopped', `const c = new Coordinator(); await c.start({ port: 0 }); await c.stop();`],
    ['quit', `const c = new Coordinator(); await c.start({ port: 0 }); await c.quit();`],
    ['stop() in flight', `const c = new Coordinator(); await c.start({ port: 0 }); c.stop(); process.exit(0);`],
  ];
  for (const [name, body] of stages) {
    it(name, async () => {
      const r = await child(body);
      expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    });
  }

  it('a running (referenced) coordinator keeps the process alive until stopped', async () => {
    const r = await child(
      `const c = new Coordinator(); await c.start({ port: 0 });
       const t0 = Date.now(); setTimeout(async () => { await c.stop(); if (Date.now() - t0 < 300) process.exitCode = 3; }, 300);`,
    );
    expect(r).toEqual({ code: 0, signal: null, stderr: '' });
  });
});
