#!/usr/bin/env node
// Built-in engine benchmark: checkpoint time, restart time, application
// downtime and image size for a process holding 64 MiB / 512 MiB / 2 GiB of
// resident incompressible memory, next to the raw write/read bandwidth of the
// same directory measured in the same run; DMTCP (gzip and --no-gzip) on the
// same program when DMTCP_PREFIX is set; runtime overhead on a CPU-bound loop.
//
//   node benchmarks/engine/run.mjs [--sizes 64,512,2048] [--runs 3] [--dir DIR] [--json FILE] [--bin DIR]
//                                  [--modes none,restartSerial,...] [--dmtcp noGzip,gzip] [--poll-ms 20]
//
// --modes runs only the named engine modes (see MODES; "none" is always
// run: the raw figures and ratios are measured next to it); --dmtcp the
// DMTCP variants when DMTCP_PREFIX is set (noGzip is always run).
// Nothing here is pass/fail: medians with min-max are printed (and written as
// JSON), ratios are computed against the raw figures of the same run.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const { get: arg, number } = benchArgs(
  `Usage: node benchmarks/engine/run.mjs [--sizes 64,512,2048] [--runs 3] [--dir DIR] [--json FILE] [--bin DIR]
                                   [--modes none,restartSerial,...] [--dmtcp noGzip,gzip] [--poll-ms 20]
Checkpoint and restart time, downtime and image size of the built-in engine (and DMTCP when DMTCP_PREFIX
is set) next to the raw write/read bandwidth of the same directory, and the runtime overhead.
  --sizes L     resident MiB of the test program (default 64,512,2048)
  --runs N      runs per figure (default 3)
  --dir DIR     where images go (default: a new directory under $TMPDIR, removed at the end)
  --json FILE   also write the results as JSON
  --bin DIR     the built engine to measure (default build/Release; give a copy for long runs)
  --modes L     engine modes to run besides "none" (default: all)
  --dmtcp L     DMTCP variants besides noGzip (default gzip)
  --poll-ms MS  how often a restart is polled for RUNNING (default 20)
Prints, per size, medians with the ratios of medians and the paired ratios (the median of per-run
ratios: run i of ckpt, its raw baseline and DMTCP's run i, all within a minute).
`,
  ['sizes', 'runs', 'dir', 'json', 'bin', 'modes', 'dmtcp', 'poll-ms'],
);
// --bin: a copy of build/Release, so rebuilding during a long run cannot
// change the engine under the benchmark.
const bin = path.resolve(arg('bin', path.join(root, 'build', 'Release')));
const sizes = arg('sizes', '64,512,2048').split(',').map(Number);
const runs = number('runs', 3, 1);
const baseDir = arg('dir', fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-engine-')));
const jsonOut = arg('json', null);
const dmtcpPrefix = process.env.DMTCP_PREFIX || null;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const stats = (a) => ({ median: median(a), min: Math.min(...a), max: Math.max(...a), runs: a });
const mib = (b) => b / 1048576;

async function waitFor(what, fn, timeoutMs = 120_000, stepMs = 5) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

function compile(name) {
  const out = path.join(baseDir, name);
  execFileSync('gcc', ['-O2', '-o', out, path.join(here, `${name}.c`)]);
  return out;
}
let rawioExe = null;

function dirBytes(d) {
  let total = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

function dropCaches() {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
    return true;
  } catch {
    return false;
  }
}

// Raw sequential write (4 MiB buffered writes + fsync, like the image
// writer) and read of `bytes` in the benchmark directory.
function rawIo(bytes) {
  const file = path.join(baseDir, 'raw.bin');
  const buf = Buffer.alloc(4 << 20);
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
  let t = process.hrtime.bigint();
  const fd = fs.openSync(file, 'w');
  for (let done = 0; done < bytes; done += buf.length) fs.writeSync(fd, buf, 0, Math.min(buf.length, bytes - done));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const writeS = Number(process.hrtime.bigint() - t) / 1e9;
  const cold = dropCaches();
  t = process.hrtime.bigint();
  const rfd = fs.openSync(file, 'r');
  while (fs.readSync(rfd, buf, 0, buf.length, null) > 0);
  fs.closeSync(rfd);
  const readS = Number(process.hrtime.bigint() - t) / 1e9;
  fs.rmSync(file);
  // The same through O_DIRECT (rawio.c): the device without the page cache,
  // which is how the engine writes and reads images. "fresh" reads into
  // newly mapped memory, as any restart must (every page is allocated and
  // cleared by the kernel first).
  const rio = (...a) => Number(execFileSync(rawioExe, a, { encoding: 'utf8' }).trim());
  const directWriteS = rio('write', file, String(bytes));
  dropCaches();
  const directReadS = rio('read', file);
  dropCaches();
  const freshReadS = rio('fresh', file);
  fs.rmSync(file);
  return {
    writeS,
    readS,
    directWriteS,
    directReadS,
    freshReadS,
    writeMiBs: mib(bytes) / writeS,
    readMiBs: mib(bytes) / readS,
    coldRead: cold,
  };
}

class Coordinator {
  constructor(exe, extra = []) {
    this.exe = exe;
    this.extra = extra;
  }
  async start() {
    const pf = path.join(baseDir, `port-${Date.now()}-${Math.random()}`);
    // cwd: coordinators write restart scripts into their working directory.
    this.proc = spawn(this.exe, ['--coord-port', '0', '--port-file', pf, ...this.extra], { stdio: 'ignore', cwd: baseDir });
    this.port = await waitFor('coordinator', () => {
      try {
        return Number(fs.readFileSync(pf, 'utf8').trim()) || null;
      } catch {
        return null;
      }
    });
    return this;
  }
  cmd(...a) {
    return spawnSync(path.join(bin, 'dmtcp_command'), ['-p', String(this.port), ...a], { encoding: 'utf8' });
  }
  status() {
    try {
      const j = JSON.parse(this.cmd('--json', 's').stdout);
      return { peers: j.num_peers, running: j.running };
    } catch {
      return { peers: -1, running: false };
    }
  }
  stop() {
    this.proc.kill('SIGKILL');
  }
}

// A job whose stdout is a file we poll.
function startJob(argv, env, out) {
  const fd = fs.openSync(out, 'w');
  const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env: { ...process.env, ...env }, detached: true });
  fs.closeSync(fd);
  p.exitedP = new Promise((r) => p.on('exit', r));
  return p;
}
const readOut = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');

