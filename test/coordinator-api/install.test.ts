/**
 * `ckpt coordinator install`: the shim in a DMTCP prefix (a fake one here;
 * test/dmtcp-compat runs a real auto-start through it when DMTCP exists).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { installCoordinatorShim, uninstallCoordinatorShim } from '../../src/coordinator-install.js';

const ckpt = path.resolve(__dirname, '../../bin/ckpt');

let dir: string;
let prefix: string;
let bin: string;
let fakeCoordinator: string;
const ORIGINAL_TEXT = '#!/bin/sh\necho original "$@"\n';

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ckpt-install-'));
  prefix = path.join(dir, 'dmtcp');
  bin = path.join(prefix, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(path.join(bin, 'dmtcp_launch'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(path.join(bin, 'dmtcp_coordinator'), ORIGINAL_TEXT, { mode: 0o751 });
  // Stands in for ckpt's native coordinator: reports what it was given.
  fakeCoordinator = path.join(dir, 'fake_coordinator');
  writeFileSync(
    fakeCoordinator,
    '#!/bin/sh\necho "args:$*"\necho "bindir:$CKPT_DMTCP_BIN_DIR"\nif [ -e /proc/self/fd/821 ]; then echo fd821:open; else echo fd821:closed; fi\n',
    { mode: 0o755 },
  );
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('coordinator install', () => {
  it('installs a shim, keeps the original exactly, is idempotent, and uninstall restores it', async () => {
    const target = path.join(bin, 'dmtcp_coordinator');
    const before = statSync(target);
    const r = await installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: fakeCoordinator });
    expect(r.action).toBe('installed');
    expect(r.original).toBe(path.join(bin, 'dmtcp_coordinator.orig'));
    const orig = statSync(path.join(bin, 'dmtcp_coordinator.orig'));
    expect(orig.ino).toBe(before.ino);
    expect(orig.mode & 0o7777).toBe(0o751);
    expect(readFileSync(target, 'utf8')).toContain('# ckpt-coordinator-shim 1');
    expect(statSync(target).mode & 0o111).toBe(0o111);
    expect(r.apptainerBinsEntry).toBe(`  - "${fakeCoordinator}"`);

    expect((await installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: fakeCoordinator })).action).toBe('unchanged');
    expect((await installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: '/bin/true' })).action).toBe('updated');

    const u = await uninstallCoordinatorShim({ dmtcpPrefix: prefix });
    expect(u.action).toBe('uninstalled');
    const after = statSync(target);
    expect(after.ino).toBe(before.ino);
    expect(after.mode & 0o7777).toBe(0o751);
    expect(readFileSync(target, 'utf8')).toBe(ORIGINAL_TEXT);
    expect(() => statSync(path.join(bin, 'dmtcp_coordinator.orig'))).toThrow();
    expect((await uninstallCoordinatorShim({ dmtcpPrefix: prefix })).action).toBe('not-installed');
  });

  it('the shim execs the coordinator with the arguments, fd 821 and the DMTCP bindir', async () => {
    await installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: fakeCoordinator });
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe'];
    while (stdio.length < 821) stdio.push('ignore');
    stdio.push('pipe'); // fd 821 in the child, as dmtcp_launch hands it over
    const child = spawn(path.join(bin, 'dmtcp_coordinator'), ['--quiet', '--exit-on-last', '--daemon'], { stdio });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(0);
    expect(out).toBe(`args:--quiet --exit-on-last --daemon\nbindir:${bin}\nfd821:open\n`);
  });

  it('falls back to DMTCP\'s own coordinator when ckpt\'s is gone', async () => {
    const doomed = path.join(dir, 'doomed');
    writeFileSync(doomed, '#!/bin/sh\n', { mode: 0o755 });
    await installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: doomed });
    rmSync(doomed);
    const r = spawnSync(path.join(bin, 'dmtcp_coordinator'), ['x'], { encoding: 'utf8' });
    expect(r.stdout).toBe('original x\n');
    expect(r.stderr).toContain('missing');
  });

  it('follows a symlinked dmtcp_launch to the real bin directory', async () => {
    const linkPrefix = path.join(dir, 'linked');
    mkdirSync(path.join(linkPrefix, 'bin'), { recursive: true });
    symlinkSync(path.join(bin, 'dmtcp_launch'), path.join(linkPrefix, 'bin', 'dmtcp_launch'));
    const r = await installCoordinatorShim({ dmtcpPrefix: linkPrefix, coordinator: fakeCoordinator });
    expect(r.bindir).toBe(bin);
  });

  it('refuses when dmtcp_coordinator.orig exists and is a different file, changing nothing', async () => {
    writeFileSync(path.join(bin, 'dmtcp_coordinator.orig'), 'something else');
    await expect(installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: fakeCoordinator })).rejects.toMatchObject({
      code: 'ERR_CKPT_EXISTS',
    });
    expect(readFileSync(path.join(bin, 'dmtcp_coordinator'), 'utf8')).toBe(ORIGINAL_TEXT);
  });

  it('gives clear errors for a prefix without dmtcp_launch, a read-only bindir and a missing coordinator', async () => {
    await expect(installCoordinatorShim({ dmtcpPrefix: dir, coordinator: fakeCoordinator })).rejects.toMatchObject({
      code: 'ERR_CKPT_NOT_FOUND',
      message: expect.stringContaining('bin/dmtcp_launch'),
    });
    await expect(installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: path.join(dir, 'nope') })).rejects.toMatchObject({
      code: 'ERR_CKPT_NOT_FOUND',
    });
    await expect(installCoordinatorShim({ dmtcpPrefix: '' })).rejects.toBeInstanceOf(TypeError);
    if (process.getuid?.() !== 0) {
      chmodSync(bin, 0o555);
      try {
        await expect(installCoordinatorShim({ dmtcpPrefix: prefix, coordinator: fakeCoordinator })).rejects.toMatchObject({
          code: 'ERR_CKPT_IO',
          message: expect.stringContaining('cannot write'),
        });
      } finally {
        chmodSync(bin, 0o755);
      }
    }
  });

  it('ckpt coordinator install: text and --json output, exit codes', () => {
    const r = spawnSync(ckpt, ['coordinator', 'install', '--dmtcp-prefix', prefix, '--coordinator', fakeCoordinator], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Installed:');
    expect(r.stdout).toContain('dmtcp-conf.yaml');
    expect(r.stdout).toContain(`  - "${fakeCoordinator}"`);
    const j = spawnSync(ckpt, ['coordinator', 'install', '--dmtcp-prefix', prefix, '--coordinator', fakeCoordinator, '--json'], {
      encoding: 'utf8',
    });
    expect(j.status).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ action: 'unchanged', bindir: bin });
    const u = spawnSync(ckpt, ['coordinator', 'install', '--dmtcp-prefix', prefix, '--uninstall', '--json'], { encoding: 'utf8' });
    expect(JSON.parse(u.stdout)).toMatchObject({ action: 'uninstalled' });
    const bad = spawnSync(ckpt, ['coordinator', 'install', '--dmtcp-prefix', dir, '--json'], { encoding: 'utf8' });
    expect(bad.status).toBe(3);
    expect(JSON.parse(bad.stdout).error.code).toBe('ERR_CKPT_NOT_FOUND');
  });
});
