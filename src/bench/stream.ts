/**
 * `ckpt bench stream`: a test image written and read (with verification)
 * through the image format and streaming core, raw and at zstd levels, as a
 * share of the storage bandwidth measured in the same run; gzip -1 (the
 * level DMTCP hard-codes), zstd -T0 and pigz on the same data as references.
 * The I/O runs natively (native/bench/stream_bench.cc on native/image).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { CkptError, fromNative } from '../errors.js';
import { native } from '../native.js';
import { measure, summarize, type RunPlan, type Stat } from './method.js';
import { silentProgress, type Progress } from './progress.js';
import type { StorageReference } from './runner.js';
import type { StreamReference, StreamResult, StreamRow } from './schema.js';
import { makeTempDir, removeTempDir } from './tempdir.js';

const MiB = 1024 * 1024;

export const TEST_DATA_DESCRIPTION = 'synthetic process-like memory: 1/4 zero pages, 1/4 random pages, 1/2 text-and-pointer pages';

export interface StreamOptions {
  dir: string;
  imageBytes: number;
  zstdLevels: number[];
  /** Also measure the raw path with O_DIRECT. */
  direct: boolean;
  /** Compression/verification threads (0 = all hardware threads). */
  threads: number;
  plan: RunPlan;
}

interface StreamNative {
  logicalBytes: number;
  fileBytes: number;
  zeroBytes: number;
  seconds: number;
}
/** exports.benchStream (native/addon/bench_stream.cc). */
interface StreamBinding {
  write(o: { path: string; bytes: number; zstd: boolean; level: number; threads: number; oDirect: boolean }): Promise<StreamNative>;
  read(o: { path: string; bytes: number; threads: number; oDirect: boolean }): Promise<StreamNative>;
  writeTestData(path: string, bytes: number): Promise<void>;
  releaseTestData(): void;
}

export function defaultStreamOptions(dir: string, quick: boolean): StreamOptions {
  return { dir, imageBytes: (quick ? 128 : 1024) * MiB, zstdLevels: quick ? [1] : [1, 3], direct: true, threads: 0, plan: { warmup: 1, runs: quick ? 2 : 5 } };
}

export function validateStreamOptions(o: StreamOptions): void {
  const bad = (m: string) => new CkptError('ERR_CKPT_INVALID_ARGUMENT', m);
  if (!Number.isSafeInteger(o.imageBytes) || o.imageBytes <= 0 || o.imageBytes % 4096 !== 0) throw bad('image size must be a positive multiple of 4 KiB');
  if (o.imageBytes > 64 * 1024 * MiB) throw bad('image size must be at most 64 GiB');
  if (!o.zstdLevels.every((l) => Number.isInteger(l) && l >= 1 && l <= 22)) throw bad('zstd levels must be integers from 1 to 22');
  if (!Number.isInteger(o.threads) || o.threads < 0 || o.threads > 256) throw bad('threads must be 0..256');
}

function which(tool: string): string | null {
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!d) continue;
    const f = path.join(d, tool);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Runs `exe args < input > output`, then fsyncs output; returns seconds (spawn to durable). */
