/**
 * The ratios that matter, as sentences with the project's targets: what the
 * terminal table and the HTML report lead with, and what benchmarks/RESULTS.md
 * compares against (targets from the coordinator, images and engine issues).
 */
import { formatMiBps, formatPercent, formatSeconds } from './units.js';
import type { BenchDocument, CheckpointResult, CoordinatorResult, Headline, StreamResult, StreamRow } from './schema.js';
import type { StorageResult } from './storage.js';

const MiB = 1024 * 1024;

const plural = (n: number) => `${n} worker${n === 1 ? '' : 's'}`;

/** "3.2x faster" or, below 1, "1.4x slower" (never "0.7x faster"). */
const faster = (ratio: number) => (ratio >= 1 ? `${ratio.toFixed(ratio < 10 ? 2 : 1)}x faster` : `${(1 / ratio).toFixed(2)}x slower`);

function h(id: string, text: string, value: number | null, target: string | null, met: boolean | null): Headline {
  return { id, text, value, target, met: value === null ? null : met };
}

function storageHeadlines(s: StorageResult): Headline[] {
  const out: Headline[] = [];
  const dev = s.filesystem.device ? ` on ${s.filesystem.device.name}${s.filesystem.device.model ? ` (${s.filesystem.device.model})` : ''}` : '';
  const where = `${s.filesystem.type}${dev}`;
  if (s.direct.write && s.direct.read)
    out.push(
      h('storage.direct.write', `storage (${where}) O_DIRECT sequential write ${formatMiBps(s.direct.write.median)}`, s.direct.write.median, null, null),
      h('storage.direct.read', `storage O_DIRECT sequential read ${formatMiBps(s.direct.read.median)}`, s.direct.read.median, null, null),
    );
  else out.push(h('storage.direct', `storage (${where}): ${s.direct.reason ?? 'O_DIRECT unsupported'}; buffered figures are the reference`, null, null, null));
  out.push(
    h('storage.buffered.write', `storage buffered write (until fsync returned) ${formatMiBps(s.buffered.write.median)}`, s.buffered.write.median, null, null),
    h('storage.buffered.read', `storage buffered read (cold cache) ${formatMiBps(s.buffered.read.median)}`, s.buffered.read.median, null, null),
    h('storage.fsync', `a 4 KiB write + fsync costs ${formatSeconds(s.fsync.latency.median / 1000)}`, s.fsync.latency.median, null, null),
  );
  return out;
}

function streamHeadlines(s: StreamResult): Headline[] {
  const out: Headline[] = [];
  // The best uncompressed path (page cache or O_DIRECT) is what an admin would configure.
  const raws = s.rows.filter((r) => r.codec === 'raw');
  const best = (key: 'writeShare' | 'readShare') => [...raws].sort((a, b) => (b[key] ?? 0) - (a[key] ?? 0))[0];
  const w = best('writeShare');
  const r = best('readShare');
  const via = (x: StreamRow) => (x.direct ? ' (O_DIRECT)' : ' (page cache)');
  if (w)
    out.push(h('stream.raw.writeShare', `uncompressed image write${via(w)} at ${w.writeShare === null ? '?' : formatPercent(w.writeShare)} of storage write bandwidth (${formatMiBps(w.write.median)})`, w.writeShare, '>= 90%', w.writeShare !== null && w.writeShare >= 0.9));
  if (r)
    out.push(h('stream.raw.readShare', `image read + verify${via(r)} at ${r.readShare === null ? '?' : formatPercent(r.readShare)} of storage read bandwidth (${formatMiBps(r.read.median)})`, r.readShare, '>= 90%', r.readShare !== null && r.readShare >= 0.9));
  out.push(
    h('stream.zstdVsGzip', `zstd image write ${s.zstdVsGzip === null ? '(gzip unavailable)' : `${s.zstdVsGzip.toFixed(2)}x`} the speed of gzip -1 (DMTCP's compression)`, s.zstdVsGzip, '>= 10x', s.zstdVsGzip !== null && s.zstdVsGzip >= 10),
    h('stream.zstdVsZstdCli', `zstd image write ${s.zstdVsZstdCli === null ? '(zstd CLI unavailable)' : `${s.zstdVsZstdCli.toFixed(2)}x`} the speed of zstd -T0 at the same level`, s.zstdVsZstdCli, '>= 0.9x', s.zstdVsZstdCli !== null && s.zstdVsZstdCli >= 0.9),
  );
  return out;
}

