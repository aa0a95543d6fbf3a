/**
 * The terminal rendering of a BenchDocument: one table per section (median,
 * min–max, runs, a "noisy" flag) and the headline ratios with their targets.
 */
import { formatBytes, table } from '../cli/output.js';
import type { Stat } from './method.js';
import type { BenchDocument } from './schema.js';
import { formatMiBps, formatSeconds } from './units.js';

type Fmt = (v: number) => string;

function statRow(label: string, s: Stat | null, fmt: Fmt, why?: string | null): string[] {
  if (!s) return [label, why ?? 'not measured', '', '', ''];
  return [label, fmt(s.median), `${fmt(s.min)} – ${fmt(s.max)}`, String(s.runs), s.noisy ? `noisy (spread ${(s.spread * 100).toFixed(0)}%)` : ''];
}

const HEAD = ['', 'median', 'min – max', 'runs', ''];
const ms: Fmt = (v) => formatSeconds(v / 1000);
const secs: Fmt = (v) => formatSeconds(v);
const rate: Fmt = (v) => `${v.toFixed(0)}/s`;

export function formatDocument(doc: BenchDocument): string {
  const m = doc.machine;
  const out: string[] = [];
  out.push(`ckpt bench ${doc.ckptVersion}: ${m.hostname}, ${m.cpu.model} (${m.cpu.logicalCpus} CPUs), ${formatBytes(m.memoryBytes)} RAM, Linux ${m.kernel.release}`);
  out.push(`method: ${doc.method.warmup} warm-up + ${doc.method.runs} runs, median with min – max, "noisy" when the spread exceeds ${(doc.method.noisySpread * 100).toFixed(0)}%${doc.quick ? ' (quick)' : ''}`);
  const busy = Math.max(doc.loadAverage?.start[0] ?? 0, doc.loadAverage?.end[0] ?? 0);
  if (busy > m.cpu.logicalCpus * 0.5)
    out.push(`note: the machine was busy (load average ${busy.toFixed(1)} on ${m.cpu.logicalCpus} CPUs); figures are likely noisy and low`);
  out.push('');

  const s = doc.storage;
  if (s && s.available) {
    const fs = s.filesystem;
    const dev = fs.device ? `${fs.device.name}${fs.device.model ? ` ${fs.device.model}` : ''}${fs.device.rotational === true ? ', rotational' : ''}` : fs.source;
    out.push(`Storage: ${fs.dir} (${fs.type} on ${dev}), ${formatBytes(s.fileBytes)} files, ${formatBytes(s.blockSize)} blocks, queue depth ${s.queueDepth}`);
    out.push(
      table(HEAD, [
        statRow('O_DIRECT write', s.direct.write, formatMiBps, s.direct.reason),
        statRow('O_DIRECT read', s.direct.read, formatMiBps, s.direct.reason),
        statRow('buffered write + fsync', s.buffered.write, formatMiBps),
        statRow('buffered read (cold)', s.buffered.read, formatMiBps),
        statRow('4 KiB write + fsync', s.fsync.latency, ms),
      ]).trimEnd().replace(/^/gm, '  '),
    );
    if (s.sweep.length) {
      out.push(`  block-size sweep (${s.sweep[0]?.direct ? 'O_DIRECT' : 'buffered'}, one run each):`);
      out.push(table(['block', 'write', 'read'], s.sweep.map((p) => [formatBytes(p.blockSize), formatMiBps(p.writeMiBps), formatMiBps(p.readMiBps)])).trimEnd().replace(/^/gm, '    '));
    }
  } else if (s) out.push(`Storage: not measured: ${s.reason}\n`);

  const st = doc.stream;
  if (st && st.available) {
    out.push(`Stream: ${formatBytes(st.imageBytes)} image in ${st.dir} (${st.data}); storage reference: write ${formatMiBps(st.storage.write.median)} (${st.storage.mode}), read ${formatMiBps(st.storage.read.median)} (${st.storage.readMode})`);
    const rows: string[][] = [];
    for (const r of st.rows) {
      const name = r.codec === 'raw' ? `raw${r.direct ? ', O_DIRECT' : ''}` : `zstd -${r.level}`;
      rows.push([...statRow(`${name} write`, r.write, formatMiBps), r.writeShare === null ? '' : `${(r.writeShare * 100).toFixed(0)}% of storage, ratio ${r.compressionRatio.toFixed(2)}`]);
      rows.push([...statRow(`${name} read + verify`, r.read, formatMiBps), r.readShare === null ? '' : `${(r.readShare * 100).toFixed(0)}% of storage`]);
    }
    for (const ref of st.references)
      rows.push([...statRow(ref.tool, ref.write, formatMiBps, ref.reason), ref.compressionRatio === null ? '' : `ratio ${ref.compressionRatio.toFixed(2)}`]);
    out.push(table([...HEAD, ''], rows).trimEnd().replace(/^/gm, '  '));
  } else if (st) out.push(`Stream: not measured: ${st.reason}\n`);

  const c = doc.coordinator;
  if (c && c.available) {
    out.push(`Coordinator: synthetic workers; original dmtcp_coordinator ${c.dmtcp.available ? `from ${c.dmtcp.prefix} (at most ${c.dmtcp.maxWorkers} workers)` : `not compared (${c.dmtcp.reason})`}`);
    const { notes, note } = footnotes();
    const rows = c.rows.map((r) => [
      String(r.workers),
      `${formatSeconds(r.ckpt.roundTrip.median)}${r.ckpt.roundTrip.noisy ? ' (noisy)' : ''}`,
      `${rate(r.ckpt.connectRate.median)}`,
      r.ckpt.rssBytes === null ? '?' : formatBytes(r.ckpt.rssBytes),
      r.dmtcp ? `${formatSeconds(r.dmtcp.roundTrip.median)}${r.dmtcp.workers !== r.workers ? ` at ${r.dmtcp.workers} workers` : ''}${note(r.dmtcpReason)}` : `—${note(r.dmtcpReason)}`,
      r.dmtcp?.rssBytes ? formatBytes(r.dmtcp.rssBytes) : '',
      r.roundTripSpeedup === null ? '' : `${r.roundTripSpeedup.toFixed(1)}x`,
      r.tcpFloor ? formatSeconds(r.tcpFloor) : '',
    ]);
    const b = c.blockingCheckpoint;
    if (b)
      rows.push([
        '1, -bc',
        b.ckpt ? formatSeconds(b.ckpt.median) : '—',
        '',
        '',
        b.dmtcp ? formatSeconds(b.dmtcp.median) : `—${note(b.reason)}`,
        '',
        b.speedup === null ? '' : `${b.speedup.toFixed(1)}x`,
        '',
      ]);
    out.push(table(['workers', 'round trip', 'connects', 'RSS', 'original', 'orig. RSS', 'speed-up', 'TCP floor'], rows).trimEnd().replace(/^/gm, '  '));
    notes.forEach((n, i) => out.push(`  [${i + 1}] ${n}`));
    if (c.rows.some((r) => r.tcpFloor)) out.push('  TCP floor: what the round\'s loopback messages alone cost this machine; no coordinator can be faster here.');
    out.push('');
  } else if (c) out.push(`Coordinator: not measured: ${c.reason}\n`);

  const k = doc.checkpoint;
  if (k && k.available) {
    out.push(`Checkpoint: synthetic program, images in ${k.dir}; storage reference write ${k.storage ? formatMiBps(k.storage.write.median) : '?'}, read ${k.storage ? formatMiBps(k.storage.read.median) : '?'}`);
    const { notes, note } = footnotes();
    const rows: string[][] = [];
    const pct = (v: number | null) => (v === null ? '?' : `${(v * 100).toFixed(0)}%`);
    for (const r of k.rows) {
      const size = formatBytes(r.rssBytes);
      const side = (name: string, sd: typeof r.builtin, why: string | null) => {
        if (!sd) return rows.push([size, name, `—${note(why)}`, '', '', '', '']);
        return rows.push([
          size,
          name,
          `${secs(sd.checkpoint.median)}${sd.checkpoint.noisy ? ' (noisy)' : ''}`,
          secs(sd.downtime.median),
          sd.restart ? secs(sd.restart.median) : '—',
          formatBytes(sd.imageBytes),
          `${pct(sd.writeShare)} / ${pct(sd.readShare)}`,
        ]);
      };
      side('built-in', r.builtin, r.builtinReason);
      side('built-in zstd', r.builtinZstd, r.builtinReason);
      side('DMTCP gzip', r.dmtcpGzip, r.dmtcpReason);
      side('DMTCP --no-gzip', r.dmtcpNoGzip, r.dmtcpReason);
    }
    out.push(table(['RSS', 'engine', 'checkpoint', 'downtime', 'restart', 'image', 'of storage w / r'], rows).trimEnd().replace(/^/gm, '  '));
    notes.forEach((n, i) => out.push(`  [${i + 1}] ${n}`));
    out.push(k.runtimeOverhead ? `  runtime overhead on a CPU-bound loop: ${(k.runtimeOverhead.median * 100).toFixed(2)}% (min ${(k.runtimeOverhead.min * 100).toFixed(2)}%, max ${(k.runtimeOverhead.max * 100).toFixed(2)}%)` : `  runtime overhead: not measured (${k.runtimeOverheadReason ?? '?'})`);
    out.push('');
  } else if (k) out.push(`Checkpoint: not measured: ${k.reason}\n`);

  out.push('Results:');
  for (const h of doc.headlines) {
    const mark = h.met === true ? 'ok  ' : h.met === false ? 'MISS' : '    ';
    out.push(`  ${mark} ${h.text}${h.target ? `  (target ${h.target})` : ''}`);
  }
  out.push(`\n(${doc.durationSeconds.toFixed(1)} s)`);
  return out.join('\n') + '\n';
}

/** Numbered footnotes for a table: note(why) gives " [n]" (the same n for the same text). */
function footnotes(): { notes: string[]; note: (why: string | null) => string } {
  const notes: string[] = [];
  const note = (why: string | null): string => {
    if (!why) return '';
    let i = notes.indexOf(why);
    if (i < 0) i = notes.push(why) - 1;
    return ` [${i + 1}]`;
  };
  return { notes, note };
}
