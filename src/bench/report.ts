/**
 * `--report DIR`: a self-contained HTML report (DIR/index.html) of a
 * BenchDocument: the headline ratios with their targets, plots (bandwidth vs
 * size, round-trip latency vs workers, ckpt vs DMTCP), a table per section,
 * the machine description and the method. Inline CSS and SVG only: no
 * scripts, fonts, images or network, so it opens anywhere and archives well.
 * The whole document is embedded as JSON (<script type="application/json"
 * id="ckpt-bench-data">) for tools that want the numbers back.
 */
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { formatBytes } from '../cli/output.js';
import type { Stat } from './method.js';
import type { BenchDocument, CheckpointRow, CheckpointSide, CoordinatorRow, Headline } from './schema.js';
import { barChart, escapeXml as esc, lineChart, type BarGroup, type Series } from './svg.js';
import { formatMiBps, formatSeconds } from './units.js';

const MiB = 1024 * 1024;

const CSS = `
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#fff}
body{max-width:1000px;margin:2rem auto;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem} th,td{padding:.25rem .7rem;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#007a3d;font-weight:600} .miss{color:#b00020;font-weight:600} .na{color:#777}
.noisy{color:#b36b00;font-size:.85em} .unavailable{color:#777;font-style:italic}
figure.plot{margin:1rem 0;border:1px solid #e4e4e4;border-radius:6px;padding:.5rem}
figure.plot figcaption{font-weight:600;margin:.2rem .4rem .4rem}
figure.plot p.note{margin:.2rem .4rem;color:#555;font-size:.9rem}
svg.chart{width:100%;height:auto;font-size:11px} svg .grid{stroke:#eee} svg .axis{stroke:#444} svg .label{font-size:12px;fill:#333}
svg .empty{fill:#888;font-size:14px} svg .ref text{fill:#555}
code{background:#f3f3f3;padding:0 .25rem;border-radius:3px}
`;

function statCells(s: Stat | null | undefined, fmt: (v: number) => string, why?: string | null): string {
  if (!s) return `<td class="unavailable" colspan="3">${esc(why ?? 'not measured')}</td>`;
  return `<td class="num">${esc(fmt(s.median))}</td><td class="num">${esc(fmt(s.min))} – ${esc(fmt(s.max))}</td><td class="num">${s.runs}${s.noisy ? ` <span class="noisy" title="spread ${(s.spread * 100).toFixed(0)}% of the median">noisy</span>` : ''}</td>`;
}

function headlineList(hs: Headline[]): string {
  const rows = hs.map((h) => {
    const cls = h.met === true ? 'ok' : h.met === false ? 'miss' : 'na';
    const mark = h.met === true ? 'met' : h.met === false ? 'missed' : '';
    return `<tr><td class="${cls}">${mark}</td><td>${esc(h.text)}</td><td>${esc(h.target ?? '')}</td></tr>`;
  });
  return `<table class="headlines"><tr><th></th><th>result</th><th>target</th></tr>${rows.join('')}</table>`;
}

function figure(id: string, caption: string, points: number, svg: string, note?: string): string {
  return `<figure class="plot" id="plot-${id}" data-plot="${id}" data-points="${points}"><figcaption>${esc(caption)}</figcaption>${svg}${note ? `<p class="note">${esc(note)}</p>` : ''}</figure>`;
}

const sizeFmt = (v: number) => formatBytes(v).replace('.0 ', ' ');
const mibFmt = (v: number) => formatMiBps(v);

