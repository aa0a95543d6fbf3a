/**
 * `ckpt bench stream`: a test image written and read (with verification)
 * through the image format and streaming core, raw and at zstd levels, as a
 * share of the storage bandwidth measured in the same run; gzip -1 (the
 * level DMTCP hard-codes), zstd -T0 and pigz on the same data as references.
 * The timed image I/O is the images' own benchmark tool
 * (build/Release/ckpt_stream_bench, native/image/tools/stream_bench.cc: write
 * from memory to a durable image, read + verify with the cache evicted); the
 * test data comes from ckpt-bench-workload (native/bench/testdata.h).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { nativeBinDir } from '../native.js';
import { measure, summarize, type RunPlan, type Stat } from './method.js';
import { silentProgress, type Progress } from './progress.js';
import type { StorageReference } from './runner.js';
import type { StreamReference, StreamResult, StreamRow } from './schema.js';
import { benchBinding } from './storage.js';
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

/** What build/Release/ckpt_stream_bench (native/image/tools/stream_bench.cc) prints for write/read. */
interface StreamToolResult {
  op: 'write' | 'read';
  bytes: number;
  fileBytes: number;
  zeroBytes?: number;
  seconds: number;
}

/** Runs one timed operation of the image streaming tool and parses its JSON line. */
async function streamTool(args: string[], timeoutMs: number): Promise<StreamToolResult> {
  const exe = path.join(nativeBinDir(), 'ckpt_stream_bench');
  const r = await runTool(exe, args, timeoutMs);
  if (r.code !== 0) throw new CkptError('ERR_CKPT_STATE', `ckpt_stream_bench ${args[0]} failed (${r.code}): ${r.stderr.trim() || 'no message'}`);
  try {
    return JSON.parse(r.stdout.trim()) as StreamToolResult;
  } catch {
    throw new CkptError('ERR_CKPT_INTERNAL', `ckpt_stream_bench printed no JSON: ${r.stdout.slice(0, 200)}`);
  }
}

function runTool(exe: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(new CkptError('ERR_CKPT_STATE', `cannot run ${exe}: ${e.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
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
  const bin = nativeBinDir();
  for (const f of ['ckpt_stream_bench', 'ckpt-bench-workload'])
    if (!fs.existsSync(path.join(bin, f)))
      throw new CkptError('ERR_CKPT_UNSUPPORTED', `streaming core unavailable: ${path.join(bin, f)} is not built (run npm rebuild)`);
  const tmp = makeTempDir(o.dir);
  const image = path.join(tmp, 'bench.ckpt');
  const data = path.join(tmp, 'data.raw');
  // Generous: even a slow disk writes the test image within this.
  const toolTimeout = Math.max(120_000, (o.imageBytes / MiB) * 1000);
  try {
    // The O_DIRECT row needs a filesystem that takes O_DIRECT (not older tmpfs).
    const directOk = o.direct ? (await benchBinding().probeDirect(tmp)).supported : false;
    const configs: Array<{ codec: 'raw' | 'zstd'; level: number | null; direct: boolean }> = [
      { codec: 'raw', level: null, direct: false },
      ...(o.direct && directOk ? [{ codec: 'raw' as const, level: null, direct: true }] : []),
      ...o.zstdLevels.map((l) => ({ codec: 'zstd' as const, level: l, direct: false })),
    ];
    // The test image, as a file: the tool loads it into memory (untimed) and
    // writes it as an image; the reference tools compress the same bytes.
    progress.phase('stream: generating test data');
    const gen = await runTool(path.join(bin, 'ckpt-bench-workload'), ['data', String(o.imageBytes), data], toolTimeout);
    if (gen.code !== 0) throw new CkptError('ERR_CKPT_IO', `cannot write test data to ${data}: ${gen.stderr.trim()}`);
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
          const common = [...(o.threads ? ['--threads', String(o.threads)] : []), ...(c.direct ? ['--direct'] : [])];
          const wr = await streamTool(['write', data, image, '--codec', c.codec, '--level', String(c.level ?? 1), ...common], toolTimeout);
          const rd = await streamTool(['read', image, ...common], toolTimeout);
          fs.rmSync(image, { force: true });
          fileBytes = wr.fileBytes;
          if (!warm) {
            w.push(wr.bytes / MiB / wr.seconds);
            r.push(rd.bytes / MiB / rd.seconds);
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
    removeTempDir(tmp);
  }
}
