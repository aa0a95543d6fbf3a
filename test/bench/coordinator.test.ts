/**
 * `ckpt bench coordinator --json` with a few synthetic workers against our
 * coordinator: the rows and the blocking-checkpoint figure are complete, and
 * without DMTCP the side-by-side columns are null with a reason. (With
 * DMTCP_PREFIX set, the original's columns must be filled or explained.)
 * No timing assertions.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import type { BenchDocument, CoordinatorResult } from '../../src/bench/schema.js';

const root = path.resolve(__dirname, '../..');
const ckpt = path.join(root, 'bin/ckpt');
const built = fs.existsSync(path.join(root, 'build/Release/dmtcp_coordinator')) && fs.existsSync(path.join(root, 'build/Release/ckpt_loadgen'));

function run(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, [ckpt, ...args], { encoding: 'utf8', timeout: 120_000, env });
}

describe('ckpt bench coordinator', () => {
  it('is unavailable with a reason, or measures every requested worker count', () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DMTCP_PREFIX;
    env.PATH = '/usr/bin:/bin'; // no dmtcp_launch
    const r = run(['bench', 'coordinator', '--workers', '1,20', '--runs', '2', '--warmup', '0', '--json'], env);
    const doc = JSON.parse(r.stdout) as BenchDocument;
    expect(doc.schema).toBe('ckpt-bench/1');
    expect(doc.storage).toBeNull();
    const c = doc.coordinator;
    expect(c).not.toBeNull();
    if (!built) {
      // Without the native executables the section says why and the command fails.
      expect(c?.available).toBe(false);
      expect(r.status).toBe(1);
      return;
    }
    expect(r.status).toBe(0);
    const res = c as CoordinatorResult;
    expect(res.available).toBe(true);
    expect(res.rows.map((x) => x.workers)).toEqual([1, 20]);
    for (const row of res.rows) {
      expect(row.ckpt.workers).toBe(row.workers);
      expect(row.ckpt.roundTrip.runs).toBe(2);
      expect(row.ckpt.roundTrip.median).toBeGreaterThan(0);
      expect(row.ckpt.connectRate.median).toBeGreaterThan(0);
      expect(row.ckpt.rssBytes).toBeGreaterThan(0);
      expect(row.dmtcp).toBeNull();
      expect(row.dmtcpReason).toMatch(/DMTCP not found/);
      expect(row.roundTripSpeedup).toBeNull();
    }
    expect(res.dmtcp).toMatchObject({ available: false, prefix: null, maxWorkers: 961 });
    expect(res.blockingCheckpoint?.ckpt?.median).toBeGreaterThan(0);
    expect(res.blockingCheckpoint?.dmtcp).toBeNull();
    expect(res.blockingCheckpoint?.speedup).toBeNull();
    expect(doc.headlines.some((h) => h.id === 'coordinator.dmtcp' && /not compared/.test(h.text))).toBe(true);
  });

  const prefix = process.env.DMTCP_PREFIX;
  it.skipIf(!prefix || !built)('fills the side-by-side columns when DMTCP is present', () => {
    const r = run(['bench', 'coordinator', '--workers', '1,50', '--runs', '1', '--warmup', '0', '--json'], process.env);
    expect(r.status).toBe(0);
    const res = (JSON.parse(r.stdout) as BenchDocument).coordinator as CoordinatorResult;
    expect(res.dmtcp).toMatchObject({ available: true, reason: null, prefix });
    for (const row of res.rows) {
      expect(row.dmtcp?.workers).toBe(row.workers);
      expect(row.dmtcp?.roundTrip.median).toBeGreaterThan(0);
      expect(row.roundTripSpeedup).toBeGreaterThan(0);
    }
    expect(res.blockingCheckpoint?.speedup).toBeGreaterThan(0);
  });

  it('rejects invalid worker lists', () => {
    const r = run(['bench', 'coordinator', '--workers', '1,x', '--json'], process.env);
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('ERR_CKPT_INVALID_ARGUMENT');
    expect(run(['bench', 'coordinator', '--workers', '0'], process.env).status).toBe(2);
  });
});