function bandwidthPlots(doc: BenchDocument): string[] {
  const out: string[] = [];
  const s = doc.storage;
  if (s && s.available && s.sweep.length) {
    const mode = s.sweep[0]?.direct ? 'O_DIRECT' : 'buffered';
    const series: Series[] = [
      { name: `${mode} write`, points: s.sweep.map((p) => ({ x: p.blockSize, y: p.writeMiBps })) },
      { name: `${mode} read`, points: s.sweep.map((p) => ({ x: p.blockSize, y: p.readMiBps })) },
    ];
    out.push(
      figure(
        'storage-bandwidth',
        'Storage bandwidth vs block size',
        s.sweep.length * 2,
        lineChart({ xLabel: 'bytes per write/read call', yLabel: 'MiB/s', series, xLog: true, xFormat: sizeFmt, yFormat: (v) => v.toFixed(0) }),
        `One run per point, ${sizeFmt(s.sweepFileBytes)} file each.`,
      ),
    );
  } else {
    out.push(figure('storage-bandwidth', 'Storage bandwidth vs block size', 0, lineChart({ xLabel: '', yLabel: '', series: [] }), s && !s.available ? `not measured: ${s.reason}` : 'storage sweep not part of this run'));
  }
  const k = doc.checkpoint;
  if (k && k.available) {
    const krows = k.rows;
    const side = (name: string, get: (r: CheckpointRow) => CheckpointSide | null): Series => ({
      name,
      points: krows.flatMap((r) => {
        const sd = get(r);
        return sd ? [{ x: r.rssBytes, y: sd.writeBandwidth, label: `${name}, ${sizeFmt(r.rssBytes)}: ${mibFmt(sd.writeBandwidth)} (${formatSeconds(sd.checkpoint.median)})` }] : [];
      }),
    });
    const series = [
      side('ckpt built-in', (r) => r.builtin),
      side('ckpt built-in, zstd', (r) => r.builtinZstd),
      side('DMTCP gzip', (r) => r.dmtcpGzip),
      side('DMTCP --no-gzip', (r) => r.dmtcpNoGzip),
    ].filter((x) => x.points.length);
    const n = series.reduce((a, x) => a + x.points.length, 0);
    out.push(
      figure(
        'checkpoint-bandwidth',
        'Checkpoint bandwidth vs program size',
        n,
        lineChart({
          xLabel: 'resident size of the program',
          yLabel: 'image MiB/s',
          series,
          xLog: true,
          xFormat: sizeFmt,
          yFormat: (v) => v.toFixed(0),
          refLines: k.storage ? [{ y: k.storage.write.median, label: `storage write ${mibFmt(k.storage.write.median)}` }] : [],
        }),
        n === 0 ? `no checkpoint figures: ${k.rows.map((r) => r.builtinReason).filter(Boolean)[0] ?? 'engine unavailable'}` : undefined,
      ),
    );
  }
  return out;
}

function latencyPlot(doc: BenchDocument): string {
  const c = doc.coordinator;
  if (!c || !c.available)
    return figure('coordinator-latency', 'Checkpoint round trip vs workers', 0, lineChart({ xLabel: '', yLabel: '', series: [] }), c ? `not measured: ${c.reason}` : 'coordinator not part of this run');
  const rows = c.rows;
  const mk = (name: string, get: (r: CoordinatorRow) => { workers: number; roundTrip: Stat } | null): Series => ({
    name,
    points: rows.flatMap((r) => {
      const sd = get(r);
      return sd ? [{ x: sd.workers, y: sd.roundTrip.median, yMin: sd.roundTrip.min, yMax: sd.roundTrip.max, label: `${name}, ${sd.workers} workers: ${formatSeconds(sd.roundTrip.median)}` }] : [];
    }),
  });
  const series = [mk('ckpt coordinator', (r) => r.ckpt), mk('original dmtcp_coordinator', (r) => r.dmtcp)].filter((s) => s.points.length);
  const n = series.reduce((a, s) => a + s.points.length, 0);
  return figure(
    'coordinator-latency',
    'Checkpoint round trip vs workers',
    n,
    lineChart({ xLabel: 'synthetic workers', yLabel: 'seconds per full checkpoint round', series, xLog: true, yLog: true, xFormat: (v) => String(v), yFormat: (v) => formatSeconds(v) }),
    c.dmtcp.available ? `The original holds at most ${c.dmtcp.maxWorkers} workers; its points are capped there.` : `Original not compared: ${c.dmtcp.reason}`,
  );
}

