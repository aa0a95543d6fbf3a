/**
 * Checkpoint images: the TypeScript side of native/image (indexer, image
 * inspection and verification, generation commit, conversion) plus
 * retention (`gc`), which is file management and lives here.
 *
 * Every option is validated here before the native call; native work runs
 * off the JS thread (the addon returns promises). Progress is reported by
 * polling a small Float64Array the native worker fills in.
 */
import fs from 'node:fs';
import path from 'node:path';

import { CkptError, fromNative } from './errors.js';
import { native } from './native.js';

/** One process image as the indexer reports it. */
export interface IndexedProcess {
  path: string;
  bytes: number;
  /** ckpt: the header's process id; DMTCP: the UniquePid text (hostid-pid-time). */
  processId: string;
  parentId: string | null;
  pid: number;
  host: string | null;
  program: string;
  /** "ckpt" | "raw" | "gzip" | "wrapped" (a DMTCP image compressed by `ckpt image convert`). */
  encoding: string;
  ok: boolean;
  problem: string | null;
  /** How far it was checked: "trailer" | "end-marker" | "header" | "deep". */
  checked: string;
  mtimeMs: number;
  filesDir: string | null;
  /** ckpt images (format 1.1): how long the checkpoint stopped the process, in ms; null if not recorded. */
  stoppedMs: number | null;
}

/** One (computation, generation) set. This is the `ckpt images --json` contract. */
export interface IndexedGeneration {
  format: 'ckpt' | 'dmtcp';
  computation: string;
  generation: number;
  numPeers: number;
  processes: IndexedProcess[];
  complete: boolean;
  reason: string | null;
  hosts: string[];
  bytes: number;
  newestMtimeMs: number;
  dir: string;
  manifest: string | null;
  restartScript: string | null;
  scriptTimestamp: string | null;
  /** The generation a restart should use for this computation. */
  newestComplete: boolean;
  /** ckpt layout: `<computation>/latest` points here. */
  latest: boolean;
  warnings: string[];
  tempFiles: string[];
}

export interface IndexResult {
  generations: IndexedGeneration[];
  /** Files that look like images or scripts but could not be read; never touched by gc. */
  unreadable: Array<{ path: string; problem: string }>;
  filesScanned: number;
}

export type ProgressFn = (done: number, total: number) => void;

export interface IndexOptions {
  /** Read every image in full (chunk checksums, DMTCP record walk / gzip decompression). */
  deep?: boolean;
  /** Directory levels searched below each path (default 4). */
  maxDepth?: number;
  /** Threads for deep verification (default: all cores). */
  threads?: number;
  onProgress?: ProgressFn;
}

export interface Manifest {
  version: number;
  computation: string;
  generation: number;
  numPeers: number;
  createdMs: number;
  entries: Array<{ name: string; bytes: number; checksum: string; processId: string | null }>;
}

export interface ImageMetaInput {
  computation: string;
  generation: number;
  numPeers: number;
  processId: string;
  parentId?: string;
  pid?: number;
  ppid?: number;
  vpid?: number;
  hostname?: string;
  kernelRelease?: string;
  program?: string;
  engine?: string;
}

export interface RegionInput {
  start?: number;
  end?: number;
  prot?: number;
  kind?: 'anonymous' | 'file' | 'blob';
  name?: string;
  data: Buffer | null;
}

export interface WriteOptions {
  codec?: 'raw' | 'zstd';
  level?: number;
  threads?: number;
  chunkSize?: number;
  maxInFlight?: number;
  sync?: boolean;
  direct?: boolean;
}

export interface WriteSummary {
  path: string;
  fileSize: number;
  rootChecksum: string;
  logicalBytes: number;
  storedBytes: number;
  zeroBytes: number;
  chunks: number;
}

export interface ConvertResult {
  from: string;
  to: string;
  inBytes: number;
  outBytes: number;
  logicalBytes: number;
  contentChecksum: string | null;
}

/** The shape of `ckpt inspect --json`; fields depend on `format`. */
export type Inspection = { format: 'ckpt' | 'dmtcp'; fileSize: number; header: Record<string, unknown> } & Record<string, unknown>;

