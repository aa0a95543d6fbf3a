/**
 * A complete synthetic BenchDocument (every section measured, DMTCP present)
 * for report and formatting tests: known numbers, so tests can count exactly
 * how many plot points each chart must draw.
 */
import { summarize } from '../../src/bench/method.js';
import { headlines } from '../../src/bench/headlines.js';
import { SCHEMA, type BenchDocument, type CheckpointSide, type CoordinatorSide } from '../../src/bench/schema.js';

const MiB = 1024 * 1024;
const st = (unit: string, ...v: number[]) => summarize(v, unit);

export const SWEEP = [64 * 1024, 256 * 1024, MiB, 4 * MiB, 16 * MiB];
export const WORKERS = [1, 100, 900, 10000];
/** Worker counts the original dmtcp_coordinator can hold. */
export const DMTCP_WORKERS = WORKERS.filter((w) => w <= 961);
export const RSS = [64 * MiB, 512 * MiB, 2048 * MiB];

function coordSide(workers: number, scale: number): CoordinatorSide {
  const t = (0.002 + workers * 0.00005) * scale;
  return { workers, connectRate: st('1/s', 40000 / scale, 38000 / scale, 41000 / scale), roundTrip: st('s', t, t * 0.9, t * 1.3), rssBytes: (8 + workers * 0.004) * MiB * scale };
}

function ckptSide(rss: number, seconds: number, storageWrite: number, storageRead: number): CheckpointSide {
  const bw = rss / MiB / seconds;
  return {
    checkpoint: st('s', seconds, seconds * 0.95, seconds * 1.05),
    downtime: st('s', seconds * 1.02, seconds, seconds * 1.1),
    restart: st('s', seconds * 0.8, seconds * 0.78, seconds * 0.9),
    imageBytes: rss,
    writeBandwidth: bw,
    writeShare: bw / storageWrite,
    readShare: rss / MiB / (seconds * 0.8) / storageRead,
  };
}