function versusPlot(doc: BenchDocument): string {
  const groups: BarGroup[] = [];
  const c = doc.coordinator;
  if (c && c.available) {
    for (const r of c.rows)
      if (r.dmtcp && r.roundTripSpeedup !== null)
        groups.push({ label: `${r.dmtcp.workers} worker${r.dmtcp.workers === 1 ? '' : 's'}`, bars: [{ series: 'ckpt speed-up', value: r.roundTripSpeedup, label: `checkpoint round, ${r.dmtcp.workers} workers: ckpt ${formatSeconds(r.ckpt.roundTrip.median)}, original ${formatSeconds(r.dmtcp.roundTrip.median)}` }] });
    if (c.blockingCheckpoint?.speedup != null)
      groups.push({ label: '-bc, 1 worker', bars: [{ series: 'ckpt speed-up', value: c.blockingCheckpoint.speedup }] });
  }
  const k = doc.checkpoint;
  if (k && k.available)
    for (const r of k.rows) {
      if (!r.builtin) continue;
      const bars: BarGroup['bars'] = [];
      // Like for like: compressed vs compressed, uncompressed vs uncompressed.
      if (r.dmtcpGzip && r.builtinZstd) bars.push({ series: 'zstd vs DMTCP gzip', value: r.dmtcpGzip.checkpoint.median / r.builtinZstd.checkpoint.median });
      if (r.dmtcpNoGzip) bars.push({ series: 'raw vs DMTCP --no-gzip', value: r.dmtcpNoGzip.checkpoint.median / r.builtin.checkpoint.median });
      if (bars.length) groups.push({ label: `ckpt ${sizeFmt(r.rssBytes)}`, bars });
    }
  const st = doc.stream;
  if (st && st.available && st.zstdVsGzip !== null) groups.push({ label: 'zstd vs gzip -1', bars: [{ series: 'ckpt speed-up', value: st.zstdVsGzip }] });
  const n = groups.reduce((a, g) => a + g.bars.length, 0);
  const why =
    n > 0
      ? 'Bars: how many times faster ckpt is than DMTCP on the same work in the same run; log scale, bars start at 1× (equal), below it ckpt is slower.'
      : `No side-by-side figures in this run: ${
          c && c.available && !c.dmtcp.available ? `original dmtcp_coordinator ${c.dmtcp.reason}` : 'DMTCP was not measured (set DMTCP_PREFIX)'
        }.`;
  return figure('ckpt-vs-dmtcp', 'ckpt vs DMTCP (speed-up, ×)', n, barChart({ yLabel: 'times faster than DMTCP (log)', groups, logFromOne: true, yFormat: (v) => `${v < 1 ? v.toFixed(1) : v.toFixed(0)}×` }), why);
}

function storageSection(doc: BenchDocument): string {
  const s = doc.storage;
  if (!s) return '';
  if (!s.available) return `<h2>Storage</h2><p class="unavailable">not measured: ${esc(s.reason)}</p>`;
  const f = s.filesystem;
  const rows = [
    ['O_DIRECT write', statCells(s.direct.write, mibFmt, s.direct.reason)],
    ['O_DIRECT read', statCells(s.direct.read, mibFmt, s.direct.reason)],
    ['buffered write (until fsync returned)', statCells(s.buffered.write, mibFmt)],
    ['buffered read (cold cache)', statCells(s.buffered.read, mibFmt)],
    ['4 KiB write + fsync', statCells(s.fsync.latency, (v) => formatSeconds(v / 1000))],
  ];
  return `<h2>Storage</h2><p>${esc(f.dir)}: ${esc(f.type)} on ${esc(f.source)}, ${sizeFmt(s.fileBytes)} files, ${sizeFmt(s.blockSize)} per call, queue depth ${s.queueDepth}. Reference for the other sections (the faster path per direction): write <b>${s.reference.mode === 'direct' ? 'O_DIRECT' : 'buffered'}</b>, read <b>${s.reference.readMode === 'direct' ? 'O_DIRECT' : 'buffered'}</b>.</p>
<table><tr><th></th><th>median</th><th>min – max</th><th>runs</th></tr>${rows.map(([a, b]) => `<tr><td>${esc(a as string)}</td>${b}</tr>`).join('')}</table>`;
}

function streamSection(doc: BenchDocument): string {
  const s = doc.stream;
  if (!s) return '';
  if (!s.available) return `<h2>Image streaming</h2><p class="unavailable">not measured: ${esc(s.reason)}</p>`;
  const rows: string[] = [];
  for (const r of s.rows) {
    const name = r.codec === 'raw' ? `raw${r.direct ? ', O_DIRECT' : ''}` : `zstd -${r.level}`;
    rows.push(`<tr><td>${esc(name)} write</td>${statCells(r.write, mibFmt)}<td class="num">${r.writeShare === null ? '' : `${(r.writeShare * 100).toFixed(0)}%`}</td><td class="num">${r.compressionRatio.toFixed(2)}</td></tr>`);
    rows.push(`<tr><td>${esc(name)} read + verify</td>${statCells(r.read, mibFmt)}<td class="num">${r.readShare === null ? '' : `${(r.readShare * 100).toFixed(0)}%`}</td><td></td></tr>`);
  }
  for (const ref of s.references)
    rows.push(`<tr><td>${esc(ref.tool)}</td>${statCells(ref.write, mibFmt, ref.reason)}<td></td><td class="num">${ref.compressionRatio === null ? '' : ref.compressionRatio.toFixed(2)}</td></tr>`);
  return `<h2>Image streaming</h2><p>${sizeFmt(s.imageBytes)} image (${esc(s.data)}) in ${esc(s.dir)}; storage reference write ${mibFmt(s.storage.write.median)} (${s.storage.mode}), read ${mibFmt(s.storage.read.median)} (${s.storage.readMode}), measured in the same run.</p>
<table><tr><th></th><th>median</th><th>min – max</th><th>runs</th><th>of storage</th><th>compression ratio</th></tr>${rows.join('')}</table>`;
}

