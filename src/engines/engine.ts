/**
 * What ckpt needs from a checkpoint engine (built-in or DMTCP): how to launch
 * a command under it, how to restart a checkpoint, and which host directory
 * to inject into containers. The job and instance services use only this.
 */
import { CkptError } from '../errors.js';
import type { EngineName } from '../instances.js';

export const ENGINES: readonly EngineName[] = ['builtin', 'dmtcp'];

/** Where things are, as seen by the job (host paths, or container paths under bwrap). */
export interface EngineContext {
  coordHost: string;
  coordPort: number;
  /** Checkpoint directory as the job sees it. */
  ckptdir: string;
  /** Engine directory as the job sees it (the host dir, or /.ckpt-engine in a container). */
  engineDir: string;
  /** ckpt's native files (build/Release) as the job sees them (or /.ckpt-lib in a container). */
  libDir: string;
  /** True when running inside a bwrap container. */
  container: boolean;
}

export interface ExecSpec {
  argv: string[];
  /** Variables added to (or, with value undefined, removed from) the environment. */
  env: Record<string, string | undefined>;
  /** Extra capabilities the job needs inside a container's user namespace. */
  capAdd?: string[];
}

/** A complete generation chosen for restart. */
export interface RestartSource {
  /** Host directory of the checkpoint (the ckptdir). */
  dir: string;
  generation: number;
  format: 'ckpt' | 'dmtcp';
  /** Image paths relative to `dir`. */
  images: string[];
}

export interface Engine {
  readonly name: EngineName;
  /** Null when usable here, else a message saying what to install or build. */
  unavailable(): string | null;
  /** Host directory injected read-only into containers. */
  hostDir(): string;
  /** Formats of images this engine restarts. */
  readonly formats: ReadonlyArray<'ckpt' | 'dmtcp'>;
  launch(ctx: EngineContext, command: string[]): ExecSpec;
  /** Prepares (if needed) and returns how to restart `src`. */
  restart(ctx: EngineContext, src: RestartSource): Promise<ExecSpec>;
}

/** Validates an --engine value. */
export function parseEngineName(value: unknown): EngineName {
  if (value === 'builtin' || value === 'dmtcp') return value;
  throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Unknown engine ${JSON.stringify(value)}: use ${ENGINES.join(' or ')}.`);
}

/** The adapter for `name` (loaded lazily: each pulls in its own modules). */
export async function getEngine(name: EngineName): Promise<Engine> {
  if (name === 'dmtcp') return (await import('./dmtcp.js')).dmtcpEngine;
  return (await import('./builtin-adapter.js')).builtinEngine;
}

/** getEngine + a clear error when it cannot run here. */
export async function requireEngine(name: EngineName): Promise<Engine> {
  const engine = await getEngine(name);
  const why = engine.unavailable();
  if (why) throw new CkptError('ERR_CKPT_UNSUPPORTED', why);
  return engine;
}