export function fullDocument(): BenchDocument {
  const write = st('MiB/s', 1300, 1250, 1350);
  const read = st('MiB/s', 1900, 1800, 2500); // noisy on purpose
  const doc: Omit<BenchDocument, 'headlines'> = {
    schema: SCHEMA,
    ckptVersion: '0.1.0',
    command: 'ckpt bench all --quick --report out',
    startedAt: '2026-11-21T03:00:00.000Z',
    durationSeconds: 97.5,
    sectionSeconds: { storage: 10, stream: 20, coordinator: 30, checkpoint: 37.5 },
    quick: true,
    loadAverage: { start: [0.5, 0.4, 0.3], end: [1.2, 0.6, 0.4] },
    method: { warmup: 1, runs: 3, noisySpread: 0.2, statistic: 'median' },
    machine: {
      hostname: 'node<01>&',
      cpu: { model: 'AMD EPYC', logicalCpus: 2, flags: ['avx2', 'avx512f'], flagCount: 120 },
      memoryBytes: 24 * 1024 * MiB,
      kernel: { release: '6.1.0-test', version: '#1 SMP' },
      os: 'Debian GNU/Linux 12 (bookworm)',
      node: 'v20.0.0',
      ckpt: '0.1.0',
    },
    storage: {
      available: true,
      filesystem: {
        dir: '/scratch',
        type: 'ext4',
        magic: '0xef53',
        mountPoint: '/',
        source: '/dev/vda',
        mountOptions: 'rw,relatime',
        sizeBytes: 250 * 1024 * 1024 * MiB,
        freeBytes: 80 * 1024 * 1024 * MiB,
        device: { name: 'vda', partition: null, model: null, vendor: '0x1af4', rotational: false, sizeBytes: 250e9, scheduler: 'none', logicalBlockSize: 512 },
      },
      fileBytes: 256 * MiB,
      blockSize: 4 * MiB,
      queueDepth: 1,
      direct: { supported: true, reason: null, write, read },
      buffered: { write: st('MiB/s', 900, 850, 950), writeFsync: st('s', 0.1, 0.09, 0.12), read: st('MiB/s', 1700, 1600, 1750), readResidentFraction: 0 },
      fsync: { blockSize: 4096, latency: summarize([0.2, 0.21, 0.25, 0.19, 0.5], 'ms', 0.2, 'p10-p90') },
      sweep: SWEEP.map((b, i) => ({ blockSize: b, direct: true, writeMiBps: 400 + i * 220, readMiBps: 500 + i * 300 })),
      sweepFileBytes: 64 * MiB,
      reference: { mode: 'direct', readMode: 'direct', write, read },
    },
    stream: {
      available: true,
      dir: '/scratch',
      imageBytes: 128 * MiB,
      data: 'synthetic: zero, random and text-like pages',
      storage: { mode: 'direct', readMode: 'direct', write, read },
      rows: [
        { codec: 'raw', level: null, direct: false, write: st('MiB/s', 1200, 1150, 1230), read: st('MiB/s', 1800, 1700, 1850), compressionRatio: 1.3, writeShare: 1200 / 1300, readShare: 1800 / 1900 },
        { codec: 'zstd', level: 1, direct: false, write: st('MiB/s', 900, 880, 920), read: st('MiB/s', 1500, 1450, 1550), compressionRatio: 3.1, writeShare: 900 / 1300, readShare: 1500 / 1900 },
      ],
      references: [
        { tool: 'gzip -1', available: true, reason: null, write: st('MiB/s', 60, 58, 62), compressionRatio: 2.9 },
        { tool: 'zstd -1 -T0', available: true, reason: null, write: st('MiB/s', 950, 930, 960), compressionRatio: 3.1 },
        { tool: 'pigz -1', available: false, reason: 'pigz not on PATH', write: null, compressionRatio: null },
      ],
      zstdVsGzip: 15,
      zstdVsZstdCli: 900 / 950,
    },
    coordinator: {
      available: true,
      rows: WORKERS.map((w) => {
        const ck = coordSide(w, 1);
        if (w > 961) return { workers: w, ckpt: ck, dmtcp: null, dmtcpReason: 'the original holds at most 961 workers', roundTripSpeedup: null };
        const dm = coordSide(w, 20);
        return { workers: w, ckpt: ck, dmtcp: dm, dmtcpReason: null, roundTripSpeedup: dm.roundTrip.median / ck.roundTrip.median };
      }),
      blockingCheckpoint: { workload: 'dmtcp_launch /bin/sleep, dmtcp_command -bc', ckpt: st('s', 0.01, 0.009, 0.012), dmtcp: st('s', 0.05, 0.048, 0.06), speedup: 5, reason: null },
      dmtcp: { available: true, reason: null, prefix: '/opt/dmtcp', maxWorkers: 961 },
    },
    checkpoint: {
      available: true,
      dir: '/scratch',
      storage: { mode: 'direct', readMode: 'direct', write, read },
      rows: RSS.map((r) => ({
        rssBytes: r,
        builtin: ckptSide(r, r / MiB / 1200, 1300, 1900),
        builtinReason: null,
        builtinZstd: ckptSide(r, r / MiB / 900, 1300, 1900),
        dmtcpGzip: ckptSide(r, r / MiB / 60, 1300, 1900),
        dmtcpNoGzip: ckptSide(r, r / MiB / 500, 1300, 1900),
        dmtcpReason: null,
      })),
      runtimeOverhead: st('ratio', 0.004, 0.001, 0.006),
      runtimeOverheadReason: null,
    },
  };
  return { ...doc, headlines: headlines(doc) };
}

/** The same machine with nothing but storage measured and every other section unavailable. */
export function sparseDocument(): BenchDocument {
  const full = fullDocument();
  const doc: Omit<BenchDocument, 'headlines'> = {
    ...full,
    stream: { available: false, reason: 'streaming core unavailable: <test>' },
    coordinator: { available: false, reason: 'load generator unavailable' },
    checkpoint: { available: false, reason: 'engine unavailable: libckpt.so not built' },
  };
  return { ...doc, headlines: headlines(doc) };
}
