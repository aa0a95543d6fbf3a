/**
 * The dmtcp_coordinator executable: command line, console, files, daemon
 * mode, the inherited listener on fd 821, signals and exit codes (spec §6).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterEach, describe, expect, it } from 'vitest';

import {
  CoordCmd,
  type CoordinatorProcess,
  MsgType,
  Peer,
  SyntheticWorker,
  coordinatorBin,
  runningWorkers,
  sleep,
  startCoordinator,
  status,
  tempDir,
  until,
  userCommand,
} from './synthetic-worker.js';

const run = promisify(execFile);
let coord: CoordinatorProcess | undefined;
const cleanup: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
  await coord?.stop();
  coord = undefined;
});

function runCoord(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(coordinatorBin, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20000, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('command line', () => {
  it('--help lists the options DMTCP tests look for, on stdout, exit 0', () => {
    const r = runCoord(['--help']);
    expect(r.status).toBe(0);
    for (const s of ['--timeout', '--stale-timeout', '--coord-port', '--port-file', '--coord-logfile', '--bind', '--allow'])
      expect(r.stdout).toContain(s);
    expect(runCoord(['-p', '5', '-h']).status).toBe(0);
  });

  it('--version prints a DMTCP-compatible first line when last', () => {
    const r = runCoord(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('dmtcp_coordinator (DMTCP) 5.0');
    expect(runCoord(['--version', '-q']).status).toBe(1);
  });

  it('usage errors exit 1 and never crash', () => {
    for (const args of [['-i'], ['--interval'], ['--coord-logfile'], ['--timeout'], ['--stale-timeout'], ['-p'], ['--port-file'], ['--bogus'], ['-p', 'abc'], ['-p', '-5'], ['notaport']]) {
      const r = runCoord(args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toContain('Usage: dmtcp_coordinator');
    }
    const bad = runCoord(['--allow', '300.1.1.1/8']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("invalid address in '300.1.1.1/8'");
  });

  it('a port in use exits 99 with a clear message', async () => {
    coord = await startCoordinator();
    const r = runCoord(['--coord-port', String(coord.port), '--timeout', '5']);
    expect(r.status).toBe(99);
    expect(r.stderr).toContain('already in use');
  });

  it('accepts -p0, -i5 and a trailing port, and reads DMTCP_COORD_PORT', async () => {
    const dir = await tempDir();
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    const pf = path.join(dir, 'pf');
    const p = spawn(coordinatorBin, ['-p0', '-i5', '--port-file', pf, '--timeout', '10', '0'], { stdio: 'ignore', env: { ...process.env, DMTCP_COORD_PORT: '1' } });
    cleanup.push(() => void p.kill('SIGKILL'));
    const port = await until(async () => Number(await fs.readFile(pf, 'utf8').catch(() => '')), 'port file');
    expect(port).toBeGreaterThan(1);
    expect(await fs.readFile(pf, 'utf8')).toMatch(/^\d+$/); // no newline
    expect(((await fs.stat(pf)).mode & 0o777) & ~0o600).toBe(0);
    expect((await status(port)).interval).toBe(5);
    await userCommand(port, CoordCmd.DMT_QUIT);
  });
});

describe('console and banner', () => {
  it('prints the banner, the status block, help, list and host summary', async () => {
    coord = await startCoordinator({ console: true, args: ['--timeout', '30'] });
    const [w] = await runningWorkers(coord.port, 1);
    cleanup.push(() => w!.destroy());
    coord.type('s\nl\nhelp\nu\nbogus\n');
    await until(() => coord!.stderr().includes('Host List:') && coord!.stdout().includes('RUNNING=yes'), 'console output');
    const err = coord.stderr();
    expect(err).toContain(`dmtcp_coordinator starting...\n    Host: `);
    expect(err).toContain(`\n    Port: ${coord.port}\n    Checkpoint Interval: disabled (checkpoint manually instead)\n    Exit on last client: 0\n`);
    expect(err).toContain("Type '?' for help.\n\n");
    expect(coord.stdout()).toMatch(
      new RegExp(
        `Status\\.\\.\\.\\nHost: .+ \\(.+\\)\\nPort: ${coord.port}\\nCheckpoint Interval: Checkpoint Interval: disabled \\(checkpoint manually instead\\)\\nExit on last client: 0\\nKill after checkpoint: 0\\nComputation Id: [0-9a-f]+-40000-[0-9a-f]+\\nCheckpoint Dir: .+\\nNUM_PEERS=1\\nRUNNING=yes\\n\\n`,
      ),
    );
    expect(err).toContain('Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n1, synthetic[40000:');
    expect(err).toContain('COMMANDS:\n  l: List connected nodes\n  s: Print status message\n');
    expect(err).toMatch(/Host List:\nHOST => # connected clients \n.+ => 1\n/);
    expect(err).toContain('unhandled user command');
    coord.type('q\n');
    expect((await coord.exited).code).toBe(0);
    expect(coord.stderr()).toContain('DMTCP coordinator exiting... (per request)');
  });

  it('console c and k drive the computation', async () => {
    coord = await startCoordinator({ console: true, args: ['--timeout', '30', '-q'] });
    const [w] = await runningWorkers(coord.port, 1);
    cleanup.push(() => w!.destroy());
    coord.type('c\n');
    await w!.expect(MsgType.DMT_DO_CHECKPOINT);
    coord.type('K\n'); // lower-cased: kill
    await w!.expect(MsgType.DMT_KILL_PEER);
    expect(coord.stderr()).not.toContain('starting...'); // -q hides the banner
  });

  it('closing stdin is reported and the coordinator keeps running', async () => {
    coord = await startCoordinator({ console: true, args: ['--timeout', '30'] });
    coord.proc.stdin!.end();
    await until(() => coord!.stderr().includes('Closing stdin...'), 'stdin closed');
    expect((await status(coord.port)).numPeers).toBe(0);
  });
});

describe('files, daemon and inherited listener', () => {
  it('writes the status file in the original format', async () => {
    const dir = await tempDir();
    const sf = path.join(dir, 'status');
    coord = await startCoordinator({ args: ['--status-file', sf, '--timeout', '30'] });
    const text = await until(async () => {
      const t = await fs.readFile(sf, 'utf8').catch(() => '');
      return t.includes('Checkpoint Interval: ') ? t : '';
    }, 'status file');
    expect(text).toMatch(new RegExp(`^Coordinator started: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\nStatus\\.\\.\\.\\nHost: .+ \\(.+\\)\\nPort: ${coord.port}\\nCheckpoint Interval: $`));
    await userCommand(coord.port, CoordCmd.DMT_QUIT);
    await coord.exited;
    expect(await fs.readFile(sf, 'utf8')).toMatch(/Checkpoint Interval: Coordinator exited: \d{4}-.+\n$/);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('an unwritable status file exits 1', () => {
    const r = runCoord(['--coord-port', '0', '--status-file', '/nonexistent/dir/status', '--timeout', '5']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Error opening file /nonexistent/dir/status');
  });

  it('--daemon: the parent exits 0 once the port file exists; output goes to the log file', async () => {
    const dir = await tempDir();
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    const pf = path.join(dir, 'port');
    const log = path.join(dir, 'coord.log');
    const r = await run(coordinatorBin, ['--daemon', '--coord-port', '0', '--port-file', pf, '--timeout', '30'], {
      env: { ...process.env, DMTCP_COORD_LOG_FILENAME: log },
      timeout: 10000,
    });
    expect(r.stdout).toBe('');
    const port = Number(await fs.readFile(pf, 'utf8')); // present when the parent has exited
    expect((await status(port)).numPeers).toBe(0);
    await userCommand(port, CoordCmd.DMT_QUIT);
    await until(async () => (await fs.readFile(log, 'utf8').catch(() => '')).includes('DMTCP coordinator exiting'), 'exit line in the log');
  });

  it('serves an inherited listener on fd 821 (auto-start by dmtcp_launch)', async () => {
    const dir = await tempDir();
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    const pf = path.join(dir, 'port');
    const log = path.join(dir, 'log');
    // What dmtcp_launch does: bind, listen, dup2 to 821, exec the coordinator
    // with exactly these arguments, wait for the daemon parent.
    const py = [
      'import os, socket, sys',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      "s.bind(('0.0.0.0', 0)); s.listen(128)",
      `open(${JSON.stringify(pf)}, 'w').write(str(s.getsockname()[1]))`,
      'os.dup2(s.fileno(), 821); os.set_inheritable(821, True)',
      `os.execv(${JSON.stringify(coordinatorBin)}, [${JSON.stringify(coordinatorBin)}, '--quiet', '--exit-on-last', '--daemon'])`,
    ].join('\n');
    const r = await run('python3', ['-c', py], { env: { ...process.env, DMTCP_COORD_LOG_FILENAME: log, DMTCP_CHECKPOINT_DIR: dir }, timeout: 10000 });
    expect(r.stderr).toBe('');
    const port = Number(await fs.readFile(pf, 'utf8'));
    const { worker, reply } = await SyntheticWorker.join(port);
    expect(reply?.type).toBe(MsgType.DMT_ACCEPT);
    worker.initDone();
    await until(async () => (await status(port)).running, 'running');
    worker.destroy(); // exit-on-last
    await until(async () => (await fs.readFile(log, 'utf8').catch(() => '')).includes('DMTCP coordinator exiting'), 'exit line');
    await until(async () => {
      const p = await Peer.connect(port).catch(() => undefined);
      p?.destroy();
      return !p;
    }, 'the coordinator to stop listening');
  });
});

describe('timeouts, signals and access control', () => {
  it('--timeout exits 1, even during a stuck checkpoint', async () => {
    coord = await startCoordinator({ args: ['--timeout', '1'] });
    const [w] = await runningWorkers(coord.port, 1);
    cleanup.push(() => w!.destroy());
    await userCommand(coord.port, CoordCmd.DMT_CHECKPOINT);
    const t0 = Date.now();
    expect((await coord.exited).code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('--stale-timeout 1 exits 1; -1 keeps running', async () => {
    coord = await startCoordinator({ args: ['--stale-timeout', '1'] });
    expect((await coord.exited).code).toBe(1);
    await coord.stop();
    coord = await startCoordinator({ args: ['--stale-timeout', '-1', '--timeout', '30'] });
    await sleep(1500);
    expect(coord.proc.exitCode).toBeNull();
    expect((await status(coord.port)).numPeers).toBe(0);
  });

  it('SIGINT quits in order: workers are killed, exit 0', async () => {
    coord = await startCoordinator({ args: ['--timeout', '30'] });
    const [w] = await runningWorkers(coord.port, 1);
    cleanup.push(() => w!.destroy());
    coord.proc.kill('SIGINT');
    await w!.expect(MsgType.DMT_KILL_PEER);
    expect((await coord.exited).code).toBe(0);
  });

  it('SIGTERM keeps its default effect', async () => {
    coord = await startCoordinator({ args: ['--timeout', '30'] });
    coord.proc.kill('SIGTERM');
    expect((await coord.exited).signal).toBe('SIGTERM');
  });

  it('--exit-on-last --daemon ignores terminal signals', async () => {
    const dir = await tempDir();
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    const pf = path.join(dir, 'port');
    await run(coordinatorBin, ['--daemon', '--exit-on-last', '--coord-port', '0', '--port-file', pf, '--timeout', '20'], { timeout: 10000 });
    const port = Number(await fs.readFile(pf, 'utf8'));
    const pid = Number((await run('sh', ['-c', `ss -ltnpH 'sport = :${port}' | sed -n 's/.*pid=\\([0-9]*\\).*/\\1/p'`])).stdout.trim());
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGINT');
    process.kill(pid, 'SIGTERM');
    await sleep(200);
    expect((await status(port)).numPeers).toBe(0);
    await userCommand(port, CoordCmd.DMT_QUIT);
  });

  it('--allow closes connections from other networks; --bind restricts the address', async () => {
    coord = await startCoordinator({ args: ['--timeout', '30', '--allow', '10.0.0.0/8'] });
    const p = await Peer.connect(coord.port);
    p.send({ type: MsgType.DMT_USER_CMD, coordCmd: CoordCmd.DMT_STATUS });
    expect(await p.recv(2000)).toBeNull();
    expect(p.closed).toBe(true);
    await coord.stop();
    coord = await startCoordinator({ args: ['--timeout', '30', '--bind', '127.0.0.1', '--allow', '127.0.0.0/8'] });
    expect((await status(coord.port)).numPeers).toBe(0);
    const ss = (await run('ss', ['-ltnH', `sport = :${coord.port}`])).stdout;
    expect(ss).toContain(`127.0.0.1:${coord.port}`);
  });
});
