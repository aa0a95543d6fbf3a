/**
 * DMTCP images in the indexer, verify, inspect and convert: small images
 * built by the tests from the documented layout, the real 5.0 header
 * fixtures of the shared spec (read in place, when present), and real
 * images when DMTCP_PREFIX points at a DMTCP install.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { indexImages } from '../../src/images.js';
import { dmtcpHeader, dmtcpImage, dmtcpName, dmtcpPrefix, gzip1, run, tempDir, type DmtcpProc } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = tempDir('ckpt-dmtcp-');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const parent: DmtcpProc = { time: 0x1000n, vpid: 40000, generation: 2, numPeers: 2 };
const child: DmtcpProc = { time: 0x2000n, vpid: 41000, parentVpid: 40000, parentTime: 0x1000n, generation: 2, numPeers: 2 };
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('DMTCP images built from the documented layout', () => {
  it('groups a complete gzip+raw set and reports the restart command', async () => {
    fs.writeFileSync(path.join(dir, dmtcpName(parent)), dmtcpImage(parent));
    fs.writeFileSync(path.join(dir, dmtcpName(child)), gzip1(dmtcpImage(child)));
    fs.writeFileSync(
      path.join(dir, 'dmtcp_restart_script_98ff-40000-500.sh'),
      `#!/bin/bash\nckpt_timestamp="Sat Nov 21 00:38:36 2026"\ncoord_host=vm\n# Number of hosts in the computation = 1\n# Number of processes in the computation = 2\ngiven_ckpt_files=" ${path.join(dir, dmtcpName(parent))} ${path.join(dir, dmtcpName(child))}"\n`,
    );
    const r = run(['images', dir, '--json']);
    expect(r.status).toBe(0);
    const gens = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(gens).toHaveLength(1);
    expect(gens[0]).toMatchObject({ format: 'dmtcp', computation: '98ff-40000-500', generation: 2, numPeers: 2, complete: true, reason: null, newestComplete: true, hosts: ['vm'] });
    const procs = gens[0]!.processes as Array<Record<string, unknown>>;
    expect(procs.map((p) => p.encoding).sort()).toEqual(['gzip', 'raw']);
    expect(gens[0]!.restartScript).toContain('dmtcp_restart_script_98ff-40000-500.sh');
    expect(gens[0]!.scriptTimestamp).toBe('Sat Nov 21 00:38:36 2026');
    expect(run(['images', dir]).stdout).toContain('dmtcp_restart');
    expect(run(['verify', dir]).status).toBe(0);
  });

  it('a truncated raw image is reported incomplete without walking it; verify names the offset', async () => {
    const img = dmtcpImage(parent, 64);
    fs.writeFileSync(path.join(dir, dmtcpName(parent)), img.subarray(0, 40_000));
    fs.writeFileSync(path.join(dir, dmtcpName(child)), dmtcpImage(child));
    const r = await indexImages([dir]);
    const g = r.generations[0]!;
    expect(g.complete).toBe(false);
    expect(g.reason).toContain('end marker');
    const bad = g.processes.find((p) => !p.ok)!;
    expect(bad.checked).toBe('end-marker');
    const v = run(['verify', dir]);
    expect(v.status).toBe(4);
    expect(v.stderr).toContain(`${path.join(dir, dmtcpName(parent))}: at offset`);
  });

  it('mixed generations and images of exited processes are separate, incomplete sets', async () => {
    // Generation 3: only the parent (the child exited). Generation 2 child left behind.
    fs.writeFileSync(path.join(dir, dmtcpName(parent)), dmtcpImage({ ...parent, generation: 3, numPeers: 1 }));
    fs.writeFileSync(path.join(dir, dmtcpName(child)), dmtcpImage(child));
    const gens = (await indexImages([dir])).generations;
    expect(gens.map((g) => [g.generation, g.complete])).toEqual([
      [3, true],
      [2, false],
    ]);
    expect(gens[1]!.reason).toContain('1 of 2 process images present');
  });

  it('a temp file of a newer checkpoint makes the set incomplete', async () => {
    fs.writeFileSync(path.join(dir, dmtcpName(parent)), dmtcpImage(parent));
    fs.writeFileSync(path.join(dir, dmtcpName(child)), dmtcpImage(child));
    fs.writeFileSync(path.join(dir, `${dmtcpName(child)}.temp`), dmtcpHeader({ ...child, generation: 3 }));
    const g = (await indexImages([dir])).generations[0]!;
    expect(g.complete).toBe(false);
    expect(g.reason).toContain('.temp');
  });

  it('inspect shows the header and the record walk', () => {
    const f = path.join(dir, dmtcpName(parent));
    fs.writeFileSync(f, dmtcpImage(parent));
    const j = JSON.parse(run(['inspect', f, '--json']).stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ format: 'dmtcp', encoding: 'raw', endMarkerOk: true });
    expect(j.header).toMatchObject({ version: 'v4.0', computation: '98ff-40000-500', generation: 2, numPeers: 2, processId: '98ff-40000-1000', procname: 'prog' });
    expect(j.walk).toMatchObject({ records: 4, topLevelAreas: 2 });
  });

  it('convert: raw -> ckpt -> raw is byte-identical, gzip -> raw matches, the wrapped image stays in its set', () => {
    const img = dmtcpImage(parent, 300);
    const raw = path.join(dir, dmtcpName(parent));
    fs.writeFileSync(raw, img);
    fs.writeFileSync(path.join(dir, dmtcpName(child)), dmtcpImage(child));
    const wrapped = `${raw}.ckpt`;
    const a = run(['image', 'convert', raw, wrapped, '--zstd', '3', '--json']);
    expect(a.status, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ from: 'dmtcp-raw', to: 'ckpt-wrapped-dmtcp', logicalBytes: img.length });
    expect(fs.statSync(wrapped).size).toBeLessThan(img.length);
    // Source kept alongside: the wrapped copy is the same process, not a third one.
    let g = JSON.parse(run(['images', dir, '--json']).stdout) as Array<{ complete: boolean; warnings: string[] }>;
    expect(g[0]!.complete).toBe(true);
    fs.rmSync(raw);
    g = JSON.parse(run(['images', dir, '--json']).stdout) as Array<{ complete: boolean; warnings: string[] }>;
    expect(g[0]!.complete).toBe(true);
    expect(g[0]!.warnings.join('\n')).toContain('convert --raw');
    const b = run(['image', 'convert', wrapped, raw, '--raw']);
    expect(b.status, b.stderr).toBe(0);
    expect(sha(fs.readFileSync(raw))).toBe(sha(img));
    // Existing destination refused without --force (exit 5).
    const c = run(['image', 'convert', wrapped, raw, '--raw']);
    expect(c.status).toBe(5);
    expect(c.stderr).toContain('--force');
    // gzip -> raw.
    const gz = path.join(dir, 'gz.dmtcp');
    fs.writeFileSync(gz, gzip1(img));
    expect(run(['image', 'convert', gz, path.join(dir, 'gz-raw.dmtcp'), '--raw']).status).toBe(0);
    expect(sha(fs.readFileSync(path.join(dir, 'gz-raw.dmtcp')))).toBe(sha(img));
    // A truncated source is refused and leaves nothing behind.
    fs.writeFileSync(path.join(dir, 'cut.dmtcp'), img.subarray(0, img.length - 4096));
    const d = run(['image', 'convert', path.join(dir, 'cut.dmtcp'), path.join(dir, 'cut.ckpt')]);
    expect(d.status).toBe(4);
    expect(d.stderr).toMatch(/offset \d+/);
    expect(fs.existsSync(path.join(dir, 'cut.ckpt'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'cut.ckpt.tmp'))).toBe(false);
    // Usage errors.
    expect(run(['image', 'convert', wrapped, path.join(dir, 'x'), '--raw', '--zstd', '3']).status).toBe(2);
    expect(run(['image', 'convert', wrapped, path.join(dir, 'x'), '--zstd', '99']).status).toBe(2);
  });
});

describe('real DMTCP 5.0 header fixtures (shared spec, read in place)', () => {
  const fixtures = path.resolve(__dirname, '../../../shared/spec/fixtures/dmtcp-headers');
  it.skipIf(!fs.existsSync(fixtures))('parse and group as one complete set (headers padded with a synthetic end marker)', async () => {
    const index = JSON.parse(fs.readFileSync(path.join(fixtures, 'index.json'), 'utf8')) as Array<{ file: string; generation: number; numPeers: number; upid_pid: number }>;
    for (const e of index) {
      const head = fs.readFileSync(path.join(fixtures, e.file));
      // The fixture holds only the two header copies; add an end marker so the
      // O(1) integrity test has something to find.
      const end = Buffer.alloc(4096);
      end.writeBigUInt64LE(0xffffffffffffffffn, 16);
      fs.writeFileSync(path.join(dir, e.file.replace(/\.head$/, '')), Buffer.concat([head, end]));
    }
    const gens = (await indexImages([dir])).generations;
    expect(gens).toHaveLength(1);
    expect(gens[0]).toMatchObject({ format: 'dmtcp', computation: '98ff-40000-49a3705126d', generation: 2, numPeers: 2, complete: true });
    expect(gens[0]!.processes.map((p) => p.pid).sort()).toEqual(index.map((e) => e.upid_pid).sort());
  });
});

describe('real DMTCP images (DMTCP_PREFIX)', () => {
  const prefix = dmtcpPrefix();
  it.skipIf(!prefix)('indexes, verifies and converts images written by DMTCP', async () => {
    const bin = path.join(prefix!, 'bin');
    const portFile = path.join(dir, 'port');
    const coord = spawn(path.join(bin, 'dmtcp_coordinator'), ['--port', '0', '--port-file', portFile, '--ckptdir', dir, '--exit-on-last', '--timeout', '60'], {
      cwd: dir,
      stdio: 'ignore',
    });
    try {
      const deadline = Date.now() + 20_000;
      while (!fs.existsSync(portFile) || fs.readFileSync(portFile, 'utf8').trim() === '') {
        if (Date.now() > deadline) throw new Error('DMTCP coordinator did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
      const port = fs.readFileSync(portFile, 'utf8').trim();
      const job = spawn(path.join(bin, 'dmtcp_launch'), ['--join-coordinator', '--coord-port', port, '--ckptdir', dir, '--no-gzip', '/bin/sleep', '60'], { cwd: dir, stdio: 'ignore' });
      try {
        await new Promise((r) => setTimeout(r, 1500));
        const c = spawnSync(path.join(bin, 'dmtcp_command'), ['--coord-port', port, '--bcheckpoint'], { encoding: 'utf8', timeout: 60_000 });
        expect(c.status, c.stderr).toBe(0);
      } finally {
        spawnSync(path.join(bin, 'dmtcp_command'), ['--coord-port', fs.readFileSync(portFile, 'utf8').trim(), '--quit'], { timeout: 20_000 });
        job.kill('SIGKILL');
      }
    } finally {
      coord.kill('SIGKILL');
    }
    const gens = (await indexImages([dir], { deep: true })).generations;
    expect(gens.length).toBeGreaterThan(0);
    expect(gens[0]).toMatchObject({ format: 'dmtcp', generation: 1, numPeers: 1, complete: true });
    const img = gens[0]!.processes[0]!.path;
    const original = sha(fs.readFileSync(img));
    expect(run(['verify', img]).status).toBe(0);
    expect(run(['image', 'convert', img, `${img}.ckpt`]).status).toBe(0);
    fs.rmSync(img);
    expect(run(['image', 'convert', `${img}.ckpt`, img, '--raw']).status).toBe(0);
    expect(sha(fs.readFileSync(img))).toBe(original);
    // Truncated in the middle of its data: found by the O(1) check.
    fs.truncateSync(img, Math.floor(fs.statSync(img).size / 2));
    const after = (await indexImages([img])).generations[0]!;
    expect(after.complete).toBe(false);
    expect(after.reason).toContain('end marker');
  });
  if (!prefix) it('real DMTCP tests skipped: set DMTCP_PREFIX to a DMTCP install (e.g. /opt/dmtcp)', () => undefined);
});
