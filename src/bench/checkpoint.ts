/**
 * `ckpt bench checkpoint`: end-to-end checkpoint and restart of a synthetic
 * program (build/Release/ckpt-bench-workload, native/bench/workload.cc) of a
 * given resident size, with the built-in engine (uncompressed and zstd) and,
 * when present, DMTCP (gzip and --no-gzip), all against our coordinator in
 * the same run (so coordinator differences do not flatter either engine).
 *
 * Per size and engine: launch, wait until the program is ready and joined,
 * then `runs` blocking checkpoints (`dmtcp_command bc`, timed: request to
 * images committed), kill, and `runs` restarts (timed: restarter spawned to
 * the program running again, its images evicted from the page cache first).
 * The program itself reports how long it was
 * stopped (downtime) and when it resumed (see workload.cc); image size is
 * what the newest checkpoint left on disk. Bandwidths are image bytes over
 * those times, shown as shares of the storage bandwidth of the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { nativeBinDir } from '../native.js';
import { findOriginalCoordinator, startCoordinator, type Running } from './coordinator.js';
import { summarize, type RunPlan, type Stat } from './method.js';
import { silentProgress, type Progress } from './progress.js';
import type { StorageReference } from './runner.js';
import type { CheckpointResult, CheckpointRow, CheckpointSide } from './schema.js';
import { makeTempDir, removeTempDir } from './tempdir.js';

const MiB = 1024 * 1024;

export interface CheckpointOptions {
  dir: string;
  rssBytes: number[];
  /** DMTCP installation prefix (null: $DMTCP_PREFIX, then dmtcp_launch on PATH, else not compared). */
  dmtcpPrefix: string | null;
  plan: RunPlan;
  /** Iterations of the CPU-bound loop for the runtime-overhead figure (0 = skip). */
  spinIterations: number;
  /** Seconds any single step (launch, checkpoint, restart) may take. */
  stepTimeout: number;
}

export function defaultCheckpointOptions(dir: string, quick: boolean): CheckpointOptions {
  return {
    dir,
    rssBytes: quick ? [32 * MiB, 128 * MiB] : [64 * MiB, 512 * MiB, 2048 * MiB],
    dmtcpPrefix: null,
    plan: { warmup: 0, runs: quick ? 2 : 3 },
    spinIterations: quick ? 100_000_000 : 600_000_000,
    stepTimeout: 300,
  };
}

export function validateCheckpointOptions(o: CheckpointOptions): void {
  const bad = (m: string) => new CkptError('ERR_CKPT_INVALID_ARGUMENT', m);
  if (!o.rssBytes.length || !o.rssBytes.every((n) => Number.isSafeInteger(n) && n >= MiB && n <= 1024 * 1024 * MiB))
    throw bad('program sizes must be from 1 MiB to 1 TiB');
  if (!Number.isInteger(o.spinIterations) || o.spinIterations < 0) throw bad('spin iterations must be an integer >= 0');
  if (!(o.stepTimeout > 0)) throw bad('step timeout must be positive');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const monoNs = () => process.hrtime.bigint();

function run(exe: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

interface LogState {
  ready: boolean;
  /** [gap ns, resume monotonic ns] */
  gaps: Array<[bigint, bigint]>;
}

/** Stops shorter than this leave no "gap" line (ckpt-bench-workload's kGapNs): the downtime's bound then. */
const GAP_RESOLUTION_NS = 2_000_000n;

function readLog(file: string): LogState {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* not yet written */
  }
  const gaps: Array<[bigint, bigint]> = [];
  for (const m of text.matchAll(/^gap (\d+) (\d+)$/gm)) gaps.push([BigInt(m[1] as string), BigInt(m[2] as string)]);
  return { ready: /^ready /m.test(text), gaps };
}

async function waitFor<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs: number, why?: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new CkptError('ERR_CKPT_TIMEOUT', `timed out waiting for ${what}${why ? `: ${why()}` : ''}`);
    await sleep(20);
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** How one engine launches, restarts and finds the images of its newest checkpoint. */
interface EngineDriver {
  name: string;
  launch(argv: string[], env: NodeJS.ProcessEnv, errFd: number): ChildProcess;
  restart(env: NodeJS.ProcessEnv, errFd: number): ChildProcess;
  /** Bytes on disk of the newest checkpoint. */
  imageBytes(): number;
  /** The image files of the newest checkpoint. */
  imageFiles(): string[];
}

function dirBytes(d: string, filter: (name: string) => boolean = () => true): number {
  let total = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isFile() && filter(e.name)) total += fs.statSync(path.join(d, e.name)).size;
  return total;
}

