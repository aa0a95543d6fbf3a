/**
 * `ckpt bench checkpoint --json` with a tiny program: with the engine built,
 * the built-in columns are complete (checkpoint, downtime, restart, image
 * size, shares of the same run's storage figures); without DMTCP its columns
 * are null with a reason. Without the engine the section says why.
 * No timing assertions.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BenchDocument, CheckpointResult, CheckpointSide } from '../../src/bench/schema.js';

const root = path.resolve(__dirname, '../..');
const ckpt = path.join(root, 'bin/ckpt');
const built = ['libckpt.so', 'ckpt-restart', 'dmtcp_coordinator', 'dmtcp_command', 'ckpt-bench-workload'].every((f) => fs.existsSync(path.join(root, 'build/Release', f)));
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-ckpt-'));
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function expectSide(s: CheckpointSide | null): void {
  expect(s).not.toBeNull();
  const x = s as CheckpointSide;
  expect(x.checkpoint.runs).toBe(2);
  expect(x.checkpoint.median).toBeGreaterThan(0);
  expect(x.downtime.median).toBeGreaterThanOrEqual(0);
  expect(x.restart?.median).toBeGreaterThan(0);
  expect(x.imageBytes).toBeGreaterThan(0);
  expect(x.writeBandwidth).toBeCloseTo(x.imageBytes / 1024 / 1024 / x.checkpoint.median, 6);
  expect(x.writeShare).toBeGreaterThan(0);
  expect(x.readShare).toBeGreaterThan(0);
}

describe('ckpt bench checkpoint', () => {
  it('measures the built-in engine end to end, or says why not', () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DMTCP_PREFIX;
    env.PATH = '/usr/bin:/bin';
    const r = spawnSync(
      process.execPath,
      [ckpt, 'bench', 'checkpoint', tmp, '--json', '--rss', '8M', '--runs', '2', '--warmup', '0', '--size', '8M', '--spin-iterations', '20000000'],
      { encoding: 'utf8', timeout: 240_000, env },
    );
    const doc = JSON.parse(r.stdout) as BenchDocument;
    const c = doc.checkpoint;
    expect(c).not.toBeNull();
    if (!built) {
      expect(c?.available).toBe(false);
      expect((c as { reason: string }).reason).toMatch(/^engine unavailable: /);
      expect(r.status).toBe(1);
      return;
    }
    expect(r.status).toBe(0);
    const res = c as CheckpointResult;
    expect(res.available).toBe(true);
    expect(res.storage?.write.median).toBeGreaterThan(0);
    expect(res.rows).toHaveLength(1);
    const row = res.rows[0]!;
    expect(row.rssBytes).toBe(8 * 1024 * 1024);
    expect(row.builtinReason).toBeNull();
    expectSide(row.builtin);
    expectSide(row.builtinZstd);
    // zstd images of the mixed test data are smaller than raw ones.
    expect(row.builtinZstd!.imageBytes).toBeLessThan(row.builtin!.imageBytes);
    expect(row.dmtcpGzip).toBeNull();
    expect(row.dmtcpNoGzip).toBeNull();
    expect(row.dmtcpReason).toMatch(/DMTCP not found/);
    expect(res.runtimeOverhead?.runs).toBeGreaterThanOrEqual(3);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('rejects a size below 1 MiB before measuring anything', () => {
    const r = spawnSync(process.execPath, [ckpt, 'bench', 'checkpoint', tmp, '--json', '--rss', '4K'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('ERR_CKPT_INVALID_ARGUMENT');
  });
});
