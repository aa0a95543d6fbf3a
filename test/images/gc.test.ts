/**
 * ckpt gc: keeps the newest N complete generations, never deletes a valid
 * checkpoint it is told to keep, the newest complete one, anything newer,
 * or anything it cannot classify.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { gc, indexImages } from '../../src/images.js';
import { dmtcpImage, dmtcpName, makeGeneration, run, tempDir } from './helpers.js';

let root: string;
beforeEach(() => {
  root = tempDir('ckpt-gc-');
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('ckpt gc', () => {
  it('keeps the newest N complete generations of our layout and removes the rest', async () => {
    for (let g = 1; g <= 4; g++) await makeGeneration(root, 'job', g, 2);
    await makeGeneration(root, 'job', 5, 2, { commit: false }); // newer, incomplete: may be in progress
    fs.writeFileSync(path.join(root, 'job', 'notes.txt'), 'mine');
    const dry = run(['gc', root, '--keep', '2', '--dry-run', '--json']);
    expect(dry.status).toBe(0);
    const d = JSON.parse(dry.stdout) as { removed: Array<{ path: string }>; kept: Array<{ generation: number }> };
    expect(d.removed.map((x) => path.basename(x.path)).sort()).toEqual(['gen-1', 'gen-2']);
    expect(fs.existsSync(path.join(root, 'job', 'gen-1'))).toBe(true); // dry run removed nothing

    const before = await indexImages([root]);
    const newest = before.generations.find((g) => g.newestComplete)!;
    const r = await gc(root, { keep: 2 });
    expect(r.kept.map((k) => k.generation).sort()).toEqual([3, 4]);
    for (const g of [1, 2]) expect(fs.existsSync(path.join(root, 'job', `gen-${g}`))).toBe(false);
    for (const g of [3, 4, 5]) expect(fs.existsSync(path.join(root, 'job', `gen-${g}`))).toBe(true);
    expect(fs.readFileSync(path.join(root, 'job', 'notes.txt'), 'utf8')).toBe('mine');
    for (const p of newest.processes) expect(fs.existsSync(p.path)).toBe(true);
    expect(run(['verify', path.join(root, 'job', 'gen-4')]).status).toBe(0);
    // Idempotent.
    expect((await gc(root, { keep: 2 })).removed).toEqual([]);
  });

  it('never removes a generation directory holding files it does not manage', async () => {
    await makeGeneration(root, 'job', 1, 1);
    await makeGeneration(root, 'job', 2, 1);
    fs.writeFileSync(path.join(root, 'job', 'gen-1', 'README'), 'keep me');
    const r = await gc(root, { keep: 1 });
    expect(fs.readFileSync(path.join(root, 'job', 'gen-1', 'README'), 'utf8')).toBe('keep me');
    expect(fs.existsSync(path.join(root, 'job', 'gen-1', 'p0.ckpt'))).toBe(false);
    expect(r.skipped.some((s) => s.why.includes('does not manage'))).toBe(true);
  });

  it('leaves computations without a complete generation and unreadable files alone', async () => {
    await makeGeneration(root, 'a', 1, 2, { commit: false });
    fs.writeFileSync(path.join(root, 'junk.ckpt'), 'not an image at all, but named like one');
    const r = await gc(root, { keep: 1 });
    expect(r.removed).toEqual([]);
    expect(fs.existsSync(path.join(root, 'junk.ckpt'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'a', 'gen-1', 'p0.ckpt'))).toBe(true);
    expect(r.skipped.map((s) => s.path)).toContain(path.join(root, 'junk.ckpt'));
  });

  it('removes DMTCP images of exited processes (older, incomplete) but never the newest complete set', async () => {
    const parent = { time: 0x1000n, vpid: 40000, generation: 3, numPeers: 1 };
    const child = { time: 0x2000n, vpid: 41000, parentVpid: 40000, parentTime: 0x1000n, generation: 2, numPeers: 2 };
    fs.writeFileSync(path.join(root, dmtcpName(parent)), dmtcpImage(parent));
    fs.writeFileSync(path.join(root, dmtcpName(child)), dmtcpImage(child));
    const files = path.join(root, dmtcpName(child).replace(/\.dmtcp$/, '_files'));
    fs.mkdirSync(files);
    fs.writeFileSync(path.join(files, 'fd-info.txt'), 'x');
    const r = await gc(root, { keep: 1 });
    expect(r.removed.map((x) => path.basename(x.path)).sort()).toEqual([dmtcpName(child), path.basename(files)].sort());
    expect(fs.existsSync(path.join(root, dmtcpName(parent)))).toBe(true);
    const after = await indexImages([root]);
    expect(after.generations).toHaveLength(1);
    expect(after.generations[0]).toMatchObject({ generation: 3, complete: true });
  });

  it('requires --keep >= 1', () => {
    expect(run(['gc', root]).status).toBe(2);
    expect(run(['gc', root, '--keep', '0']).status).toBe(2);
    expect(run(['gc', path.join(root, 'missing'), '--keep', '1']).status).toBe(3);
  });
});
