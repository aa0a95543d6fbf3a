/**
 * The on-disk state of ckpt under $CKPT_HOME (default: $XDG_DATA_HOME/ckpt,
 * i.e. ~/.local/share/ckpt).
 *
 * Layout:
 *   <home>/checkpoints/<name>/        a named checkpoint (mode 0700); engines
 *                                     write their images here (made 0600)
 *   <home>/instances/registry.json    the registry of running jobs/instances
 *   <home>/instances/registry.lock    its lock file
 *   <home>/run/<kind>-<name>/         per-run files: logs, coordinator port file
 *
 * Names of checkpoints, jobs and instances share one documented rule (see
 * NAME_RULE): they become directory names, so they may never contain a path
 * separator or be "." / "..".
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { CkptError } from './errors.js';

/** Longest accepted name, in characters (one path component, with room to spare). */
export const NAME_MAX = 64;
/** Names start with a letter or digit, then letters, digits, '.', '_' or '-'. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Human-readable form of the name rule, used in error messages and docs. */
export const NAME_RULE = `1-${NAME_MAX} characters from A-Z a-z 0-9 . _ -, starting with a letter or digit`;

export type NameKind = 'checkpoint' | 'instance' | 'job';

/**
 * Words that cannot be job names because `ckpt checkpoint <word>` is an
 * Apptainer-style subcommand.
 */
export const RESERVED_JOB_NAMES: readonly string[] = ['create', 'list', 'delete', 'instance', 'help'];

/** Throws ERR_CKPT_INVALID_ARGUMENT unless `name` is a valid `kind` name; returns it. */
export function validateName(name: unknown, kind: NameKind): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `A ${kind} name is required (${NAME_RULE}).`);
  }
  const shown = JSON.stringify(name);
  if (name.length > NAME_MAX) {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid ${kind} name ${shown.slice(0, 40)}…: longer than ${NAME_MAX} characters.`);
  }
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid ${kind} name ${shown}: it must not contain path separators (${NAME_RULE}).`);
  }
  if (name === '.' || name === '..' || !NAME_RE.test(name)) {
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `Invalid ${kind} name ${shown}: use ${NAME_RULE}.`);
  }
  if (kind === 'job' && RESERVED_JOB_NAMES.includes(name)) {
    throw new CkptError(
      'ERR_CKPT_INVALID_ARGUMENT',
      `Invalid job name ${shown}: it is reserved for \`ckpt checkpoint ${name}\`. Choose another name.`,
    );
  }
  return name;
}

/** The state directory: $CKPT_HOME, else $XDG_DATA_HOME/ckpt, else ~/.local/share/ckpt. */
export function ckptHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CKPT_HOME) return path.resolve(env.CKPT_HOME);
  const xdg = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(os.homedir(), '.local', 'share');
  return path.join(xdg, 'ckpt');
}

/** Creates `dir` (and parents) and forces mode 0700 on it regardless of the umask. */
export function ensurePrivateDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new CkptError('ERR_CKPT_IO', `${dir} exists but is not a directory.`);
  if ((st.mode & 0o777) !== 0o700 && st.uid === process.getuid?.()) fs.chmodSync(dir, 0o700);
  return dir;
}

/** Paths of the store; every accessor validates names first. */
export class Store {
  readonly home: string;

  constructor(home: string = ckptHome()) {
    this.home = home;
  }

  get checkpointsDir(): string {
    return path.join(this.home, 'checkpoints');
  }

  get instancesDir(): string {
    return path.join(this.home, 'instances');
  }

  get runRoot(): string {
    return path.join(this.home, 'run');
  }

  /** Directory of the named checkpoint (not created). */
  checkpointDir(name: string): string {
    return path.join(this.checkpointsDir, validateName(name, 'checkpoint'));
  }

  /** Per-run directory for logs and port files of a job or instance (created, 0700). */
  runDir(kind: 'job' | 'instance', name: string): string {
    ensurePrivateDir(this.runRoot);
    return ensurePrivateDir(path.join(this.runRoot, `${kind}-${validateName(name, kind)}`));
  }

  /** Makes sure the store's top-level directories exist with mode 0700. */
  init(): void {
    ensurePrivateDir(this.home);
    ensurePrivateDir(this.checkpointsDir);
    ensurePrivateDir(this.instancesDir);
  }

  hasCheckpoint(name: string): boolean {
    try {
      return fs.statSync(this.checkpointDir(name)).isDirectory();
    } catch {
      return false;
    }
  }

