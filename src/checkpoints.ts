/**
 * What the job and instance services need to know about the images in a
 * checkpoint directory, answered by the images module (indexer, gc,
 * convert): the generations found, the newest complete one, retention, and
 * the background compression of DMTCP images. Nothing here parses an image.
 */
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from './errors.js';
import type { RestartSource } from './engines/engine.js';
import { convertImage, gc, indexImages, type IndexedGeneration } from './images.js';
import { withLockFile } from './instances.js';

/** One (computation, generation) set, as the services use it. */
export interface GenerationInfo {
  computation: string;
  generation: number;
  numPeers: number;
  /** Image paths relative to the checkpoint directory, with sizes, encodings and (ckpt 1.1) stop times. */
  processes: Array<{ path: string; bytes: number; encoding: string; stoppedMs: number | null }>;
  complete: boolean;
  reason: string | null;
  format: 'ckpt' | 'dmtcp';
  /** Newest image modification time (ms since the epoch). */
  timeMs: number | null;
  bytes: number;
  /** The indexer's pick for a restart of this computation. */
  newestComplete: boolean;
}

/**
 * How long the generation's processes were stopped, as the built-in engine
 * records it in each image header (format 1.1): the longest of them, since
 * they stop together. Null when any image does not record it (DMTCP images,
 * older images, checkpoints written while the process stayed stopped).
 */
export function recordedStopMs(g: GenerationInfo): number | null {
  if (g.format !== 'ckpt' || g.processes.length === 0) return null;
  let longest = 0;
  for (const p of g.processes) {
    if (p.stoppedMs === null) return null;
    longest = Math.max(longest, p.stoppedMs);
  }
  return longest;
}

function toInfo(dir: string, g: IndexedGeneration): GenerationInfo {
  return {
    computation: g.computation,
    generation: g.generation,
    numPeers: g.numPeers,
    processes: g.processes.map((p) => ({ path: path.relative(dir, p.path), bytes: p.bytes, encoding: p.encoding, stoppedMs: p.stoppedMs ?? null })),
    complete: g.complete,
    reason: g.reason,
    format: g.format,
    timeMs: g.newestMtimeMs || null,
    bytes: g.bytes,
    newestComplete: g.newestComplete,
  };
}

/**
 * Every generation found below `dir`, newest first: by time of the newest
 * image (generations of different computations are not comparable by
 * number), then by generation number.
 */
export async function scanGenerations(dir: string): Promise<GenerationInfo[]> {
  if (!fs.existsSync(dir)) return [];
  const index = await indexImages([dir]);
  return index.generations
    .map((g) => toInfo(dir, g))
    .sort((a, b) => (b.timeMs ?? 0) - (a.timeMs ?? 0) || b.generation - a.generation);
}

/** The newest complete generation below `dir`, or null. */
export async function newestCompleteGeneration(dir: string): Promise<GenerationInfo | null> {
  return (await scanGenerations(dir)).find((g) => g.complete) ?? null;
}

/**
 * The generation to restart from: the newest complete one (or `generation`),
 * with clear errors for an empty directory, an incomplete or corrupt
 * generation, or images of a format the engine cannot restart.
 */
export async function chooseRestart(
  dir: string,
  opts: { generation?: number; formats: ReadonlyArray<'ckpt' | 'dmtcp'>; label: string },
): Promise<RestartSource> {
  const gens = await scanGenerations(dir);
  if (gens.length === 0) {
    throw new CkptError('ERR_CKPT_NOT_FOUND', `${opts.label} is empty: it holds no checkpoint images (${dir}). Checkpoint a running job into it first.`);
  }
  let pick: GenerationInfo | undefined;
  if (opts.generation !== undefined) {
    const matches = gens.filter((g) => g.generation === opts.generation);
    pick = matches.find((g) => g.complete) ?? matches[0];
    if (!pick) {
      throw new CkptError('ERR_CKPT_NOT_FOUND', `${opts.label} has no generation ${opts.generation}; it has ${[...new Set(gens.map((g) => g.generation))].join(', ')}.`);
    }
    if (!pick.complete) {
      throw new CkptError('ERR_CKPT_INCOMPLETE', `Generation ${pick.generation} of ${opts.label} is incomplete: ${pick.reason ?? 'unknown reason'}. Nothing was changed.`);
    }
  } else {
    pick = gens.find((g) => g.complete);
    if (!pick) {
      const why = gens.map((g) => `generation ${g.generation}: ${g.reason ?? 'incomplete'}`).join('; ');
      throw new CkptError('ERR_CKPT_INCOMPLETE', `${opts.label} has no complete checkpoint (${why}). Nothing was changed; see \`ckpt images ${dir}\`.`);
    }
  }
  if (!opts.formats.includes(pick.format)) {
    const engine = pick.format === 'dmtcp' ? 'dmtcp' : 'builtin';
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `${opts.label} holds ${pick.format === 'dmtcp' ? 'DMTCP' : 'ckpt'} images; restart it with --engine ${engine}.`);
  }
  return { dir, generation: pick.generation, format: pick.format, images: pick.processes.map((p) => p.path) };
}

