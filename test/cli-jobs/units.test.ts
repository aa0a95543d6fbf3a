/**
 * Unit tests of the pieces under the job and instance commands: bubblewrap
 * command lines, bind parsing, /proc readers, the process lifecycle, option
 * parsing, completion and doctor.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { defaultJobName } from '../../src/cli/jobs.js';
import { intParser, secondsParser } from '../../src/cli/options.js';
import { formatDuration } from '../../src/cli/progress.js';
import { ManagedProcess, stopProcess } from '../../src/lifecycle.js';
import { isAlive, listeningPorts, portOwner, procId, processTree } from '../../src/procfs.js';
import { bwrapArgv, entrypoint, parseBind, validateImage } from '../../src/runtime/bwrap.js';

const ckptBin = path.resolve(__dirname, '../../bin/ckpt');

/** Resolves once the helper printed "ready" (its signal handling is in place). */
function waitReady(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve) => {
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('ready')) resolve();
    });
  });
}
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-units-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bubblewrap runtime', () => {
  it('builds / as a tmpfs with the image entries bound read-only and symlinks re-created', () => {
    const root = path.join(dir, 'root');
    fs.mkdirSync(path.join(root, 'usr'), { recursive: true });
    fs.mkdirSync(path.join(root, 'proc'));
    fs.mkdirSync(path.join(root, '.checkpoint'));
    fs.symlinkSync('usr/bin', path.join(root, 'bin'));
    fs.writeFileSync(path.join(root, 'hello'), 'x');
    const argv = bwrapArgv('/usr/bin/bwrap', {
      root,
      checkpointDir: '/host/ck',
      engineDir: '/host/engine',
      libDir: '/host/lib',
      binds: [{ source: '/data', target: '/data', readOnly: true }],
      command: ['/bin/sh', '/.singularity.d/startscript', 'a b'],
      env: { LD_PRELOAD: '/.ckpt-lib/x.so', DMTCP_PORT: undefined },
    });
    const text = argv.join(' ');
    expect(argv.slice(0, 4)).toEqual(['/usr/bin/bwrap', '--unshare-user', '--unshare-pid', '--unshare-ipc']);
    expect(text).toContain('--tmpfs /');
    expect(text).toContain(`--ro-bind ${root}/usr /usr`);
    expect(text).toContain(`--ro-bind ${root}/hello /hello`);
    expect(text).toContain('--symlink usr/bin /bin');
    // The image's own /proc and /.checkpoint are replaced, never bound.
    expect(text).not.toContain(`${root}/proc`);
    expect(text).not.toContain(`${root}/.checkpoint`);
    expect(text).toContain('--proc /proc --dev /dev --tmpfs /tmp');
    expect(text).toContain('--bind /host/ck /.checkpoint');
    expect(text).toContain('--ro-bind /host/engine /.ckpt-engine');
    expect(text).toContain('--ro-bind /host/lib /.ckpt-lib');
    expect(text).toContain('--ro-bind /data /data');
    expect(text).toContain('--setenv LD_PRELOAD /.ckpt-lib/x.so');
    expect(text).toContain('--unsetenv DMTCP_PORT');
    expect(argv.slice(argv.indexOf('--') + 1)).toEqual(['/bin/sh', '/.singularity.d/startscript', 'a b']);
  });

  it('finds the entry point like apptainer instance start', () => {
    const root = path.join(dir, 'r');
    fs.mkdirSync(path.join(root, '.ckpt'), { recursive: true });
    expect(() => entrypoint(root, [])).toThrow(/no start script/);
    fs.writeFileSync(path.join(root, '.ckpt', 'startscript'), '');
    expect(entrypoint(root, ['8080'])).toEqual(['/bin/sh', '/.ckpt/startscript', '8080']);
    fs.mkdirSync(path.join(root, '.singularity.d'));
    fs.writeFileSync(path.join(root, '.singularity.d', 'startscript'), '');
    expect(entrypoint(root, ['8080'])).toEqual(['/bin/sh', '/.singularity.d/startscript', '8080']);
  });

  it('validates images and binds', () => {
    expect(() => validateImage(path.join(dir, 'none'))).toThrow(/does not exist/);
    fs.writeFileSync(path.join(dir, 'img.sif'), '');
    expect(() => validateImage(path.join(dir, 'img.sif'))).toThrow(/not a directory.*--sandbox/);
    expect(parseBind(`${dir}`)).toEqual({ source: dir, target: dir, readOnly: false });
    expect(parseBind(`${dir}:/mnt:ro`)).toEqual({ source: dir, target: '/mnt', readOnly: true });
    expect(() => parseBind(`${dir}:relative`)).toThrow(/absolute/);
    expect(() => parseBind(`${dir}:/a/../b`)).toThrow(/absolute path without/);
    expect(() => parseBind(`${dir}:/mnt:rx`)).toThrow(/ro or rw/);
    expect(() => parseBind(`${dir}/missing:/mnt`)).toThrow(/does not exist/);
  });
});

describe('/proc readers', () => {
  it('tells a live process from a dead one and from a recycled pid', async () => {
    const me = procId(process.pid)!;
    expect(isAlive(me)).toBe(true);
    expect(isAlive({ pid: me.pid, startTime: me.startTime + 1 })).toBe(false);
    const c = spawn('true');
    await new Promise((r) => c.once('exit', r));
    expect(isAlive({ pid: c.pid!, startTime: 0 })).toBe(false);
    expect(isAlive(null)).toBe(false);
  });

  it('names the owner of a busy port and lists a process tree listeners', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const owner = portOwner(port);
      expect(owner).toMatchObject({ port, pid: process.pid });
      expect(owner?.command).toContain('node');
      expect(listeningPorts(processTree(process.pid))).toContain(port);
    } finally {
      server.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(portOwner(port)).toBeNull();
  });
});

