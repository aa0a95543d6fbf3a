/**
 * `ckpt bench storage --json` on a temporary directory with tiny sizes:
 * the schema is complete and the figures are sane (positive, consistent).
 * No timing assertions: a slow machine must pass too.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Stat } from '../../src/bench/method.js';
import type { BenchDocument } from '../../src/bench/schema.js';
import type { StorageResult } from '../../src/bench/storage.js';

const ckpt = path.resolve(__dirname, '../../bin/ckpt');
let tmp: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [ckpt, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectStat(s: Stat | null | undefined, unit: string, runs: number): void {
  expect(s).toBeTruthy();
  const x = s as Stat;
  expect(x.unit).toBe(unit);
  expect(x.runs).toBe(runs);
  expect(x.samples).toHaveLength(runs);
  for (const v of x.samples) expect(v).toBeGreaterThan(0);
  expect(x.min).toBeLessThanOrEqual(x.median);
  expect(x.median).toBeLessThanOrEqual(x.max);
  expect(typeof x.noisy).toBe('boolean');
  expect(x.spread).toBeGreaterThanOrEqual(0);
}

const TINY = ['--size', '8M', '--block-size', '1M', '--runs', '2', '--warmup', '0', '--sweep', '64K,1M', '--fsync-rounds', '3'];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-storage-'));
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ckpt bench storage', () => {
  it('--json prints a complete ckpt-bench/1 document with sane figures and cleans up', () => {
    const r = run(['bench', 'storage', tmp, '--json', ...TINY]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as BenchDocument;
    expect(doc.schema).toBe('ckpt-bench/1');
    expect(doc.command).toContain('bench storage');
    expect(Date.parse(doc.startedAt)).not.toBeNaN();
    expect(doc.durationSeconds).toBeGreaterThan(0);
    expect(doc.method).toEqual({ warmup: 0, runs: 2, noisySpread: 0.2, statistic: 'median' });
    expect(doc.machine.cpu.logicalCpus).toBeGreaterThan(0);
    expect(doc.machine.cpu.model).not.toBe('');
    expect(doc.machine.kernel.release).toBe(os.release());
    expect(doc.machine.memoryBytes).toBeGreaterThan(0);
    // Only storage was requested.
    expect(doc.stream).toBeNull();
    expect(doc.coordinator).toBeNull();
    expect(doc.checkpoint).toBeNull();

    const s = doc.storage as StorageResult;
    expect(s.available).toBe(true);
    expect(s.filesystem.dir).toBe(fs.realpathSync(tmp));
    expect(s.filesystem.type).not.toBe('unknown');
    expect(s.filesystem.mountPoint.startsWith('/')).toBe(true);
    expect(s.fileBytes).toBe(8 * 1024 * 1024);
    expect(s.blockSize).toBe(1024 * 1024);
    if (s.direct.supported) {
      expect(s.direct.reason).toBeNull();
      expectStat(s.direct.write, 'MiB/s', 2);
      expectStat(s.direct.read, 'MiB/s', 2);
    } else {
      expect(s.direct.reason).toMatch(/O_DIRECT unsupported/);
      expect(s.direct.write).toBeNull();
      expect(s.reference.mode).toBe('buffered');
    }
    expectStat(s.buffered.write, 'MiB/s', 2);
    expectStat(s.buffered.read, 'MiB/s', 2);
    expect(s.buffered.writeFsync.runs).toBe(2);
    expectStat(s.fsync.latency, 'ms', 3);
    expect(s.sweep.map((p) => p.blockSize)).toEqual([64 * 1024, 1024 * 1024]);
    for (const p of s.sweep) {
      expect(p.writeMiBps).toBeGreaterThan(0);
      expect(p.readMiBps).toBeGreaterThan(0);
    }
    // The reference is the faster path per direction.
    expect(s.reference.write.median).toBe(Math.max(s.direct.write?.median ?? 0, s.buffered.write.median));
    expect(s.reference.read.median).toBe(Math.max(s.direct.read?.median ?? 0, s.buffered.read.median));
    expect(s.reference.write.median).toBe(s.reference.mode === 'direct' ? s.direct.write?.median : s.buffered.write.median);
    expect(s.reference.read.median).toBe(s.reference.readMode === 'direct' ? s.direct.read?.median : s.buffered.read.median);
    expect(doc.headlines.length).toBeGreaterThan(0);
    for (const h of doc.headlines) expect(Object.keys(h).sort()).toEqual(['id', 'met', 'target', 'text', 'value']);
    // Temporary data removed.
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('.ckpt-bench-'))).toEqual([]);
  });

  it('prints a table naming the filesystem and writes an HTML report', () => {
    const report = path.join(tmp, 'report');
    const r = run(['bench', 'storage', tmp, ...TINY, '--no-sweep', '--report', report]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Storage: .*\(\w+ on /m);
    expect(r.stdout).toContain('buffered write + fsync');
    expect(r.stdout).toContain('4 KiB write + fsync');
    expect(r.stderr).toContain(path.join(report, 'index.html'));
    const html = fs.readFileSync(path.join(report, 'index.html'), 'utf8');
    expect(html).toContain('<h2>Storage</h2>');
  });

  it('handles tmpfs: O_DIRECT figures or a clear "O_DIRECT unsupported", buffered figures always', () => {
    if (!fs.existsSync('/dev/shm')) return;
    const shm = fs.mkdtempSync('/dev/shm/ckpt-bench-test-');
    try {
      const r = run(['bench', 'storage', shm, '--json', ...TINY, '--no-sweep']);
      expect(r.status).toBe(0);
      const s = (JSON.parse(r.stdout) as BenchDocument).storage as StorageResult;
      expect(s.filesystem.type).toBe('tmpfs');
      expect(s.filesystem.device).toBeNull();
      if (!s.direct.supported) expect(s.direct.reason).toMatch(/^O_DIRECT unsupported/);
      expectStat(s.buffered.write, 'MiB/s', 2);
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });

  it('refuses bad options and a missing directory with documented exit codes', () => {
    const bad = run(['bench', 'storage', tmp, '--json', '--size', '12345']);
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe('ERR_CKPT_INVALID_ARGUMENT');
    expect(run(['bench', 'storage', tmp, '--size', 'lots']).status).toBe(2);
    expect(run(['bench', 'storage', tmp, '--queue-depth', '0']).status).toBe(2);
    expect(run(['bench', 'storage', tmp, '--runs', '0']).status).toBe(2);
    const missing = run(['bench', 'storage', path.join(tmp, 'nope'), '--json']);
    expect(missing.status).toBe(3);
    expect(JSON.parse(missing.stdout).error.code).toBe('ERR_CKPT_NOT_FOUND');
  });

  it('has help with examples', () => {
    const r = run(['bench', 'storage', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('Exit codes:');
    expect(run(['bench', '--help']).stdout).toContain('ckpt bench all --quick');
  });
});