// The subject's longest loop gap since its previous report, in ms. The
// subject is found through its output file's owner: we signal by pid.
async function gapMs(pid, out) {
  const before = (readOut(out).match(/gap_us=/g) || []).length;
  process.kill(pid, 'SIGUSR1');
  await waitFor('gap report', () => (readOut(out).match(/gap_us=/g) || []).length > before, 30_000);
  const all = [...readOut(out).matchAll(/gap_us=(\d+)/g)];
  return Number(all[all.length - 1][1]) / 1000;
}

// PID (host view) of the benchmark subject among the descendants of `root`.
function subjectPid(rootPid, name) {
  const found = [];
  const walk = (p) => {
    let kids = [];
    try {
      kids = fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return;
    }
    for (const k of kids) {
      try {
        if (fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === name) found.push(k);
      } catch {
        /* gone */
      }
      walk(k);
    }
  };
  walk(rootPid);
  return found[0];
}

// Engine modes: raw chunks or zstd-1; forked (the application resumes while
// the image is written from the frozen copy) or stopped (DMTCP-like).
// noSync skips fsync, as DMTCP does (it leaves its images in the page cache).
// The subject keeps writing its memory (mem.c "write": every page it reaches
// during a forked checkpoint is copied on write) except in noneRead, where it
// only reads it (a CPU-bound phase). noneBuffered is the engine with
// O_DIRECT switched off (the default before it was introduced), for a
// side-by-side comparison.
const MODES = {
  none: { CKPT_COMPRESS: 'none' },
  zstd: {},
  noneStopped: { CKPT_COMPRESS: 'none', CKPT_FORKED: '0' },
  noneNoSync: { CKPT_COMPRESS: 'none', CKPT_NO_FSYNC: '1' },
  noneRead: { CKPT_COMPRESS: 'none', subject: 'read' },
  noneBuffered: { CKPT_COMPRESS: 'none', CKPT_O_DIRECT: '0' },
  // Default checkpoint; the restart alone reads buffered (restartBuffered)
  // or fills dense regions on huge pages (restartThp).
  restartBuffered: { CKPT_COMPRESS: 'none', restart: { CKPT_O_DIRECT: '0' } },
  restartThp: { CKPT_COMPRESS: 'none', restart: { CKPT_RESTORE_THP: '1' } },
  // The restart without populating pages ahead of the reads (each read
  // faults in its own pages, as before population was introduced), and with
  // four reads in flight instead of two.
  restartSerial: { CKPT_COMPRESS: 'none', restart: { CKPT_RESTORE_POPULATE: '0' } },
  restartDepth4: { CKPT_COMPRESS: 'none', restart: { CKPT_RESTORE_DEPTH: '4' } },
};
const dmtcpVariants = ['noGzip', ...(arg('dmtcp', null)?.split(',') ?? ['gzip']).filter((v) => v !== 'noGzip')];
for (const v of dmtcpVariants) if (v !== 'gzip' && v !== 'noGzip') throw new Error(`unknown DMTCP variant ${v} (known: noGzip, gzip)`);
const modeList = ['none', ...(arg('modes', null)?.split(',') ?? Object.keys(MODES)).filter((m) => m !== 'none')];
for (const m of modeList) if (!MODES[m]) throw new Error(`unknown mode ${m} (known: ${Object.keys(MODES).join(', ')})`);
const modeEnv = (m) => Object.fromEntries(Object.entries(MODES[m]).filter(([k]) => k !== 'subject' && k !== 'restart'));

