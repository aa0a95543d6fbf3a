/**
 * The built-in checkpoint engine: how to run a command under it, how to
 * restart one of its checkpoints, and how to check an image before
 * restarting. Native parts (docs/engine.md):
 *
 * - `libckpt.so`: preloaded into every process of the job; joins the
 *   coordinator as a DMTCP-protocol worker and writes images in the ckpt
 *   image format to `<ckptdir>/<computation>/gen-<N>/`.
 * - `ckpt-restart`: static launcher / restarter / checker. `launch` starts the
 *   job inside its own user+pid+mount namespaces (so a restart can restore
 *   every PID and TID), `restart` re-creates the process tree from images,
 *   `check` runs the restart checks on their own.
 *
 * API (used by the CLI's job service through src/engines/builtin-adapter.ts):
 *   launchSpec(ctx, command)  -> ExecSpec     run `command` under the engine
 *   restartSpec(ctx, src)     -> ExecSpec     restart a complete generation
 *   checkImage(paths)         -> CheckReport  same checks the restarter runs
 *   unavailable()             -> string|null  why the engine cannot run here
 *   builtinEngine                              the Engine interface object
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { nativeBinDir } from '../native.js';
import type { Engine, EngineContext, ExecSpec, RestartSource } from './engine.js';

/** File names of the engine's native parts in build/Release. */
export const LIBCKPT = 'libckpt.so';
export const RESTARTER = 'ckpt-restart';

/** Variables the engine reads in the job (all optional). */
export const ENGINE_ENV = {
  /** Coordinator host and port (DMTCP names, so DMTCP tooling interoperates). */
  host: 'DMTCP_COORD_HOST',
  port: 'DMTCP_COORD_PORT',
  /** Checkpoint root: images go to <root>/<computation>/gen-<N>/. */
  dir: 'CKPT_DIR',
  /** "none" writes uncompressed images (default: zstd level 1). */
  compress: 'CKPT_COMPRESS',
  /** "0": write images (and read them at restart) through the page cache instead of O_DIRECT. */
  oDirect: 'CKPT_O_DIRECT',
  /** "1": at restart, also advise dense anonymous regions without saved advice as huge pages. */
  restoreThp: 'CKPT_RESTORE_THP',
  /** "0": at restart, do not populate pages ahead of the reads (default: a helper task populates them). */
  restorePopulate: 'CKPT_RESTORE_POPULATE',
  /** At restart, how far (MiB) page population may run ahead of the reads (default 256; 0: no limit). */
  restoreLead: 'CKPT_RESTORE_LEAD',
  /** At restart, raw reads in flight, 1-8 (default 2). */
  restoreDepth: 'CKPT_RESTORE_DEPTH',
  /** Log level of the worker library: 0 quiet, 1 warnings (default), 2 notes. */
  log: 'CKPT_LOG',
} as const;

/** Internal variables of the worker library that must never leak from the caller's environment. */
const INTERNAL = ['CKPT_COORD_OWNER', 'CKPT_UPID', 'CKPT_COMP', 'DMTCP_CHECKPOINT_DIR', 'DMTCP_HOST', 'DMTCP_PORT'];

export interface BuiltinOptions {
  /** Skip the user/pid namespaces (PIDs then change across restarts). */
  noNamespaces?: boolean;
  /** Write images uncompressed. */
  uncompressed?: boolean;
  /** Checkpoint interval in seconds (coordinator-driven); 0 = manual. */
  interval?: number;
}

/** Null when the engine's files are built and the platform is supported, else what to do. */
export function unavailable(binDir: string = nativeBinDir()): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return `The built-in engine supports Linux on x86_64 only (this is ${process.platform}/${process.arch}).`;
  for (const f of [LIBCKPT, RESTARTER]) {
    if (!fs.existsSync(path.join(binDir, f)))
      return `The built-in engine is not built (${path.join(binDir, f)} is missing): run \`npm install\` (or scripts/dev-build.sh).`;
  }
  return null;
}

