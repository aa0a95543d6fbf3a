/**
 * `ckpt bench coordinator`: N synthetic workers against our coordinator and,
 * when DMTCP is present, against the original dmtcp_coordinator in the same
 * run. The workers and the timing are the load generator's
 * (build/Release/ckpt_loadgen, native/tools/loadgen): it connects N workers at
 * once, performs their hellos, drives full checkpoint rounds (command →
 * DO_CHECKPOINT → every barrier → filenames → all resumed) and prints JSON.
 * This module starts a fresh coordinator per worker count (so its peak RSS,
 * VmHWM, belongs to that count), runs the load generator against it and
 * turns the results into Stats.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { nativeBinDir } from '../native.js';
import { summarize, type RunPlan, type Stat } from './method.js';
import { silentProgress, type Progress } from './progress.js';
import type { CoordinatorResult, CoordinatorRow, CoordinatorSide } from './schema.js';
import { makeTempDir, removeTempDir } from './tempdir.js';

/** The original coordinator's virtual-PID allocator holds at most 961 workers (spec). */
export const DMTCP_MAX_WORKERS = 961;

export interface CoordinatorOptions {
  workers: number[];
  /** DMTCP installation prefix (null: $DMTCP_PREFIX, then dmtcp_launch on PATH, else not compared). */
  dmtcpPrefix: string | null;
  plan: RunPlan;
  /** Seconds the load generator may spend in one phase before giving up. */
  phaseTimeout: number;
}

export function defaultCoordinatorOptions(quick: boolean): CoordinatorOptions {
  return {
    workers: quick ? [1, 100, 900, 10000] : [1, 100, 900, 1000, 10000],
    dmtcpPrefix: null,
    // --quick: no warm-up round (the first round of each count is measured too).
    plan: quick ? { warmup: 0, runs: 2 } : { warmup: 1, runs: 5 },
    phaseTimeout: 60,
  };
}

/** What ckpt_loadgen prints (native/tools/loadgen/main.cc). */
interface LoadgenResult {
  workers: number;
  connect: { seconds: number; perSecond: number };
  join: { seconds: number; perSecond: number };
  roundsMs: number[];
  completesMs?: number[];
}

function isElf(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(4);
      fs.readSync(fd, b, 0, 4, 0);
      return b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

function onPath(name: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (!d) continue;
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* next */
    }
  }
  return null;
}

/**
 * Finds the original dmtcp_coordinator: under `prefix` (or $DMTCP_PREFIX, or
 * the installation holding dmtcp_launch on PATH). When `ckpt coordinator
 * install` has put our shim in its place, the original is dmtcp_coordinator.orig.
 */
export function findOriginalCoordinator(prefix: string | null): { exe: string | null; prefix: string | null; reason: string | null } {
  let p = prefix ?? process.env.DMTCP_PREFIX ?? null;
  if (!p) {
    const launch = onPath('dmtcp_launch');
    if (launch) p = path.dirname(path.dirname(fs.realpathSync(launch)));
  }
  if (!p) return { exe: null, prefix: null, reason: 'DMTCP not found: set DMTCP_PREFIX (or --dmtcp-prefix) to compare with the original' };
  const bin = path.join(p, 'bin');
  for (const name of ['dmtcp_coordinator.orig', 'dmtcp_coordinator']) {
    const f = path.join(bin, name);
    if (fs.existsSync(f) && isElf(f)) return { exe: f, prefix: p, reason: null };
  }
  return { exe: null, prefix: p, reason: `no original dmtcp_coordinator executable in ${bin}` };
}

export interface Running {
  port: number;
  pid: number;
  /** Peak resident set size so far (VmHWM), bytes. */
  peakRss(): number | null;
  stop(): Promise<void>;
}

