#!/usr/bin/env node
// Coordinator benchmark: ckpt's dmtcp_coordinator against DMTCP's original,
// side by side in one run.
//
//   node benchmarks/coordinator/run.mjs [--workers 1,100,900,10000] [--rounds 7]
//        [--dmtcp-prefix DIR] [--real-rounds 7] [--json FILE] [--only ours|dmtcp]
//
// For every N, a fresh coordinator of each kind is started on a random
// loopback port and build/Release/ckpt_loadgen drives N synthetic workers
// through it: connect, hello, then full checkpoint rounds (DO_CHECKPOINT, 10
// global barriers, filenames, resume). Reported per N and coordinator: the
// connect and join rates, the round time (median, min-max over the rounds),
// and the coordinator's peak and final RSS (VmHWM/VmRSS from
// /proc/<pid>/status). DMTCP's coordinator is run only up to 961 workers: it
// cannot hold more (its virtual-pid allocator spins forever at the 962nd).
//
// With DMTCP present (DMTCP_PREFIX or --dmtcp-prefix), a second trial starts
// a real one-process computation (dmtcp_launch of /bin/sleep) under each
// coordinator and times `dmtcp_command -bc` (blocking checkpoint) several
// times.
//
// Measurements are never pass/fail here; the targets are compared in the
// printed summary and recorded in benchmarks/README.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const release = path.join(root, 'build', 'Release');
const LOADGEN = path.join(release, 'ckpt_loadgen');
const OURS = path.join(release, 'dmtcp_coordinator');
const OUR_COMMAND = path.join(release, 'dmtcp_command');
// DMTCP's coordinator cannot hold more workers than this (spec, errata 2).
const DMTCP_MAX_WORKERS = 961;

