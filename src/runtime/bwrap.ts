/**
 * Containers under bubblewrap: a root-filesystem directory (an Apptainer
 * sandbox, a debootstrap tree, an unpacked OCI image) run in unprivileged
 * user, pid and mount namespaces.
 *
 * The container's / is a fresh tmpfs on which the image's top-level entries
 * are bound read-only (symlinks re-created), so mount points ckpt needs
 * (/.checkpoint, /.ckpt-engine) can be created without writing into the
 * image. The network namespace is shared: the job reaches its coordinator on
 * the host's loopback and serves its ports there, as `apptainer instance
 * start` does by default.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { CkptError } from '../errors.js';

/** Where the checkpoint directory appears inside the container. */
export const CONTAINER_CHECKPOINT_DIR = '/.checkpoint';
/** Where the checkpoint engine (ours or DMTCP) appears inside the container, read-only. */
export const CONTAINER_ENGINE_DIR = '/.ckpt-engine';
/** Where ckpt's own native files (build/Release) appear inside the container, read-only. */
export const CONTAINER_LIB_DIR = '/.ckpt-lib';
/** Entry points looked up in the image, in order (Apptainer's first). */
export const STARTSCRIPTS = ['.singularity.d/startscript', '.ckpt/startscript'] as const;

/** Top-level entries of the image that get their own fresh mounts instead of the image's. */
const FRESH = new Set(['proc', 'dev', 'tmp', 'sys', '.checkpoint', '.ckpt-engine', '.ckpt-lib', '.ckpt-log']);

export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** Parses Apptainer's `--bind SRC[:DST[:ro|rw]]`. */
export function parseBind(spec: string): BindMount {
  const parts = spec.split(':');
  if (parts.length > 3 || !parts[0]) {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid --bind ${JSON.stringify(spec)}: use SRC[:DST[:ro|rw]].`);
  }
  const source = path.resolve(parts[0]);
  const target = parts[1] || parts[0];
  const mode = parts[2] ?? 'rw';
  if (!path.isAbsolute(target) || target.split('/').includes('..')) {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid --bind ${JSON.stringify(spec)}: the destination must be an absolute path without "..".`);
  }
  if (mode !== 'ro' && mode !== 'rw') {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid --bind ${JSON.stringify(spec)}: the mode must be ro or rw.`);
  }
  if (!fs.existsSync(source)) throw new CkptError('ERR_CKPT_NOT_FOUND', `--bind source ${source} does not exist.`);
  return { source, target: path.posix.normalize(target), readOnly: mode === 'ro' };
}

/** The bwrap executable, or null when it is not installed. */
export function findBwrap(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.CKPT_BWRAP) return env.CKPT_BWRAP;
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, 'bwrap');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** Whether bwrap can create the namespaces we need here; returns null when it can, else why not. */
export function probeBwrap(bwrap: string | null = findBwrap()): string | null {
  if (!bwrap) return 'bubblewrap (bwrap) is not installed; install it with `apt-get install bubblewrap`, or use --host.';
  const r = spawnSync(bwrap, ['--unshare-user', '--unshare-pid', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status === 0) return null;
  return `bubblewrap cannot create user and pid namespaces here: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}. Check that unprivileged user namespaces are enabled (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone), or use --host.`;
}

/** Checks that `image` is a usable root-filesystem directory; returns its absolute path. */
export function validateImage(image: string): string {
  const root = path.resolve(image);
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch {
    throw new CkptError(
      'ERR_CKPT_NOT_FOUND',
      `Image ${image} does not exist. IMAGE is a root-filesystem directory (an Apptainer sandbox, a debootstrap tree, an unpacked OCI image); use --host to run on the host.`,
    );
  }
  if (!st.isDirectory()) {
    throw new CkptError(
      'ERR_CKPT_INVALID_ARGUMENT',
      `Image ${image} is not a directory. SIF files are not supported: unpack it with \`apptainer build --sandbox DIR ${image}\`, or use --host.`,
    );
  }
  return root;
}

/** The entry point of an image: its start script run by /bin/sh, with `args` appended. */
export function entrypoint(root: string, args: string[]): string[] {
  for (const rel of STARTSCRIPTS) {
    if (fs.existsSync(path.join(root, rel))) return ['/bin/sh', `/${rel}`, ...args];
  }
  throw new CkptError(
    'ERR_CKPT_NOT_FOUND',
    `Image ${root} has no start script: add ${STARTSCRIPTS.map((s) => `/${s}`).join(' or ')} (run with the instance's arguments), or use --host -- CMD.`,
  );
}

export interface ContainerSpec {
  /** Absolute path of the root-filesystem directory. */
  root: string;
  /** Host checkpoint directory, bound read-write at /.checkpoint (null: none). */
  checkpointDir: string | null;
  /** Host directory of the engine, bound read-only at /.ckpt-engine (null: none). */
  engineDir: string | null;
  /** Host directory of ckpt's native files, bound read-only at /.ckpt-lib (null: none). */
  libDir: string | null;
  /** Extra binds (Apptainer's --bind). */
  binds: BindMount[];
  /** Command to run inside, with container paths. */
  command: string[];
  /** Variables set (or, when undefined, removed) inside the container only. */
  env?: Record<string, string | undefined>;
  /** Extra capabilities inside the user namespace (e.g. CAP_CHECKPOINT_RESTORE). */
  capAdd?: string[];
  hostname?: string;
}

/** The full bwrap command line for `spec`. */
export function bwrapArgv(bwrap: string, spec: ContainerSpec): string[] {
  const a: string[] = [bwrap, '--unshare-user', '--unshare-pid', '--unshare-ipc'];
  if (spec.hostname) a.push('--unshare-uts', '--hostname', spec.hostname);
  a.push('--tmpfs', '/');
  for (const entry of fs.readdirSync(spec.root, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
    if (FRESH.has(entry.name)) continue;
    const src = path.join(spec.root, entry.name);
    const dst = `/${entry.name}`;
    if (entry.isSymbolicLink()) a.push('--symlink', fs.readlinkSync(src), dst);
    else if (entry.isDirectory() || entry.isFile()) a.push('--ro-bind', src, dst);
  }
  a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  if (spec.checkpointDir) a.push('--bind', spec.checkpointDir, CONTAINER_CHECKPOINT_DIR);
  if (spec.engineDir) a.push('--ro-bind', spec.engineDir, CONTAINER_ENGINE_DIR);
  if (spec.libDir) a.push('--ro-bind', spec.libDir, CONTAINER_LIB_DIR);
  for (const b of spec.binds) a.push(b.readOnly ? '--ro-bind' : '--bind', b.source, b.target);
  for (const cap of spec.capAdd ?? []) a.push('--cap-add', cap);
  for (const [k, v] of Object.entries(spec.env ?? {})) {
    if (v === undefined) a.push('--unsetenv', k);
    else a.push('--setenv', k, v);
  }
  a.push('--chdir', '/', '--', ...spec.command);
  return a;
}