  /** Creates a named checkpoint directory; ERR_CKPT_EXISTS when it already exists. */
  createCheckpoint(name: string): string {
    this.init();
    const dir = this.checkpointDir(name);
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new CkptError('ERR_CKPT_EXISTS', `Checkpoint "${name}" already exists (${dir}). Use it, or delete it first with \`ckpt checkpoint delete ${name}\`.`);
      }
      throw new CkptError('ERR_CKPT_IO', `Cannot create ${dir}: ${(err as Error).message}`, { cause: err });
    }
    fs.chmodSync(dir, 0o700);
    return dir;
  }

  /** The directory of an existing named checkpoint; ERR_CKPT_NOT_FOUND otherwise. */
  requireCheckpoint(name: string): string {
    const dir = this.checkpointDir(name);
    if (!this.hasCheckpoint(name)) {
      throw new CkptError(
        'ERR_CKPT_NOT_FOUND',
        `No checkpoint named "${name}" in ${this.checkpointsDir}. Create it with \`ckpt checkpoint create ${name}\` or see \`ckpt checkpoint list\`.`,
      );
    }
    return dir;
  }

  /** Names of all checkpoints, sorted. */
  listCheckpoints(): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.checkpointsDir, { withFileTypes: true });
    } catch {
      return [];
    }
    return entries
      .filter((e) => e.isDirectory() && NAME_RE.test(e.name) && e.name.length <= NAME_MAX)
      .map((e) => e.name)
      .sort();
  }

  /**
   * Removes a checkpoint directory. The directory is first renamed to a
   * hidden temporary name so a concurrent reader never sees half of it.
   */
  async deleteCheckpoint(name: string): Promise<void> {
    const dir = this.requireCheckpoint(name);
    const doomed = path.join(this.checkpointsDir, `.deleting-${name}-${process.pid}-${Date.now()}`);
    await fsp.rename(dir, doomed);
    await fsp.rm(doomed, { recursive: true, force: true });
  }
}

/** Summary of the files in a directory tree: total bytes and newest mtime. */
export interface DirUsage {
  bytes: number;
  files: number;
  newestMtimeMs: number | null;
}

/**
 * Visits every entry below `dir` (directories before their contents; symlinks
 * are not followed). Entries that vanish or cannot be read are skipped: the
 * tree may change while it is walked.
 */
function walkTree(dir: string, visit: (p: string, e: fs.Dirent) => void): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    try {
      visit(p, e);
    } catch {
      /* removed meanwhile, or not ours */
    }
    if (e.isDirectory()) walkTree(p, visit);
  }
}

/** Sums file sizes below `dir` (not following symlinks). */
export function dirUsage(dir: string): DirUsage {
  const out: DirUsage = { bytes: 0, files: 0, newestMtimeMs: null };
  walkTree(dir, (p, e) => {
    if (!e.isFile()) return;
    const st = fs.statSync(p);
    out.bytes += st.size;
    out.files++;
    if (out.newestMtimeMs === null || st.mtimeMs > out.newestMtimeMs) out.newestMtimeMs = st.mtimeMs;
  });
  return out;
}

/**
 * Restricts every regular file below `dir` to mode 0600 and every directory
 * to 0700 (images may hold secrets from the process's memory). Engines create
 * files with the job's umask; this runs after each durable checkpoint.
 */
export function securePermissions(dir: string): void {
  try {
    fs.chmodSync(dir, 0o700);
  } catch {
    /* not ours */
  }
  walkTree(dir, (p, e) => {
    // Restart scripts stay executable by their owner.
    if (e.isDirectory()) fs.chmodSync(p, 0o700);
    else if (e.isFile()) fs.chmodSync(p, e.name.endsWith('.sh') ? 0o700 : 0o600);
  });
}

/** Writes `data` to `file` atomically: temp name, fsync, rename, fsync of the directory. */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(path.dirname(file));
}

/** fsyncs a directory so a rename inside it survives a crash. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* some filesystems refuse fsync on directories; the rename is still atomic */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * fsyncs every regular file below `dir` (and the directories), for images
 * written by an engine that does not sync them itself (DMTCP's raw images).
 */
export function fsyncTree(dir: string, opts: { depth?: number } = {}): void {
  const maxDepth = opts.depth ?? Infinity;
  const walk = (d: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (depth < maxDepth) walk(p, depth + 1);
      } else if (e.isFile()) {
        let fd: number | undefined;
        try {
          fd = fs.openSync(p, 'r');
          fs.fsyncSync(fd);
        } catch {
          /* removed meanwhile */
        } finally {
          if (fd !== undefined) fs.closeSync(fd);
        }
      }
    }
    fsyncDir(d);
  };
  walk(dir, 0);
}