function builtinDriver(bin: string, ckptDir: string, compress: boolean): EngineDriver {
  const restarter = path.join(bin, 'ckpt-restart');
  const computation = () => {
    const subs = fs.readdirSync(ckptDir).filter((n) => fs.existsSync(path.join(ckptDir, n, 'latest')));
    if (subs.length !== 1) throw new CkptError('ERR_CKPT_STATE', `expected one computation in ${ckptDir}, found ${subs.length}`);
    return path.join(ckptDir, subs[0] as string);
  };
  const engineEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...env, CKPT_DIR: ckptDir, ...(compress ? {} : { CKPT_COMPRESS: 'none' }) });
  return {
    name: compress ? 'builtin-zstd' : 'builtin',
    launch: (argv, env, errFd) => spawn(restarter, ['launch', '--', ...argv], { stdio: ['ignore', 'ignore', errFd], env: engineEnv(env) }),
    restart: (env, errFd) => spawn(restarter, ['restart', computation()], { stdio: ['ignore', 'ignore', errFd], env: engineEnv(env) }),
    imageBytes: () => {
      const c = computation();
      return dirBytes(path.resolve(c, fs.readlinkSync(path.join(c, 'latest'))));
    },
    imageFiles: () => {
      const c = computation();
      const g = path.resolve(c, fs.readlinkSync(path.join(c, 'latest')));
      return fs.readdirSync(g, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(g, e.name));
    },
  };
}

function dmtcpDriver(prefix: string, ckptDir: string, gzip: boolean, port: number): EngineDriver {
  const bin = path.join(prefix, 'bin');
  const images = () => fs.readdirSync(ckptDir).filter((n) => /^ckpt_.*\.dmtcp$/.test(n));
  const coord = ['--coord-host', '127.0.0.1', '--coord-port', String(port)];
  return {
    name: gzip ? 'dmtcp-gzip' : 'dmtcp-nogzip',
    launch: (argv, env, errFd) =>
      spawn(path.join(bin, 'dmtcp_launch'), [...coord, '--ckptdir', ckptDir, ...(gzip ? [] : ['--no-gzip']), ...argv], { stdio: ['ignore', 'ignore', errFd], env }),
    restart: (env, errFd) => spawn(path.join(bin, 'dmtcp_restart'), [...coord, ...images().map((n) => path.join(ckptDir, n))], { stdio: ['ignore', 'ignore', errFd], env }),
    imageBytes: () => dirBytes(ckptDir, (n) => /^ckpt_.*\.dmtcp$/.test(n)),
    imageFiles: () => images().map((n) => path.join(ckptDir, n)),
  };
}

interface Measured {
  checkpoint: number[];
  downtime: number[];
  restart: number[];
  imageBytes: number;
}

async function coordStatus(port: number): Promise<{ peers: number; running: boolean }> {
  const r = await run(path.join(nativeBinDir(), 'dmtcp_command'), ['-p', String(port), '--timeout', '10', '--json', 's'], process.env, 15_000);
  try {
    const j = JSON.parse(r.stdout) as { num_peers?: number; running?: boolean };
    return { peers: j.num_peers ?? -1, running: j.running === true };
  } catch {
    return { peers: -1, running: false };
  }
}

