/**
 * The JSON document `ckpt bench ... --json` prints and `--report` renders
 * (schema "ckpt-bench/1", documented in docs/bench.md). Stable: fields are
 * only ever added. Every section is either
 *   - null: not part of this run (e.g. `ckpt bench storage` has no coordinator section);
 *   - { available: false, reason }: requested but could not be measured, and why;
 *   - the section's figures ({ available: true, ... }).
 * Within a section, a side-by-side column that could not be measured (DMTCP
 * absent, engine unavailable) is null with a `...Reason` string next to it.
 * Every measured figure is a Stat (median, min, max, samples, noisy).
 */
import type { MachineInfo } from './machine.js';
import type { Stat } from './method.js';
import type { StorageReference, StorageResult } from './storage.js';

export const SCHEMA = 'ckpt-bench/1';

export interface Unavailable {
  available: false;
  /** Why the section could not be measured, e.g. "engine unavailable: build/Release/libckpt.so not built". */
  reason: string;
}

/** One codec/level row of the stream benchmark. */
export interface StreamRow {
  /** "raw" or "zstd". */
  codec: 'raw' | 'zstd';
  /** zstd level (null for raw). */
  level: number | null;
  /** Image I/O with O_DIRECT (page cache bypassed). */
  direct: boolean;
  /** Logical (uncompressed) MiB/s of an image write, fsync included. */
  write: Stat;
  /** Logical MiB/s of an image read with checksum verification (and decompression). */
  read: Stat;
  /** Logical bytes ÷ bytes on disk. */
  compressionRatio: number;
  /** write ÷ storage write bandwidth of the same run (null when storage has no figure). */
  writeShare: number | null;
  readShare: number | null;
}

/** An external tool measured on the same data (gzip -1 is DMTCP's compression). */
export interface StreamReference {
  /** e.g. "gzip -1", "zstd -1 -T0", "cp". */
  tool: string;
  available: boolean;
  reason: string | null;
  /** Input MiB/s (null when unavailable). */
  write: Stat | null;
  compressionRatio: number | null;
}

export interface StreamResult {
  available: true;
  dir: string;
  /** Logical bytes of the test image. */
  imageBytes: number;
  /** What the test data is, e.g. "synthetic: 1/4 zero pages, 1/4 random, 1/2 text-like". */
  data: string;
  /** Storage reference measured in the same run (MiB/s). */
  storage: StorageReference;
  rows: StreamRow[];
  references: StreamReference[];
  /** Best zstd row's write ÷ gzip -1 (null when gzip is unavailable). */
  zstdVsGzip: number | null;
  /** Same-level zstd row write ÷ `zstd -T0` (null when zstd is unavailable). */
  zstdVsZstdCli: number | null;
}

/** One side of one coordinator measurement (ours or the original). */
export interface CoordinatorSide {
  /** Workers actually connected (the original is capped at 961). */
  workers: number;
  /** Connections accepted per second while N workers connect at once. */
  connectRate: Stat;
  /** Seconds for a full checkpoint round (DO_CHECKPOINT → barriers → filenames → all resumed). */
  roundTrip: Stat;
  /** Coordinator resident set size in bytes with N workers connected (peak). */
  rssBytes: number | null;
}

export interface CoordinatorRow {
  /** Workers requested. */
  workers: number;
  ckpt: CoordinatorSide;
  /** The original dmtcp_coordinator, null when not measured. */
  dmtcp: CoordinatorSide | null;
  dmtcpReason: string | null;
  /** dmtcp.roundTrip ÷ ckpt.roundTrip (how many times faster ours is), null without DMTCP. */
  roundTripSpeedup: number | null;
  /**
   * The machine's loopback TCP floor for a round of this many workers, seconds:
   * messages per round × CPU seconds per loopback message (ckpt_loadgen
   * --tcp-floor) ÷ cores. No coordinator can be faster here; null when not measured.
   */
  tcpFloor?: number | null;
}

