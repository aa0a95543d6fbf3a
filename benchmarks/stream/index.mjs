#!/usr/bin/env node
/**
 * Indexer benchmark: time to index 10,000 images (ckpt layout: 1,000
 * committed generations x 10 processes; DMTCP: 10,000 raw images in one
 * directory, 1,000 sets of 10), warm and with the page cache dropped.
 *
 *   node benchmarks/stream/index.mjs [--count 10000] [--runs 5] [--dir DIR]
 *
 * Prints a table and writes benchmarks/stream/index-results.json.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const images = await import(path.join(repo, 'dist/images.js'));
const tool = path.join(repo, 'build/Release/ckpt_stream_bench');

const args = process.argv.slice(2);
const { get, number } = benchArgs(
  `Usage: node benchmarks/stream/index.mjs [--count N] [--runs N] [--dir DIR]
Times the indexer over N images (ckpt layout and raw DMTCP images), warm and with the page cache dropped.
  --count N   images per layout (default 10000)
  --runs N    timed runs per case (default 5)
  --dir DIR   where the images go (default: a new directory under $TMPDIR, removed at the end)
`,
  ['count', 'runs', 'dir'],
);
const opt = (name, dflt) => get(name.replace(/^--/, ''), dflt);
const count = number('count', 10000, 10);
const runs = number('runs', 5, 1);
const root = opt('--dir', fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-index-bench-')));
const perGen = 10;

// ------------------------------------------------------------ ckpt layout
const ckptRoot = path.join(root, 'ckpt');
process.stderr.write(`writing ${count} ckpt images ...\n`);
for (let g = 1; g <= count / perGen; g++) {
  const dir = images.generationDir(ckptRoot, 'job', g);
  fs.mkdirSync(dir, { recursive: true });
  await Promise.all(
    Array.from({ length: perGen }, (_, i) =>
      images.writeImage(path.join(dir, `p${i}.ckpt`), { computation: 'job', generation: g, numPeers: perGen, processId: `p${i}`, hostname: 'n1' }, [{ start: 65536, data: Buffer.alloc(4096, i + 1) }], { sync: false }),
    ),
  );
  await images.commitGeneration(dir, { sync: false });
}

// ------------------------------------------------------------ DMTCP layout
const dmtcpRoot = path.join(root, 'dmtcp');
fs.mkdirSync(dmtcpRoot, { recursive: true });
process.stderr.write(`writing ${count} DMTCP images ...\n`);
function dmtcpImage(comp, vpid, gen, time) {
  const h = Buffer.alloc(4096);
  h.write('DMTCP_CHECKPOINT_IMAGE_v4.0\n', 0, 'latin1');
  h.writeBigUInt64LE(0x98ffn, 32);
  h.writeBigUInt64LE(BigInt(time), 40);
  h.writeInt32LE(vpid, 48);
  h.writeBigUInt64LE(0x98ffn, 80);
  h.writeBigUInt64LE(BigInt(comp), 88);
  h.writeInt32LE(40000, 96);
  h.writeUInt32LE(gen, 100);
  h.writeInt32LE(vpid, 104);
  h.writeUInt32LE(perGen, 128);
  h.writeUInt32LE(1, 132);
  h.write('prog', 256, 'latin1');
  const end = Buffer.alloc(4096);
  end.writeBigUInt64LE(0xffffffffffffffffn, 16);
  return Buffer.concat([h, h, end]);
}
for (let c = 0; c < count / perGen; c++) {
  for (let i = 0; i < perGen; i++) {
    const vpid = 40000 + i * 1000;
    const time = 0x100000 + c * perGen + i; // the upid's time; also in the file name
    fs.writeFileSync(path.join(dmtcpRoot, `ckpt_prog_98ff-${vpid}-${time.toString(16)}.dmtcp`), dmtcpImage(0x1000 + c, vpid, 1, time));
  }
}

const dropCache = (dir) => {
  const files = fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
  for (let i = 0; i < files.length; i += 2000) execFileSync(tool, ['evict', ...files.slice(i, i + 2000)]);
};

const rows = [];
for (const [name, dir] of [
  ['ckpt layout', ckptRoot],
  ['dmtcp directory', dmtcpRoot],
]) {
  for (const cold of [false, true]) {
    const times = [];
    for (let r = 0; r <= runs; r++) {
      if (cold) dropCache(dir);
      const t0 = process.hrtime.bigint();
      const res = await images.indexImages([dir]);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const n = res.generations.reduce((a, g) => a + g.processes.length, 0);
      if (n !== count) throw new Error(`${name}: indexed ${n} images, expected ${count}`);
      if (!res.generations.every((g) => g.complete)) throw new Error(`${name}: incomplete generations`);
      if (r > 0) times.push(s);
    }
    times.sort((a, b) => a - b);
    rows.push({ name: `${name}${cold ? ' (page cache dropped per file)' : ' (warm)'}`, images: count, medianSeconds: times[Math.floor(times.length / 2)], minSeconds: times[0], maxSeconds: times[times.length - 1] });
  }
}
// End to end through the CLI (process start + JSON output included).
const t0 = process.hrtime.bigint();
execFileSync(process.execPath, [path.join(repo, 'bin/ckpt'), 'images', ckptRoot, '--json'], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
const cliSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

const result = { date: new Date().toISOString(), command: `node benchmarks/stream/index.mjs ${args.join(' ')}`.trim(), cpus: os.cpus().length, loadavg: os.loadavg(), rows, cliSeconds };
fs.writeFileSync(path.join(here, 'index-results.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log('| index | images | median s (min-max) |');
console.log('|---|---:|---:|');
for (const r of rows) console.log(`| ${r.name} | ${r.images} | ${r.medianSeconds.toFixed(3)} (${r.minSeconds.toFixed(3)}-${r.maxSeconds.toFixed(3)}) |`);
console.log(`| \`ckpt images --json\` end to end (ckpt layout, warm) | ${count} | ${cliSeconds.toFixed(3)} |`);
if (!opt('--dir')) fs.rmSync(root, { recursive: true, force: true });
