/**
 * The bind() wrapper preloaded into DMTCP jobs (native/dmtcp_shim): a TCP
 * bind that fails only because of TIME_WAIT connections succeeds through it,
 * and a port with a live listener stays taken.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { nativeBinDir } from '../../src/native.js';
import { realPython } from '../apptainer/helpers.js';

const shim = path.join(nativeBinDir(), 'ckpt_dmtcp_reuseaddr.so');
const python = realPython();

// A server that sets SO_REUSEADDR (as Python's http.server does) leaves a server-side
// TIME_WAIT on its port (it closes first); the port is then bound again without the option,
// as DMTCP does at restart before restoring options. Prints "bound" or the errno name, and
// whether SO_REUSEADDR is set afterwards.
const script = `
import errno, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
cli = socket.create_connection(("127.0.0.1", port))
conn, _ = srv.accept()
conn.close()
cli.recv(1)
cli.close()
srv.close()
live = None
if sys.argv[1] == "live":
    live = socket.socket()
    live.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    live.bind(("127.0.0.1", port))
    live.listen(1)
s = socket.socket()
try:
    s.bind(("127.0.0.1", port))
    print("bound", s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0)
except OSError as e:
    print(errno.errorcode[e.errno], s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0)
`;

function run(mode: 'time-wait' | 'live', preload: boolean): string {
  const r = spawnSync(python, ['-c', script, mode], {
    encoding: 'utf8',
    env: { ...process.env, LD_PRELOAD: preload ? shim : '' },
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe.skipIf(!fs.existsSync(shim))('bind() wrapper for DMTCP jobs', () => {
  it('re-binds a port held only by TIME_WAIT connections', () => {
    expect(run('time-wait', false)).toBe('EADDRINUSE False');
    expect(run('time-wait', true)).toBe('bound True');
  });

  it('never shares a port with a live listener, and leaves the option as it was', () => {
    expect(run('live', true)).toBe('EADDRINUSE False');
  });
});
