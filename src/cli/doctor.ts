/**
 * `ckpt doctor`: what this machine supports, each line with what to do when
 * something is missing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Command } from 'commander';

import { addOptions } from './options.js';
import { formatBytes, printJson } from './output.js';

export type CheckStatus = 'ok' | 'warn' | 'missing';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do when the status is not ok. */
  hint: string | null;
}

function readTrim(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

function checkUserNamespaces(): Check {
  const max = readTrim('/proc/sys/user/max_user_namespaces');
  const clone = readTrim('/proc/sys/kernel/unprivileged_userns_clone');
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--pid', '--fork', '--mount-proc', 'true'], { encoding: 'utf8', timeout: 10_000 });
  const sysctl = `user.max_user_namespaces=${max ?? '?'}${clone !== null ? `, kernel.unprivileged_userns_clone=${clone}` : ''}`;
  if (r.status === 0) {
    return { id: 'userns', title: 'user + pid namespaces', status: 'ok', detail: `unshare --user --pid works (${sysctl})`, hint: null };
  }
  const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim();
  return {
    id: 'userns',
    title: 'user + pid namespaces',
    status: 'missing',
    detail: `unshare --user --pid failed: ${why} (${sysctl})`,
    hint: 'Ask an admin to allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0; on Debian/Ubuntu also kernel.unprivileged_userns_clone=1). Without them containers cannot run and the built-in engine cannot keep PIDs across restarts.',
  };
}

async function checkBwrap(): Promise<Check> {
  const { findBwrap, probeBwrap } = await import('../runtime/bwrap.js');
  const bwrap = findBwrap();
  const version = bwrap ? spawnSync(bwrap, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
  const why = probeBwrap(bwrap);
  if (!why) return { id: 'bwrap', title: 'bubblewrap', status: 'ok', detail: `${bwrap} (${version || 'version unknown'}) creates user, pid and mount namespaces`, hint: null };
  return {
    id: 'bwrap',
    title: 'bubblewrap',
    status: 'missing',
    detail: why,
    hint: bwrap ? 'Containers need working unprivileged namespaces; --host instances still work.' : 'Install it: `apt-get install bubblewrap`. Until then use `ckpt instance start --host`.',
  };
}

async function checkDmtcp(): Promise<Check> {
  const { dmtcpPrefix } = await import('../engines/dmtcp.js');
  const prefix = dmtcpPrefix();
  if (!prefix) {
    return {
      id: 'dmtcp',
      title: 'DMTCP (optional engine)',
      status: 'warn',
      detail: 'not found (DMTCP_PREFIX unset and dmtcp_launch not on PATH)',
      hint: 'Only needed for --engine dmtcp; the built-in engine needs nothing installed.',
    };
  }
  const r = spawnSync(path.join(prefix, 'bin', 'dmtcp_launch'), ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const version = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() || 'version unknown';
  return { id: 'dmtcp', title: 'DMTCP (optional engine)', status: 'ok', detail: `${prefix} (${version})`, hint: null };
}

async function checkCpu(): Promise<Check> {
  const { describeMachine } = await import('../bench/machine.js');
  const m = describeMachine('');
  const flags = m.cpu.flags;
  const missing = ['xsave', 'fsgsbase'].filter((f) => !flags.includes(f));
  return {
    id: 'cpu',
    title: 'CPU',
    status: missing.length ? 'warn' : 'ok',
    detail: `${m.cpu.model}, ${m.cpu.logicalCpus} CPUs; features: ${flags.join(' ') || 'none of note'}`,
    hint: missing.length
      ? `Missing ${missing.join(', ')}: the built-in engine falls back to slower paths.`
      : 'Images record the CPU features they need; restart on a machine with at least these (vector state such as AVX-512 is saved).',
  };
}

async function checkStorage(dir: string): Promise<Check> {
  const probeDir = fs.mkdtempSync(path.join(dir, '.doctor-'));
  const file = path.join(probeDir, 'probe');
  const bytes = 64 * 1024 * 1024;
  try {
    const { benchBinding } = await import('../bench/storage.js');
    const r = await benchBinding().writeSequential({ path: file, bytes, blockSize: 4 * 1024 * 1024, direct: false, queueDepth: 1, fsync: true });
    const bw = r.bytes / r.seconds;
    return {
      id: 'storage',
      title: 'storage (quick hint)',
      status: 'ok',
      detail: `${formatBytes(bw)}/s buffered write + fsync of ${formatBytes(bytes)} in ${dir}; a 1 GiB image takes about ${(1024 ** 3 / bw).toFixed(1)} s`,
      hint: 'For the full picture run `ckpt bench storage`.',
    };
  } catch (err) {
    return { id: 'storage', title: 'storage (quick hint)', status: 'warn', detail: `could not measure: ${(err as Error).message}`, hint: `Check that ${dir} is writable.` };
  } finally {
    fs.rmSync(probeDir, { recursive: true, force: true });
  }
}

async function checkBuild(): Promise<Check[]> {
  const { nativeBinDir, native } = await import('../native.js');
  const dir = nativeBinDir();
  const out: Check[] = [];
  let addon = 'loads';
  try {
    native();
  } catch (err) {
    addon = (err as Error).message.split('\n')[0] ?? 'fails to load';
  }
  const have = (name: string) => fs.existsSync(path.join(dir, name));
  const coord = ['dmtcp_coordinator', 'dmtcp_command'].filter((n) => !have(n));
  out.push({
    id: 'coordinator',
    title: 'coordinator',
    status: coord.length === 0 && addon === 'loads' ? 'ok' : 'missing',
    detail: coord.length === 0 ? `${dir}/dmtcp_coordinator, dmtcp_command; addon ${addon}` : `missing ${coord.join(', ')} in ${dir}; addon ${addon}`,
    hint: coord.length === 0 && addon === 'loads' ? null : 'Build it: `npm rebuild ckpt` (in a checkout: `bash scripts/dev-build.sh`).',
  });
  const { builtinEngine } = await import('../engines/builtin-adapter.js');
  const why = builtinEngine.unavailable();
  out.push({
    id: 'engine',
    title: 'built-in engine',
    status: why ? 'missing' : 'ok',
    detail: why ?? `built (${builtinEngine.hostDir()})`,
    hint: why ? 'Rebuild with `npm rebuild ckpt`, or use --engine dmtcp.' : null,
  });
  return out;
}

export async function runDoctor(opts: { storage?: boolean } = {}): Promise<{ kernel: string; home: string; checks: Check[] }> {
  const { Store } = await import('../store.js');
  const store = new Store();
  store.init();
  const checks: Check[] = [checkUserNamespaces(), await checkBwrap(), await checkDmtcp(), ...(await checkBuild()), await checkCpu()];
  if (opts.storage !== false) checks.push(await checkStorage(store.home));
  return { kernel: `${os.type()} ${os.release()}`, home: store.home, checks };
}

export function register(program: Command): void {
  const cmd = program.command('doctor').description('report what this machine supports: namespaces, bubblewrap, DMTCP, engine, CPU, storage');
  addOptions(cmd, ['json']);
  cmd.option('--no-storage', 'skip the quick storage measurement');
  cmd.addHelpText('after', '\nExit code 0 when the built-in engine can run here, 1 otherwise.\n\nExamples:\n  ckpt doctor\n  ckpt doctor --json --no-storage');
  cmd.action(async (o: { json?: boolean; storage?: boolean }) => {
    const report = await runDoctor({ storage: o.storage });
    const essential = report.checks.filter((c) => c.id === 'coordinator' || c.id === 'engine' || c.id === 'userns');
    const usable = essential.every((c) => c.status === 'ok');
    if (o.json) printJson({ ...report, usable });
    else {
      process.stdout.write(`ckpt doctor: ${report.kernel}; state in ${report.home}\n\n`);
      const mark = { ok: 'ok  ', warn: 'warn', missing: 'MISS' } as const;
      for (const c of report.checks) {
        process.stdout.write(`[${mark[c.status]}] ${c.title}: ${c.detail}\n`);
        if (c.hint && c.status !== 'ok') process.stdout.write(`       -> ${c.hint}\n`);
      }
      process.stdout.write(usable ? '\nThis machine can checkpoint jobs with the built-in engine.\n' : '\nSee the MISS lines above before checkpointing with the built-in engine.\n');
    }
    if (!usable) process.exitCode = 1;
  });
}
