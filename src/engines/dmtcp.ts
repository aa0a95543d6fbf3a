/**
 * DMTCP as a second engine. Found through $DMTCP_PREFIX, else `dmtcp_launch`
 * on PATH. Jobs run under `dmtcp_launch --join-coordinator` against ckpt's
 * coordinator, uncompressed (`--no-gzip`: gzip -1 is DMTCP's slowest part)
 * and with one directory per generation (unique checkpoint filenames) so
 * retention and "newest complete generation" work. Compression and
 * checksums happen after the job has resumed, outside the job (see
 * src/checkpoints.ts).
 */
import fs from 'node:fs';
import path from 'node:path';

import { nativeBinDir } from '../native.js';
import type { Engine, EngineContext, ExecSpec, RestartSource } from './engine.js';

/** The DMTCP installation prefix (the directory holding bin/dmtcp_launch), or null. */
export function dmtcpPrefix(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates: string[] = [];
  if (env.DMTCP_PREFIX) candidates.push(env.DMTCP_PREFIX);
  for (const dir of (env.PATH ?? '').split(':')) if (dir) candidates.push(path.dirname(dir));
  for (const prefix of candidates) {
    try {
      fs.accessSync(path.join(prefix, 'bin', 'dmtcp_launch'), fs.constants.X_OK);
      fs.accessSync(path.join(prefix, 'bin', 'dmtcp_restart'), fs.constants.X_OK);
      return path.resolve(prefix);
    } catch {
      /* next */
    }
  }
  return null;
}

/** Environment variables of DMTCP that would override what ckpt passes on the command line. */
const CLEARED = ['DMTCP_COORD_HOST', 'DMTCP_HOST', 'DMTCP_COORD_PORT', 'DMTCP_PORT', 'DMTCP_CHECKPOINT_DIR', 'DMTCP_GZIP', 'DMTCP_CHECKPOINT_INTERVAL'];

/** Our bind() wrapper (native/dmtcp_shim): lets restarted servers re-bind ports still in TIME_WAIT. */
export const REUSEADDR_SHIM = 'ckpt_dmtcp_reuseaddr.so';

function baseEnv(ctx: EngineContext): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const k of CLEARED) env[k] = undefined;
  // dmtcp_launch puts the user's LD_PRELOAD after its own libraries, which is
  // where the wrapper must sit; it stays in the process image across restarts.
  if (fs.existsSync(path.join(nativeBinDir(), REUSEADDR_SHIM))) {
    const shim = path.posix.join(ctx.libDir, REUSEADDR_SHIM);
    env.LD_PRELOAD = process.env.LD_PRELOAD ? `${shim}:${process.env.LD_PRELOAD}` : shim;
  }
  // Running as root (CI, containers) makes dmtcp_restart print a warning on every restart.
  env.DMTCP_QUIET = process.env.DMTCP_QUIET ?? '1';
  return env;
}

/**
 * DMTCP restores each process's process group. A process that led its group
 * when checkpointed (what a detached start makes of the job's first process)
 * is restored by forking, with the restarter exiting at once, which would
 * leave ckpt without a leader to watch and signal. So DMTCP's commands run
 * under a shell that stays as the group leader and waits for them.
 */
function underLeader(argv: string[]): string[] {
  return ['/bin/sh', '-c', '"$@"; exit $?', 'ckpt-dmtcp', ...argv];
}

export const dmtcpEngine: Engine = {
  name: 'dmtcp',
  formats: ['dmtcp'],

  unavailable() {
    return dmtcpPrefix()
      ? null
      : 'DMTCP is not installed: set DMTCP_PREFIX to its installation prefix (the directory holding bin/dmtcp_launch) or put dmtcp_launch on PATH; or use --engine builtin.';
  },

  hostDir() {
    const prefix = dmtcpPrefix();
    if (!prefix) throw new Error('DMTCP not found');
    return prefix;
  },

  launch(ctx: EngineContext, command: string[]): ExecSpec {
    return {
      argv: underLeader([
        path.join(ctx.engineDir, 'bin', 'dmtcp_launch'),
        '--join-coordinator',
        '--coord-host',
        ctx.coordHost,
        '--coord-port',
        String(ctx.coordPort),
        '--no-gzip',
        '--enable-unique-checkpoint-filenames',
        '--ckptdir',
        ctx.ckptdir,
        ...command,
      ]),
      env: baseEnv(ctx),
    };
  },

  async restart(ctx: EngineContext, src: RestartSource): Promise<ExecSpec> {
    return {
      argv: underLeader([
        path.join(ctx.engineDir, 'bin', 'dmtcp_restart'),
        '--join-coordinator',
        '--coord-host',
        ctx.coordHost,
        '--coord-port',
        String(ctx.coordPort),
        '--ckptdir',
        ctx.ckptdir,
        ...src.images.map((rel) => path.posix.join(ctx.ckptdir, rel)),
      ]),
      env: baseEnv(ctx),
    };
  },
};