function timeTool(exe: string, args: string[], input: string, output: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const inFd = fs.openSync(input, 'r');
    const outFd = fs.openSync(output, 'w', 0o600);
    const t0 = performance.now();
    const child = spawn(exe, args, { stdio: [inFd, outFd, 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const done = (e: Error | null) => {
      try {
        if (!e) fs.fsyncSync(outFd);
      } finally {
        fs.closeSync(inFd);
        fs.closeSync(outFd);
      }
      if (e) reject(e);
      else resolve((performance.now() - t0) / 1000);
    };
    child.once('error', (e) => done(e));
    child.once('close', (code) => done(code === 0 ? null : new Error(`${path.basename(exe)} exited with ${code}: ${err.trim()}`)));
  });
}

export async function benchStream(o: StreamOptions, reference: StorageReference | null, progress: Progress = silentProgress): Promise<StreamResult> {
  validateStreamOptions(o);
  if (!reference) throw new CkptError('ERR_CKPT_STATE', 'no storage reference measured');
  const bind = native<{ benchStream?: StreamBinding }>().benchStream;
  if (!bind)
    throw new CkptError('ERR_CKPT_UNSUPPORTED', 'streaming core unavailable: this build of ckpt has no image streaming benchmark binding (rebuild with npm rebuild)');
  const tmp = makeTempDir(o.dir);
  const image = path.join(tmp, 'bench.ckpt');
  const call = async <T>(p: Promise<T>, what: string): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      throw fromNative(e, what);
    }
  };
  try {
    const configs: Array<{ codec: 'raw' | 'zstd'; level: number | null; direct: boolean }> = [
      { codec: 'raw', level: null, direct: false },
      ...(o.direct && reference.mode === 'direct' ? [{ codec: 'raw' as const, level: null, direct: true }] : []),
      ...o.zstdLevels.map((l) => ({ codec: 'zstd' as const, level: l, direct: false })),
    ];
    const rows: StreamRow[] = [];
    for (const c of configs) {
      const name = c.codec === 'raw' ? `raw${c.direct ? ', O_DIRECT' : ''}` : `zstd -${c.level}`;
      progress.phase(`stream: ${name} write + read`);
      const w: number[] = [];
      const r: number[] = [];
      let fileBytes = 0;
      await measure(
        o.plan,
        async (_i, warm) => {
          const opts = { path: image, bytes: o.imageBytes, threads: o.threads, oDirect: c.direct };
          const wr = await call(bind.write({ ...opts, zstd: c.codec === 'zstd', level: c.level ?? 1 }), `${name} image write`);
          const rd = await call(bind.read(opts), `${name} image read`);
          fs.rmSync(image, { force: true });
          fileBytes = wr.fileBytes;
          if (!warm) {
            w.push(wr.logicalBytes / MiB / wr.seconds);
            r.push(rd.logicalBytes / MiB / rd.seconds);
          }
          return 0;
        },
        (d, t) => progress.step(d, t),
      );
      const write = summarize(w, 'MiB/s');
      const read = summarize(r, 'MiB/s');
      rows.push({
        codec: c.codec,
        level: c.level,
        direct: c.direct,
        write,
        read,
        compressionRatio: o.imageBytes / fileBytes,
        writeShare: write.median / reference.write.median,
        readShare: read.median / reference.read.median,
      });
    }

    // References on the same bytes: the data as a plain file (cached, like
    // the memory a checkpoint reads), compressed into DIR and fsync'd.
    progress.phase('stream: reference tools');
    const data = path.join(tmp, 'data.raw');
    await call(bind.writeTestData(data, o.imageBytes), 'writing reference data');
    const level = o.zstdLevels[0] ?? 1;
    const tools: Array<{ tool: string; exe: string; args: string[] }> = [
      { tool: 'gzip -1', exe: 'gzip', args: ['-1', '-c'] },
      { tool: `zstd -${level} -T0`, exe: 'zstd', args: [`-${level}`, '-T0', '-q', '-c'] },
      { tool: 'pigz -1', exe: 'pigz', args: ['-1', '-c'] },
    ];
    const references: StreamReference[] = [];
    for (const t of tools) {
      const exe = which(t.exe);
      if (!exe) {
        references.push({ tool: t.tool, available: false, reason: `${t.exe} not found on PATH`, write: null, compressionRatio: null });
        continue;
      }
      const out = path.join(tmp, `ref.${t.exe}`);
      let size = 0;
      try {
        // gzip is slow (tens of MiB/s): fewer runs keep the benchmark short; its figure is the reference, not the subject.
        const plan = t.exe === 'gzip' || t.exe === 'pigz' ? { warmup: 0, runs: Math.min(o.plan.runs, 2) } : o.plan;
        const samples = await measure(plan, async () => {
          const s = await timeTool(exe, t.args, data, out);
          size = fs.statSync(out).size;
          fs.rmSync(out, { force: true });
          return o.imageBytes / MiB / s;
        });
        references.push({ tool: t.tool, available: true, reason: null, write: summarize(samples, 'MiB/s'), compressionRatio: o.imageBytes / size });
      } catch (e) {
        references.push({ tool: t.tool, available: false, reason: (e as Error).message, write: null, compressionRatio: null });
      }
    }
    progress.done();
    const zstdRow = rows.find((r) => r.codec === 'zstd' && r.level === level) ?? null;
    const gzip = references.find((r) => r.tool === 'gzip -1')?.write ?? null;
    const zcli = references.find((r) => r.tool.startsWith('zstd'))?.write ?? null;
    const ratioOf = (a: Stat | null | undefined, b: Stat | null) => (a && b ? a.median / b.median : null);
    return {
      available: true,
      dir: fs.realpathSync(o.dir),
      imageBytes: o.imageBytes,
      data: TEST_DATA_DESCRIPTION,
      storage: reference,
      rows,
      references,
      zstdVsGzip: ratioOf(zstdRow?.write, gzip),
      zstdVsZstdCli: ratioOf(zstdRow?.write, zcli),
    };
  } finally {
    progress.done();
    bind.releaseTestData();
    removeTempDir(tmp);
  }
}
