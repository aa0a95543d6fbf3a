/**
 * A writer killed with SIGKILL in the middle of an image leaves the previous
 * generation intact and still chosen: the half-written image only exists
 * under its temp name, the new generation has no MANIFEST and `latest` is
 * not switched.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';

import { indexImages, readLatest, verifyGeneration } from '../../src/images.js';
import { makeGeneration, run, tempDir } from './helpers.js';

const distImages = path.resolve(__dirname, '../../dist/images.js');
let root = '';
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

it('SIGKILL during a write leaves the previous generation intact and chosen', async () => {
  root = tempDir();
  const g1 = await makeGeneration(root, 'job', 1, 2);
  const g2 = path.join(root, 'job', 'gen-2');
  fs.mkdirSync(g2, { recursive: true });
  // The child writes one complete image of generation 2, then a big one that
  // compresses slowly (random data, zstd level 19), so it is killed mid-write.
  const script = `
    import crypto from 'node:crypto';
    const m = await import(${JSON.stringify(distImages)});
    const meta = (p) => ({ computation: 'job', generation: 2, numPeers: 2, processId: p, hostname: 'node1' });
    await m.writeImage(${JSON.stringify(path.join(g2, 'p0.ckpt'))}, meta('p0'), [{ start: 65536, data: Buffer.alloc(1 << 20, 3) }], { sync: true });
    const big = crypto.randomBytes(256 << 20);
    await m.writeImage(${JSON.stringify(path.join(g2, 'p1.ckpt'))}, meta('p1'), [{ start: 65536, data: big }], { codec: 'zstd', level: 19, threads: 1, maxInFlight: 2, sync: true });
    await m.commitGeneration(${JSON.stringify(g2)});
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const tmp = path.join(g2, 'p1.ckpt.tmp');
  const deadline = Date.now() + 60_000;
  // Wait until the temp file has the header and at least one chunk on disk.
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (fs.existsSync(tmp) && fs.statSync(tmp).size > 4096 + 65536) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(child.exitCode, `child ended early: ${stderr}`).toBeNull();
  expect(fs.existsSync(tmp)).toBe(true);
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');

  expect(fs.existsSync(path.join(g2, 'p1.ckpt'))).toBe(false);
  expect(fs.existsSync(path.join(g2, 'MANIFEST'))).toBe(false);
  expect(readLatest(path.join(root, 'job'))).toBe('gen-1');
  await verifyGeneration(g1, true);

  const r = await indexImages([root]);
  const byGen = new Map(r.generations.map((g) => [g.generation, g]));
  expect(byGen.get(1)).toMatchObject({ complete: true, newestComplete: true, latest: true });
  expect(byGen.get(2)?.complete).toBe(false);
  expect(byGen.get(2)?.reason).toMatch(/p1\.ckpt\.tmp|1 of 2|MANIFEST/);

  const human = run(['images', root]);
  expect(human.stdout).toMatch(/job\s+1\s+ckpt\s+2\/2.*complete \(newest\)/);
  // gc keeps generation 1 and leaves the interrupted generation 2 alone (it is newer).
  const gc = JSON.parse(run(['gc', root, '--keep', '1', '--json']).stdout) as { removed: unknown[] };
  expect(gc.removed).toEqual([]);
  expect(fs.existsSync(g1)).toBe(true);
});