export interface CoordinatorResult {
  available: true;
  rows: CoordinatorRow[];
  /** One worker, blocking checkpoint until its reply (seconds), ours vs the original; null when not measured. */
  blockingCheckpoint: {
    /** What was checkpointed: "dmtcp_launch /bin/sleep, dmtcp_command -bc" (DMTCP present) or "synthetic worker, blocking checkpoint command". */
    workload: string;
    ckpt: Stat | null;
    dmtcp: Stat | null;
    speedup: number | null;
    reason: string | null;
  } | null;
  dmtcp: { available: boolean; reason: string | null; prefix: string | null; maxWorkers: number };
}

/** One engine's checkpoint/restart of one program size. */
export interface CheckpointSide {
  /** Seconds from the checkpoint request to the image being durable. */
  checkpoint: Stat;
  /** Seconds the program was stopped. */
  downtime: Stat;
  /** Seconds from restart to the program running again (null when not measured). */
  restart: Stat | null;
  imageBytes: number;
  /** imageBytes ÷ checkpoint seconds, in MiB/s. */
  writeBandwidth: number;
  /** writeBandwidth ÷ storage write bandwidth. */
  writeShare: number | null;
  /** imageBytes ÷ restart seconds ÷ storage read bandwidth. */
  readShare: number | null;
}

export interface CheckpointRow {
  /** Resident bytes of the synthetic program. */
  rssBytes: number;
  /** Built-in engine, uncompressed images (CKPT_COMPRESS=none). */
  builtin: CheckpointSide | null;
  builtinReason: string | null;
  /** Built-in engine, its default zstd -1 images (null when not measured; see builtinReason). */
  builtinZstd: CheckpointSide | null;
  dmtcpGzip: CheckpointSide | null;
  dmtcpNoGzip: CheckpointSide | null;
  dmtcpReason: string | null;
}

export interface CheckpointResult {
  available: true;
  dir: string;
  rows: CheckpointRow[];
  storage: StorageReference | null;
  /**
   * Relative increase of the CPU time of a CPU-bound loop under the engine
   * (0.004 = 0.4%), null when not measured. Its `spread` is absolute
   * (max - min) and it is `noisy` when that exceeds 0.02.
   */
  runtimeOverhead: Stat | null;
  runtimeOverheadReason: string | null;
}

/** A sentence-sized result the terminal table and the report lead with. */
export interface Headline {
  /** Stable identifier, e.g. "stream.raw.writeShare". */
  id: string;
  /** e.g. "uncompressed image write at 94% of storage write bandwidth". */
  text: string;
  value: number | null;
  /** The project's target, e.g. ">= 0.90", when there is one. */
  target: string | null;
  /** Whether the target is met (null: no target or no value). */
  met: boolean | null;
}

export interface BenchDocument {
  schema: typeof SCHEMA;
  ckptVersion: string;
  /** The command line that produced this document. */
  command: string;
  startedAt: string;
  durationSeconds: number;
  /** Wall-clock seconds each section took (storageReference: the reduced storage run of stream/checkpoint). */
  sectionSeconds: Partial<Record<Section | 'storageReference', number>>;
  quick: boolean;
  /** 1/5/15-minute load averages when the run started and ended: other load makes figures noisy. */
  loadAverage: { start: number[]; end: number[] };
  method: { warmup: number; runs: number; noisySpread: number; statistic: 'median' };
  machine: MachineInfo;
  storage: StorageResult | Unavailable | null;
  stream: StreamResult | Unavailable | null;
  coordinator: CoordinatorResult | Unavailable | null;
  checkpoint: CheckpointResult | Unavailable | null;
  headlines: Headline[];
}

export type Section = 'storage' | 'stream' | 'coordinator' | 'checkpoint';
export const SECTIONS: readonly Section[] = ['storage', 'stream', 'coordinator', 'checkpoint'];
