/**
 * Puts ckpt's coordinator in place of DMTCP's, where DMTCP looks for it.
 *
 * `dmtcp_launch` and `dmtcp_restart` start a coordinator by exec'ing
 * `<directory of their own executable>/dmtcp_coordinator` (they do not search
 * PATH; spec §9.2). So the only way to have unmodified DMTCP auto-start our
 * coordinator is a file at exactly that path. We put a small shell script
 * there that execs our native coordinator by absolute path (an exec keeps the
 * listening socket on fd 821, the arguments and the environment), and keep
 * DMTCP's original next to it as `dmtcp_coordinator.orig`. Uninstalling
 * renames the original back, so it is restored bit for bit (same inode).
 *
 * Every change is atomic: the shim is written to a temporary name, fsynced
 * and renamed over the target; the original is preserved with a hard link
 * before that rename, so there is never a moment without a
 * `dmtcp_coordinator` in the directory.
 */
import { constants as fsc, promises as fs } from 'node:fs';
import path from 'node:path';

import { CkptError } from './errors.js';
import { nativeBinDir } from './native.js';

/** Second line of every shim we write; how we recognise our own file. */
const SHIM_MARKER = '# ckpt-coordinator-shim 1';
/** Environment variable that tells our coordinator where DMTCP's binaries are (for `dmt_rstr_cmd`). */
export const DMTCP_BINDIR_ENV = 'CKPT_DMTCP_BIN_DIR';
const TARGET = 'dmtcp_coordinator';
const ORIGINAL = 'dmtcp_coordinator.orig';
/** Reading this much of a file is enough to find the marker. */
const SNIFF_BYTES = 4096;

export interface CoordinatorInstallOptions {
  /** DMTCP installation prefix (the directory holding bin/dmtcp_launch). */
  dmtcpPrefix: string;
  /** The native coordinator the shim runs. Default: ckpt's build/Release/dmtcp_coordinator. */
  coordinator?: string;
}

export interface CoordinatorInstallResult {
  /** What happened. */
  action: 'installed' | 'updated' | 'unchanged' | 'uninstalled' | 'not-installed';
  /** DMTCP's binary directory (where dmtcp_launch really lives, symlinks resolved). */
  bindir: string;
  /** Path of the shim (`<bindir>/dmtcp_coordinator`). */
  shim: string;
  /** Where DMTCP's own coordinator is kept (`<bindir>/dmtcp_coordinator.orig`), or null when there is none. */
  original: string | null;
  /** The native coordinator the shim execs. */
  coordinator: string;
  /** The `bins:` entry for Apptainer's dmtcp-conf.yaml. */
  apptainerBinsEntry: string;
}

/** Single-quotes `s` for /bin/sh. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The shim's text. Our own wording; nothing here comes from DMTCP. */
export function shimScript(coordinator: string, bindir: string): string {
  const orig = path.join(bindir, ORIGINAL);
  return [
    '#!/bin/sh',
    SHIM_MARKER,
    '# Installed by `ckpt coordinator install`. DMTCP starts <its bindir>/dmtcp_coordinator;',
    '# this runs ckpt\'s drop-in coordinator instead. The exec keeps the listening socket',
    '# on fd 821 that dmtcp_launch/dmtcp_restart hand over, the arguments and the environment.',
    // Control characters in a path must not end the comment line.
    `# Undo with: ckpt coordinator install --uninstall --dmtcp-prefix ${path.dirname(bindir).replace(/[\x00-\x1f\x7f]/g, '?')}`,
    '# (DMTCP\'s own coordinator is kept next to this file as dmtcp_coordinator.orig).',
    `${DMTCP_BINDIR_ENV}=${shQuote(bindir)}`,
    `export ${DMTCP_BINDIR_ENV}`,
    `if [ -x ${shQuote(coordinator)} ]; then`,
    `  exec ${shQuote(coordinator)} "$@"`,
    'fi',
    `echo "dmtcp_coordinator: ckpt's coordinator is missing at ${coordinator.replace(/["\\$`]/g, '\\$&')}; using DMTCP's own" >&2`,
    `exec ${shQuote(orig)} "$@"`,
    '',
  ].join('\n');
}

