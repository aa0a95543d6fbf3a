/**
 * Several suites skip themselves, with a message, when something they need is
 * missing on a developer's machine (a native build, bubblewrap, the shared
 * protocol vectors, a browser). In CI nothing may be missing: a skip there
 * would hide a broken build or a missing install step. This suite turns each
 * such skip condition into a failure when CI=true.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const release = path.join(root, 'build', 'Release');
const inCI = process.env.CI === 'true' || process.env.CI === '1';

describe.runIf(inCI)('CI has everything the suites need', () => {
  it.each(['ckpt.node', 'dmtcp_coordinator', 'dmtcp_command', 'ckpt_loadgen', 'libckpt.so', 'ckpt-restart'])(
    'native build produced %s',
    (name) => {
      expect(existsSync(path.join(release, name)), `${name} missing in build/Release`).toBe(true);
    },
  );

  it('the shared protocol vectors are beside the checkout', () => {
    expect(existsSync(path.join(root, '..', 'shared', 'spec', 'vectors', 'launch.json'))).toBe(true);
  });

  it('bubblewrap runs a command in new user, pid and mount namespaces', () => {
    const r = spawnSync('bwrap', ['--unshare-user', '--unshare-pid', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
  });

  it('unprivileged user and pid namespaces are available', () => {
    const r = spawnSync('unshare', ['--user', '--map-root-user', '--pid', '--fork', 'true'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('Debian chromium is installed for the report test', () => {
    expect(existsSync('/usr/bin/chromium')).toBe(true);
  });

  it('python3 and a C compiler with OpenMP are available for the engine workloads', () => {
    expect(spawnSync('python3', ['--version']).status).toBe(0);
    const r = spawnSync('sh', ['-c', 'echo "int main(void){return 0;}" | gcc -fopenmp -x c - -o /dev/null'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});

