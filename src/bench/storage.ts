/**
 * `ckpt bench storage`: the raw bandwidth of the storage under a directory,
 * the reference every other figure is a share of. Sequential write and read
 * through O_DIRECT (page cache bypassed) and buffered (write timed up to a
 * completed fsync, read started cold), a block-size sweep for the
 * "bandwidth vs size" plot, and the latency of a small write + fsync (the
 * cost of a commit record). The I/O itself runs in native code
 * (native/bench) on a worker thread.
 */
import fs from 'node:fs';
import path from 'node:path';

import { CkptError, fromNative } from '../errors.js';
import { native } from '../native.js';
import { describeFilesystem, type FilesystemInfo } from './machine.js';
import { measure, summarize, type RunPlan, type Stat } from './method.js';
import { silentProgress, type Progress } from './progress.js';
import { removeTempDir, makeTempDir } from './tempdir.js';

const MiB = 1024 * 1024;

interface SeqResultNative {
  bytes: number;
  seconds: number;
  fsyncSeconds: number;
  residentFraction: number;
}
interface BenchBinding {
  writeSequential(o: {
    path: string;
    bytes: number;
    blockSize: number;
    direct: boolean;
    queueDepth: number;
    fsync?: boolean;
    evict?: boolean;
  }): Promise<SeqResultNative>;
  readSequential(o: { path: string; blockSize: number; direct: boolean; queueDepth: number }): Promise<SeqResultNative>;
  fsyncLatencies(path: string, count: number, blockSize: number): Promise<number[]>;
  probeDirect(dir: string): Promise<{ supported: boolean; reason: string | null }>;
}

/** The storage-measurement binding (native/addon/bench.cc). @internal */
export function benchBinding(): BenchBinding {
  return native<{ bench: BenchBinding }>().bench;
}

export interface StorageOptions {
  /** Directory to measure (a temporary subdirectory is created and removed). */
  dir: string;
  /** Bytes per measured file. */
  fileBytes: number;
  /** Bytes per write/read call. */
  blockSize: number;
  /** Transfers in flight for O_DIRECT (1 = one synchronous stream). */
  queueDepth: number;
  plan: RunPlan;
  /** Rounds of "4 KiB write + fsync". */
  fsyncRounds: number;
  /** Block sizes of the sweep ([] = no sweep). */
  sweepBlockSizes: number[];
  /** File size used by each sweep point. */
  sweepFileBytes: number;
}

export interface SweepPoint {
  blockSize: number;
  direct: boolean;
  /** MiB/s of one run. */
  writeMiBps: number;
  readMiBps: number;
}

export interface StorageResult {
  available: true;
  filesystem: FilesystemInfo;
  fileBytes: number;
  blockSize: number;
  queueDepth: number;
  direct: {
    supported: boolean;
    /** Why not, e.g. "O_DIRECT unsupported: Invalid argument" (null when supported). */
    reason: string | null;
    /** MiB/s. */
    write: Stat | null;
    read: Stat | null;
  };
  buffered: {
    /** MiB/s, timed until fsync returned. */
    write: Stat;
    /** Seconds the final fsync took, per run. */
    writeFsync: Stat;
    /** MiB/s, file evicted from the page cache first. */
    read: Stat;
    /** Largest fraction of the file still cached when a read started (0 = fully cold). */
    readResidentFraction: number | null;
  };
  fsync: { blockSize: number; /** milliseconds */ latency: Stat };
  sweep: SweepPoint[];
  /** File size of each sweep point. */
  sweepFileBytes: number;
  /**
   * What other benchmarks divide by: per direction the faster of O_DIRECT and
   * buffered (the best this storage did in this run), so a share never
   * flatters by comparing against a weak path. `mode` names the write's
   * path, `readMode` the read's.
   */
  reference: StorageReference;
}

export function defaultStorageOptions(dir: string, quick: boolean): StorageOptions {
  return {
    dir,
    fileBytes: (quick ? 128 : 1024) * MiB,
    blockSize: 4 * MiB,
    queueDepth: 1,
    plan: { warmup: 1, runs: quick ? 3 : 5 },
    fsyncRounds: quick ? 20 : 100,
    sweepBlockSizes: quick ? [64 * 1024, MiB, 16 * MiB] : [64 * 1024, 256 * 1024, MiB, 4 * MiB, 16 * MiB],
    sweepFileBytes: (quick ? 32 : 256) * MiB,
  };
}