/** One engine, one size: launch, `plan.runs` checkpoints, kill, `plan.runs` restarts. */
async function measureEngine(driver: EngineDriver, coord: Running, rss: number, work: string, o: CheckpointOptions): Promise<Measured> {
  const workload = path.join(nativeBinDir(), 'ckpt-bench-workload');
  const log = path.join(work, `${driver.name}.log`);
  const errLog = path.join(work, `${driver.name}.err`);
  fs.rmSync(log, { force: true });
  const errFd = fs.openSync(errLog, 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, DMTCP_COORD_HOST: '127.0.0.1', DMTCP_COORD_PORT: String(coord.port) };
  const stderr = () => {
    try {
      return fs.readFileSync(errLog, 'utf8').trim().split('\n').slice(-5).join(' | ') || 'no message';
    } catch {
      return 'no message';
    }
  };
  const timeout = o.stepTimeout * 1000;
  let job: ChildProcess | null = null;
  const kill = async () => {
    if (!job) return;
    job.kill('SIGKILL');
    await waitExit(job, 10_000);
    job = null;
    await waitFor('the coordinator to drop the killed job', async () => (await coordStatus(coord.port)).peers === 0, timeout, stderr);
  };
  const out: Measured = { checkpoint: [], downtime: [], restart: [], imageBytes: 0 };
  try {
    job = driver.launch([workload, 'hold', String(rss), log], env, errFd);
    const launched = job;
    await waitFor(`${driver.name} to launch the program`, async () => readLog(log).ready && !launched.exitCode && (await coordStatus(coord.port)).running, timeout, stderr);
    const total = o.plan.warmup + o.plan.runs;
    for (let i = 0; i < total; i++) {
      // Running here: after the launch, and after each checkpoint below (which
      // waits until the processes run again before reading the stop).
      const before = readLog(log).gaps.length;
      const t0 = monoNs();
      const r = await run(path.join(nativeBinDir(), 'dmtcp_command'), ['-p', String(coord.port), '--timeout', String(o.stepTimeout), 'bc'], process.env, timeout + 5000);
      const t1 = monoNs();
      if (r.code !== 0) throw new CkptError('ERR_CKPT_STATE', `${driver.name}: blocking checkpoint failed (${r.code}): ${(r.stdout + r.stderr).trim()} ${stderr()}`);
      // The program reports a stop when it next ticks (every millisecond once
      // it runs again). Once the coordinator says every process runs again,
      // wait briefly for the line; a stop shorter than the workload's 2 ms
      // resolution leaves none, and 2 ms is then its bound.
      await waitFor(`${driver.name}: the program to run again`, async () => (await coordStatus(coord.port)).running, timeout, stderr);
      const gaps = await waitFor('the program to report its stop', () => {
        const g = readLog(log).gaps.slice(before).filter(([, at]) => at >= t0);
        return g.length ? g : null;
      }, 300).catch(() => [] as Array<[bigint, bigint]>);
      const down = gaps.reduce((m, [g]) => (g > m ? g : m), GAP_RESOLUTION_NS);
      if (i >= o.plan.warmup) {
        out.checkpoint.push(Number(t1 - t0) / 1e9);
        out.downtime.push(Number(down) / 1e9);
      }
    }
    out.imageBytes = driver.imageBytes();
    await kill();
    const evictTool = path.join(nativeBinDir(), 'ckpt_stream_bench');
    for (let i = 0; i < total; i++) {
      // A restart after a failure reads its images from the device, not from
      // the page cache the checkpoint left behind: evict them first (no root
      // needed: posix_fadvise DONTNEED on each file, via the images' tool).
      if (fs.existsSync(evictTool)) for (const f of driver.imageFiles()) await run(evictTool, ['evict', f], process.env, 60_000);
      const before = readLog(log).gaps.length;
      const t0 = monoNs();
      job = driver.restart(env, errFd);
      const restarted = job;
      const resumed = await waitFor(
        `${driver.name} to restart the program`,
        () => {
          if (restarted.exitCode !== null) throw new CkptError('ERR_CKPT_STATE', `${driver.name}: restart exited with ${restarted.exitCode}: ${stderr()}`);
          const g = readLog(log).gaps.slice(before).find(([, at]) => at >= t0);
          return g ? g[1] : null;
        },
        timeout,
        stderr,
      );
      if (i >= o.plan.warmup) out.restart.push(Number(resumed - t0) / 1e9);
      await waitFor('the restarted program to join', async () => (await coordStatus(coord.port)).running, timeout, stderr);
      await kill();
    }
    return out;
  } finally {
    await kill().catch(() => undefined);
    fs.closeSync(errFd);
  }
}

