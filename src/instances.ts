/**
 * The registry of running jobs (`ckpt launch`) and instances
 * (`ckpt instance start`): which processes, coordinator, ports, logs and
 * checkpoint each one uses.
 *
 * Concurrency: every read-modify-write holds an exclusive lock file
 * (created with O_EXCL, holding the owner's pid and start time) and replaces
 * registry.json by temp name + fsync + rename, so concurrent `ckpt`
 * invocations never see or leave a torn file. A lock whose owner died is
 * taken over. Entries whose leader process is gone (pid + start time from
 * /proc no longer match) are stale and are removed on the next access.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { CkptError } from './errors.js';
import { isAlive, procId, type ProcId } from './procfs.js';
import { ensurePrivateDir, Store, writeFileAtomic } from './store.js';

export type EntryKind = 'job' | 'instance';
export type EngineName = 'builtin' | 'dmtcp';

/** The coordinator a job or instance talks to. */
export interface CoordinatorRef {
  host: string;
  port: number;
  /** Set when ckpt started the coordinator (and therefore stops it). */
  proc: ProcId | null;
  portFile: string | null;
}

export interface RegistryEntry {
  kind: EntryKind;
  name: string;
  /** Null for instances started without checkpoint control. */
  engine: EngineName | null;
  /** The leader process: while it lives, the job or instance is running. */
  leader: ProcId;
  /** Process group of the leader (detached runs get their own group). */
  pgid: number | null;
  coordinator: CoordinatorRef;
  /** Named checkpoint (instances, and jobs started with --name) or null. */
  checkpoint: string | null;
  /** Where images are written, on the host (null without checkpoint control). */
  checkpointDir: string | null;
  /** Root-filesystem directory for container instances; null on the host. */
  image: string | null;
  command: string[];
  runDir: string;
  log: string | null;
  /** TCP ports the job listened on when last observed. */
  ports: number[];
  keep: number | null;
  interval: number | null;
  detached: boolean;
  startedAt: string;
  /** Set by `ckpt restart` / `--dmtcp-restart`. */
  restartedFrom: { dir: string; generation: number | null } | null;
  /** This run created its named checkpoint (it is removed again if it stays empty). */
  createdCheckpoint?: boolean;
}

interface RegistryFile {
  version: 1;
  entries: RegistryEntry[];
}

/**
 * A lock file that is still empty after this long belongs to a process that
 * died between creating and writing it. (A lock naming a live owner is
 * never broken, however long it is held.)
 */
export const LOCK_STALE_MS = 30_000;
/** How long to wait for the lock before giving up with ERR_CKPT_BUSY. */
export const LOCK_WAIT_MS = 20_000;

/**
 * Runs `fn` while holding the exclusive lock file `lockFile`; waits up to
 * `waitMs` for it (then ERR_CKPT_BUSY).
 */
