/**
 * Test harness for the built-in engine: a coordinator on a random port,
 * fixtures compiled into a temp dir, and helpers to launch, checkpoint,
 * kill and restart jobs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// CKPT_TEST_BIN_DIR: run the tests against a copy of build/Release (so a
// rebuild during a long run cannot change the binaries under test).
export const binDir = process.env.CKPT_TEST_BIN_DIR ? path.resolve(process.env.CKPT_TEST_BIN_DIR) : path.join(repoRoot, 'build', 'Release');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures', 'engine');
export const restarter = path.join(binDir, 'ckpt-restart');

/** Why the engine tests cannot run here (null when they can). */
export function missing(): string | null {
  for (const f of ['libckpt.so', 'ckpt-restart', 'dmtcp_coordinator', 'dmtcp_command'])
    if (!fs.existsSync(path.join(binDir, f))) return `build/Release/${f} is missing (run scripts/dev-build.sh)`;
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the built-in engine needs Linux x86_64';
  if (spawnSync('gcc', ['--version']).status !== 0) return 'gcc is not installed';
  return null;
}

let nsCache: boolean | undefined;
/**
 * Whether `ckpt-restart launch` gets its own user+pid namespaces here (not
 * in some containers). Without them SIGKILL of the launcher does not reach
 * the job, so tests stop jobs with checkpoint-and-kill instead.
 */