function coordinatorSection(doc: BenchDocument): string {
  const c = doc.coordinator;
  if (!c) return '';
  if (!c.available) return `<h2>Coordinator</h2><p class="unavailable">not measured: ${esc(c.reason)}</p>`;
  const rows = c.rows.map(
    (r) =>
      `<tr><td class="num">${r.workers}</td>${statCells(r.ckpt.roundTrip, formatSeconds)}<td class="num">${r.ckpt.connectRate.median.toFixed(0)}/s</td><td class="num">${r.ckpt.rssBytes === null ? '?' : sizeFmt(r.ckpt.rssBytes)}</td>${
        r.dmtcp ? `<td class="num">${formatSeconds(r.dmtcp.roundTrip.median)} (${r.dmtcp.workers})</td><td class="num">${r.dmtcp.rssBytes === null ? '?' : sizeFmt(r.dmtcp.rssBytes)}</td>` : `<td class="unavailable" colspan="2">${esc(r.dmtcpReason ?? '')}</td>`
      }<td class="num">${r.roundTripSpeedup === null ? '' : `${r.roundTripSpeedup.toFixed(1)}×`}</td></tr>`,
  );
  return `<h2>Coordinator</h2><p>Synthetic workers in one load-generator process; a round is DO_CHECKPOINT → every barrier → filenames → all resumed.</p>
<table><tr><th>workers</th><th>round trip</th><th>min – max</th><th>runs</th><th>connects</th><th>RSS</th><th>original (workers)</th><th>original RSS</th><th>speed-up</th></tr>${rows.join('')}</table>`;
}

function checkpointSection(doc: BenchDocument): string {
  const k = doc.checkpoint;
  if (!k) return '';
  if (!k.available) return `<h2>Checkpoint and restart</h2><p class="unavailable">not measured: ${esc(k.reason)}</p>`;
  const rows: string[] = [];
  for (const r of k.rows) {
    const line = (name: string, sd: CheckpointSide | null, why: string | null) =>
      sd
        ? `<tr><td>${sizeFmt(r.rssBytes)}</td><td>${esc(name)}</td>${statCells(sd.checkpoint, formatSeconds)}<td class="num">${formatSeconds(sd.downtime.median)}</td><td class="num">${sd.restart ? formatSeconds(sd.restart.median) : '—'}</td><td class="num">${sizeFmt(sd.imageBytes)}</td><td class="num">${sd.writeShare === null ? '' : `${(sd.writeShare * 100).toFixed(0)}%`}</td><td class="num">${sd.readShare === null ? '' : `${(sd.readShare * 100).toFixed(0)}%`}</td></tr>`
        : `<tr><td>${sizeFmt(r.rssBytes)}</td><td>${esc(name)}</td><td class="unavailable" colspan="8">${esc(why ?? 'not measured')}</td></tr>`;
    rows.push(line('ckpt built-in', r.builtin, r.builtinReason));
    rows.push(line('ckpt built-in, zstd', r.builtinZstd, r.builtinReason));
    rows.push(line('DMTCP gzip', r.dmtcpGzip, r.dmtcpReason));
    rows.push(line('DMTCP --no-gzip', r.dmtcpNoGzip, r.dmtcpReason));
  }
  const ov = k.runtimeOverhead ? `Runtime overhead on a CPU-bound loop: ${(k.runtimeOverhead.median * 100).toFixed(2)}%.` : `Runtime overhead: not measured (${esc(k.runtimeOverheadReason ?? 'unknown')}).`;
  return `<h2>Checkpoint and restart</h2><p>Synthetic program, images in ${esc(k.dir)}. ${ov}</p>
<table><tr><th>RSS</th><th>engine</th><th>checkpoint</th><th>min – max</th><th>runs</th><th>downtime</th><th>restart</th><th>image</th><th>of storage write</th><th>of storage read</th></tr>${rows.join('')}</table>`;
}