interface NativeImages {
  index(paths: string[], opts: object, progress?: Float64Array): Promise<IndexResult>;
  inspect(path: string, opts: object): Promise<Inspection>;
  verifyImage(path: string, opts: object, progress?: Float64Array): Promise<{ format: string; logicalBytes: number }>;
  verifyGeneration(dir: string, deep: boolean): Promise<void>;
  commitGeneration(dir: string, opts: object): Promise<Manifest>;
  readManifest(path: string): Promise<Manifest>;
  readLatest(dir: string): string;
  convert(src: string, dst: string, opts: object, progress?: Float64Array): Promise<ConvertResult>;
  writeImage(path: string, meta: object, regions: object[], opts: object): Promise<WriteSummary>;
}

function addon(): NativeImages {
  return native<{ images: NativeImages }>().images;
}

/** Runs a native call with a polled progress array; errors become CkptError. */
async function withProgress<T>(onProgress: ProgressFn | undefined, fn: (p: Float64Array | undefined) => Promise<T>, context?: string): Promise<T> {
  const p = onProgress ? new Float64Array(2) : undefined;
  const timer = onProgress && p ? setInterval(() => onProgress(p[0] ?? 0, p[1] ?? 0), 100) : null;
  try {
    const r = await fn(p);
    if (onProgress && p) onProgress(p[1] ?? 0, p[1] ?? 0);
    return r;
  } catch (err) {
    throw fromNative(err, context);
  } finally {
    if (timer) clearInterval(timer);
  }
}

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `${what} must be a non-empty string`);
  return v;
}

function optInt(v: unknown, what: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `${what} must be an integer between ${min} and ${max} (got ${String(v)})`);
  }
  return v;
}

/** Checks a computation id as the native layer does (used for directory names). */
export function validateComputationId(id: string): void {
  if (typeof id !== 'string' || id.length === 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'computation id must not be empty');
  if (Buffer.byteLength(id) > 255) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'computation id is longer than 255 bytes');
  if (id === '.' || id === '..') throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', "computation id must not be '.' or '..'");
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f/]/.test(id)) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', "computation id must not contain '/' or control characters");
}

/** `<root>/<computation>/gen-<N>` (layout version 1, docs/image-format.md). */
export function generationDir(root: string, computation: string, generation: number): string {
  validateComputationId(computation);
  optInt(generation, 'generation', 1, Number.MAX_SAFE_INTEGER);
  return path.join(root, computation, `gen-${generation}`);
}

/** Indexes checkpoint images (ours and DMTCP's) and restart scripts below `paths`. */
export async function indexImages(paths: string[], opts: IndexOptions = {}): Promise<IndexResult> {
  if (!Array.isArray(paths) || paths.length === 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'at least one path is required');
  for (const p of paths) {
    requireString(p, 'path');
    if (!fs.existsSync(p)) throw new CkptError('ERR_CKPT_NOT_FOUND', `${p} does not exist`);
  }
  const maxDepth = optInt(opts.maxDepth, 'maxDepth', 0, 64) ?? 4;
  const threads = optInt(opts.threads, 'threads', 0, 256) ?? 0;
  return withProgress(opts.onProgress, (p) => addon().index(paths, { deep: Boolean(opts.deep), maxDepth, threads }, p));
}

/** Header and regions of one image (ckpt or DMTCP; `walk` also walks gzip DMTCP images). */
export async function inspectImage(file: string, opts: { walk?: boolean } = {}): Promise<Inspection> {
  requireString(file, 'image path');
  return withProgress(undefined, () => addon().inspect(file, { walk: Boolean(opts.walk) }));
}

/** Reads one image in full and verifies every checksum (ckpt) or record (DMTCP). Throws the first problem. */
export async function verifyImage(file: string, opts: { threads?: number; onProgress?: ProgressFn } = {}): Promise<{ format: string; logicalBytes: number }> {
  requireString(file, 'image path');
  const threads = optInt(opts.threads, 'threads', 0, 256) ?? 0;
  return withProgress(opts.onProgress, (p) => addon().verifyImage(file, { threads }, p));
}

/** Verifies a committed generation directory of our layout (MANIFEST, sizes, checksums; `deep`: every chunk). */
export async function verifyGeneration(dir: string, deep = false): Promise<void> {
  requireString(dir, 'generation directory');
  return withProgress(undefined, () => addon().verifyGeneration(dir, deep));
}

