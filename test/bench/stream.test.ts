/**
 * `ckpt bench stream --json` with a tiny image: every row (raw, raw with
 * O_DIRECT where the filesystem has it, zstd) and every reference tool is
 * present with sane figures or a reason. No timing assertions.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BenchDocument, StreamResult } from '../../src/bench/schema.js';

const ckpt = path.resolve(__dirname, '../../bin/ckpt');
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-stream-'));
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ckpt bench stream', () => {
  it('--json reports raw and zstd rows as shares of the same run storage figures, and the references', () => {
    const r = spawnSync(
      process.execPath,
      [ckpt, 'bench', 'stream', tmp, '--json', '--image-size', '8M', '--size', '8M', '--runs', '2', '--warmup', '0', '--zstd-levels', '1,3'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const doc = JSON.parse(r.stdout) as BenchDocument;
    expect(doc.storage).toBeNull();
    const s = doc.stream as StreamResult;
    expect(s.available).toBe(true);
    expect(r.status).toBe(0);
    expect(s.imageBytes).toBe(8 * 1024 * 1024);
    expect(s.data).toMatch(/zero pages/);
    expect(s.storage.write.median).toBeGreaterThan(0);
    const names = s.rows.map((x) => `${x.codec}${x.level ?? ''}${x.direct ? 'd' : ''}`);
    expect(names.slice(0, 1)).toEqual(['raw']);
    expect(names.filter((n) => n.startsWith('zstd'))).toEqual(['zstd1', 'zstd3']);
    for (const row of s.rows) {
      expect(row.write.runs).toBe(2);
      expect(row.write.median).toBeGreaterThan(0);
      expect(row.read.median).toBeGreaterThan(0);
      expect(row.writeShare).toBeCloseTo(row.write.median / s.storage.write.median, 10);
      expect(row.readShare).toBeCloseTo(row.read.median / s.storage.read.median, 10);
      // The test data has zero and incompressible pages: zstd compresses it, raw only elides zero pages.
      expect(row.compressionRatio).toBeGreaterThan(1);
    }
    const raw = s.rows.find((x) => x.codec === 'raw') as StreamResult['rows'][number];
    const z1 = s.rows.find((x) => x.level === 1) as StreamResult['rows'][number];
    expect(z1.compressionRatio).toBeGreaterThan(raw.compressionRatio);
    expect(s.references.map((x) => x.tool)).toEqual(['gzip -1', 'zstd -1 -T0', 'pigz -1']);
    for (const ref of s.references) {
      if (ref.available) {
        expect(ref.write?.median).toBeGreaterThan(0);
        expect(ref.compressionRatio).toBeGreaterThan(1);
      } else expect(ref.reason).toMatch(/not found|exited/);
    }
    const gzip = s.references[0];
    if (gzip?.available) expect(s.zstdVsGzip).toBeCloseTo(z1.write.median / (gzip.write?.median ?? 1), 10);
    else expect(s.zstdVsGzip).toBeNull();
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('refuses an image size that is not a multiple of 4 KiB', () => {
    const r = spawnSync(process.execPath, [ckpt, 'bench', 'stream', tmp, '--json', '--image-size', '1000'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('ERR_CKPT_INVALID_ARGUMENT');
  });
});
