/**
 * `ckpt bench checkpoint`: end-to-end checkpoint and restart of a synthetic
 * program of a given resident size with the built-in engine (and DMTCP, gzip
 * and --no-gzip, when present): time, downtime, image size, and effective
 * bandwidth as a share of the storage bandwidth measured in the same run.
 */
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { nativeBinDir } from '../native.js';
import type { RunPlan } from './method.js';
import type { Progress } from './progress.js';
import type { StorageReference } from './runner.js';
import type { CheckpointResult } from './schema.js';

const MiB = 1024 * 1024;

export interface CheckpointOptions {
  dir: string;
  rssBytes: number[];
  dmtcpPrefix: string | null;
  plan: RunPlan;
}

export function defaultCheckpointOptions(dir: string, quick: boolean): CheckpointOptions {
  return {
    dir,
    rssBytes: quick ? [64 * MiB, 512 * MiB] : [64 * MiB, 512 * MiB, 2048 * MiB],
    dmtcpPrefix: process.env.DMTCP_PREFIX ?? null,
    plan: { warmup: 0, runs: quick ? 1 : 3 },
  };
}

export function validateCheckpointOptions(o: CheckpointOptions): void {
  if (!o.rssBytes.length || !o.rssBytes.every((n) => Number.isSafeInteger(n) && n >= MiB))
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'program sizes must be at least 1 MiB');
}

export async function benchCheckpoint(o: CheckpointOptions, _reference: StorageReference | null, _progress: Progress): Promise<CheckpointResult> {
  validateCheckpointOptions(o);
  const lib = path.join(nativeBinDir(), 'libckpt.so');
  if (!fs.existsSync(lib)) throw new CkptError('ERR_CKPT_UNSUPPORTED', `engine unavailable: ${lib} is not built`);
  throw new CkptError('ERR_CKPT_UNSUPPORTED', 'engine unavailable: checkpoint benchmark not wired to the engine yet');
}