export function namespacesAvailable(): boolean {
  if (nsCache === undefined) {
    const r = spawnSync('unshare', ['--user', '--pid', '--mount', '--fork', 'true'], { encoding: 'utf8' });
    nsCache = r.status === 0;
    if (!nsCache) console.warn('engine tests: no user namespaces here; jobs are stopped with checkpoint-and-kill');
  }
  return nsCache;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Compiles a C fixture once per run. */
export function compile(work: string, name: string, extra: string[] = []): string {
  const out = path.join(work, name);
  if (fs.existsSync(out)) return out;
  const r = spawnSync('gcc', ['-O1', '-g', '-o', out, path.join(fixturesDir, `${name}.c`), ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc ${name}: ${r.stderr}`);
  return out;
}

export class Coordinator {
  proc!: ChildProcess;
  port = 0;

  static async start(work: string): Promise<Coordinator> {
    const c = new Coordinator();
    const pf = path.join(work, `coord-${process.pid}-${Date.now()}.port`);
    // --stale-timeout: a coordinator leaked by a crashed test run exits by itself.
    c.proc = spawn(path.join(binDir, 'dmtcp_coordinator'), ['--coord-port', '0', '--port-file', pf, '--stale-timeout', '300'], {
      stdio: ['ignore', 'ignore', 'ignore'],
      cwd: work, // it writes restart scripts into its working directory
    });
    c.port = await waitFor('coordinator port file', () => {
      try {
        const t = fs.readFileSync(pf, 'utf8').trim();
        return t ? Number(t) : null;
      } catch {
        return null;
      }
    });
    return c;
  }

  command(...args: string[]): { status: number | null; stdout: string } {
    const r = spawnSync(path.join(binDir, 'dmtcp_command'), ['-p', String(this.port), '--timeout', '60', ...args], {
      encoding: 'utf8',
    });
    return { status: r.status, stdout: r.stdout };
  }

  status(): { peers: number; running: boolean } {
    const r = this.command('--json', 's');
    try {
      const j = JSON.parse(r.stdout) as { num_peers: number; running: boolean };
      return { peers: j.num_peers, running: j.running };
    } catch {
      return { peers: -1, running: false };
    }
  }

  peers(): number {
    return this.status().peers;
  }

  stop(): void {
    this.proc.kill('SIGKILL');
  }
}

export interface JobOptions {
  work: string;
  coord: Coordinator;
  ckptDir: string;
  out: string;
  env?: Record<string, string>;
  /** Run without the engine's namespaces (PIDs are not preserved). */
  noNs?: boolean;
}

function jobEnv(o: JobOptions): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DMTCP_COORD_HOST: '127.0.0.1',
    DMTCP_COORD_PORT: String(o.coord.port),
    CKPT_DIR: o.ckptDir,
    ...o.env,
  };
}

/** Every job started by this process, so a failed test cannot leave one running. */
export const liveJobs = new Set<Job>();

export class Job {
  proc: ChildProcess;
  exited: Promise<number>;
  private errLog: string;

  private constructor(proc: ChildProcess, errLog: string) {
    this.proc = proc;
    this.errLog = errLog;
    this.exited = new Promise((res) =>
      proc.on('exit', (code, sig) => {
        liveJobs.delete(this);
        res(code ?? (sig ? 128 : -1));
      }),
    );
    liveJobs.add(this);
  }

  static launch(o: JobOptions, argv: string[], cwd?: string): Job {
    const out = fs.openSync(o.out, 'w');
    const errLog = `${o.out}.err`;
    const err = fs.openSync(errLog, 'a');
    const p = spawn(restarter, ['launch', ...(o.noNs ? ['--no-ns'] : []), '--', ...argv], { stdio: ['ignore', out, err], env: jobEnv(o), cwd: cwd ?? o.work });
    fs.closeSync(out);
    fs.closeSync(err);
    return new Job(p, errLog);
  }

  static restart(o: JobOptions, target: string, stdout: 'ignore' | string = 'ignore'): Job {
    const errLog = `${o.out}.err`;
    const err = fs.openSync(errLog, 'a');
    const out = stdout === 'ignore' ? 'ignore' : fs.openSync(stdout, 'a');
    const p = spawn(restarter, ['restart', ...(o.noNs ? ['--no-ns'] : []), target], { stdio: ['ignore', out, err], env: jobEnv(o), cwd: o.work });
    fs.closeSync(err);
    if (typeof out === 'number') fs.closeSync(out);
    return new Job(p, errLog);
  }

  kill9(): Promise<number> {
    this.proc.kill('SIGKILL');
    return this.exited;
  }

  stderr(): string {
    try {
      return fs.readFileSync(this.errLog, 'utf8');
    } catch {
      return '';
    }
  }
}

export function lastLine(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '';
  }
}

/** The progress counter printed as "<word> N" on the last line, or -1. */
export function progress(file: string): number {
  const m = /^(?:step|round|tick|count) (\d+)$/.exec(lastLine(file));
  return m ? Number(m[1]) : -1;
}

/** The single computation directory under a checkpoint root. */
export function computationDir(ckptDir: string): string {
  const subs = fs.readdirSync(ckptDir).filter((n) => fs.existsSync(path.join(ckptDir, n, 'latest')));
  if (subs.length !== 1) throw new Error(`expected one computation in ${ckptDir}, found ${subs.join(',') || 'none'}`);
  return path.join(ckptDir, subs[0]!);
}

export function latestGeneration(ckptDir: string): number {
  const target = fs.readlinkSync(path.join(computationDir(ckptDir), 'latest'));
  return Number(/gen-(\d+)/.exec(target)?.[1] ?? -1);
}

export function mkWork(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Runs `argv` under the engine through three checkpoint/restart cycles:
 * cycle 1 checkpoints while the job keeps running and then kills it with
 * SIGKILL; cycle 2 uses checkpoint-and-kill (the coordinator's kc); cycle 3
 * again checkpoints a running (restarted) job and kills it with SIGKILL.
 * Each restart resumes from the newest generation. Returns the final line
 * of the job's stdout.
 */
export async function threeCycles(o: JobOptions, argv: string[], opts: { minStep?: number; peers?: number } = {}): Promise<string> {
  let job = Job.launch(o, argv);
  let last = -1;
  for (let cycle = 1; cycle <= 3; cycle++) {
    const from = last;
    // The job must be registered and running (a restarted job reconnects
    // first) and have made progress since the previous checkpoint.
    last = await waitFor(`progress beyond ${from} (cycle ${cycle}); stderr: ${job.stderr()}`, () => {
      const p = progress(o.out);
      if (p <= from || p < (opts.minStep ?? 0)) return null;
      const s = o.coord.status();
      return s.running && s.peers >= (opts.peers ?? 1) ? p : null;
    });
    const before = cycle === 1 ? 0 : latestGeneration(o.ckptDir);
    // Without a pid namespace SIGKILL of the launcher would not reach the
    // job, so that mode uses checkpoint-and-kill in every cycle.
    if (cycle === 2 || o.noNs || !namespacesAvailable()) {
      const r = o.coord.command('kc');
      if (r.status !== 0) throw new Error(`kc failed: ${r.stdout}`);
      await job.exited;
    } else {
      const r = o.coord.command('bc');
      if (r.status !== 0) throw new Error(`bc failed: ${r.stdout}`);
      await job.kill9();
    }
    const gen = latestGeneration(o.ckptDir);
    if (gen <= before) throw new Error(`cycle ${cycle}: no new generation (latest ${gen}); stderr: ${job.stderr()}`);
    await waitFor('the coordinator to drop the killed job', () => o.coord.peers() === 0);
    job = Job.restart(o, computationDir(o.ckptDir));
  }
  const code = await job.exited;
  if (code !== 0) throw new Error(`restarted job exited with ${code}; stderr: ${job.stderr()}`);
  return lastLine(o.out);
}