/** Checks options before any native call. Throws CkptError(ERR_CKPT_INVALID_ARGUMENT). */
export function validateStorageOptions(o: StorageOptions): void {
  const bad = (msg: string) => new CkptError('ERR_CKPT_INVALID_ARGUMENT', msg);
  let st: fs.Stats;
  try {
    st = fs.statSync(o.dir);
  } catch {
    throw new CkptError('ERR_CKPT_NOT_FOUND', `directory ${o.dir} does not exist; create it or name another one`);
  }
  if (!st.isDirectory()) throw bad(`${o.dir} is not a directory`);
  const mult = (n: number, what: string) => {
    if (!Number.isSafeInteger(n) || n <= 0 || n % 4096 !== 0) throw bad(`${what} must be a positive multiple of 4 KiB (got ${n})`);
  };
  mult(o.fileBytes, 'size');
  mult(o.blockSize, 'block size');
  if (o.blockSize > 256 * MiB) throw bad('block size must be at most 256 MiB');
  if (!Number.isInteger(o.queueDepth) || o.queueDepth < 1 || o.queueDepth > 64) throw bad('queue depth must be 1..64');
  if (!Number.isInteger(o.fsyncRounds) || o.fsyncRounds < 1 || o.fsyncRounds > 10000) throw bad('fsync rounds must be 1..10000');
  for (const b of o.sweepBlockSizes) mult(b, 'sweep block size');
  if (o.sweepBlockSizes.length) mult(o.sweepFileBytes, 'sweep size');
  if (!Number.isInteger(o.plan.runs) || o.plan.runs < 1 || o.plan.runs > 100) throw bad('runs must be 1..100');
  if (!Number.isInteger(o.plan.warmup) || o.plan.warmup < 0 || o.plan.warmup > 10) throw bad('warm-up runs must be 0..10');
  try {
    const s = fs.statfsSync(o.dir);
    const free = Number(s.bavail) * Number(s.bsize);
    const need = Math.max(o.fileBytes, o.sweepFileBytes) + 64 * MiB;
    if (free < need)
      throw new CkptError(
        'ERR_CKPT_INVALID_ARGUMENT',
        `${o.dir} has ${Math.floor(free / MiB)} MiB free, the benchmark needs ${Math.ceil(need / MiB)} MiB; use a smaller --size`,
      );
  } catch (e) {
    if (e instanceof CkptError) throw e;
  }
}

const mibps = (r: SeqResultNative) => r.bytes / MiB / r.seconds;

export interface StorageReference {
  mode: 'direct' | 'buffered';
  readMode: 'direct' | 'buffered';
  write: Stat;
  read: Stat;
}

/** Per direction, the faster (by median) of the O_DIRECT and buffered figures. */
export function bestReference(dw: Stat | null, dr: Stat | null, bw: Stat, br: Stat): StorageReference {
  const w = dw && dw.median >= bw.median ? { mode: 'direct' as const, write: dw } : { mode: 'buffered' as const, write: bw };
  const r = dr && dr.median >= br.median ? { readMode: 'direct' as const, read: dr } : { readMode: 'buffered' as const, read: br };
  return { ...w, ...r };
}