// How often a restart is polled for RUNNING (both engines alike). Every poll
// runs dmtcp_command (about 4 ms of CPU with the coordinator's share): at 2 ms
// intervals the poller took 0.6 of the 2 CPUs, slowing a restart that uses
// both (ours populates pages on the second CPU) more than one that uses one.
// 20 ms costs at most 20 ms of resolution on restarts of a second or more.
const RESTART_POLL_MS = number('poll-ms', 20, 1);

async function builtinTrial(coord, memExe, sizeMiB, mode) {
  const ckptDir = path.join(baseDir, `builtin-${mode}-${sizeMiB}-${Date.now()}`);
  fs.mkdirSync(ckptDir);
  const env = {
    DMTCP_COORD_HOST: '127.0.0.1',
    DMTCP_COORD_PORT: String(coord.port),
    CKPT_DIR: ckptDir,
    ...modeEnv(mode),
  };
  const out = path.join(baseDir, 'subject.out');
  const job = startJob([path.join(bin, 'ckpt-restart'), 'launch', '--', memExe, String(sizeMiB), MODES[mode].subject ?? 'write'], env, out);
  await waitFor('subject ready', () => readOut(out).includes('ready') && coord.status().running);
  const pid = await waitFor('subject pid', () => subjectPid(job.pid, 'mem'));
  await gapMs(pid, out);
  let t = process.hrtime.bigint();
  const r = coord.cmd('bc');
  const ckptS = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`checkpoint failed: ${r.stdout}${r.stderr}`);
  const downMs = await gapMs(pid, out);
  const imageBytes = dirBytes(ckptDir);
  job.kill('SIGKILL');
  await job.exitedP;
  await waitFor('coordinator empty', () => coord.status().peers === 0);
  const cold = dropCaches();
  const out2 = path.join(baseDir, 'subject2.out');
  t = process.hrtime.bigint();
  const rj = startJob([path.join(bin, 'ckpt-restart'), 'restart', ckptDir], { ...env, ...(MODES[mode].restart ?? {}) }, out2);
  let rjDone = false;
  rj.exitedP.then(() => (rjDone = true));
  await waitFor('restarted subject running', () => {
    if (rjDone) throw new Error(`restart failed: ${readOut(out2)}`);
    return coord.status().running;
  }, 300_000, RESTART_POLL_MS);
  const restartS = Number(process.hrtime.bigint() - t) / 1e9;
  rj.kill('SIGKILL');
  await rj.exitedP;
  await waitFor('coordinator empty', () => coord.status().peers === 0);
  fs.rmSync(ckptDir, { recursive: true, force: true });
  return { ckptS, restartS, downMs, imageBytes, coldRestart: cold };
}

