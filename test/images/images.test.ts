/**
 * ckpt images / verify / inspect on our own layout: the JSON contract,
 * choice of the newest complete generation, and detection of every kind of
 * damage with the file and offset named.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { indexImages, readLatest, readManifest, verifyGeneration } from '../../src/images.js';
import { makeGeneration, run, tempDir } from './helpers.js';

let root: string;
beforeEach(() => {
  root = tempDir();
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function trailer(file: string): { tableOffset: number; size: number } {
  const b = fs.readFileSync(file);
  const t = b.subarray(b.length - 64);
  return { tableOffset: Number(t.readBigUInt64LE(8)), size: b.length };
}

function flip(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] = (b[0] ?? 0) ^ 0xa5;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

describe('ckpt images', () => {
  it('prints the JSON contract and picks the newest complete generation', async () => {
    await makeGeneration(root, 'job', 1, 2);
    await makeGeneration(root, 'job', 2, 2);
    await makeGeneration(root, 'job', 3, 2, { commit: false });
    const r = run(['images', root, '--json']);
    expect(r.status).toBe(0);
    const gens = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(gens.map((g) => g.generation)).toEqual([3, 2, 1]);
    for (const g of gens) {
      expect(g).toHaveProperty('computation', 'job');
      expect(g).toHaveProperty('numPeers', 2);
      expect(g).toHaveProperty('format', 'ckpt');
      expect(typeof g.complete).toBe('boolean');
      expect(g.reason === null || typeof g.reason === 'string').toBe(true);
      const procs = g.processes as Array<{ path: string; bytes: number }>;
      expect(procs).toHaveLength(2);
      for (const p of procs) {
        expect(fs.statSync(p.path).size).toBe(p.bytes);
      }
    }
    expect(gens[0]).toMatchObject({ complete: false, newestComplete: false });
    expect(String(gens[0]!.reason)).toContain('MANIFEST');
    expect(gens[1]).toMatchObject({ complete: true, reason: null, newestComplete: true, latest: true, hosts: ['node1'] });
    expect(gens[2]).toMatchObject({ complete: true, newestComplete: false });
    expect(readLatest(path.join(root, 'job'))).toBe('gen-2');
    const m = await readManifest(path.join(root, 'job', 'gen-2', 'MANIFEST'));
    expect(m.entries.map((e) => e.name)).toEqual(['p0.ckpt', 'p1.ckpt']);

    const human = run(['images', root]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/job\s+2\s+ckpt\s+2\/2\s+node1\s+.*complete \(newest\)/);
    expect(human.stdout).toMatch(/job\s+3\s+ckpt\s+2\/2.*incomplete: not committed/);
  });

  it('--deep verifies every chunk and still lists everything', async () => {
    const g1 = await makeGeneration(root, 'job', 1, 1);
    const img = path.join(g1, 'p0.ckpt');
    flip(img, 4096 + 100); // inside the first chunk: invisible to the O(1) checks
    const quick = await indexImages([root]);
    expect(quick.generations[0]!.complete).toBe(true);
    const deep = await indexImages([root], { deep: true });
    expect(deep.generations[0]!.complete).toBe(false);
    expect(deep.generations[0]!.reason).toContain(`${img}: at offset 4096`);
    expect(deep.generations[0]!.reason).toContain('checksum mismatch');
  });

  it('reports missing directories with exit code 3', () => {
    const r = run(['images', path.join(root, 'nope')]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('does not exist');
  });
});

describe('ckpt verify catches every corruption and names the file and offset', () => {
  const damages: Array<[string, (file: string) => void, RegExp]> = [
    ['a flipped header byte', (f) => flip(f, 30), /at offset 0: header checksum mismatch/],
    ['a flipped header magic byte', (f) => flip(f, 0), /at offset 0: not a ckpt image/],
    ['a flipped region-table byte', (f) => flip(f, trailer(f).tableOffset + 33), /region table checksum mismatch/],
    ['a flipped chunk byte', (f) => flip(f, 4096 + 7), /at offset 4096: chunk 0: checksum mismatch/],
    ['a flipped trailer byte', (f) => flip(f, trailer(f).size - 20), /trailer checksum mismatch/],
    ['truncation to 0 bytes', (f) => fs.truncateSync(f, 0), /at offset 0/],
    ['truncation inside the header', (f) => fs.truncateSync(f, 100), /at offset 100/],
    ['truncation after the header', (f) => fs.truncateSync(f, 4096), /at offset 4096: file ends after 4096 bytes/],
    ['truncation inside the data', (f) => fs.truncateSync(f, 4096 + 50_000), /no image trailer/],
    ['truncation by one byte', (f) => fs.truncateSync(f, trailer(f).size - 1), /at offset \d+: no image trailer/],
  ];
  for (const [name, damage, expected] of damages) {
    it(name, async () => {
      const dir = await makeGeneration(root, 'job', 1, 2);
      const victim = path.join(dir, 'p1.ckpt');
      damage(victim);
      const file = run(['verify', victim]);
      expect(file.status).toBe(4);
      expect(file.stderr).toContain(victim);
      expect(file.stderr).toMatch(expected);
      const whole = run(['verify', root]);
      expect(whole.status).toBe(4);
      expect(whole.stderr).toContain(victim);
      expect(whole.stderr).toMatch(/offset \d+/);
      // The other image of the set is still fine on its own.
      expect(run(['verify', path.join(dir, 'p0.ckpt')]).status).toBe(0);
    });
  }

  it('a missing MANIFEST', async () => {
    const dir = await makeGeneration(root, 'job', 1, 2);
    fs.rmSync(path.join(dir, 'MANIFEST'));
    const r = run(['verify', root]);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`not committed: no MANIFEST in ${dir}`);
    await expect(verifyGeneration(dir)).rejects.toMatchObject({ code: 'ERR_CKPT_INCOMPLETE' });
  });

  it('a stale MANIFEST (from another generation, or an image replaced after the commit)', async () => {
    const g1 = await makeGeneration(root, 'job', 1, 2);
    const g2 = await makeGeneration(root, 'job', 2, 2);
    fs.copyFileSync(path.join(g1, 'MANIFEST'), path.join(g2, 'MANIFEST'));
    let r = run(['verify', root]);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`${g2}/MANIFEST: stale MANIFEST`);
    await expect(verifyGeneration(g2)).rejects.toMatchObject({ code: 'ERR_CKPT_CORRUPT' });
    // Re-commit g2, then replace one image with one of the same size but other content.
    fs.rmSync(path.join(g2, 'MANIFEST'));
    const { commitGeneration, writeImage } = await import('../../src/images.js');
    await commitGeneration(g2, { sync: false });
    expect(run(['verify', root]).status).toBe(0);
    const { mixedData } = await import('./helpers.js');
    await writeImage(path.join(g2, 'p1.ckpt'), { computation: 'job', generation: 2, numPeers: 2, processId: 'p1', hostname: 'node1', program: 'test' }, [{ start: 0x10000, data: mixedData(600_000, 999) }], { sync: false });
    r = run(['verify', root]);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`${g2}/p1.ckpt`);
    expect(r.stderr).toMatch(/differs from MANIFEST/);
  });

  it('a flipped MANIFEST byte', async () => {
    const dir = await makeGeneration(root, 'job', 1, 1);
    flip(path.join(dir, 'MANIFEST'), 20);
    const r = run(['verify', root]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(new RegExp(`${dir}/MANIFEST: at offset \\d+`));
  });

  it('a leftover temp file', async () => {
    const dir = await makeGeneration(root, 'job', 1, 2);
    fs.writeFileSync(path.join(dir, 'p2.ckpt.tmp'), 'partial');
    const r = run(['verify', root]);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`${dir}/p2.ckpt.tmp`);
    const j = JSON.parse(run(['images', root, '--json']).stdout) as Array<{ complete: boolean; reason: string }>;
    expect(j[0]!.complete).toBe(false);
    expect(j[0]!.reason).toContain('p2.ckpt.tmp');
  });

  it('passes an intact directory and prints JSON', async () => {
    await makeGeneration(root, 'job', 1, 2);
    const r = run(['verify', root, '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, images: 2, generations: 1, problems: [] });
  });
});

describe('ckpt inspect', () => {
  it('shows header and regions', async () => {
    const dir = await makeGeneration(root, 'job', 4, 1);
    const r = run(['inspect', path.join(dir, 'p0.ckpt'), '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { format: string; header: Record<string, unknown>; regions: Array<Record<string, unknown>> };
    expect(j.format).toBe('ckpt');
    expect(j.header).toMatchObject({ computation: 'job', generation: 4, numPeers: 1, processId: 'p0', hostname: 'node1', formatVersion: '1.1' });
    expect(j.regions).toHaveLength(1);
    expect(j.regions[0]).toMatchObject({ start: '0x0000000000010000', length: 600_000 });
    const text = run(['inspect', path.join(dir, 'p0.ckpt')]);
    expect(text.stdout).toContain('computation      job');
  });

  it('fails with exit 3 for a missing file and 4 for a damaged one', async () => {
    expect(run(['inspect', path.join(root, 'x.ckpt')]).status).toBe(3);
    const dir = await makeGeneration(root, 'job', 1, 1);
    fs.truncateSync(path.join(dir, 'p0.ckpt'), 5000);
    const r = run(['inspect', path.join(dir, 'p0.ckpt')]);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain('offset');
  });
});