/**
 * Commits a generation directory: checks its images (same computation and
 * generation, numPeers distinct processes, no temp files), writes MANIFEST
 * (temp, fsync, rename) and switches `<computation>/latest` to it.
 */
export async function commitGeneration(dir: string, opts: { sync?: boolean; switchLatest?: boolean; expectPeers?: number } = {}): Promise<Manifest> {
  requireString(dir, 'generation directory');
  const expectPeers = optInt(opts.expectPeers, 'expectPeers', 0, 0xffffffff) ?? 0;
  return withProgress(undefined, () => addon().commitGeneration(dir, { sync: opts.sync ?? true, switchLatest: opts.switchLatest ?? true, expectPeers }));
}

export async function readManifest(file: string): Promise<Manifest> {
  requireString(file, 'MANIFEST path');
  return withProgress(undefined, () => addon().readManifest(file));
}

/** The generation directory name `<computationDir>/latest` points at, or null. */
export function readLatest(computationDir: string): string | null {
  requireString(computationDir, 'computation directory');
  try {
    return addon().readLatest(computationDir) || null;
  } catch (err) {
    throw fromNative(err);
  }
}

/** Writes one image from in-memory regions (tests, tools; the engine writes images natively). */
export async function writeImage(file: string, meta: ImageMetaInput, regions: RegionInput[], opts: WriteOptions = {}): Promise<WriteSummary> {
  requireString(file, 'image path');
  validateComputationId(meta.computation);
  requireString(meta.processId, 'processId');
  optInt(meta.generation, 'generation', 1, Number.MAX_SAFE_INTEGER);
  optInt(meta.numPeers, 'numPeers', 1, 0xffffffff);
  if (opts.codec !== undefined && opts.codec !== 'raw' && opts.codec !== 'zstd') throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', "codec must be 'raw' or 'zstd'");
  optInt(opts.level, 'level', -7, 19);
  optInt(opts.threads, 'threads', 0, 256);
  const cs = optInt(opts.chunkSize, 'chunkSize', 65536, 64 << 20);
  if (cs !== undefined && (cs & (cs - 1)) !== 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'chunkSize must be a power of two');
  for (const r of regions) {
    if (r.kind !== 'blob' && r.start !== undefined && r.start % 4096 !== 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'region start must be page aligned');
  }
  return withProgress(undefined, () => addon().writeImage(file, meta, regions, opts));
}

export interface ConvertOptions {
  /** zstd level for compressed output (default 3). */
  zstd?: number;
  /** Write raw output: a raw DMTCP image for DMTCP sources, an uncompressed ckpt image otherwise. */
  raw?: boolean;
  threads?: number;
  /** Replace an existing destination. */
  force?: boolean;
  sync?: boolean;
  onProgress?: ProgressFn;
}

/**
 * Converts an image (see docs/image-format.md "Wrapped DMTCP images"): a raw
 * or gzip DMTCP image to a zstd ckpt container, that container back to the
 * byte-identical raw DMTCP image, gzip DMTCP to raw, or a ckpt image to
 * another codec.
 */
export async function convertImage(src: string, dst: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  requireString(src, 'source');
  requireString(dst, 'destination');
  if (opts.raw && opts.zstd !== undefined) throw new CkptError('ERR_CKPT_USAGE', '--raw and --zstd exclude each other');
  const level = optInt(opts.zstd, 'zstd level', -7, 19) ?? 3;
  const threads = optInt(opts.threads, 'threads', 0, 256) ?? 0;
  if (!fs.existsSync(src)) throw new CkptError('ERR_CKPT_NOT_FOUND', `${src} does not exist`);
  if (path.resolve(src) === path.resolve(dst)) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'source and destination must differ');
  if (fs.existsSync(dst) && !opts.force) throw new CkptError('ERR_CKPT_EXISTS', `${dst} already exists; pass --force to replace it`);
  return withProgress(opts.onProgress, (p) => addon().convert(src, dst, { toRaw: Boolean(opts.raw), level, threads, sync: opts.sync ?? true }, p));
}

// ------------------------------------------------------------------ gc

