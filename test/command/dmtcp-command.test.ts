/**
 * The drop-in dmtcp_command: argument rules, text/JSON output and exit codes
 * of spec §7, robustness against peers that are not coordinators, and
 * byte-for-byte agreement with DMTCP's own client when DMTCP is installed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  dmtcpBin,
  dmtcpSkipReason,
  ourCommand,
  ourCoordinator,
  runClient,
  startCoordinator,
  type RunningCoordinator,
} from '../dmtcp-compat/dmtcp.js';

const cmd = (args: string[], env: NodeJS.ProcessEnv = {}) => runClient(ourCommand, args, env);

/** A TCP server on a random loopback port that treats each client with `handle`. */
async function fakeServer(handle: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    handle(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Like runClient but asynchronous, so an in-process fake server can answer. */
function cmdAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    for (const k of ['DMTCP_COORD_HOST', 'DMTCP_HOST', 'DMTCP_COORD_PORT', 'DMTCP_PORT']) delete clean[k];
    import('node:child_process').then(({ execFile }) => {
      execFile(ourCommand, args, { env: { ...clean, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
        const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        resolve({ status, stdout, stderr });
      });
    });
  });
}

describe('dmtcp_command: command line', () => {
  beforeAll(() => {
    if (!existsSync(ourCommand)) throw new Error(`${ourCommand} is not built; run scripts/dev-build.sh`);
  });

  it('--help as the last argument prints usage on stdout and exits 1, like DMTCP', () => {
    for (const a of [['--help'], ['-h'], ['-p', '1', '--help']]) {
      const r = cmd(a);
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('Usage: dmtcp_command');
      expect(r.stdout).toContain('Examples:');
      expect(r.stderr).toBe('');
    }
  });

  it('help words elsewhere, no command at all, and unknown words print usage on stderr (exit 1)', () => {
    for (const a of [[], ['h', '-s'], ['?'], ['--help', '-s'], ['bogus'], ['-s', 'bogus'], ['-i'], ['--version', '-s']]) {
      const r = cmd(a);
      expect(r.status, a.join(' ')).toBe(1);
      expect(r.stdout, a.join(' ')).toBe('');
      expect(r.stderr, a.join(' ')).toContain('Usage: dmtcp_command');
    }
  });

  it('--version (last) prints the DMTCP 5.0 version line and exits 1; in JSON mode exits 0', () => {
    const r = cmd(['--version']);
    expect(r.status).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe('dmtcp_command (DMTCP) 5.0');
    const j = cmd(['--json', '--version']);
    expect(j.status).toBe(0);
    const o = JSON.parse(j.stdout);
    expect(Object.keys(o)).toEqual(['schema_version', 'command', 'command_status', 'version']);
    expect(o.command).toBe('DMT_VERSION');
    expect(o.version.startsWith('dmtcp_command (DMTCP) 5.0\n')).toBe(true);
  });

  it('JSON usage errors and JSON help follow schema 1 with the exact field order', () => {
    const bad = cmd(['--json', '--bogus'], { DMTCP_COORD_HOST: 'h"\\\n\u0001', DMTCP_COORD_PORT: '12x' });
    expect(bad.status).toBe(2);
    expect(bad.stdout).toBe(
      '{"schema_version":1,"command":"DMT_INVALID_COORDINATOR_COMMAND","command_status":"DMT_COORD_INVALID_COMMAND",' +
        '"coordinator_host":"h\\"\\\\\\n\\u0001","coordinator_port":12}\n',
    );
    const noValue = cmd(['--json', '-i']);
    expect(noValue.status).toBe(2);
    expect(JSON.parse(noValue.stdout).command_status).toBe('DMT_COORD_INVALID_COMMAND');
    const help = cmd(['--json', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toBe(
      '{"schema_version":1,"command":"DMT_HELP","command_status":"DMT_COORD_SUCCESS","coordinator_host":"localhost","coordinator_port":7779}\n',
    );
  });

  it('reports a missing coordinator with the original messages and exit 2', async () => {
    // A port nobody listens on: bind one, close it, use it.
    const s = await fakeServer(() => undefined);
    const port = String(s.port);
    await s.close();
    const r = cmd(['-p', port, '-s']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('Coordinator not found. Please check port and host.\n');
    // -i N echoes the value even when nothing was reached.
    const i = cmd([`-p${port}`, '-i', '5']);
    expect(i.stdout).toBe('Interval changed to 5\n');
    expect(i.status).toBe(2);
    const j = cmd(['--json', '--coord-port', port, '--checkpoint']);
    expect(j.status).toBe(2);
    expect(j.stdout).toBe(
      `{"schema_version":1,"command":"DMT_CHECKPOINT","command_status":"DMT_COORD_NOT_FOUND","coordinator_host":"localhost","coordinator_port":${port}}\n`,
    );
    // Without any port setting the hint is different. (An empty host name
    // fails to resolve at once, without asking DNS.)
    const h = cmd(['-h', '', '-s']);
    expect(h.status).toBe(2);
    expect(h.stderr).toContain("Coordinator not found. Try specifying port with '--port'.\n");
  });

  it('an invalid port value is a failure with exit 99 (the original ASSERTs)', () => {
    const r = cmd(['-p', 'abc', '-s']);
    expect(r.status).toBe(99);
    expect(r.stderr).toContain("invalid coordinator port 'abc'");
  });

  it('--timeout needs a positive number', () => {
    const r = cmd(['--timeout', 'x', '-s']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--timeout needs a positive number');
  });
});

describe('dmtcp_command: peers that are not well-behaved coordinators', () => {
  it('a connection closed without a reply: clear message, exit 99, no crash', async () => {
    const s = await fakeServer((sock) => sock.once('data', () => sock.end()));
    const r = await cmdAsync(['-p', String(s.port), '-s']);
    await s.close();
    expect(r.status).toBe(99);
    expect(r.stderr).toMatch(/closed the connection without replying/);
  });

  it('an invalid reply header: exit 99 and says why', async () => {
    const s = await fakeServer((sock) => sock.once('data', () => sock.end(Buffer.alloc(208, 0x41))));
    const r = await cmdAsync(['--json', '-p', String(s.port), '-l']);
    await s.close();
    expect(r.status).toBe(99);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/invalid reply .*magic/);
  });

  it('a reply cut in the middle: exit 99', async () => {
    const s = await fakeServer((sock) => sock.once('data', () => sock.end(Buffer.from('DMTCP_CKPT_V0\n'))));
    const r = await cmdAsync(['-p', String(s.port), '-s']);
    await s.close();
    expect(r.status).toBe(99);
    expect(r.stderr).toMatch(/in the middle of its reply/);
  });

  it('a silent peer: --timeout gives exit 124 instead of waiting forever', async () => {
    const s = await fakeServer(() => undefined);
    const r = await cmdAsync(['--timeout', '0.5', '-p', String(s.port), '-bc']);
    await s.close();
    expect(r.status).toBe(124);
    expect(r.stderr).toMatch(/no reply .* within the --timeout/);
  });

  it('quit does not wait for a reply', async () => {
    let got = 0;
    // The client exits right after its write, so the server may see the bytes (and the FIN) only
    // after the child has been reaped: count until the peer closes its side, then compare.
    let ended!: () => void;
    const peerEnded = new Promise<void>((r) => (ended = r));
    const s = await fakeServer((sock) => {
      sock.on('data', (b) => {
        got += b.length;
      });
      sock.on('end', () => ended());
    });
    const r = await cmdAsync(['--json', '-p', String(s.port), '--quit']);
    await Promise.race([peerEnded, new Promise((r) => setTimeout(r, 10_000))]);
    await s.close();
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ command: 'DMT_QUIT', command_status: 'DMT_COORD_SUCCESS' });
    expect(got).toBe(208);
  });
});

/** Invocations compared between clients and coordinators (no workers connected). */
function invocations(port: number): string[][] {
  const p = String(port);
  return [
    ['-p', p, '-s'],
    ['-p', p, 's'],
    ['--coord-port', p, '--status'],
    [`-p${p}`, '-l'],
    ['-p', p, 't'],
    ['-p', p, '---list'],
    ['-p', p, '-c'],
    ['-p', p, '-bc'],
    ['-p', p, '-kc'],
    ['-p', p, 'K'],
    ['-p', p, 'Kc'],
    ['-p', p, 'ck'],
    ['-p', p, '-i', '7'],
    ['-p', p, '-i7'],
    ['-p', p, 'i9'],
    ['-p', p, '--interval', '0'],
    ['-p', p, '-s', '-l'],
    ['-p', p, '-k'],
    ['--json', '-p', p, '-s'],
    ['--json', '-p', p, '-l'],
    ['--json', '-p', p, '--checkpoint'],
    ['--json', '-p', p, '--bcheckpoint'],
    ['--json', '-p', p, '--kcheckpoint'],
    ['--json', '-p', p, '-i', '7'],
    ['--json', '-p', p, '--kill'],
    ['-h', '127.0.0.1', '-p', p, '-s'],
    ['--host', 'localhost', '--port', p, '--json', '-s'],
  ];
}

function compareAgainst(label: string, coordinatorExe: () => string | null, skip: string | null) {
  if (skip !== null) console.warn(`skipping dmtcp_command tests against ${label}: ${skip}`);
  describe.skipIf(skip !== null)(`dmtcp_command against ${label}`, () => {
    let coord: RunningCoordinator;
    beforeAll(async () => {
      coord = await startCoordinator(coordinatorExe() as string);
    });
    afterAll(async () => {
      await coord?.stop();
    });

    it('prints what spec §7 says for status, list, refused checkpoints and interval', () => {
      const p = String(coord.port);
      const s = cmd(['-p', p, '-s']);
      expect(s.status).toBe(0);
      expect(s.stdout).toBe(
        `Coordinator:\n  Host: localhost\n  Port: ${p}\nStatus...\n  NUM_PEERS=0\n  RUNNING=no\n  CKPT_INTERVAL=0 (checkpoint manually)\n`,
      );
      const l = cmd(['-p', p, '-l']);
      expect(l.stdout).toBe(
        `Coordinator:\n  Host: localhost\n  Port: ${p}\nClient List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n\n`,
      );
      const c = cmd(['-p', p, '-bc']);
      expect(c.status).toBe(2);
      expect(c.stderr).toBe(
        'Error, computation not in running state.  Either a checkpoint is\n currently happening or there are no connected processes.\n',
      );
      const kc = cmd(['-p', p, '-kc']);
      expect(kc.status).toBe(2);
      expect(kc.stdout).toBe('Computation was checkpointed and killed.\n');
      const i = cmd(['-p', p, '-i', '3']);
      expect(i.status).toBe(0);
      expect(i.stdout).toBe('Interval changed to 3\n');
      const js = cmd(['--json', '-p', p, '-s']);
      expect(js.stdout).toBe(
        `{"schema_version":1,"command":"DMT_STATUS","command_status":"DMT_COORD_SUCCESS","coordinator_host":"localhost","coordinator_port":${p},"num_peers":0,"running":false,"checkpoint_interval":3}\n`,
      );
      const ji = cmd(['--json', '-p', p, 'i0']);
      expect(ji.stdout).toBe(
        `{"schema_version":1,"command":"DMT_UPDATE_CKPT_INTERVAL","command_status":"DMT_COORD_SUCCESS","coordinator_host":"localhost","coordinator_port":${p},"checkpoint_interval":0}\n`,
      );
      // A non-numeric interval fails after connecting, with exit 99 (as the original's ASSERT).
      const bad = cmd(['-p', p, '-i', 'abc']);
      expect(bad.status).toBe(99);
      expect(bad.stderr).toContain("invalid interval 'abc'");
    });

    it.skipIf(dmtcpBin === null)('matches DMTCP\'s own dmtcp_command byte for byte', () => {
      const theirs = path.join(dmtcpBin as string, 'dmtcp_command');
      for (const args of invocations(coord.port)) {
        const a = cmd(args);
        const b = runClient(theirs, args);
        expect({ args, ...a }).toEqual({ args, ...b });
      }
      // Not-found, with and without a port setting (exit code and messages).
      for (const args of [['-p', '1', '-s'], ['--json', '-p', '1', '-c'], ['-p', '1', '-i', '4']]) {
        expect({ args, ...cmd(args) }).toEqual({ args, ...runClient(theirs, args) });
      }
      // Usage paths (the usage prose itself is our own wording: compare streams and codes).
      for (const args of [['bogus'], [], ['--json', 'bogus'], ['--json', '--help'], ['-i']]) {
        const a = cmd(args);
        const b = runClient(theirs, args);
        expect({ args, status: a.status, out: a.stdout === '', err: a.stderr === '' }).toEqual({
          args,
          status: b.status,
          out: b.stdout === '',
          err: b.stderr === '',
        });
        if (args[0] === '--json') expect(a.stdout).toBe(b.stdout);
      }
    });

    it('quit: the coordinator exits 0 and the client reports success', async () => {
      const q = cmd(['--json', '-p', String(coord.port), '-q']);
      expect(q.status).toBe(0);
      expect(JSON.parse(q.stdout).command_status).toBe('DMT_COORD_SUCCESS');
      expect(await coord.exited).toBe(0);
    });
  });
}

compareAgainst('our coordinator', () => ourCoordinator, existsSync(ourCoordinator) ? null : 'not built');
compareAgainst(
  "DMTCP's coordinator",
  () => (dmtcpBin ? path.join(dmtcpBin, 'dmtcp_coordinator') : null),
  dmtcpBin ? null : dmtcpSkipReason,
);

describe('ckpt command', () => {
  it('passes every argument through and propagates the exit code', () => {
    const ckpt = path.resolve(__dirname, '../../bin/ckpt');
    const r = spawnSync(ckpt, ['command', '--json', '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).command).toBe('DMT_VERSION');
    const u = spawnSync(ckpt, ['command', 'bogus'], { encoding: 'utf8' });
    expect(u.status).toBe(1);
    expect(u.stderr).toContain('Usage: dmtcp_command');
    const h = spawnSync(ckpt, ['command', '--help'], { encoding: 'utf8' });
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('Examples:');
  });
});