function coordinatorHeadlines(c: CoordinatorResult): Headline[] {
  const out: Headline[] = [];
  const biggest = [...c.rows].sort((a, b) => b.workers - a.workers)[0];
  if (biggest) {
    const rt = biggest.ckpt.roundTrip.median;
    out.push(h('coordinator.roundTrip.max', `${plural(biggest.workers)}: full checkpoint round in ${formatSeconds(rt)}`, rt, biggest.workers >= 10000 ? '< 1 s' : null, biggest.workers >= 10000 ? rt < 1 : null));
    if (biggest.ckpt.rssBytes !== null) {
      const mib = biggest.ckpt.rssBytes / MiB;
      out.push(h('coordinator.rss.max', `${plural(biggest.workers)}: coordinator RSS ${mib.toFixed(0)} MiB`, mib, biggest.workers >= 10000 ? '< 100 MB' : null, biggest.workers >= 10000 ? biggest.ckpt.rssBytes < 100e6 : null));
    }
  }
  for (const r of c.rows) {
    const target = r.workers >= 900 && r.workers <= 961;
    if (target && r.roundTripSpeedup === null && c.dmtcp.available)
      out.push(h(`coordinator.speedup.${r.workers}`, `${plural(r.workers)} vs the original dmtcp_coordinator: not measured (${r.dmtcpReason ?? 'unknown'})`, null, '>= 10x', null));
    if (r.roundTripSpeedup !== null && r.dmtcp)
      out.push(h(`coordinator.speedup.${r.workers}`, `${plural(r.dmtcp.workers)}: checkpoint round ${faster(r.roundTripSpeedup)} than with the original dmtcp_coordinator`, r.roundTripSpeedup, r.workers >= 900 && r.workers <= 961 ? '>= 10x' : null, r.workers >= 900 && r.workers <= 961 ? r.roundTripSpeedup >= 10 : null));
  }
  if (c.blockingCheckpoint)
    out.push(h('coordinator.blockingCheckpoint.speedup', c.blockingCheckpoint.speedup === null ? `one-worker dmtcp_command -bc vs the original: not measured (${c.blockingCheckpoint.reason ?? 'unknown'})` : `one worker, blocking checkpoint (${c.blockingCheckpoint.workload}) ${faster(c.blockingCheckpoint.speedup)} than with the original coordinator`, c.blockingCheckpoint.speedup, '>= 3x', c.blockingCheckpoint.speedup !== null && c.blockingCheckpoint.speedup >= 3));
  if (!c.dmtcp.available) out.push(h('coordinator.dmtcp', `original dmtcp_coordinator not compared: ${c.dmtcp.reason ?? 'absent'}`, null, null, null));
  return out;
}