function machineSection(doc: BenchDocument): string {
  const m = doc.machine;
  const rows: Array<[string, string]> = [
    ['host', m.hostname],
    ['CPU', `${m.cpu.model}, ${m.cpu.logicalCpus} logical CPUs`],
    ['CPU flags (relevant)', `${m.cpu.flags.join(' ') || 'none of the listed'} (of ${m.cpu.flagCount})`],
    ['memory', sizeFmt(m.memoryBytes)],
    ['kernel', `${m.kernel.release} (${m.kernel.version})`],
    ['OS', m.os],
    ['Node.js / ckpt', `${m.node} / ${m.ckpt}`],
    ['load average (1/5/15 min)', `${(doc.loadAverage?.start ?? []).map((x) => x.toFixed(2)).join(' ')} at start, ${(doc.loadAverage?.end ?? []).map((x) => x.toFixed(2)).join(' ')} at end`],
  ];
  const s = doc.storage;
  if (s && s.available) {
    const f = s.filesystem;
    rows.push(['filesystem', `${f.type} (${f.magic ?? '?'}) mounted at ${f.mountPoint} from ${f.source}, options ${f.mountOptions}; ${f.sizeBytes === null ? '?' : sizeFmt(f.sizeBytes)} total, ${f.freeBytes === null ? '?' : sizeFmt(f.freeBytes)} free`]);
    const d = f.device;
    rows.push([
      'block device',
      d
        ? `${d.name}${d.partition ? ` (partition ${d.partition})` : ''}: ${[d.vendor, d.model].filter(Boolean).join(' ') || 'model unknown'}, ${d.rotational === null ? '' : d.rotational ? 'rotational, ' : 'non-rotational, '}${d.sizeBytes === null ? '' : `${sizeFmt(d.sizeBytes)}, `}scheduler ${d.scheduler ?? '?'}, logical block ${d.logicalBlockSize ?? '?'} B`
        : 'none (virtual or network filesystem)',
    ]);
  }
  return `<h2>Machine</h2><table>${rows.map(([a, b]) => `<tr><th>${esc(a)}</th><td>${esc(b)}</td></tr>`).join('')}</table>`;
}

/** Renders the report as one HTML string. */
export function renderReport(doc: BenchDocument): string {
  const json = JSON.stringify(doc).replace(/</g, '\\u003c');
  const when = doc.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ckpt bench: ${esc(doc.machine.hostname)} ${esc(when)}</title><style>${CSS}</style></head>
<body>
<h1>ckpt bench</h1>
<p class="sub">${esc(doc.machine.hostname)} · ${esc(doc.machine.cpu.model)} · Linux ${esc(doc.machine.kernel.release)} · ${esc(when)} · ${doc.durationSeconds.toFixed(1)} s${doc.quick ? ' · quick run' : ''}</p>
<p>Command: <code>${esc(doc.command)}</code></p>
<h2>Results</h2>
${headlineList(doc.headlines)}
<h2>Plots</h2>
${bandwidthPlots(doc).join('\n')}
${latencyPlot(doc)}
${versusPlot(doc)}
${storageSection(doc)}
${streamSection(doc)}
${coordinatorSection(doc)}
${checkpointSection(doc)}
${machineSection(doc)}
<h2>Method</h2>
<p>${doc.method.warmup} warm-up run(s), discarded; then ${doc.method.runs} measured runs per figure (sections may use fewer for slow work, see each figure's run count). Each figure is the <b>median</b> with the min – max of its runs; a figure is flagged <span class="noisy">noisy</span> when (max − min) exceeds ${(doc.method.noisySpread * 100).toFixed(0)}% of the median. Shares and speed-ups are ratios of medians measured in this same run. Schema <code>${esc(doc.schema)}</code>; the full data is embedded in this file.</p>
<script type="application/json" id="ckpt-bench-data">${json}</script>
</body></html>
`;
}

/** Writes DIR/index.html atomically (temp name, fsync, rename). Returns its path. */
export function writeReport(doc: BenchDocument, dir: string): string {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new CkptError('ERR_CKPT_IO', `cannot create report directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const file = path.join(dir, 'index.html');
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, renderReport(doc));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return file;
}