export async function benchStorage(o: StorageOptions, progress: Progress = silentProgress): Promise<StorageResult> {
  validateStorageOptions(o);
  const b = benchBinding();
  const filesystem = describeFilesystem(o.dir);
  const tmp = makeTempDir(o.dir);
  try {
    const file = path.join(tmp, 'seq.dat');
    const call = async <T>(p: Promise<T>, what: string): Promise<T> => {
      try {
        return await p;
      } catch (e) {
        throw fromNative(e, what);
      }
    };
    const probe = await call(b.probeDirect(tmp), 'probing O_DIRECT');

    let directWrite: Stat | null = null;
    let directRead: Stat | null = null;
    let directReason = probe.reason;
    if (probe.supported) {
      try {
        progress.phase('storage: O_DIRECT write + read');
        const w: number[] = [];
        const r: number[] = [];
        await measure(
          o.plan,
          async (_i, warm) => {
            const wr = await b.writeSequential({ path: file, bytes: o.fileBytes, blockSize: o.blockSize, direct: true, queueDepth: o.queueDepth });
            const rr = await b.readSequential({ path: file, blockSize: o.blockSize, direct: true, queueDepth: o.queueDepth });
            if (!warm) {
              w.push(mibps(wr));
              r.push(mibps(rr));
            }
            return 0;
          },
          (d, t) => progress.step(d, t),
        );
        directWrite = summarize(w, 'MiB/s');
        directRead = summarize(r, 'MiB/s');
      } catch (e) {
        // The probe passed but a large transfer was refused (some FUSE/network filesystems).
        const ce = fromNative(e);
        if (ce.code !== 'ERR_CKPT_UNSUPPORTED') throw ce;
        directReason = ce.message;
      }
    }

    progress.phase('storage: buffered write + read');
    const bw: number[] = [];
    const bf: number[] = [];
    const br: number[] = [];
    let resident: number | null = null;
    await measure(
      o.plan,
      async (_i, warm) => {
        const wr = await call(b.writeSequential({ path: file, bytes: o.fileBytes, blockSize: o.blockSize, direct: false, queueDepth: 1 }), 'buffered write');
        const rr = await call(b.readSequential({ path: file, blockSize: o.blockSize, direct: false, queueDepth: 1 }), 'buffered read');
        if (!warm) {
          bw.push(mibps(wr));
          bf.push(wr.fsyncSeconds);
          br.push(mibps(rr));
          if (rr.residentFraction >= 0) resident = Math.max(resident ?? 0, rr.residentFraction);
        }
        return 0;
      },
      (d, t) => progress.step(d, t),
    );
    fs.rmSync(file, { force: true });

    progress.phase('storage: fsync latency');
    const lat = await call(b.fsyncLatencies(path.join(tmp, 'fsync.dat'), o.fsyncRounds + 2, 4096), 'fsync latency');
    // The first two rounds allocate the file's first blocks and journal entries: warm-up.
    const latency = summarize(lat.slice(2).map((s) => s * 1000), 'ms', undefined, 'p10-p90');

    const sweep: SweepPoint[] = [];
    const sweepDirect = directWrite !== null;
    for (const [i, bs] of o.sweepBlockSizes.entries()) {
      progress.phase(`storage: block size sweep ${bs / 1024} KiB`);
      progress.step(i, o.sweepBlockSizes.length);
      const sf = path.join(tmp, 'sweep.dat');
      const wr = await call(b.writeSequential({ path: sf, bytes: o.sweepFileBytes, blockSize: bs, direct: sweepDirect, queueDepth: 1 }), 'sweep write');
      const rr = await call(b.readSequential({ path: sf, blockSize: bs, direct: sweepDirect, queueDepth: 1 }), 'sweep read');
      fs.rmSync(sf, { force: true });
      sweep.push({ blockSize: bs, direct: sweepDirect, writeMiBps: mibps(wr), readMiBps: mibps(rr) });
    }
    progress.done();

    const bufferedWrite = summarize(bw, 'MiB/s');
    const bufferedRead = summarize(br, 'MiB/s');
    return {
      available: true,
      filesystem,
      fileBytes: o.fileBytes,
      blockSize: o.blockSize,
      queueDepth: o.queueDepth,
      direct: { supported: directWrite !== null, reason: directWrite ? null : directReason, write: directWrite, read: directRead },
      buffered: { write: bufferedWrite, writeFsync: summarize(bf, 's'), read: bufferedRead, readResidentFraction: resident },
      fsync: { blockSize: 4096, latency },
      sweep,
      sweepFileBytes: o.sweepFileBytes,
      reference: bestReference(directWrite, directRead, bufferedWrite, bufferedRead),
    };
  } finally {
    progress.done();
    removeTempDir(tmp);
  }
}