function side(m: Measured, reference: StorageReference | null): CheckpointSide {
  const checkpoint = summarize(m.checkpoint, 's');
  const restart = m.restart.length ? summarize(m.restart, 's') : null;
  const writeBandwidth = m.imageBytes / MiB / checkpoint.median;
  return {
    checkpoint,
    downtime: summarize(m.downtime, 's'),
    restart,
    imageBytes: m.imageBytes,
    writeBandwidth,
    writeShare: reference ? writeBandwidth / reference.write.median : null,
    readShare: reference && restart ? m.imageBytes / MiB / restart.median / reference.read.median : null,
  };
}

async function runtimeOverhead(coord: Running, work: string, o: CheckpointOptions): Promise<Stat> {
  const workload = path.join(nativeBinDir(), 'ckpt-bench-workload');
  const restarter = path.join(nativeBinDir(), 'ckpt-restart');
  const env: NodeJS.ProcessEnv = { ...process.env, DMTCP_COORD_HOST: '127.0.0.1', DMTCP_COORD_PORT: String(coord.port), CKPT_DIR: path.join(work, 'spin') };
  fs.mkdirSync(path.join(work, 'spin'), { recursive: true });
  const once = async (engine: boolean) => {
    const args = ['spin', String(o.spinIterations)];
    const r = engine ? await run(restarter, ['launch', '--', workload, ...args], env, o.stepTimeout * 1000) : await run(workload, args, process.env, o.stepTimeout * 1000);
    // CPU seconds of the loop (second figure; older workloads print wall time only).
    const m = /^spin ([\d.]+)(?: ([\d.]+))?/m.exec(r.stdout);
    if (r.code !== 0 || !m) throw new CkptError('ERR_CKPT_STATE', `CPU-bound loop${engine ? ' under the engine' : ''} failed (${r.code}): ${r.stderr.trim()}`);
    return Number(m[2] ?? m[1]);
  };
  // Interleaved pairs so that drifting machine load hits both sides alike.
  const ratios: number[] = [];
  for (let i = 0; i < o.plan.warmup + Math.max(3, o.plan.runs); i++) {
    const native = await once(false);
    const engine = await once(true);
    if (i >= o.plan.warmup) ratios.push(engine / native - 1);
  }
  // A relative spread is meaningless around zero: for this figure the spread
  // is absolute (max - min, in the same unit) and "noisy" means the runs
  // disagree by more than 2 percentage points, twice the 1% target.
  const s = summarize(ratios, 'ratio');
  return { ...s, spread: s.max - s.min, noisy: s.runs >= 2 && s.max - s.min > 0.02 };
}