function readHwm(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Starts a coordinator on a kernel-chosen loopback port; resolves once it listens. */
export async function startCoordinator(exe: string, dir: string): Promise<Running> {
  const portFile = path.join(dir, 'port');
  fs.rmSync(portFile, { force: true });
  const env: NodeJS.ProcessEnv = { ...process.env, DMTCP_TMPDIR: dir };
  delete env.DMTCP_COORD_PORT;
  delete env.DMTCP_COORD_HOST;
  // stdin stays an open pipe: both coordinators read console commands from
  // it and treat EOF as "quit" in some versions. --stale-timeout: if this
  // process is killed before stop(), the coordinator still exits by itself
  // once it has had no worker for 15 minutes (no measurement idles that long).
  const child = spawn(exe, ['--coord-port', '0', '--port-file', portFile, '--ckptdir', dir, '--tmpdir', dir, '--stale-timeout', '900'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env,
    cwd: dir,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (!(await waitExit(child, 5000))) {
      child.kill('SIGKILL');
      await waitExit(child, 5000);
    }
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8').trim() : '';
    if (/^\d+$/.test(text) && Number(text) > 0) {
      const pid = child.pid as number;
      return { port: Number(text), pid, peakRss: () => readHwm(pid), stop };
    }
    if (child.exitCode !== null || child.signalCode !== null)
      throw new CkptError('ERR_CKPT_STATE', `${exe} exited before listening (${child.exitCode ?? child.signalCode}): ${stderr.trim()}`);
    if (Date.now() > deadline) {
      await stop();
      throw new CkptError('ERR_CKPT_TIMEOUT', `${exe} did not write its port file within 10 s: ${stderr.trim()}`);
    }
    const e = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 20))]);
    if (e) throw new CkptError('ERR_CKPT_STATE', `cannot start ${exe}: ${e.message}`);
  }
}

/** Runs ckpt_loadgen and parses its JSON. */
function runLoadgen<T = LoadgenResult>(args: string[], timeoutMs: number): Promise<T> {
  const exe = path.join(nativeBinDir(), 'ckpt_loadgen');
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 4096) err += d.toString();
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(new CkptError('ERR_CKPT_STATE', `cannot run ${exe}: ${e.message}`));
    });
    child.once('close', (code, sig) => {
      clearTimeout(t);
      if (code !== 0) return reject(new CkptError('ERR_CKPT_STATE', `load generator failed (${code ?? sig}): ${err.trim() || 'no message'}`));
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new CkptError('ERR_CKPT_INTERNAL', `load generator printed no JSON: ${out.slice(0, 200)}`));
      }
    });
  });
}

/**
 * The loopback TCP floor for a round of `workers` workers, seconds: every
 * round carries 2 × (barriers + 1) messages per worker, each a loopback TCP
 * segment someone must send and someone must read, on the machine's cores.
 */
async function tcpFloor(workers: number, o: CoordinatorOptions): Promise<number | null> {
  try {
    const r = await runLoadgen<{ tcpFloor?: { cpuUsPerMessage?: number } }>(['--tcp-floor', '--workers', String(workers)], o.phaseTimeout * 1000);
    const us = r.tcpFloor?.cpuUsPerMessage;
    if (typeof us !== 'number' || !(us > 0)) return null;
    return (workers * 2 * (LOADGEN_BARRIERS + 1) * us) / 1e6 / Math.max(1, os.cpus().length);
  } catch {
    return null;
  }
}

/** Global barriers per round the load generator uses (its default). */
const LOADGEN_BARRIERS = 10;

/** One coordinator, one worker count: connect rate, round trips (warm-up discarded), peak RSS. */
async function measureSide(exe: string, workers: number, o: CoordinatorOptions, blocking: boolean): Promise<{ side: CoordinatorSide; completes: number[] }> {
  const dir = makeTempDir(os.tmpdir());
  try {
    const c = await startCoordinator(exe, dir);
    try {
      const rounds = o.plan.warmup + o.plan.runs;
      const args = ['--port', String(c.port), '--workers', String(workers), '--rounds', String(rounds), '--timeout', String(o.phaseTimeout)];
      if (blocking) args.push('--blocking');
      const r = await runLoadgen(args, (o.phaseTimeout * (rounds + 3) + 10) * 1000);
      const kept = r.roundsMs.slice(o.plan.warmup).map((ms) => ms / 1000);
      return {
        side: {
          workers,
          connectRate: summarize([r.connect.perSecond], '1/s'),
          roundTrip: summarize(kept, 's'),
          rssBytes: c.peakRss(),
        },
        completes: (r.completesMs ?? []).slice(o.plan.warmup).map((ms) => ms / 1000),
      };
    } finally {
      await c.stop();
    }
  } finally {
    removeTempDir(dir);
  }
}

