#!/usr/bin/env node
/**
 * Stream benchmark: ckpt's image writer/reader against the device's raw
 * sequential bandwidth (O_DIRECT and buffered, measured in the same run by
 * ckpt_stream_bench's dd-like mode), `zstd -T0`, `gzip -1` (the level DMTCP
 * hard-codes) and `cp`, on a real process image.
 *
 *   node benchmarks/stream/run.mjs [--dir DIR] [--runs N] [--scale S] [--levels 1,3] [--filter RE] [--input FILE]
 *                                  [--tool PATH] [--out FILE]
 *
 * Every trial writes or reads the same process image (captured from a
 * python3 process by capture_process.py unless --input is given). Trials
 * are interleaved, each run several times after a warm-up; the median is
 * reported with min-max. Writes include fsync (and rename for ckpt); reads
 * start with the file dropped from the page cache. Every trial writes a new
 * file (the previous run's output is removed before the clock starts, as a
 * checkpoint writes new files). Results go to benchmarks/stream/results.json
 * (or --out) and a table on stdout. --tool runs another build of
 * ckpt_stream_bench (e.g. the previous commit's) for before/after runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

const args = process.argv.slice(2);
const { get: arg, number } = benchArgs(
  `Usage: node benchmarks/stream/run.mjs [--dir DIR] [--runs N] [--scale S] [--levels 1,3] [--filter RE]
                                   [--input FILE] [--tool PATH] [--out FILE]
Writes and reads a real process image with ckpt's image writer and reader, next to the device's raw
bandwidth (O_DIRECT and buffered), zstd -T0, gzip -1 and cp, all in one run (benchmarks/README.md).
  --dir DIR      where the test files go (default: a new directory under $TMPDIR, removed at the end)
  --runs N       timed runs per trial after one warm-up (default 5)
  --scale S      size of the captured python3 image relative to the default (default 1.0)
  --levels L     zstd levels to measure (default 1,3)
  --filter RE    run only the trials whose name matches RE
  --input FILE   measure this file instead of a captured process image
  --tool PATH    another build of ckpt_stream_bench (default build/Release/ckpt_stream_bench)
  --out FILE     results JSON (default benchmarks/stream/results.json)
`,
  ['dir', 'runs', 'scale', 'levels', 'filter', 'input', 'tool', 'out'],
);
const opt = (name, dflt) => arg(name.replace(/^--/, ''), dflt);
const dir = opt('--dir', fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-stream-bench-')));
const runs = number('runs', 5, 1);
const scale = opt('--scale', '1.0');
const levels = opt('--levels', '1,3').split(',').map(Number);
const filter = new RegExp(opt('--filter', '.'));
const threads = String(os.cpus().length);
const tool = path.resolve(opt('--tool', path.join(repo, 'build/Release/ckpt_stream_bench')));
const resultsFile = path.resolve(opt('--out', path.join(here, 'results.json')));

if (!fs.existsSync(tool)) {
  console.error(`${tool} is missing: run \`bash scripts/dev-build.sh\` first`);
  process.exit(1);
}
for (const cmd of ['zstd', 'gzip']) {
  if (spawnSync(cmd, ['--version']).status !== 0) {
    console.error(`${cmd} is not installed (apt-get install ${cmd})`);
    process.exit(1);
  }
}
fs.mkdirSync(dir, { recursive: true });

// ---------------------------------------------------------------- input
const input = opt('--input', path.join(dir, 'process.img'));
if (!opt('--input')) {
  process.stderr.write(`capturing a python3 process image (scale ${scale}) ...\n`);
  execFileSync('python3', [path.join(here, 'capture_process.py'), input, scale], { stdio: ['ignore', 'ignore', 'inherit'] });
}
const inputBytes = fs.statSync(input).size;

const bench = (...a) => JSON.parse(execFileSync(tool, a, { encoding: 'utf8' }).trim());
const evict = (f) => execFileSync(tool, ['evict', f]);
const timeShell = (script) => {
  const t0 = process.hrtime.bigint();
  execFileSync('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  return Number(process.hrtime.bigint() - t0) / 1e9;
};
const q = (s) => `'${s.replace(/'/g, "'\\''")}'`;

// ---------------------------------------------------------------- trials
const out = (n) => path.join(dir, n);
const rawImage = out('raw.ckpt');
const trials = [];
// Trials declared inside one unit() are compared with each other and run
// back to back (see the run loop).
let unitId = 0;
let inUnit = false;
const unit = (declare) => {
  unitId++;
  inUnit = true;
  declare();
  inUnit = false;
  unitId++;
};
const trial = (name, group, fn) => {
  if (filter.test(name)) trials.push({ name, group, fn, samples: [], unit: inUnit ? unitId : ++unitId });
};

// Our uncompressed image size decides how much the device baseline writes,
// so both move the same number of bytes to the device.
bench('write', input, rawImage, '--codec', 'raw', '--threads', threads);
const rawFileBytes = fs.statSync(rawImage).size;

for (const direct of [true, false]) {
  const tag = direct ? 'direct' : 'buffered';
  const d = direct ? ['--direct'] : [];
  unit(() => {
    trial(`device write ${tag}`, 'raw', () => {
      const r = bench('devwrite', out(`dev-${tag}.bin`), String(rawFileBytes), ...d);
      return { seconds: r.seconds, deviceBytes: r.bytes, logicalBytes: r.bytes, direct: r.direct };
    });
    if (!direct) {
      // Reference only: dd conv=fdatasync style (no writeback until the end).
      // The ratio uses the stronger baseline above, which starts writeback of
      // each block at once as the image writer does.
      trial('device write buffered, dd-style', 'raw', () => {
        const r = bench('devwrite', out('dev-plain.bin'), String(rawFileBytes), '--plain');
        return { seconds: r.seconds, deviceBytes: r.bytes, logicalBytes: r.bytes, direct: r.direct };
      });
    }
    trial(`ckpt write raw ${tag}`, 'raw', () => {
      const r = bench('write', input, out(`raw-${tag}.ckpt`), '--codec', 'raw', '--threads', threads, ...d);
      return { seconds: r.seconds, deviceBytes: r.fileBytes, logicalBytes: r.bytes };
    });
  });
  unit(() => {
    trial(`device read ${tag}`, 'raw', () => {
      const r = bench('devread', rawImage, ...d);
      return { seconds: r.seconds, deviceBytes: r.bytes, logicalBytes: r.bytes, direct: r.direct };
    });
    // Reference: the same reads, each block into its own place of a
    // file-sized buffer (faulted in before the clock), as a restore fills
    // memory; the baseline above reuses one 8 MiB buffer. On a VM that
    // hands free memory back to its host, the page cache of a process that
    // holds that much memory lands on pages the host must map again
    // (benchmarks/README.md).
    trial(`device read ${tag}, into file-sized memory`, 'raw', () => {
      const r = bench('devread', rawImage, '--spread', ...d);
      return { seconds: r.seconds, deviceBytes: r.bytes, logicalBytes: r.bytes, direct: r.direct };
    });
    trial(`ckpt read+verify raw ${tag}`, 'raw', () => {
      const r = bench('read', rawImage, '--threads', threads, ...d);
      return { seconds: r.seconds, deviceBytes: r.fileBytes, logicalBytes: r.bytes };
    });
  });
}
trial('cp + fsync', 'raw', () => {
  evict(input);
  fs.rmSync(out('cp.bin'), { force: true });
  const s = timeShell(`cp ${q(input)} ${q(out('cp.bin'))} && sync ${q(out('cp.bin'))}`);
  return { seconds: s, deviceBytes: inputBytes, logicalBytes: inputBytes };
});

for (const level of levels) {
  unit(() => {
    trial(`ckpt write zstd -${level}`, 'zstd', () => {
      const f = out(`zstd${level}.ckpt`);
      const r = bench('write', input, f, '--codec', 'zstd', '--level', String(level), '--threads', threads);
      return { seconds: r.seconds, deviceBytes: r.fileBytes, logicalBytes: r.bytes };
    });
    trial(`zstd -T0 -${level} + fsync`, 'zstd', () => {
      const f = out(`cli${level}.zst`);
      fs.rmSync(f, { force: true });
      const s = timeShell(`zstd -q -f -T0 -${level} ${q(input)} -o ${q(f)} && sync ${q(f)}`);
      return { seconds: s, deviceBytes: fs.statSync(f).size, logicalBytes: inputBytes };
    });
  });
  unit(() => {
    trial(`ckpt read+verify zstd -${level}`, 'zstd', () => {
      const f = out(`zstd${level}.ckpt`);
      if (!fs.existsSync(f)) bench('write', input, f, '--codec', 'zstd', '--level', String(level), '--threads', threads);
      const r = bench('read', f, '--threads', threads);
      return { seconds: r.seconds, deviceBytes: r.fileBytes, logicalBytes: r.bytes };
    });
    trial(`zstd -d -T0 (level ${level} file)`, 'zstd', () => {
      const f = out(`cli${level}.zst`);
      if (!fs.existsSync(f)) execFileSync('zstd', ['-q', '-f', `-${level}`, input, '-o', f]);
      evict(f);
      const s = timeShell(`zstd -q -d -T0 -c ${q(f)} > /dev/null`);
      return { seconds: s, deviceBytes: fs.statSync(f).size, logicalBytes: inputBytes };
    });
  });
}
trial('gzip -1 + fsync', 'zstd', () => {
  const f = out('gzip1.gz');
  fs.rmSync(f, { force: true });
  const s = timeShell(`gzip -1 -c ${q(input)} > ${q(f)} && sync ${q(f)}`);
  return { seconds: s, deviceBytes: fs.statSync(f).size, logicalBytes: inputBytes };
});

// ---------------------------------------------------------------- run
process.stderr.write(`input ${input}: ${(inputBytes / 2 ** 20).toFixed(1)} MiB; ${trials.length} trials x ${runs} runs (+1 warm-up)\n`);
// No trial may always run right after the same other one: a write that
// directly followed another large write ran up to 15 % slower than one that
// followed a read, and a buffered read that followed `cp` (which leaves
// hundreds of MiB of page cache to reclaim) up to 5 times slower than one
// that followed a read. So the units (a baseline and the trials compared
// with it, run back to back) run in list order in even rounds and in
// reverse order in odd ones, and the trials inside a unit swap order every
// other round: over four rounds each trial of a unit runs first after each
// neighbouring unit once.
const units = [];
for (const t of trials) {
  if (units.length === 0 || units[units.length - 1][0].unit !== t.unit) units.push([]);
  units[units.length - 1].push(t);
}
const roundOrder = (round) => {
  const us = round % 2 === 0 ? units : [...units].reverse();
  return us.flatMap((u) => (Math.floor(round / 2) % 2 === 0 ? u : [...u].reverse()));
};
for (let round = 0; round <= runs; round++) {
  for (const t of roundOrder(round)) {
    const r = t.fn();
    if (round > 0) t.samples.push(r);
    process.stderr.write(`\r${round === 0 ? 'warm-up' : `run ${round}/${runs}`}: ${t.name.padEnd(34)}`);
  }
}
process.stderr.write('\n');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const MiB = 2 ** 20;
const rows = trials.map((t) => {
  const secs = t.samples.map((s) => s.seconds);
  const m = median(secs);
  const s0 = t.samples[0];
  return {
    name: t.name,
    group: t.group,
    runs: secs.length,
    medianSeconds: m,
    minSeconds: Math.min(...secs),
    maxSeconds: Math.max(...secs),
    logicalMiBps: s0.logicalBytes / MiB / m,
    deviceMiBps: s0.deviceBytes / MiB / m,
    ratio: s0.logicalBytes / s0.deviceBytes,
    noisy: Math.max(...secs) > 1.5 * Math.min(...secs),
    // Seconds of each timed run, in run order: run i of every trial ran in
    // the same pass over the trials (see the loop above).
    samples: secs,
  };
});
const get = (n) => rows.find((r) => r.name === n);
const ratios = {};
// Three readings of each ratio: of the medians; of the fastest runs (on a
// shared, loaded machine the fastest run is the better estimate of what the
// code can do: zstd's benchmarking advice); and paired, the median of the
// per-run ratios, each taken between two trials of the same pass (a few
// seconds apart), so that the machine's drift over the whole run (this VM's
// storage speed moves by 2-3x within minutes) cancels out of each pair.
const addRatio = (key, a, b, field) => {
  const x = get(a);
  const y = get(b);
  if (!x || !y) return;
  const fastest = (r) => (field === 'ratio' ? r.ratio : r[field] * (r.medianSeconds / r.minSeconds));
  // A rate is bytes / seconds with the same bytes in every run of a trial:
  // run i's rate ratio is (bytes of x / bytes of y) x (y's seconds / x's).
  const bytes = (r) => r[field] * r.medianSeconds;
  const paired = field === 'ratio' ? null : median(x.samples.map((sx, i) => (bytes(x) / bytes(y)) * (y.samples[i] / sx)));
  ratios[key] = { value: x[field] / y[field], fastest: fastest(x) / fastest(y), paired, of: `${a} / ${b}`, field };
};
for (const tag of ['direct', 'buffered']) {
  addRatio(`raw write vs device (${tag})`, `ckpt write raw ${tag}`, `device write ${tag}`, 'deviceMiBps');
  addRatio(`raw read+verify vs device (${tag})`, `ckpt read+verify raw ${tag}`, `device read ${tag}`, 'deviceMiBps');
  addRatio(
    `raw read+verify vs device into file-sized memory (${tag})`,
    `ckpt read+verify raw ${tag}`,
    `device read ${tag}, into file-sized memory`,
    'deviceMiBps',
  );
}
for (const level of levels) {
  addRatio(`zstd -${level} write vs zstd -T0 -${level}`, `ckpt write zstd -${level}`, `zstd -T0 -${level} + fsync`, 'logicalMiBps');
  addRatio(`zstd -${level} write vs gzip -1`, `ckpt write zstd -${level}`, 'gzip -1 + fsync', 'logicalMiBps');
  addRatio(`zstd -${level} ratio vs gzip -1 ratio`, `ckpt write zstd -${level}`, 'gzip -1 + fsync', 'ratio');
}

const machine = {
  cpus: os.cpus().length,
  cpu: os.cpus()[0]?.model,
  memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  kernel: os.release(),
  loadavg: os.loadavg().map((x) => +x.toFixed(2)),
  filesystem: execFileSync('df', ['-T', dir], { encoding: 'utf8' }).trim().split('\n').pop(),
  zstd: execFileSync('zstd', ['--version'], { encoding: 'utf8' }).trim(),
  gzip: execFileSync('gzip', ['--version'], { encoding: 'utf8' }).split('\n')[0],
};
const result = { date: new Date().toISOString(), tool: path.relative(repo, tool), command: `node benchmarks/stream/run.mjs ${args.join(' ')}`.trim(), inputBytes, runs, machine, rows, ratios };
fs.writeFileSync(resultsFile, `${JSON.stringify(result, null, 2)}\n`);

const f1 = (x) => x.toFixed(1);
console.log(`| trial | median s (min-max) | MiB/s logical | MiB/s to/from device | ratio |`);
console.log(`|---|---:|---:|---:|---:|`);
for (const r of rows) {
  console.log(`| ${r.name}${r.noisy ? ' (noisy)' : ''} | ${r.medianSeconds.toFixed(3)} (${r.minSeconds.toFixed(3)}-${r.maxSeconds.toFixed(3)}) | ${f1(r.logicalMiBps)} | ${f1(r.deviceMiBps)} | ${r.ratio.toFixed(2)} |`);
}
console.log('');
for (const [k, v] of Object.entries(ratios))
  console.log(`- ${k}: ${v.value.toFixed(2)} (medians), ${v.fastest.toFixed(2)} (fastest runs)${v.paired === null ? '' : `, ${v.paired.toFixed(2)} (paired runs, median)`}`);
if (!opt('--dir')) fs.rmSync(dir, { recursive: true, force: true });