function validateCtx(ctx: EngineContext): void {
  if (!ctx.coordHost) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'The coordinator host is empty.');
  if (!Number.isInteger(ctx.coordPort) || ctx.coordPort < 1 || ctx.coordPort > 65535)
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid coordinator port ${ctx.coordPort}.`);
  if (!path.isAbsolute(ctx.ckptdir))
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `The checkpoint directory must be absolute: ${ctx.ckptdir}`);
}

function baseEnv(ctx: EngineContext, opts: BuiltinOptions): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const k of INTERNAL) env[k] = undefined;
  env[ENGINE_ENV.host] = ctx.coordHost;
  env[ENGINE_ENV.port] = String(ctx.coordPort);
  env[ENGINE_ENV.dir] = ctx.ckptdir;
  if (opts.uncompressed) env[ENGINE_ENV.compress] = 'none';
  if (opts.interval !== undefined) {
    if (!Number.isInteger(opts.interval) || opts.interval < 0)
      throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid checkpoint interval ${opts.interval}.`);
    env.DMTCP_CHECKPOINT_INTERVAL = String(opts.interval);
  }
  return env;
}

/** How to run `command` under the engine. */
export function launchSpec(ctx: EngineContext, command: string[], opts: BuiltinOptions = {}): ExecSpec {
  validateCtx(ctx);
  if (command.length === 0 || !command[0]) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'No command to launch.');
  const argv = [path.posix.join(ctx.libDir, RESTARTER), 'launch'];
  if (opts.noNamespaces) argv.push('--no-ns');
  argv.push('--', ...command);
  return { argv, env: baseEnv(ctx, opts) };
}

/** How to restart a complete generation (all its images at once: the process tree is rebuilt from them). */
export function restartSpec(ctx: EngineContext, src: RestartSource, opts: BuiltinOptions = {}): ExecSpec {
  validateCtx(ctx);
  if (src.format !== 'ckpt')
    throw new CkptError('ERR_CKPT_UNSUPPORTED', 'The built-in engine restarts ckpt images only; use --engine dmtcp for DMTCP images.');
  if (src.images.length === 0) throw new CkptError('ERR_CKPT_INCOMPLETE', `Generation ${src.generation} has no images.`);
  const argv = [path.posix.join(ctx.libDir, RESTARTER), 'restart'];
  if (opts.noNamespaces) argv.push('--no-ns');
  for (const rel of src.images) {
    if (path.isAbsolute(rel) || rel.split('/').includes('..'))
      throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Image paths must be relative to the checkpoint directory: ${rel}`);
    argv.push(path.posix.join(ctx.ckptdir, rel));
  }
  return { argv, env: baseEnv(ctx, opts) };
}

export interface CheckIssue {
  level: 'error' | 'warning';
  message: string;
}
export interface CheckedProcess {
  path: string;
  pid: number;
  ppid: number;
  program: string;
  generation: number;
  regions: number;
  fds: number;
  dataBytes: number;
}
export interface CheckReport {
  /** True when the images can be restarted on this machine now. */
  ok: boolean;
  processes: CheckedProcess[];
  issues: CheckIssue[];
}

/**
 * Runs the restarter's checks (CPU features, vDSO layout, mapped and open
 * files, ports, address collisions) on image files or directories (a
 * generation directory, or a computation directory with `latest`).
 */
export function checkImage(paths: string[], binDir: string = nativeBinDir()): CheckReport {
  if (paths.length === 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', 'Name an image or a checkpoint directory to check.');
  const why = unavailable(binDir);
  if (why) throw new CkptError('ERR_CKPT_UNSUPPORTED', why);
  for (const p of paths)
    if (!fs.existsSync(p)) throw new CkptError('ERR_CKPT_NOT_FOUND', `No such image or directory: ${p}`);
  const r = spawnSync(path.join(binDir, RESTARTER), ['check', '--json', ...paths], { encoding: 'utf8' });
  if (r.error) throw new CkptError('ERR_CKPT_IO', `Cannot run ${RESTARTER}: ${r.error.message}`);
  const out = r.stdout.trim();
  if (!out.startsWith('{')) {
    const msg = (r.stderr || out).trim().replace(/^ckpt-restart: /, '');
    throw new CkptError(r.status === 3 ? 'ERR_CKPT_CORRUPT' : 'ERR_CKPT_INVALID_ARGUMENT', msg || 'check failed');
  }
  return JSON.parse(out) as CheckReport;
}

/** The Engine interface object for the job service. */
export const builtinEngine: Engine = {
  name: 'builtin',
  formats: ['ckpt'],
  unavailable: () => unavailable(),
  hostDir: () => nativeBinDir(),
  launch: (ctx, command) => launchSpec(ctx, command),
  restart: async (ctx, src) => restartSpec(ctx, src),
};
