/**
 * DMTCP's own coordinator tests (coordinator_synthetic.py, 36 tests;
 * test_dmtcp_command_json.py; test_dmtcp_cli.py) run against our
 * dmtcp_coordinator. They need a built DMTCP source tree: set DMTCP_SRC (for
 * example /opt/dmtcp-src); without one these tests are skipped. Nothing of
 * DMTCP is kept in this repository: the suite is copied to a temporary
 * directory whose bin/dmtcp_coordinator execs ours.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { coordinatorBin, tempDir } from './synthetic-worker.js';

const run = promisify(execFile);
const src = process.env.DMTCP_SRC ?? (existsSync('/opt/dmtcp-src/test/coordinator_synthetic.py') ? '/opt/dmtcp-src' : '');
const usable =
  src !== '' &&
  existsSync(path.join(src, 'test', 'coordinator_synthetic.py')) &&
  existsSync(path.join(src, 'test', 'coordinator_synthetic_worker')) &&
  existsSync(path.join(src, 'bin', 'dmtcp_launch'));
if (!usable) {
  console.warn('DMTCP test suite skipped: set DMTCP_SRC to a built DMTCP 5.0 source tree to run it');
}

describe.skipIf(!usable)(`DMTCP's coordinator test suites (${src || 'no DMTCP_SRC'})`, () => {
  let root = '';

  beforeAll(async () => {
    root = await tempDir('ckpt-dmtcp-suite-');
    await fs.mkdir(path.join(root, 'bin'));
    await fs.mkdir(path.join(root, 'test'));
    // Real copies of the executables: dmtcp_launch starts the coordinator
    // that sits next to its resolved /proc/self/exe.
    for (const f of await fs.readdir(path.join(src, 'bin'))) {
      if (f === 'dmtcp_coordinator') continue;
      await fs.copyFile(path.join(src, 'bin', f), path.join(root, 'bin', f));
      await fs.chmod(path.join(root, 'bin', f), 0o755);
    }
    await fs.writeFile(path.join(root, 'bin', 'dmtcp_coordinator'), `#!/bin/sh\nexec '${coordinatorBin}' "$@"\n`, { mode: 0o755 });
    await fs.symlink(path.join(src, 'lib'), path.join(root, 'lib'));
    for (const f of await fs.readdir(path.join(src, 'test'))) {
      if (f.endsWith('.py') || f === 'coordinator_synthetic_worker') {
        await fs.copyFile(path.join(src, 'test', f), path.join(root, 'test', f));
      }
    }
    await fs.chmod(path.join(root, 'test', 'coordinator_synthetic_worker'), 0o755);
  });

  afterAll(async () => {
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  for (const [suite, count] of [
    ['coordinator_synthetic.py', 36],
    ['test_dmtcp_command_json.py', 0],
    ['test_dmtcp_cli.py', 0],
  ] as const) {
    it(`${suite} passes`, async () => {
      const r = await run('python3', [path.join(root, 'test', suite)], { cwd: root, timeout: 170_000 }).catch(
        (e: { stdout: string; stderr: string }) => e,
      );
      const out = `${r.stdout}\n${r.stderr}`;
      expect(out, out).toMatch(/\nOK\b/);
      if (count) expect(out).toContain(`Ran ${count} tests`);
    }, 180_000);
  }
});