async function dmtcpTrial(memExe, sizeMiB, gzip) {
  const coord = await new Coordinator(path.join(dmtcpPrefix, 'bin', 'dmtcp_coordinator')).start();
  const ckptDir = path.join(baseDir, `dmtcp-${gzip}-${sizeMiB}-${Date.now()}`);
  fs.mkdirSync(ckptDir);
  const common = ['-j', '-h', '127.0.0.1', '-p', String(coord.port), '--ckptdir', ckptDir];
  const out = path.join(baseDir, 'dmtcp.out');
  const job = startJob([path.join(dmtcpPrefix, 'bin', 'dmtcp_launch'), ...common, ...(gzip ? [] : ['--no-gzip']), memExe, String(sizeMiB)], { DMTCP_QUIET: '2' }, out);
  try {
    await waitFor('dmtcp subject ready', () => readOut(out).includes('ready') && coord.status().running);
    const pid = await waitFor('subject pid', () => subjectPid(job.pid, 'mem') ?? (fs.readFileSync(`/proc/${job.pid}/comm`, 'utf8').trim() === 'mem' ? job.pid : null));
    await gapMs(pid, out);
    let t = process.hrtime.bigint();
    const r = coord.cmd('bc');
    const ckptS = Number(process.hrtime.bigint() - t) / 1e9;
    if (r.status !== 0) throw new Error(`DMTCP checkpoint failed: ${r.stdout}`);
    // DMTCP leaves its images in the page cache: fsync them to get its
    // time-to-durable, comparable with ours (which includes fsync).
    t = process.hrtime.bigint();
    for (const f of fs.readdirSync(ckptDir).filter((n) => n.endsWith('.dmtcp'))) {
      const fd = fs.openSync(path.join(ckptDir, f), 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    const durableS = ckptS + Number(process.hrtime.bigint() - t) / 1e9;
    const downMs = await gapMs(pid, out);
    const images = fs.readdirSync(ckptDir).filter((f) => f.endsWith('.dmtcp'));
    const imageBytes = images.reduce((s, f) => s + fs.statSync(path.join(ckptDir, f)).size, 0);
    coord.cmd('k');
    await job.exitedP;
    await waitFor('coordinator empty', () => coord.status().peers === 0);
    const cold = dropCaches();
    t = process.hrtime.bigint();
    const rj = startJob([path.join(dmtcpPrefix, 'bin', 'dmtcp_restart'), '-j', '-h', '127.0.0.1', '-p', String(coord.port), ...images.map((f) => path.join(ckptDir, f))], { DMTCP_QUIET: '2' }, path.join(baseDir, 'dmtcp2.out'));
    await waitFor('DMTCP restart running', () => coord.status().running, 120_000, RESTART_POLL_MS);
    const restartS = Number(process.hrtime.bigint() - t) / 1e9;
    coord.cmd('k');
    await rj.exitedP;
    return { ckptS, durableS, restartS, downMs, imageBytes, coldRestart: cold };
  } finally {
    coord.stop();
    fs.rmSync(ckptDir, { recursive: true, force: true });
  }
}

// CPU-bound loop natively and under the engine (no checkpoint taken):
// user+sys CPU seconds of the whole job and wall seconds.
function timed(argv, env) {
  const r = spawnSync('bash', ['-c', 'TIMEFORMAT="%R %U %S"; time "$@" >/dev/null', 'bash', ...argv], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  const [real, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { wallS: real, cpuS: user + sys };
}

async function overhead(coord, spinExe, rounds) {
  const env = { DMTCP_COORD_HOST: '127.0.0.1', DMTCP_COORD_PORT: String(coord.port), CKPT_DIR: baseDir };
  const steps = '6000';
  const native = [];
  const engine = [];
  timed([spinExe, steps], {});
  for (let i = 0; i < rounds; i++) {
    native.push(timed([spinExe, steps], {}));
    engine.push(timed([path.join(bin, 'ckpt-restart'), 'launch', '--', spinExe, steps], env));
  }
  const nc = median(native.map((x) => x.cpuS));
  const ec = median(engine.map((x) => x.cpuS));
  const nw = median(native.map((x) => x.wallS));
  const ew = median(engine.map((x) => x.wallS));
  return {
    nativeCpuS: stats(native.map((x) => x.cpuS)),
    engineCpuS: stats(engine.map((x) => x.cpuS)),
    nativeWallS: stats(native.map((x) => x.wallS)),
    engineWallS: stats(engine.map((x) => x.wallS)),
    cpuOverheadPct: ((ec - nc) / nc) * 100,
    wallOverheadPct: ((ew - nw) / nw) * 100,
  };
}

async function main() {
  for (const f of ['libckpt.so', 'ckpt-restart', 'dmtcp_coordinator', 'dmtcp_command'])
    if (!fs.existsSync(path.join(bin, f))) throw new Error(`build/Release/${f} is missing: run scripts/dev-build.sh`);
  const memExe = compile('mem');
  const spinExe = compile('spin');
  rawioExe = compile('rawio');
  const coord = await new Coordinator(path.join(bin, 'dmtcp_coordinator')).start();
  const machine = {
    cpu: (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1],
    cpus: os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    node: process.version,
    dir: baseDir,
    loadavgStart: os.loadavg(),
  };
  const results = { schema: 'ckpt-bench-engine/1', date: new Date().toISOString(), machine, sizes: [], overhead: null };
  console.log(`engine benchmark in ${baseDir} (${machine.cpus} CPUs, load ${machine.loadavgStart.map((x) => x.toFixed(1)).join(' ')})`);
  for (const size of sizes) {
    const row = { sizeMiB: size, builtin: {}, dmtcp: {}, raw: null };
    const rawRuns = [];
    // Interleaved: run i of every mode (and of the raw baseline, right after
    // the default mode, and of DMTCP) before run i + 1 of any, so that drift
    // of the machine over the run affects all of them alike; the order of
    // the modes rotates from run to run, so that none always follows the
    // same one (what the previous trial freed changes what the next pays
    // for fresh memory on a VM).
    const trials = Object.fromEntries(modeList.map((m) => [m, []]));
    const dmtcpTrials = Object.fromEntries(dmtcpVariants.map((v) => [v, []]));
    for (let i = 0; i < runs; i++) {
      for (const compress of modeList.map((_, k) => modeList[(k + i) % modeList.length])) {
        const t = await builtinTrial(coord, memExe, size, compress);
        trials[compress].push(t);
        if (compress === 'none') rawRuns.push(rawIo(t.imageBytes));
      }
      if (dmtcpPrefix) for (const v of dmtcpVariants) dmtcpTrials[v].push(await dmtcpTrial(memExe, size, v === 'gzip'));
    }
    for (const compress of modeList)
      row.builtin[compress] = {
        ckptS: stats(trials[compress].map((t) => t.ckptS)),
        restartS: stats(trials[compress].map((t) => t.restartS)),
        downMs: stats(trials[compress].map((t) => t.downMs)),
        imageBytes: median(trials[compress].map((t) => t.imageBytes)),
        coldRestart: trials[compress].every((t) => t.coldRestart),
      };
    row.raw = {
      writeS: stats(rawRuns.map((r) => r.writeS)),
      readS: stats(rawRuns.map((r) => r.readS)),
      directWriteS: stats(rawRuns.map((r) => r.directWriteS)),
      directReadS: stats(rawRuns.map((r) => r.directReadS)),
      freshReadS: stats(rawRuns.map((r) => r.freshReadS)),
      writeMiBs: median(rawRuns.map((r) => r.writeMiBs)),
      readMiBs: median(rawRuns.map((r) => r.readMiBs)),
      coldRead: rawRuns.every((r) => r.coldRead),
    };
    const b = row.builtin.none;
    const nan = { ckptS: { median: NaN }, restartS: { median: NaN }, downMs: { median: NaN }, imageBytes: NaN };
    for (const m of Object.keys(MODES)) row.builtin[m] ??= null;
    const mode = (m) => row.builtin[m] ?? nan;
    const bs = mode('noneStopped');
    // "Best" raw figures: the faster of buffered and O_DIRECT, the
    // strictest reading of "raw device bandwidth".
    const bestWrite = Math.min(row.raw.writeS.median, row.raw.directWriteS.median);
    const bestRead = Math.min(row.raw.readS.median, row.raw.directReadS.median);
    row.ratios = {
      ckptVsRawWrite: b.ckptS.median / row.raw.writeS.median,
      ckptStoppedVsRawWrite: bs.ckptS.median / row.raw.writeS.median,
      restartVsRawRead: b.restartS.median / row.raw.readS.median,
      ckptVsBestRawWrite: b.ckptS.median / bestWrite,
      ckptStoppedVsBestRawWrite: bs.ckptS.median / bestWrite,
      ckptReadSubjectVsBestRawWrite: mode('noneRead').ckptS.median / bestWrite,
      restartVsBestRawRead: b.restartS.median / bestRead,
      restartVsFreshRead: b.restartS.median / row.raw.freshReadS.median,
      restartSerialVsRawRead: mode('restartSerial').restartS.median / row.raw.readS.median,
      restartSerialVsBestRawRead: mode('restartSerial').restartS.median / bestRead,
    };
    // Paired readings: the median of per-run ratios. Run i of the default
    // mode, its raw baseline (measured right after it) and DMTCP's run i
    // follow each other within a minute, so the machine's drift over the
    // whole benchmark (on the benchmark VM storage and fresh-memory costs
    // move by 2-3x within minutes) cancels out of each pair.
    const none = trials.none ?? [];
    const pairs = (f) => (none.length ? median(none.map((t, i) => f(t, i)).filter((x) => Number.isFinite(x))) : NaN);
    row.ratios.pairedCkptVsBestRawWrite = pairs((t, i) => t.ckptS / Math.min(rawRuns[i].writeS, rawRuns[i].directWriteS));
    row.ratios.pairedRestartVsBestRawRead = pairs((t, i) => t.restartS / Math.min(rawRuns[i].readS, rawRuns[i].directReadS));
    if (dmtcpPrefix && dmtcpTrials.noGzip) {
      row.ratios.pairedDmtcpNoGzipCkptOverOurs = pairs((t, i) => dmtcpTrials.noGzip[i].ckptS / t.ckptS);
      row.ratios.pairedDmtcpNoGzipRestartOverOurs = pairs((t, i) => dmtcpTrials.noGzip[i].restartS / t.restartS);
    }
    if (dmtcpPrefix) {
      for (const v of dmtcpVariants) {
        const trials = dmtcpTrials[v];
        row.dmtcp[v] = {
          ckptS: stats(trials.map((t) => t.ckptS)),
          durableS: stats(trials.map((t) => t.durableS)),
          restartS: stats(trials.map((t) => t.restartS)),
          downMs: stats(trials.map((t) => t.downMs)),
          imageBytes: median(trials.map((t) => t.imageBytes)),
        };
      }
      row.ratios.dmtcpNoGzipCkptOverOurs = row.dmtcp.noGzip.ckptS.median / b.ckptS.median;
      row.ratios.dmtcpNoGzipCkptOverOursStopped = row.dmtcp.noGzip.ckptS.median / bs.ckptS.median;
      row.ratios.dmtcpNoGzipCkptOverOursNoSync = row.dmtcp.noGzip.ckptS.median / mode('noneNoSync').ckptS.median;
      row.ratios.dmtcpNoGzipRestartOverOurs = row.dmtcp.noGzip.restartS.median / b.restartS.median;
      row.ratios.dmtcpNoGzipDurableOverOurs = row.dmtcp.noGzip.durableS.median / b.ckptS.median;
      row.ratios.dmtcpNoGzipCkptOverOursReadSubject = row.dmtcp.noGzip.ckptS.median / mode('noneRead').ckptS.median;
      row.ratios.dmtcpNoGzipRestartOverOursSerial = row.dmtcp.noGzip.restartS.median / mode('restartSerial').restartS.median;
    }
    results.sizes.push(row);
    const f = (x) => x.toFixed(3);
    // Modes left out with --modes are not printed (their figures are null in the JSON).
    const ran = (m) => row.builtin[m] !== null;
    const parts = [
      `${size} MiB: ckpt raw ${f(b.ckptS.median)} s (raw write ${f(row.raw.writeS.median)} s, x${row.ratios.ckptVsRawWrite.toFixed(2)}), ` +
        `restart ${f(b.restartS.median)} s (raw read ${f(row.raw.readS.median)} s, x${row.ratios.restartVsRawRead.toFixed(2)}), ` +
        `downtime ${b.downMs.median.toFixed(1)} ms, image ${mib(b.imageBytes).toFixed(1)} MiB`,
    ];
    if (ran('noneStopped'))
      parts.push(`stopped-mode ckpt ${f(bs.ckptS.median)} s (x${row.ratios.ckptStoppedVsRawWrite.toFixed(2)}) downtime ${bs.downMs.median.toFixed(1)} ms`);
    if (ran('noneNoSync')) parts.push(`no-fsync ckpt ${f(mode('noneNoSync').ckptS.median)} s`);
    if (ran('zstd')) parts.push(`zstd ckpt ${f(mode('zstd').ckptS.median)} s image ${mib(mode('zstd').imageBytes).toFixed(1)} MiB`);
    if (ran('noneRead')) parts.push(`read-only subject ckpt ${f(mode('noneRead').ckptS.median)} s`);
    if (ran('noneBuffered'))
      parts.push(`buffered (old defaults) ckpt ${f(mode('noneBuffered').ckptS.median)} s restart ${f(mode('noneBuffered').restartS.median)} s`);
    if (ran('restartSerial'))
      parts.push(`restart without population ${f(mode('restartSerial').restartS.median)} s (x${row.ratios.restartSerialVsRawRead.toFixed(2)})`);
    if (ran('restartDepth4')) parts.push(`4 reads in flight ${f(mode('restartDepth4').restartS.median)} s`);
    if (ran('restartThp')) parts.push(`huge pages ${f(mode('restartThp').restartS.median)} s`);
    parts.push(`raw O_DIRECT write ${f(row.raw.directWriteS.median)} s read ${f(row.raw.directReadS.median)} s, fresh-memory read ${f(row.raw.freshReadS.median)} s`);
    if (dmtcpPrefix)
      parts.push(
        `DMTCP --no-gzip ckpt ${f(row.dmtcp.noGzip.ckptS.median)} s (durable after fsync ${f(row.dmtcp.noGzip.durableS.median)} s) restart ${f(row.dmtcp.noGzip.restartS.median)} s downtime ${row.dmtcp.noGzip.downMs.median.toFixed(1)} ms` +
          (row.dmtcp.gzip ? `, gzip ckpt ${f(row.dmtcp.gzip.ckptS.median)} s` : ''),
      );
    const p = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
    parts.push(
      `paired runs (median of per-run ratios): ckpt x${p(row.ratios.pairedCkptVsBestRawWrite)} and restart x${p(row.ratios.pairedRestartVsBestRawRead)} the best raw write/read` +
        (row.ratios.pairedDmtcpNoGzipCkptOverOurs !== undefined
          ? `, DMTCP --no-gzip ${p(row.ratios.pairedDmtcpNoGzipCkptOverOurs)}x our checkpoint time and ${p(row.ratios.pairedDmtcpNoGzipRestartOverOurs)}x our restart time`
          : ''),
    );
    console.log(parts.join('; '));
  }
  results.overhead = await overhead(coord, spinExe, Math.max(5, runs));
  console.log(
    `overhead on a CPU-bound loop: CPU ${results.overhead.cpuOverheadPct.toFixed(2)} %, wall ${results.overhead.wallOverheadPct.toFixed(2)} % ` +
      `(native ${results.overhead.nativeCpuS.median.toFixed(3)} s CPU, engine ${results.overhead.engineCpuS.median.toFixed(3)} s CPU)`,
  );
  results.machine.loadavgEnd = os.loadavg();
  coord.stop();
  if (jsonOut) fs.writeFileSync(jsonOut, `${JSON.stringify(results, null, 2)}\n`);
  if (!arg('dir', null)) fs.rmSync(baseDir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
