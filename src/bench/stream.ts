/**
 * `ckpt bench stream`: image write and read through the streaming core (raw
 * and zstd levels) as a share of the storage bandwidth measured in the same
 * run, with gzip -1 (DMTCP's level) and zstd -T0 as references.
 */
import { CkptError } from '../errors.js';
import { native } from '../native.js';
import type { RunPlan } from './method.js';
import type { Progress } from './progress.js';
import type { StorageReference } from './runner.js';
import type { StreamResult } from './schema.js';

const MiB = 1024 * 1024;

export interface StreamOptions {
  dir: string;
  imageBytes: number;
  zstdLevels: number[];
  plan: RunPlan;
}

export function defaultStreamOptions(dir: string, quick: boolean): StreamOptions {
  return { dir, imageBytes: (quick ? 128 : 1024) * MiB, zstdLevels: quick ? [1] : [1, 3], plan: { warmup: 1, runs: quick ? 3 : 5 } };
}

export async function benchStream(o: StreamOptions, reference: StorageReference | null, _progress: Progress): Promise<StreamResult> {
  if (!reference) throw new CkptError('ERR_CKPT_STATE', 'no storage reference measured');
  if (!o.zstdLevels.every((l) => Number.isInteger(l) && l >= 1 && l <= 22))
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'zstd levels must be integers from 1 to 22');
  const addon = native<Record<string, unknown>>();
  if (!('images' in addon))
    throw new CkptError('ERR_CKPT_UNSUPPORTED', 'streaming core unavailable: this build of ckpt has no image binding (native/addon images)');
  throw new CkptError('ERR_CKPT_UNSUPPORTED', 'streaming core benchmark not wired to the image binding yet');
}