export interface GcRemoval {
  path: string;
  bytes: number;
  format: 'ckpt' | 'dmtcp';
  computation: string;
  generation: number;
  why: string;
}

export interface GcReport {
  dryRun: boolean;
  keep: number;
  /** Generations kept, per computation: the newest `keep` complete ones. */
  kept: Array<{ format: 'ckpt' | 'dmtcp'; computation: string; generation: number }>;
  removed: GcRemoval[];
  freedBytes: number;
  /** Things left alone on purpose, with the reason. */
  skipped: Array<{ path: string; why: string }>;
}

/** Files gc may delete inside a generation directory of our layout. */
const CKPT_DIR_FILE = /^(?:.+\.ckpt|.+\.ckpt\.tmp|MANIFEST|MANIFEST\.tmp)$/;
/** Files gc may delete inside a DMTCP unique-mode generation directory. */
const DMTCP_DIR_FILE = /^(?:ckpt_.+\.dmtcp|ckpt_.+\.dmtcp\.temp|.+\.ckpt)$/;

function sizeOf(p: string): number {
  try {
    const st = fs.lstatSync(p);
    if (!st.isDirectory()) return st.size;
    let n = 0;
    for (const e of fs.readdirSync(p)) n += sizeOf(path.join(p, e));
    return n;
  } catch {
    return 0;
  }
}

/**
 * Applies retention to the checkpoints below `dir`: per computation, keeps the
 * newest `keep` complete generations, removes older complete generations and
 * incomplete generations older than the newest complete one. Never removes
 * the newest complete generation, anything newer than it (a checkpoint may be
 * in progress), a generation `latest` points at, or any file it cannot
 * classify; computations without a complete generation are left alone.
 */
export async function gc(dir: string, opts: { keep: number; dryRun?: boolean; onProgress?: ProgressFn }): Promise<GcReport> {
  requireString(dir, 'directory');
  const keep = optInt(opts.keep, '--keep', 1, 1_000_000);
  if (keep === undefined) throw new CkptError('ERR_CKPT_USAGE', '--keep N is required');
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CkptError('ERR_CKPT_NOT_FOUND', `${dir} is not a directory`);
  const index = await indexImages([dir], { onProgress: opts.onProgress });
  const report: GcReport = { dryRun: Boolean(opts.dryRun), keep, kept: [], removed: [], freedBytes: 0, skipped: [] };
  for (const u of index.unreadable) report.skipped.push({ path: u.path, why: `not classified (${u.problem}); left alone` });

  const byComp = new Map<string, IndexedGeneration[]>();
  for (const g of index.generations) {
    const k = `${g.format}\0${g.computation}`;
    const list = byComp.get(k) ?? [];
    list.push(g);
    byComp.set(k, list);
  }
  const protectedPaths = new Set<string>();
  const plans: Array<{ g: IndexedGeneration; why: string }> = [];
  for (const gens of byComp.values()) {
    const complete = gens.filter((g) => g.complete).sort((a, b) => b.generation - a.generation || b.newestMtimeMs - a.newestMtimeMs);
    const newest = complete[0];
    if (!newest) {
      for (const g of gens) report.skipped.push({ path: g.dir, why: `${g.format} ${g.computation}: no complete generation, nothing removed` });
      continue;
    }
    const kept = complete.slice(0, keep);
    for (const g of kept) {
      report.kept.push({ format: g.format, computation: g.computation, generation: g.generation });
      for (const p of g.processes) protectedPaths.add(path.resolve(p.path));
      protectedPaths.add(path.resolve(g.dir));
    }
    for (const g of gens) {
      if (kept.includes(g)) continue;
      if (g.latest) {
        report.skipped.push({ path: g.dir, why: 'latest points here' });
        continue;
      }
      if (g.complete) plans.push({ g, why: `older than the ${keep} newest complete generation${keep === 1 ? '' : 's'}` });
      else if (g.generation < newest.generation) plans.push({ g, why: `incomplete (${g.reason ?? 'unknown'}) and older than the newest complete generation` });
      else report.skipped.push({ path: g.dir, why: `generation ${g.generation} is incomplete but newer than the newest complete one (may be in progress)` });
    }
  }

  const remove = (p: string, bytes: number, g: IndexedGeneration, why: string) => {
    const abs = path.resolve(p);
    if (protectedPaths.has(abs)) {
      // Defence in depth: a kept image or directory is never removed.
      report.skipped.push({ path: p, why: 'belongs to a kept generation' });
      return;
    }
    report.removed.push({ path: p, bytes, format: g.format, computation: g.computation, generation: g.generation, why });
    report.freedBytes += bytes;
    if (!opts.dryRun) fs.rmSync(p, { recursive: true, force: true });
  };

  for (const { g, why } of plans) {
    const dirs = new Set(g.processes.map((p) => path.dirname(p.path)));
    const only = dirs.size === 1 ? [...dirs][0]! : null;
    const base = only ? path.basename(only) : '';
    const isCkptGenDir = g.format === 'ckpt' && only !== null && base === `gen-${g.generation}`;
    const uniqueRe = /^ckpt_(.+)_(\d{5,})$/.exec(base);
    const isDmtcpGenDir = g.format === 'dmtcp' && only !== null && uniqueRe !== null && uniqueRe[1] === g.computation && Number(uniqueRe[2]) === g.generation;
    if (only && (isCkptGenDir || isDmtcpGenDir)) {
      const pattern = isCkptGenDir ? CKPT_DIR_FILE : DMTCP_DIR_FILE;
      const entries = fs.readdirSync(only, { withFileTypes: true });
      const foreign = entries.filter((e) => !(pattern.test(e.name) || (isDmtcpGenDir && e.isDirectory() && e.name.endsWith('_files'))));
      if (foreign.length === 0) {
        remove(only, sizeOf(only), g, why);
        if (isDmtcpGenDir) {
          // The unique-mode restart script of this generation goes with it.
          const script = path.join(path.dirname(only), `dmtcp_restart_script_${g.computation}_${String(g.generation).padStart(5, '0')}.sh`);
          if (fs.existsSync(script)) remove(script, sizeOf(script), g, why);
        }
        continue;
      }
      report.skipped.push({ path: only, why: `contains files gc does not manage (${foreign.map((e) => e.name).slice(0, 3).join(', ')}); only the images are removed` });
    }
    for (const p of g.processes) {
      remove(p.path, p.bytes, g, why);
      if (p.filesDir) remove(p.filesDir, sizeOf(p.filesDir), g, `${why} (the image's saved files)`);
    }
  }
  return report;
}