export async function benchCheckpoint(o: CheckpointOptions, reference: StorageReference | null, progress: Progress = silentProgress): Promise<CheckpointResult> {
  validateCheckpointOptions(o);
  const bin = nativeBinDir();
  for (const f of ['libckpt.so', 'ckpt-restart', 'dmtcp_coordinator', 'dmtcp_command', 'ckpt-bench-workload'])
    if (!fs.existsSync(path.join(bin, f))) throw new CkptError('ERR_CKPT_UNSUPPORTED', `engine unavailable: ${path.join(bin, f)} is not built (run npm rebuild)`);
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new CkptError('ERR_CKPT_UNSUPPORTED', 'engine unavailable: the built-in engine needs Linux on x86_64');
  const orig = findOriginalCoordinator(o.dmtcpPrefix);
  const dmtcpPrefix = orig.prefix && fs.existsSync(path.join(orig.prefix, 'bin', 'dmtcp_launch')) ? orig.prefix : null;
  const dmtcpWhy = dmtcpPrefix ? null : orig.prefix ? `no dmtcp_launch in ${orig.prefix}/bin` : (orig.reason ?? 'DMTCP not found');

  // Free space: every measured checkpoint leaves a generation behind until the end of the size.
  const st = fs.statfsSync(o.dir);
  const free = Number(st.bavail) * Number(st.bsize);
  const need = Math.max(...o.rssBytes) * (o.plan.warmup + o.plan.runs + 1) + 256 * MiB;
  if (free < need) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `${o.dir} has ${Math.floor(free / MiB)} MiB free, the checkpoint benchmark needs ${Math.ceil(need / MiB)} MiB; use smaller --rss sizes`);

  const work = makeTempDir(o.dir);
  let coord: Running | null = null;
  try {
    coord = await startCoordinator(path.join(bin, 'dmtcp_coordinator'), work);
    const rows: CheckpointRow[] = [];
    const engines = 2 + (dmtcpPrefix ? 2 : 0);
    let step = 0;
    for (const rss of o.rssBytes) {
      const row: CheckpointRow = { rssBytes: rss, builtin: null, builtinReason: null, builtinZstd: null, dmtcpGzip: null, dmtcpNoGzip: null, dmtcpReason: dmtcpWhy };
      const each = async (label: string, make: (d: string) => EngineDriver): Promise<CheckpointSide | string> => {
        progress.phase(`checkpoint: ${(rss / MiB).toFixed(0)} MiB, ${label}`);
        progress.step(step++, o.rssBytes.length * engines);
        const d = path.join(work, `${label.replace(/\W+/g, '-')}-${rss}`);
        fs.mkdirSync(d, { recursive: true });
        try {
          return side(await measureEngine(make(d), coord as Running, rss, d, o), reference);
        } catch (e) {
          return `${label}: ${(e as Error).message}`;
        } finally {
          fs.rmSync(d, { recursive: true, force: true });
        }
      };
      const b = await each('built-in, uncompressed', (d) => builtinDriver(bin, d, false));
      if (typeof b === 'string') row.builtinReason = `engine unavailable: ${b}`;
      else row.builtin = b;
      const z = await each('built-in, zstd', (d) => builtinDriver(bin, d, true));
      if (typeof z !== 'string') row.builtinZstd = z;
      else row.builtinReason = row.builtinReason ?? `engine unavailable: ${z}`;
      if (dmtcpPrefix) {
        const port = (coord as Running).port;
        const g = await each('DMTCP gzip', (d) => dmtcpDriver(dmtcpPrefix, d, true, port));
        const n = await each('DMTCP --no-gzip', (d) => dmtcpDriver(dmtcpPrefix, d, false, port));
        if (typeof g !== 'string') row.dmtcpGzip = g;
        if (typeof n !== 'string') row.dmtcpNoGzip = n;
        const errs = [g, n].filter((x): x is string => typeof x === 'string');
        row.dmtcpReason = errs.length ? errs.join('; ') : null;
      }
      rows.push(row);
    }
    let overhead: Stat | null = null;
    let overheadWhy: string | null = null;
    if (o.spinIterations > 0) {
      progress.phase('checkpoint: runtime overhead (CPU-bound loop)');
      try {
        overhead = await runtimeOverhead(coord, work, o);
      } catch (e) {
        overheadWhy = (e as Error).message;
      }
    } else overheadWhy = 'skipped';
    progress.done();
    return { available: true, dir: fs.realpathSync(o.dir), rows, storage: reference, runtimeOverhead: overhead, runtimeOverheadReason: overheadWhy };
  } finally {
    await coord?.stop();
    removeTempDir(work);
  }
}