describe('process lifecycle', () => {
  it('stop() sends SIGTERM, then SIGKILL after the timeout, and waits for the exit', async () => {
    const stubborn = new ManagedProcess({ argv: ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'], stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    await stubborn.start();
    await waitReady(stubborn.stdout!);
    const events: unknown[] = [];
    const onExit = (e: unknown) => events.push(e);
    stubborn.on('exit', onExit);
    const t0 = Date.now();
    const exit = await stubborn.stop(300);
    expect(exit.signal).toBe('SIGKILL');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(events).toHaveLength(1);
    stubborn.off('exit', onExit);

    const polite = new ManagedProcess({ argv: ['sleep', '30'], stdio: 'ignore' });
    await polite.start();
    expect((await polite.stop(5_000)).signal).toBe('SIGTERM');
  });

  it('reports a command that cannot run', async () => {
    await expect(new ManagedProcess({ argv: [path.join(dir, 'missing')], stdio: 'ignore' }).start()).rejects.toMatchObject({ code: 'ERR_CKPT_NOT_FOUND' });
  });

  it('stopProcess() stops a process known only by pid and start time', async () => {
    const c = spawn('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    await waitReady(c.stdout);
    const id = procId(c.pid!)!;
    expect(await stopProcess(id, { group: c.pid!, timeoutMs: 200 })).toBe('kill');
    expect(await stopProcess(id)).toBe('gone');
  });
});

describe('options', () => {
  it('parses integers and seconds strictly', () => {
    expect(intParser('--keep', 1, 10)('3')).toBe(3);
    expect(() => intParser('--keep', 1, 10)('0')).toThrow(/Invalid --keep "0"/);
    expect(() => intParser('--keep', 1, 10)('2x')).toThrow(/whole number/);
    expect(secondsParser('--timeout')('1.5')).toBe(1500);
    expect(() => secondsParser('--timeout')('-1')).toThrow(/seconds/);
  });

  it('derives valid job names from commands', () => {
    expect(defaultJobName(['/usr/bin/python3', 'x'])).toMatch(/^python3-[0-9a-f]{4}$/);
    expect(defaultJobName(['./--weird name'])).toMatch(/^weird-name-[0-9a-f]{4}$/);
  });
});

describe('completion, doctor and help', () => {
  it('prints a bash script that bash accepts, completing commands and subcommands', () => {
    const script = execFileSync(ckptBin, ['completion', 'bash'], { encoding: 'utf8' });
    const file = path.join(dir, 'c.bash');
    fs.writeFileSync(file, script);
    const run = (words: string) =>
      spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _ckpt_complete; echo "\${COMPREPLY[*]}"`], {
        encoding: 'utf8',
        env: { ...process.env, CKPT_HOME: dir, PATH: `${path.dirname(ckptBin)}:${process.env.PATH}` },
      }).stdout.trim();
    expect(run('ckpt inst')).toBe('instance');
    expect(run('ckpt checkpoint cr')).toBe('create');
    expect(run('ckpt instance start --dmtcp-l')).toBe('--dmtcp-launch');
    expect(spawnSync(ckptBin, ['completion', 'fish'], { encoding: 'utf8' }).status).toBe(2);
    expect(execFileSync(ckptBin, ['completion', 'zsh'], { encoding: 'utf8' })).toContain('#compdef ckpt');
  });

  it('doctor --json reports every check with a status', () => {
    const r = spawnSync(ckptBin, ['doctor', '--json', '--no-storage'], { encoding: 'utf8', env: { ...process.env, CKPT_HOME: dir } });
    const report = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string }>; usable: boolean };
    expect(report.checks.map((c) => c.id).sort()).toEqual(['bwrap', 'coordinator', 'cpu', 'dmtcp', 'engine', 'userns']);
    for (const c of report.checks) expect(['ok', 'warn', 'missing']).toContain(c.status);
    expect(r.status).toBe(report.usable ? 0 : 1);
  });

  it('every job and instance command has --help with examples', () => {
    const commands = [
      ['launch'], ['checkpoint'], ['restart'], ['status'], ['list'], ['stop'],
      ['checkpoint', 'create'], ['checkpoint', 'list'], ['checkpoint', 'delete'], ['checkpoint', 'instance'],
      ['instance'], ['instance', 'start'], ['instance', 'stop'], ['instance', 'list'], ['instance', 'logs'],
      ['doctor'], ['completion'], ['demo'],
    ];
    for (const c of commands) {
      const out = execFileSync(ckptBin, [...c, '--help'], { encoding: 'utf8' });
      expect(out, c.join(' ')).toMatch(/Examples:/);
    }
  });
});

describe('formatDuration', () => {
  it('keeps a decimal below 10 ms, whole milliseconds below a second, then seconds and minutes', () => {
    expect(formatDuration(3.841295)).toBe('3.8 ms');
    expect(formatDuration(0.04)).toBe('0 ms');
    expect(formatDuration(9)).toBe('9 ms');
    expect(formatDuration(153.4)).toBe('153 ms');
    expect(formatDuration(1500)).toBe('1.50 s');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
  });
});