/**
 * One real DMTCP process (dmtcp_launch --no-gzip /bin/sleep, images on
 * tmpfs) under the coordinator `exe`; `dmtcp_command -bc` timed
 * plan.warmup + plan.runs times.
 */
async function realBlockingCheckpoint(exe: string, launch: string, o: CoordinatorOptions): Promise<Stat> {
  const dir = makeTempDir(os.tmpdir());
  const command = path.join(nativeBinDir(), 'dmtcp_command');
  const cmd = (port: number, ...args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(command, ['-p', String(port), '--timeout', '60', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.once('error', () => resolve({ code: -1, out }));
      c.once('close', (code) => resolve({ code, out }));
    });
  let c: Running | null = null;
  let job: ChildProcess | null = null;
  let shm: string | null = null;
  try {
    c = await startCoordinator(exe, dir);
    const port = c.port;
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DMTCP_COORD_PORT;
    // Uncompressed images on tmpfs when there is one, the same for both
    // coordinators: the disk and gzip would otherwise hide the coordinator's share.
    const ckptDir = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/ckpt-bench-') : dir;
    shm = ckptDir === dir ? null : ckptDir;
    job = spawn(launch, ['--join-coordinator', '--coord-host', '127.0.0.1', '--coord-port', String(port), '--no-gzip', '--ckptdir', ckptDir, '/bin/sleep', '1000'], {
      stdio: 'ignore',
      env,
      cwd: dir,
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = await cmd(port, '--json', 's');
      try {
        const j = JSON.parse(s.out) as { num_peers?: number; running?: boolean };
        if (j.running && (j.num_peers ?? 0) >= 1) break;
      } catch {
        /* not yet */
      }
      if (job.exitCode !== null) throw new CkptError('ERR_CKPT_STATE', `dmtcp_launch exited with ${job.exitCode}`);
      if (Date.now() > deadline) throw new CkptError('ERR_CKPT_TIMEOUT', 'the launched process did not join within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const samples: number[] = [];
    for (let i = 0; i < o.plan.warmup + o.plan.runs; i++) {
      const t0 = performance.now();
      const r = await cmd(port, 'bc');
      const t = (performance.now() - t0) / 1000;
      if (r.code !== 0) throw new CkptError('ERR_CKPT_STATE', `dmtcp_command -bc failed with ${r.code}`);
      if (i >= o.plan.warmup) samples.push(t);
    }
    return summarize(samples, 's');
  } finally {
    if (job && job.exitCode === null) {
      job.kill('SIGKILL');
      await waitExit(job, 5000);
    }
    await c?.stop();
    if (shm) fs.rmSync(shm, { recursive: true, force: true });
    removeTempDir(dir);
  }
}

export function validateCoordinatorOptions(o: CoordinatorOptions): void {
  if (!o.workers.length || !o.workers.every((n) => Number.isInteger(n) && n >= 1 && n <= 50000))
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'worker counts must be integers from 1 to 50000');
  if (!(o.phaseTimeout > 0)) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'phase timeout must be positive');
}

export async function benchCoordinator(o: CoordinatorOptions, progress: Progress = silentProgress): Promise<CoordinatorResult> {
  validateCoordinatorOptions(o);
  const ours = path.join(nativeBinDir(), 'dmtcp_coordinator');
  const loadgen = path.join(nativeBinDir(), 'ckpt_loadgen');
  if (!fs.existsSync(loadgen)) throw new CkptError('ERR_CKPT_UNSUPPORTED', `coordinator load generator unavailable: ${loadgen} is not built (run npm rebuild)`);
  if (!fs.existsSync(ours)) throw new CkptError('ERR_CKPT_UNSUPPORTED', `coordinator unavailable: ${ours} is not built (run npm rebuild)`);
  const orig = findOriginalCoordinator(o.dmtcpPrefix);
  const workers = [...new Set(o.workers)].sort((a, b) => a - b);
  const nearCap = workers.some((n) => n >= 900 && n <= DMTCP_MAX_WORKERS);

  const rows: CoordinatorRow[] = [];
  let capped: CoordinatorSide | null = null;
  let step = 0;
  const total = workers.length * (orig.exe ? 2 : 1) + 1;
  for (const n of workers) {
    progress.phase(`coordinator: ${n} workers (ckpt)`);
    progress.step(step++, total);
    const ck = (await measureSide(ours, n, o, false)).side;
    let dm: CoordinatorSide | null = null;
    let why: string | null = orig.reason;
    if (orig.exe) {
      progress.phase(`coordinator: ${n} workers (original)`);
      progress.step(step++, total);
      if (n <= DMTCP_MAX_WORKERS) {
        try {
          dm = (await measureSide(orig.exe, n, o, false)).side;
          why = null;
        } catch (e) {
          why = `original dmtcp_coordinator failed: ${(e as Error).message}`;
        }
      } else if (!nearCap && !capped) {
        // Show the original at its limit once; it is not comparable with N workers, so no ratio.
        try {
          capped = (await measureSide(orig.exe, DMTCP_MAX_WORKERS, o, false)).side;
          dm = capped;
          why = `capped at ${DMTCP_MAX_WORKERS} workers, the original's limit: no ratio`;
        } catch (e) {
          why = `original dmtcp_coordinator failed at ${DMTCP_MAX_WORKERS} workers: ${(e as Error).message}`;
        }
      } else {
        why = `the original dmtcp_coordinator holds at most ${DMTCP_MAX_WORKERS} workers (its virtual-PID allocator spins beyond that)`;
      }
    }
    rows.push({
      workers: n,
      ckpt: ck,
      dmtcp: dm,
      dmtcpReason: why,
      roundTripSpeedup: dm && dm.workers === n ? dm.roundTrip.median / ck.roundTrip.median : null,
      tcpFloor: await tcpFloor(n, o),
    });
  }

  // One worker, blocking checkpoint. With DMTCP present: a real DMTCP
  // process (dmtcp_launch /bin/sleep) and `dmtcp_command -bc`, the way users
  // do it; otherwise a synthetic worker answering the same command.
  progress.phase('coordinator: blocking checkpoint, 1 worker');
  progress.step(step++, total);
  let blocking: CoordinatorResult['blockingCheckpoint'] = null;
  const launch = orig.prefix ? path.join(orig.prefix, 'bin', 'dmtcp_launch') : null;
  if (orig.exe && launch && fs.existsSync(launch)) {
    const real = async (exe: string) => realBlockingCheckpoint(exe, launch, o);
    let ck: Stat | null = null;
    let dm: Stat | null = null;
    let why: string | null = null;
    try {
      ck = await real(ours);
      dm = await real(orig.exe);
    } catch (e) {
      why = `dmtcp_launch /bin/sleep: ${(e as Error).message}`;
    }
    blocking = { workload: 'dmtcp_launch --no-gzip /bin/sleep, images on tmpfs, dmtcp_command -bc', ckpt: ck, dmtcp: dm, speedup: ck && dm ? dm.median / ck.median : null, reason: why };
  }
  if (!blocking || !blocking.speedup) {
    const ckS = (await measureSide(ours, 1, o, true)).completes;
    const ck: Stat | null = ckS.length ? summarize(ckS, 's') : null;
    let dm: Stat | null = null;
    let why: string | null = orig.reason;
    if (orig.exe) {
      try {
        const s = (await measureSide(orig.exe, 1, o, true)).completes;
        dm = s.length ? summarize(s, 's') : null;
        why = dm ? null : 'the original sent no reply to the blocking checkpoint';
      } catch (e) {
        why = `original dmtcp_coordinator failed: ${(e as Error).message}`;
      }
    }
    const earlier = blocking?.reason ? `; real DMTCP process: ${blocking.reason}` : '';
    blocking = {
      workload: 'synthetic worker, blocking checkpoint command',
      ckpt: ck,
      dmtcp: dm,
      speedup: ck && dm ? dm.median / ck.median : null,
      reason: ck ? (why ? why + earlier : earlier || null) : 'no reply to the blocking checkpoint',
    };
  }
  progress.done();
  return {
    available: true,
    rows,
    blockingCheckpoint: blocking,
    dmtcp: { available: orig.exe !== null, reason: orig.reason, prefix: orig.prefix, maxWorkers: DMTCP_MAX_WORKERS },
  };
}
