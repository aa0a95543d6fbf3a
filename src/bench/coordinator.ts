/**
 * `ckpt bench coordinator`: N synthetic workers (the load generator,
 * build/Release/ckpt_loadgen) against our coordinator and, when DMTCP is
 * present, against the original dmtcp_coordinator in the same run.
 */
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { nativeBinDir } from '../native.js';
import type { RunPlan } from './method.js';
import type { Progress } from './progress.js';
import type { CoordinatorResult } from './schema.js';

/** The original coordinator's virtual-PID allocator holds at most 961 workers (spec). */
export const DMTCP_MAX_WORKERS = 961;

export interface CoordinatorOptions {
  workers: number[];
  /** DMTCP installation prefix (null: $DMTCP_PREFIX, else not compared). */
  dmtcpPrefix: string | null;
  plan: RunPlan;
}

export function defaultCoordinatorOptions(quick: boolean): CoordinatorOptions {
  return {
    workers: quick ? [1, 100, 900, 10000] : [1, 100, 900, 1000, 10000],
    dmtcpPrefix: process.env.DMTCP_PREFIX ?? null,
    plan: { warmup: 1, runs: quick ? 3 : 5 },
  };
}

export async function benchCoordinator(o: CoordinatorOptions, _progress: Progress): Promise<CoordinatorResult> {
  if (!o.workers.length || !o.workers.every((n) => Number.isInteger(n) && n >= 1 && n <= 100000))
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'worker counts must be integers from 1 to 100000');
  const loadgen = path.join(nativeBinDir(), 'ckpt_loadgen');
  if (!fs.existsSync(loadgen))
    throw new CkptError('ERR_CKPT_UNSUPPORTED', `coordinator load generator unavailable: ${loadgen} is not built`);
  throw new CkptError('ERR_CKPT_UNSUPPORTED', 'coordinator benchmark not wired to the load generator yet');
}