async function sniff(file: string): Promise<string | null> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead).toString('latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  } finally {
    await fh?.close();
  }
}

async function isShim(file: string): Promise<boolean> {
  const head = await sniff(file);
  return head !== null && head.split('\n', 3)[1] === SHIM_MARKER;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.lstat(a), fs.lstat(b)]);
  if (sa.ino === sb.ino && sa.dev === sb.dev) return true;
  if (sa.isSymbolicLink() || sb.isSymbolicLink()) {
    return sa.isSymbolicLink() && sb.isSymbolicLink() && (await fs.readlink(a)) === (await fs.readlink(b));
  }
  if (sa.size !== sb.size) return false;
  const [ca, cb] = await Promise.all([fs.readFile(a), fs.readFile(b)]);
  return ca.equals(cb);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Validates the prefix and finds DMTCP's real binary directory. */
async function locateBindir(prefix: string): Promise<string> {
  if (typeof prefix !== 'string' || prefix.length === 0) {
    throw new TypeError('dmtcpPrefix must be a non-empty string (the DMTCP installation prefix, e.g. /opt/dmtcp)');
  }
  const launch = path.join(path.resolve(prefix), 'bin', 'dmtcp_launch');
  let real: string;
  try {
    real = await fs.realpath(launch);
    const st = await fs.stat(real);
    if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
  } catch (err) {
    throw new CkptError(
      'ERR_CKPT_NOT_FOUND',
      `${launch} does not exist: ${prefix} does not look like a DMTCP installation prefix ` +
        '(pass the directory that contains bin/dmtcp_launch, e.g. --dmtcp-prefix /opt/dmtcp)',
      { cause: err },
    );
  }
  // dmtcp_launch resolves /proc/self/exe, so symlinks are followed: the
  // coordinator it starts lives next to the real executable.
  const bindir = path.dirname(real);
  try {
    await fs.access(bindir, fsc.W_OK);
  } catch (err) {
    throw new CkptError(
      'ERR_CKPT_IO',
      `cannot write to ${bindir}: ${(err as NodeJS.ErrnoException).code ?? 'access denied'}; ` +
        'run the command as the owner of the DMTCP installation (for example with sudo)',
      { cause: err },
    );
  }
  return bindir;
}

async function resolveCoordinator(given: string | undefined): Promise<string> {
  if (given !== undefined && (typeof given !== 'string' || given.length === 0)) {
    throw new TypeError('coordinator must be a non-empty string (path of the native dmtcp_coordinator)');
  }
  const exe = path.resolve(given ?? path.join(nativeBinDir(), 'dmtcp_coordinator'));
  try {
    await fs.access(exe, fsc.X_OK);
  } catch (err) {
    throw new CkptError(
      'ERR_CKPT_NOT_FOUND',
      `the native coordinator ${exe} is missing or not executable; build it first ('npm rebuild' or 'npm ci' in the ckpt checkout)`,
      { cause: err },
    );
  }
  return exe;
}

function apptainerEntry(coordinator: string): string {
  return `  - "${coordinator}"`;
}

/**
 * Installs (or refreshes) the shim in `<DMTCP bindir>/dmtcp_coordinator`.
 * Idempotent. Refuses, changing nothing, when `dmtcp_coordinator.orig`
 * already exists and is not the same file as the current coordinator.
 */