function parseArgs(argv) {
  const o = {
    workers: [1, 100, 900, 10000],
    rounds: 7,
    realRounds: 7,
    dmtcpPrefix: process.env.DMTCP_PREFIX || '',
    json: '',
    only: '',
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--workers') o.workers = v().split(',').map((x) => Number(x));
    else if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--real-rounds') o.realRounds = Number(v());
    else if (a === '--dmtcp-prefix') o.dmtcpPrefix = v();
    else if (a === '--json') o.json = v();
    else if (a === '--only') o.only = v();
    else if (a === '--help' || a === '-h') {
      console.log(
        'Usage: node benchmarks/coordinator/run.mjs [--workers 1,100,900,10000] [--rounds 7] [--real-rounds 7]\n' +
          '       [--dmtcp-prefix DIR] [--json FILE] [--only ours|dmtcp]\n' +
          'Compares ckpt\'s dmtcp_coordinator with DMTCP\'s (DMTCP_PREFIX) using build/Release/ckpt_loadgen.',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (see --help)`);
  }
  for (const n of o.workers) if (!Number.isInteger(n) || n < 1 || n > 50000) throw new Error(`bad worker count ${n}`);
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a positive integer');
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function machine() {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
  return {
    cpu,
    cores: os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    loadAverageAtStart: os.loadavg().map((x) => +x.toFixed(2)),
    node: process.version,
    date: new Date().toISOString(),
  };
}

function memOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(s.match(new RegExp(`${k}:\\s*(\\d+) kB`))?.[1] ?? NaN);
    return { hwmMiB: +(kb('VmHWM') / 1024).toFixed(1), rssMiB: +(kb('VmRSS') / 1024).toFixed(1) };
  } catch {
    return { hwmMiB: NaN, rssMiB: NaN };
  }
}

/** Starts a coordinator executable on a random port; resolves {port, proc, dir, stop}. */
async function startCoordinator(exe, extraEnv = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-coord-'));
  const portFile = path.join(dir, 'port');
  const proc = spawn(exe, ['--quiet', '--coord-port', '0', '--port-file', portFile, '--timeout', '1800', '--ckptdir', dir], {
    // DMTCP's coordinator writes a console prompt on every loop iteration:
    // stdout goes nowhere.
    stdio: ['ignore', 'ignore', 'ignore'],
    cwd: dir,
    env: { ...process.env, DMTCP_TMPDIR: dir, ...extraEnv },
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const t = readFileSync(portFile, 'utf8').trim();
      if (t) {
        return {
          port: Number(t),
          proc,
          dir,
          async stop() {
            proc.kill('SIGKILL');
            await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once('exit', r)));
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
    } catch {
      /* not yet */
    }
    await sleep(10);
  }
  proc.kill('SIGKILL');
  throw new Error(`${exe} did not start`);
}

function runLoadgen(port, workers, rounds, pid) {
  const args = ['--port', String(port), '--workers', String(workers), '--rounds', String(rounds), '--timeout', '300'];
  if (pid) args.push('--coordinator-pid', String(pid));
  const r = spawnSync(LOADGEN, args, {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`ckpt_loadgen failed (N=${workers}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

async function syntheticTrial(kind, exe, n, rounds) {
  const c = await startCoordinator(exe);
  try {
    const res = runLoadgen(c.port, n, rounds, c.proc.pid);
    const mem = memOf(c.proc.pid);
    return {
      coordinator: kind,
      workers: n,
      connectPerSecond: res.connect.perSecond,
      joinPerSecond: res.join.perSecond,
      roundMs: res.roundMs,
      roundsMs: res.roundsMs,
      // CPU time per round: what a round costs regardless of how busy the machine is.
      coordinatorCpuMs: res.coordinatorCpuMs,
      loadgenCpuMs: res.loadgenCpuMs,
      ...mem,
    };
  } finally {
    await c.stop();
  }
}

/** One real DMTCP worker (/bin/sleep) under `exe`; times `dmtcp_command -bc`. */
async function realTrial(kind, exe, dmtcpBin, rounds, imageBase) {
  const c = await startCoordinator(exe, { CKPT_DMTCP_BIN_DIR: dmtcpBin });
  // Images go to `imageBase` (tmpfs when available, the same for both
  // coordinators) so the figure shows the coordinator's share rather than the
  // disk's; without gzip for the same reason.
  const imageDir = mkdtempSync(path.join(imageBase, 'ckpt-bench-images-'));
  const launch = spawn(
    path.join(dmtcpBin, 'dmtcp_launch'),
    ['-j', '-h', '127.0.0.1', '-p', String(c.port), '--no-gzip', '--ckptdir', imageDir, '/bin/sleep', '600'],
    { stdio: 'ignore', cwd: c.dir, env: { ...process.env, DMTCP_TMPDIR: c.dir } },
  );
  try {
    // Wait until the worker is registered and running.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = spawnSync(OUR_COMMAND, ['--json', '-p', String(c.port), '-s'], { encoding: 'utf8' });
      const j = s.status === 0 ? JSON.parse(s.stdout) : null;
      if (j && j.num_peers === 1 && j.running) break;
      if (Date.now() > deadline) throw new Error(`the dmtcp_launch worker did not join the ${kind} coordinator`);
      await sleep(50);
    }
    const times = [];
    // One warm-up checkpoint (first image write, page cache), then the timed ones.
    for (let i = 0; i <= rounds; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(path.join(dmtcpBin, 'dmtcp_command'), ['-p', String(c.port), '-bc'], { encoding: 'utf8', timeout: 60_000 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`dmtcp_command -bc failed against the ${kind} coordinator: ${r.stderr}`);
      if (i > 0) times.push(ms);
      // Let the worker resume fully before the next request.
      for (let k = 0; k < 200; k++) {
        const s = spawnSync(OUR_COMMAND, ['--json', '-p', String(c.port), '-s'], { encoding: 'utf8' });
        if (s.status === 0 && JSON.parse(s.stdout).running) break;
        await sleep(5);
      }
    }
    return { coordinator: kind, imageDir: imageBase, blockingCheckpointMs: stats(times), samplesMs: times.map((x) => +x.toFixed(1)) };
  } finally {
    launch.kill('SIGKILL');
    await c.stop();
    rmSync(imageDir, { recursive: true, force: true });
  }
}

function stats(v) {
  const s = [...v].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: +med.toFixed(3), min: +s[0].toFixed(3), max: +s[s.length - 1].toFixed(3) };
}

function fmt(x, d = 1) {
  return Number.isFinite(x) ? x.toFixed(d) : '-';
}

async function main() {
  const o = parseArgs(process.argv);
  for (const f of [LOADGEN, OURS, OUR_COMMAND]) {
    if (!existsSync(f)) throw new Error(`${f} is missing; build first: bash scripts/dev-build.sh`);
  }
  const dmtcpBin = o.dmtcpPrefix ? path.join(o.dmtcpPrefix, 'bin') : '';
  const haveDmtcp = dmtcpBin && existsSync(path.join(dmtcpBin, 'dmtcp_coordinator'));
  if (!haveDmtcp) console.error('DMTCP not found (set DMTCP_PREFIX): measuring ckpt\'s coordinator only, no ratios.');
  const result = { machine: machine(), rounds: o.rounds, barriersPerRound: 10, synthetic: [], real: [] };

  // The loopback TCP floor: what the round's messages alone cost this
  // machine (ckpt_loadgen --tcp-floor: N socket pairs in one thread, no
  // epoll, no wake-ups). A round of N workers carries 2 x (barriers + 1)
  // messages per worker, and both ends share the machine's cores, so no
  // coordinator can finish a round faster than
  //   N x 2 x (barriers + 1) x cpuUsPerMessage / cores.
  // Delayed ACKs (one per message a coordinator holds for more than ~40 ms,
  // i.e. at large N) come on top.
  result.tcpFloor = [];
  for (const n of o.workers) {
    const r = spawnSync(LOADGEN, ['--tcp-floor', '--workers', String(n)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ckpt_loadgen --tcp-floor failed: ${r.stderr.trim()}`);
    const f = JSON.parse(r.stdout).tcpFloor;
    const perRound = n * 2 * (result.barriersPerRound + 1);
    const floorRoundMs = (perRound * f.cpuUsPerMessage) / 1000 / result.machine.cores;
    result.tcpFloor.push({ workers: n, ...f, messagesPerRound: perRound, floorRoundMs: +floorRoundMs.toFixed(1) });
    console.error(`TCP floor N=${n}: ${fmt(f.cpuUsPerMessage, 2)} us CPU per message -> a round cannot take less than ${fmt(floorRoundMs)} ms here`);
  }

  for (const n of o.workers) {
    // Interleaved per N so both coordinators see the same machine conditions.
    if (o.only !== 'dmtcp') {
      const r = await syntheticTrial('ckpt', OURS, n, o.rounds);
      result.synthetic.push(r);
      console.error(`ckpt  N=${n}: round ${fmt(r.roundMs.median)} ms, join ${fmt(r.joinPerSecond, 0)}/s, HWM ${r.hwmMiB} MiB`);
    }
    if (haveDmtcp && o.only !== 'ours' && n <= DMTCP_MAX_WORKERS) {
      const r = await syntheticTrial('dmtcp', path.join(dmtcpBin, 'dmtcp_coordinator'), n, o.rounds);
      result.synthetic.push(r);
      console.error(`dmtcp N=${n}: round ${fmt(r.roundMs.median)} ms, join ${fmt(r.joinPerSecond, 0)}/s, HWM ${r.hwmMiB} MiB`);
    }
  }
  if (haveDmtcp) {
    for (const [kind, exe] of [
      ['ckpt', OURS],
      ['dmtcp', path.join(dmtcpBin, 'dmtcp_coordinator')],
    ]) {
      if (o.only && o.only !== (kind === 'ckpt' ? 'ours' : 'dmtcp')) continue;
      const imageBase = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
      const r = await realTrial(kind, exe, dmtcpBin, o.realRounds, imageBase);
      result.real.push(r);
      console.error(`${kind} one real worker: dmtcp_command -bc ${fmt(r.blockingCheckpointMs.median)} ms`);
    }
  }

  // Ratios (DMTCP's time / ours; DMTCP's rate as the base for rates).
  result.ratios = [];
  for (const n of o.workers) {
    const a = result.synthetic.find((r) => r.coordinator === 'ckpt' && r.workers === n);
    const b = result.synthetic.find((r) => r.coordinator === 'dmtcp' && r.workers === n);
    if (a && b) {
      result.ratios.push({
        workers: n,
        roundSpeedup: +(b.roundMs.median / a.roundMs.median).toFixed(1),
        joinRateRatio: +(a.joinPerSecond / b.joinPerSecond).toFixed(1),
        connectRateRatio: +(a.connectPerSecond / b.connectPerSecond).toFixed(1),
      });
    }
  }
  const ra = result.real.find((r) => r.coordinator === 'ckpt');
  const rb = result.real.find((r) => r.coordinator === 'dmtcp');
  if (ra && rb) result.realSpeedup = +(rb.blockingCheckpointMs.median / ra.blockingCheckpointMs.median).toFixed(1);

  // A Markdown summary for benchmarks/README.md.
  const lines = [
    '| N | coordinator | connect/s | join/s | round ms (median) | min–max | coordinator CPU ms/round | load generator CPU ms/round | peak RSS MiB |',
    '|---:|---|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const r of result.synthetic) {
    lines.push(
      `| ${r.workers} | ${r.coordinator} | ${fmt(r.connectPerSecond, 0)} | ${fmt(r.joinPerSecond, 0)} | ${fmt(r.roundMs.median)} | ` +
        `${fmt(r.roundMs.min)}–${fmt(r.roundMs.max)} | ${fmt(r.coordinatorCpuMs?.median ?? NaN, 0)} | ` +
        `${fmt(r.loadgenCpuMs?.median ?? NaN, 0)} | ${fmt(r.hwmMiB)} |`,
    );
  }
  if (result.tcpFloor.length) {
    lines.push('', '| N | loopback TCP µs CPU/message (pairs) | messages per round | floor: round ms at best on this machine | ckpt round ÷ floor |', '|---:|---:|---:|---:|---:|');
    for (const f of result.tcpFloor) {
      const a = result.synthetic.find((r) => r.coordinator === 'ckpt' && r.workers === f.workers);
      const ratio = a ? fmt(a.roundMs.median / f.floorRoundMs, 2) + '×' : '-';
      lines.push(`| ${f.workers} | ${fmt(f.cpuUsPerMessage, 2)} (${f.pairs}) | ${f.messagesPerRound} | ${fmt(f.floorRoundMs)} | ${ratio} |`);
    }
  }
  if (result.ratios.length) {
    lines.push('', '| N | round: DMTCP ÷ ckpt | join rate: ckpt ÷ DMTCP |', '|---:|---:|---:|');
    for (const x of result.ratios) lines.push(`| ${x.workers} | ${x.roundSpeedup}× | ${x.joinRateRatio}× |`);
  }
  if (result.real.length) {
    lines.push('', '| one real worker, `dmtcp_command -bc` | median ms | min–max |', '|---|---:|---|');
    for (const r of result.real) {
      lines.push(`| ${r.coordinator} | ${fmt(r.blockingCheckpointMs.median)} | ${fmt(r.blockingCheckpointMs.min)}–${fmt(r.blockingCheckpointMs.max)} |`);
    }
    if (result.realSpeedup) lines.push(`| DMTCP ÷ ckpt | ${result.realSpeedup}× | |`);
  }
  result.markdown = lines.join('\n');
  result.machine.loadAverageAtEnd = os.loadavg().map((x) => +x.toFixed(2));
  if (o.json) writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
  console.log(result.markdown);
}

main().catch((err) => {
  console.error(`benchmark failed: ${err.message}`);
  process.exit(1);
});