export async function withLockFile<T>(lockFile: string, fn: () => T | Promise<T>, waitMs: number = LOCK_WAIT_MS): Promise<T> {
  const me = procId(process.pid);
  const token = `${process.pid} ${me?.startTime ?? 0} ${Math.random().toString(36).slice(2)}`;
  const deadline = Date.now() + waitMs;
  let delay = 2;
  for (;;) {
    try {
      const fd = fs.openSync(lockFile, 'wx', 0o600);
      fs.writeSync(fd, token);
      fs.closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CkptError('ERR_CKPT_IO', `Cannot create lock ${lockFile}: ${(err as Error).message}`, { cause: err });
      }
    }
    breakStaleLock(lockFile);
    if (Date.now() > deadline) {
      throw new CkptError(
        'ERR_CKPT_BUSY',
        `Timed out waiting for ${lockFile} (held by: ${readLock(lockFile) ?? 'unknown'}). If no other ckpt command runs, remove that file.`,
      );
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
  try {
    return await fn();
  } finally {
    // Remove the lock only if it is still ours (it may have been broken as stale).
    if (readLock(lockFile) === token) fs.rmSync(lockFile, { force: true });
  }
}

function readLock(lockFile: string): string | null {
  try {
    return fs.readFileSync(lockFile, 'utf8');
  } catch {
    return null;
  }
}

/** Removes `lockFile` when its owner is dead (or it stayed empty for LOCK_STALE_MS). */
function breakStaleLock(lockFile: string): void {
  const content = readLock(lockFile);
  if (content === null) return;
  const [pidText, startText] = content.split(' ');
  const owner = { pid: Number(pidText), startTime: Number(startText) };
  let stale: boolean;
  if (content.length > 0) {
    stale = !isAlive(owner);
  } else {
    // An empty file is a lock whose owner died between create and write, or
    // is about to write: only its age can tell.
    try {
      stale = Date.now() - fs.statSync(lockFile).mtimeMs > LOCK_STALE_MS;
    } catch {
      return;
    }
  }
  if (!stale) return;
  // Take the stale lock away under a unique name, then check that what we took
  // is what we judged stale; if a live owner got it meanwhile, put it back.
  const grabbed = `${lockFile}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    fs.renameSync(lockFile, grabbed);
  } catch {
    return;
  }
  if (readLock(grabbed) === content) {
    fs.rmSync(grabbed, { force: true });
  } else {
    try {
      fs.linkSync(grabbed, lockFile);
    } catch {
      /* someone else holds it now; theirs wins */
    }
    fs.rmSync(grabbed, { force: true });
  }
}

/** True when the entry's leader process is still running. */
export function entryAlive(e: RegistryEntry): boolean {
  return isAlive(e.leader);
}

export class Registry {
  readonly store: Store;

  constructor(store: Store = new Store()) {
    this.store = store;
  }

  get file(): string {
    return path.join(this.store.instancesDir, 'registry.json');
  }

  get lockFile(): string {
    return path.join(this.store.instancesDir, 'registry.lock');
  }

  private read(): RegistryFile {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, entries: [] };
      throw new CkptError('ERR_CKPT_IO', `Cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const data = JSON.parse(text) as RegistryFile;
      if (data.version !== 1 || !Array.isArray(data.entries)) throw new Error('unexpected layout');
      return data;
    } catch (err) {
      // Writes are atomic, so this is damage from outside. Keep the file for
      // inspection and start afresh rather than refusing every command.
      const aside = `${this.file}.corrupt-${Date.now()}`;
      fs.renameSync(this.file, aside);
      process.emitWarning(`ckpt: the instance registry was unreadable (${(err as Error).message}); it was moved to ${aside}.`);
      return { version: 1, entries: [] };
    }
  }

  private write(data: RegistryFile): void {
    writeFileAtomic(this.file, `${JSON.stringify(data, null, 2)}\n`);
  }

  /**
   * Runs `fn` on the registry under the lock, after removing stale entries;
   * `fn` may modify `entries` in place. Returns what `fn` returns.
   */
  async transaction<T>(fn: (entries: RegistryEntry[], stale: RegistryEntry[]) => T | Promise<T>): Promise<T> {
    ensurePrivateDir(this.store.home);
    ensurePrivateDir(this.store.instancesDir);
    return withLockFile(this.lockFile, async () => {
      const data = this.read();
      const before = JSON.stringify(data.entries);
      const live = data.entries.filter(entryAlive);
      const stale = data.entries.filter((e) => !entryAlive(e));
      for (const e of stale) cleanupStale(e);
      const result = await fn(live, stale);
      if (JSON.stringify(live) !== before) this.write({ version: 1, entries: live });
      return result;
    });
  }

  /** Live entries, optionally of one kind (stale ones are removed as a side effect). */
  async list(kind?: EntryKind): Promise<RegistryEntry[]> {
    const all = await this.transaction((entries) => entries.map((e) => ({ ...e })));
    return kind ? all.filter((e) => e.kind === kind) : all;
  }

  async get(kind: EntryKind, name: string): Promise<RegistryEntry | null> {
    return (await this.list(kind)).find((e) => e.name === name) ?? null;
  }

  /** The live entry `kind`/`name`; ERR_CKPT_NOT_FOUND with a hint otherwise. */
  async require(kind: EntryKind, name: string): Promise<RegistryEntry> {
    const all = await this.list(kind);
    const e = all.find((x) => x.name === name);
    if (e) return e;
    const known = all.map((x) => x.name);
    const list = kind === 'instance' ? 'ckpt instance list' : 'ckpt list';
    throw new CkptError(
      'ERR_CKPT_NOT_FOUND',
      `No running ${kind} named "${name}". ${known.length ? `Running: ${known.join(', ')}.` : `None is running.`} See \`${list}\`.`,
    );
  }

  /**
   * Reserves `kind`/`name` (ERR_CKPT_EXISTS when a live entry has it) by
   * adding `entry`. Callers add a placeholder leader first (their own pid)
   * and update it once the real processes exist.
   */
  async add(entry: RegistryEntry): Promise<void> {
    await this.transaction((entries) => {
      if (entries.some((e) => e.kind === entry.kind && e.name === entry.name)) {
        const hint =
          entry.kind === 'instance'
            ? `Stop it with \`ckpt instance stop ${entry.name}\` or choose another name.`
            : `Stop it with \`ckpt stop ${entry.name}\` or choose another --name.`;
        throw new CkptError('ERR_CKPT_EXISTS', `${entry.kind === 'instance' ? 'An' : 'A'} ${entry.kind} named "${entry.name}" is already running. ${hint}`);
      }
      entries.push(entry);
    });
  }

  /** Applies `patch` to the live entry; returns the updated entry or null. */
  async update(kind: EntryKind, name: string, patch: Partial<RegistryEntry>): Promise<RegistryEntry | null> {
    return this.transaction((entries) => {
      const e = entries.find((x) => x.kind === kind && x.name === name);
      if (!e) return null;
      Object.assign(e, patch);
      return { ...e };
    });
  }

  /** Removes an entry if present and, when `leader` is given, only if it still has that leader. */
  async remove(kind: EntryKind, name: string, leader?: ProcId): Promise<boolean> {
    return this.transaction((entries) => {
      const i = entries.findIndex(
        (x) => x.kind === kind && x.name === name && (!leader || (x.leader.pid === leader.pid && x.leader.startTime === leader.startTime)),
      );
      if (i < 0) return false;
      entries.splice(i, 1);
      return true;
    });
  }

  /** Live instances and jobs that use the named checkpoint. */
  async usersOf(checkpoint: string): Promise<RegistryEntry[]> {
    return (await this.list()).filter((e) => e.checkpoint === checkpoint);
  }
}

/**
 * A stale entry's leader is gone; a coordinator that ckpt started for it and
 * that still runs (same pid and start time) has no one left to serve.
 */
function cleanupStale(e: RegistryEntry): void {
  const c = e.coordinator.proc;
  if (c && isAlive(c)) {
    try {
      process.kill(c.pid, 'SIGTERM');
    } catch {
      /* gone meanwhile */
    }
  }
}