export async function installCoordinatorShim(opts: CoordinatorInstallOptions): Promise<CoordinatorInstallResult> {
  if (opts === null || typeof opts !== 'object') throw new TypeError('options must be an object');
  const bindir = await locateBindir(opts.dmtcpPrefix);
  const coordinator = await resolveCoordinator(opts.coordinator);
  const target = path.join(bindir, TARGET);
  const orig = path.join(bindir, ORIGINAL);
  const text = shimScript(coordinator, bindir);
  const result = (action: CoordinatorInstallResult['action'], original: boolean): CoordinatorInstallResult => ({
    action,
    bindir,
    shim: target,
    original: original ? orig : null,
    coordinator,
    apptainerBinsEntry: apptainerEntry(coordinator),
  });

  const targetExists = await exists(target);
  const origExists = await exists(orig);
  if (targetExists && (await isShim(target))) {
    // Already ours: refresh the text if the coordinator path or format changed.
    if ((await fs.readFile(target, 'utf8')) === text) return result('unchanged', origExists);
    await writeAtomically(target, text);
    return result('updated', origExists);
  }
  if (origExists) {
    if (!targetExists || !(await sameFile(target, orig))) {
      throw new CkptError(
        'ERR_CKPT_EXISTS',
        `${orig} already exists and is not the same file as ${target}; installing would lose one of them. ` +
          `Move ${orig} out of the way (or restore it as ${TARGET}) and run the command again`,
      );
    }
  } else if (targetExists) {
    // Keep the original under its new name first (a hard link: the same
    // inode, so it is preserved exactly), then atomically replace the old
    // name with the shim.
    try {
      await fs.link(target, orig);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      // Filesystems without hard links: copy, keeping the mode.
      await fs.copyFile(target, orig, fsc.COPYFILE_EXCL);
      await fs.chmod(orig, (await fs.stat(target)).mode & 0o7777);
    }
  }
  try {
    await writeAtomically(target, text);
  } catch (err) {
    // Leave the installation as we found it.
    if (targetExists && !origExists) await fs.unlink(orig).catch(() => undefined);
    throw new CkptError('ERR_CKPT_IO', `could not write ${target}: ${(err as Error).message}`, { cause: err });
  }
  return result('installed', targetExists || origExists);
}

/** Restores DMTCP's own coordinator. Idempotent. */
export async function uninstallCoordinatorShim(opts: CoordinatorInstallOptions): Promise<CoordinatorInstallResult> {
  if (opts === null || typeof opts !== 'object') throw new TypeError('options must be an object');
  const bindir = await locateBindir(opts.dmtcpPrefix);
  const coordinator = path.resolve(opts.coordinator ?? path.join(nativeBinDir(), 'dmtcp_coordinator'));
  const target = path.join(bindir, TARGET);
  const orig = path.join(bindir, ORIGINAL);
  const result = (action: CoordinatorInstallResult['action'], original: string | null): CoordinatorInstallResult => ({
    action,
    bindir,
    shim: target,
    original,
    coordinator,
    apptainerBinsEntry: apptainerEntry(coordinator),
  });
  if (!(await isShim(target))) {
    return result('not-installed', (await exists(orig)) ? orig : null);
  }
  if (await exists(orig)) {
    // rename() replaces the shim atomically and keeps the original's inode,
    // mode, owner and timestamps.
    await fs.rename(orig, target);
    await fsyncDir(bindir);
    return result('uninstalled', target);
  }
  // There never was an original (the shim was installed into a prefix
  // without one): removing the shim restores that state.
  await fs.unlink(target);
  await fsyncDir(bindir);
  return result('uninstalled', null);
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.ckpt-tmp-${process.pid}`);
  const fh = await fs.open(tmp, 'wx', 0o755);
  try {
    await fh.writeFile(text);
    await fh.chmod(0o755);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/** What an Apptainer administrator has to change, as text for people. */
export function apptainerAdvice(res: CoordinatorInstallResult): string {
  return [
    'Apptainer (instances started with --dmtcp-launch/--dmtcp-restart): Apptainer binds each binary listed',
    'under "bins:" in /etc/apptainer/dmtcp-conf.yaml into the container as /usr/bin/<name>, next to',
    'dmtcp_launch. The shim cannot be used there (its target path does not exist inside the container), so',
    'list ckpt\'s native coordinator itself: in dmtcp-conf.yaml replace the line',
    '  - "dmtcp_coordinator"',
    'with',
    res.apptainerBinsEntry,
  ].join('\n');
}