function checkpointHeadlines(c: CheckpointResult): Headline[] {
  const out: Headline[] = [];
  for (const r of c.rows) {
    const size = `${(r.rssBytes / MiB).toFixed(0)} MiB`;
    const b = r.builtin;
    const big = r.rssBytes >= 2 * 1024 * MiB;
    if (!b) {
      out.push(h(`checkpoint.${r.rssBytes}.builtin`, `${size}: built-in engine not measured (${r.builtinReason ?? 'unknown'})`, null, null, null));
      continue;
    }
    out.push(
      h(`checkpoint.${r.rssBytes}.writeShare`, `${size} checkpoint wrote at ${b.writeShare === null ? '?' : formatPercent(b.writeShare)} of storage write bandwidth (${formatSeconds(b.checkpoint.median)}, downtime ${formatSeconds(b.downtime.median)})`, b.writeShare, big ? '>= 83% (<= 1.2x raw write time)' : null, big ? b.writeShare !== null && b.writeShare >= 1 / 1.2 : null),
    );
    if (b.restart)
      out.push(h(`checkpoint.${r.rssBytes}.readShare`, `${size} restart read at ${b.readShare === null ? '?' : formatPercent(b.readShare)} of storage read bandwidth (${formatSeconds(b.restart.median)})`, b.readShare, big ? '>= 83% (<= 1.2x raw read time)' : null, big ? b.readShare !== null && b.readShare >= 1 / 1.2 : null));
    if (r.dmtcpGzip && r.builtinZstd)
      out.push(h(`checkpoint.${r.rssBytes}.vsDmtcpGzip`, `${size} compressed checkpoint (zstd) ${faster(r.dmtcpGzip.checkpoint.median / r.builtinZstd.checkpoint.median)} than DMTCP with gzip`, r.dmtcpGzip.checkpoint.median / r.builtinZstd.checkpoint.median, null, null));
    if (r.dmtcpNoGzip && b.downtime.median > 0)
      out.push(h(`checkpoint.${r.rssBytes}.downtimeVsDmtcpNoGzip`, `${size} application downtime ${formatSeconds(b.downtime.median)} vs ${formatSeconds(r.dmtcpNoGzip.downtime.median)} with DMTCP --no-gzip (${(r.dmtcpNoGzip.downtime.median / b.downtime.median).toFixed(1)}x shorter)`, r.dmtcpNoGzip.downtime.median / b.downtime.median, null, null));
    if (r.dmtcpNoGzip && r.builtin?.restart && r.dmtcpNoGzip.restart)
      out.push(h(`checkpoint.${r.rssBytes}.restartVsDmtcpNoGzip`, `${size} uncompressed restart ${faster(r.dmtcpNoGzip.restart.median / r.builtin.restart.median)} than DMTCP --no-gzip`, r.dmtcpNoGzip.restart.median / r.builtin.restart.median, '>= 2x', r.dmtcpNoGzip.restart.median / r.builtin.restart.median >= 2));
    if (r.dmtcpNoGzip)
      out.push(h(`checkpoint.${r.rssBytes}.vsDmtcpNoGzip`, `${size} uncompressed checkpoint ${faster(r.dmtcpNoGzip.checkpoint.median / b.checkpoint.median)} than DMTCP --no-gzip`, r.dmtcpNoGzip.checkpoint.median / b.checkpoint.median, '>= 2x', r.dmtcpNoGzip.checkpoint.median / b.checkpoint.median >= 2));
  }
  if (c.runtimeOverhead)
    // A noisy overhead figure (its spread is larger than what it measures) proves nothing either way.
    out.push(
      h(
        'checkpoint.runtimeOverhead',
        `runtime overhead on a CPU-bound loop ${(c.runtimeOverhead.median * 100).toFixed(2)}%${c.runtimeOverhead.noisy ? ` (noisy: ${(c.runtimeOverhead.min * 100).toFixed(1)}% to ${(c.runtimeOverhead.max * 100).toFixed(1)}%)` : ''}`,
        c.runtimeOverhead.median,
        '< 1%',
        c.runtimeOverhead.noisy ? null : c.runtimeOverhead.median < 0.01,
      ),
    );
  return out;
}

/** Headlines for every measured section of `doc`, plus one line per unavailable section. */
export function headlines(doc: Omit<BenchDocument, 'headlines'>): Headline[] {
  const out: Headline[] = [];
  const sections = [
    ['storage', doc.storage, storageHeadlines],
    ['stream', doc.stream, streamHeadlines],
    ['coordinator', doc.coordinator, coordinatorHeadlines],
    ['checkpoint', doc.checkpoint, checkpointHeadlines],
  ] as const;
  for (const [name, sec, fn] of sections) {
    if (sec === null) continue;
    if (!sec.available) {
      out.push(h(`${name}.unavailable`, `${name}: not measured: ${sec.reason}`, null, null, null));
      continue;
    }
    out.push(...(fn as (s: typeof sec) => Headline[])(sec));
  }
  return out;
}