/** Applies `--keep N` (never removes the newest complete generation); returns what was removed. */
export async function applyRetention(dir: string, keep: number): Promise<string[]> {
  const report = await gc(dir, { keep });
  return report.removed.map((r) => path.relative(dir, r.path) || r.path);
}

/** Suffix of a DMTCP image compressed by ckpt (a ckpt container wrapping the DMTCP bytes). */
export const WRAPPED_SUFFIX = '.ckpt';

/**
 * Compresses and checksums the raw DMTCP images of a generation into ckpt
 * containers next to them (`<image>.dmtcp.ckpt`), then removes the raw
 * images. Each container is complete (temp name, fsync, rename) before its
 * raw image goes, so at every moment each process has one intact image.
 */
export async function compressDmtcpGeneration(dir: string, gen: GenerationInfo): Promise<{ inBytes: number; outBytes: number }> {
  let inBytes = 0;
  let outBytes = 0;
  for (const p of gen.processes) {
    if (p.encoding !== 'raw') continue;
    const src = path.join(dir, p.path);
    const dst = `${src}${WRAPPED_SUFFIX}`;
    const r = await convertImage(src, dst, { zstd: 1, force: true });
    fs.chmodSync(dst, 0o600);
    fs.rmSync(src, { force: true });
    inBytes += r.inBytes;
    outBytes += r.outBytes;
  }
  return { inBytes, outBytes };
}

/** Serialises compression and restarts of one checkpoint directory. */
export const IMAGES_LOCK = '.ckpt-images.lock';
/** How long a restart waits for a compression in progress. */
export const IMAGES_LOCK_WAIT_MS = 10 * 60_000;

export function withImagesLock<T>(dir: string, fn: () => Promise<T>, waitMs = IMAGES_LOCK_WAIT_MS): Promise<T> {
  return withLockFile(path.join(dir, IMAGES_LOCK), fn, waitMs);
}

/**
 * Compresses every complete DMTCP generation below `dir` that still has raw
 * images (the background step after a DMTCP checkpoint).
 */
export async function compressDmtcpImages(dir: string): Promise<{ generations: number; inBytes: number; outBytes: number }> {
  return withImagesLock(dir, async () => {
    const out = { generations: 0, inBytes: 0, outBytes: 0 };
    for (const g of await scanGenerations(dir)) {
      if (g.format !== 'dmtcp' || !g.complete || !g.processes.some((p) => p.encoding === 'raw')) continue;
      const r = await compressDmtcpGeneration(dir, g);
      out.generations++;
      out.inBytes += r.inBytes;
      out.outBytes += r.outBytes;
    }
    return out;
  });
}

/**
 * Before `dmtcp_restart`: compressed images of the generation are turned back
 * into the byte-identical raw DMTCP images (the checksum is verified on the
 * way). Returns the image paths (relative to `dir`) to hand to dmtcp_restart.
 */
export async function expandDmtcpImages(dir: string, images: string[]): Promise<{ images: string[]; created: string[] }> {
  const out: string[] = [];
  const created: string[] = [];
  for (const rel of images) {
    if (!rel.endsWith(`.dmtcp${WRAPPED_SUFFIX}`)) {
      out.push(rel);
      continue;
    }
    const raw = rel.slice(0, -WRAPPED_SUFFIX.length);
    const abs = path.join(dir, raw);
    if (!fs.existsSync(abs)) {
      await convertImage(path.join(dir, rel), abs, { raw: true });
      fs.chmodSync(abs, 0o600);
      created.push(abs);
    }
    out.push(raw);
  }
  return { images: out, created };
}