// --------------------------------------------------------------- verify

export interface VerifyProblem {
  path: string;
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  images: number;
  generations: number;
  problems: VerifyProblem[];
}

/**
 * Verifies an image file or every image and generation below a directory in
 * full. `ok` is true only when every image is intact and every generation is
 * complete; problems are sorted so the first names the first bad file.
 */
export async function verifyPath(target: string, opts: { threads?: number; onProgress?: ProgressFn } = {}): Promise<VerifyReport> {
  requireString(target, 'path');
  if (!fs.existsSync(target)) throw new CkptError('ERR_CKPT_NOT_FOUND', `${target} does not exist`);
  if (!fs.statSync(target).isDirectory()) {
    try {
      await verifyImage(target, opts);
      return { ok: true, images: 1, generations: 0, problems: [] };
    } catch (err) {
      const e = err instanceof CkptError ? err : fromNative(err);
      if (e.code === 'ERR_CKPT_INVALID_ARGUMENT' || e.code === 'ERR_CKPT_NOT_FOUND') throw e;
      return { ok: false, images: 1, generations: 0, problems: [{ path: target, problem: e.message }] };
    }
  }
  const index = await indexImages([target], { deep: true, threads: opts.threads, onProgress: opts.onProgress });
  const problems: VerifyProblem[] = [];
  let images = 0;
  for (const u of index.unreadable) problems.push({ path: u.path, problem: u.problem });
  for (const g of index.generations) {
    for (const p of g.processes) {
      images++;
      if (!p.ok) problems.push({ path: p.path, problem: p.problem ?? 'damaged' });
    }
    if (!g.complete && !g.processes.some((p) => !p.ok)) {
      problems.push({ path: g.dir, problem: `${g.format} ${g.computation} generation ${g.generation} is incomplete: ${g.reason ?? 'unknown'}` });
    }
  }
  problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ok: problems.length === 0, images, generations: index.generations.length, problems };
}
