/**
 * Runs the requested `ckpt bench` sections in one process and assembles the
 * BenchDocument (schema.ts). Sections that compare against the storage
 * (stream, checkpoint) reuse the storage figures of the same run, or measure
 * a reduced storage reference first when `storage` is not part of the run,
 * so every ratio is taken side by side on the same machine state.
 */
import fs from 'node:fs';
import os from 'node:os';

import { CkptError } from '../errors.js';
import { native } from '../native.js';
import { headlines } from './headlines.js';
import { describeMachine } from './machine.js';
import { NOISY_SPREAD, type RunPlan } from './method.js';
import { silentProgress, type Progress } from './progress.js';
import { SCHEMA, type BenchDocument, type Section, type Unavailable } from './schema.js';
import { benchStorage, defaultStorageOptions, validateStorageOptions, type StorageOptions, type StorageReference, type StorageResult } from './storage.js';
import { benchStream, defaultStreamOptions, validateStreamOptions, type StreamOptions } from './stream.js';
import { benchCoordinator, defaultCoordinatorOptions, validateCoordinatorOptions, type CoordinatorOptions } from './coordinator.js';
import { benchCheckpoint, defaultCheckpointOptions, validateCheckpointOptions, type CheckpointOptions } from './checkpoint.js';

export interface BenchOptions {
  sections: Section[];
  /** Smaller sizes and fewer runs: `ckpt bench all --quick` stays under two minutes on 2 cores. */
  quick: boolean;
  /** Directory for storage, stream and checkpoint data (default: the system temp dir). */
  dir?: string;
  /** Overrides of the run plan (warm-up runs and measured runs) for every section. */
  plan?: Partial<RunPlan>;
  storage?: Partial<Omit<StorageOptions, 'dir' | 'plan'>>;
  stream?: Partial<Omit<StreamOptions, 'dir' | 'plan'>>;
  coordinator?: Partial<Omit<CoordinatorOptions, 'plan'>>;
  checkpoint?: Partial<Omit<CheckpointOptions, 'dir' | 'plan'>>;
  /** The command line, recorded in the document. */
  command?: string;
  progress?: Progress;
}

export type { StorageReference } from './storage.js';

export function ckptVersion(): string {
  try {
    return native<{ version: string }>().version;
  } catch {
    return 'unknown';
  }
}

function unavailable(err: unknown): Unavailable {
  return { available: false, reason: err instanceof Error ? err.message : String(err) };
}

export async function runBench(opts: BenchOptions): Promise<BenchDocument> {
  const progress = opts.progress ?? silentProgress;
  const dir = opts.dir ?? os.tmpdir();
  if (!fs.existsSync(dir)) throw new CkptError('ERR_CKPT_NOT_FOUND', `directory ${dir} does not exist; create it or name another one`);
  const quick = opts.quick;
  const base = defaultStorageOptions(dir, quick);
  const plan: RunPlan = { warmup: opts.plan?.warmup ?? base.plan.warmup, runs: opts.plan?.runs ?? base.plan.runs };
  const startedAt = new Date();
  const t0 = performance.now();
  const want = new Set(opts.sections);
  // A section's own default plan, overridden by what the user asked for.
  const planFor = (def: RunPlan): RunPlan => ({ warmup: opts.plan?.warmup ?? def.warmup, runs: opts.plan?.runs ?? def.runs });

  const doc: Omit<BenchDocument, 'headlines'> = {
    schema: SCHEMA,
    ckptVersion: ckptVersion(),
    command: opts.command ?? 'ckpt bench',
    startedAt: startedAt.toISOString(),
    durationSeconds: 0,
    quick,
    loadAverage: { start: os.loadavg(), end: [] },
    method: { warmup: plan.warmup, runs: plan.runs, noisySpread: NOISY_SPREAD, statistic: 'median' },
    machine: describeMachine(ckptVersion()),
    sectionSeconds: {},
    storage: null,
    stream: null,
    coordinator: null,
    checkpoint: null,
  };

  // Every option is checked before anything is measured, so a typo never
  // costs a minute of benchmarking first.
  const storageOpts: StorageOptions = { ...base, ...opts.storage, dir, plan };
  if (want.has('storage') || want.has('stream') || want.has('checkpoint')) validateStorageOptions(storageOpts);
  const streamDef = defaultStreamOptions(dir, quick);
  const streamOpts: StreamOptions = { ...streamDef, ...opts.stream, dir, plan: planFor(streamDef.plan) };
  if (want.has('stream')) validateStreamOptions(streamOpts);
  const coordDef = defaultCoordinatorOptions(quick);
  const coordOpts: CoordinatorOptions = { ...coordDef, ...opts.coordinator, plan: planFor(coordDef.plan) };
  if (want.has('coordinator')) validateCoordinatorOptions(coordOpts);
  const ckDef = defaultCheckpointOptions(dir, quick);
  const ckOpts: CheckpointOptions = { ...ckDef, ...opts.checkpoint, dir, plan: planFor(ckDef.plan) };
  if (want.has('checkpoint')) validateCheckpointOptions(ckOpts);

  let storage: StorageResult | null = null;
  if (want.has('storage')) {
    // Storage errors (bad directory, no space) are the user's to fix: they abort the run.
    const t = performance.now();
    storage = await benchStorage(storageOpts, progress);
    doc.storage = storage;
    doc.sectionSeconds.storage = (performance.now() - t) / 1000;
  }
  // The reference for stream/checkpoint: this run's storage figures, or a
  // reduced measurement (no sweep) when storage was not requested.
  let reference: StorageReference | null = storage?.reference ?? null;
  const needReference = want.has('stream') || want.has('checkpoint');
  if (needReference && !reference) {
    const t = performance.now();
    const r = await benchStorage({ ...storageOpts, sweepBlockSizes: [], fsyncRounds: 1 }, progress);
    reference = r.reference;
    doc.sectionSeconds.storageReference = (performance.now() - t) / 1000;
  }

  if (want.has('stream')) {
    const t = performance.now();
    try {
      doc.stream = await benchStream(streamOpts, reference, progress);
    } catch (e) {
      if (e instanceof CkptError && e.code === 'ERR_CKPT_INVALID_ARGUMENT') throw e;
      doc.stream = unavailable(e);
    }
    doc.sectionSeconds.stream = (performance.now() - t) / 1000;
  }
  if (want.has('coordinator')) {
    const t = performance.now();
    try {
      doc.coordinator = await benchCoordinator(coordOpts, progress);
    } catch (e) {
      if (e instanceof CkptError && e.code === 'ERR_CKPT_INVALID_ARGUMENT') throw e;
      doc.coordinator = unavailable(e);
    }
    doc.sectionSeconds.coordinator = (performance.now() - t) / 1000;
  }
  if (want.has('checkpoint')) {
    const t = performance.now();
    try {
      doc.checkpoint = await benchCheckpoint(ckOpts, reference, progress);
    } catch (e) {
      if (e instanceof CkptError && e.code === 'ERR_CKPT_INVALID_ARGUMENT') throw e;
      doc.checkpoint = unavailable(e);
    }
    doc.sectionSeconds.checkpoint = (performance.now() - t) / 1000;
  }
  progress.done();
  doc.durationSeconds = (performance.now() - t0) / 1000;
  doc.loadAverage.end = os.loadavg();
  return { ...doc, headlines: headlines(doc) };
}
