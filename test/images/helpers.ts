/**
 * Helpers for the image tests: temp dirs, running the CLI, writing ckpt
 * generations, and building small DMTCP images from the documented layout
 * (no DMTCP bytes are stored in the repository).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { commitGeneration, generationDir, writeImage } from '../../src/images.js';

export const ckptBin = path.resolve(__dirname, '../../bin/ckpt');

export function tempDir(prefix = 'ckpt-images-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function run(args: string[], opts: { cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [ckptBin, ...args], { encoding: 'utf8', cwd: opts.cwd, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Deterministic pseudo-random bytes (xorshift), some pages zero. */
export function mixedData(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = seed | 1;
  for (let page = 0; page * 4096 < bytes; page++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if ((x & 3) === 0) continue;
    for (let i = page * 4096; i < Math.min(bytes, page * 4096 + 4096); i += 4) b.writeInt32LE((x = (x * 1103515245 + 12345) | 0), i);
  }
  return b;
}

/** Writes and commits generation `gen` of computation `comp` with `peers` processes. */
export async function makeGeneration(root: string, comp: string, gen: number, peers: number, opts: { commit?: boolean; bytes?: number } = {}): Promise<string> {
  const dir = generationDir(root, comp, gen);
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < peers; i++) {
    await writeImage(
      path.join(dir, `p${i}.ckpt`),
      { computation: comp, generation: gen, numPeers: peers, processId: `p${i}`, hostname: 'node1', program: 'test' },
      [{ start: 0x10000, data: mixedData(opts.bytes ?? 600_000, gen * 100 + i + 1) }],
      { sync: false, threads: 1 },
    );
  }
  if (opts.commit !== false) await commitGeneration(dir, { sync: false });
  return dir;
}

// ------------------------------------------------------------ DMTCP images

export interface DmtcpProc {
  hostid?: bigint;
  time: bigint;
  vpid: number;
  parentTime?: bigint;
  parentVpid?: number;
  compTime?: bigint;
  generation: number;
  numPeers: number;
  procname?: string;
}

/** A 4096-byte v4.0 checkpoint header, field by field from the spec's table. */
export function dmtcpHeader(p: DmtcpProc): Buffer {
  const h = Buffer.alloc(4096);
  h.write('DMTCP_CHECKPOINT_IMAGE_v4.0\n', 0, 'latin1');
  const hostid = p.hostid ?? 0x98ffn;
  h.writeBigUInt64LE(hostid, 32);
  h.writeBigUInt64LE(p.time, 40);
  h.writeInt32LE(p.vpid, 48);
  if (p.parentVpid) {
    h.writeBigUInt64LE(hostid, 56);
    h.writeBigUInt64LE(p.parentTime ?? 1n, 64);
    h.writeInt32LE(p.parentVpid, 72);
  }
  h.writeBigUInt64LE(hostid, 80);
  h.writeBigUInt64LE(p.compTime ?? 0x500n, 88);
  h.writeInt32LE(40000, 96);
  h.writeUInt32LE(p.generation, 100);
  h.writeInt32LE(p.vpid, 104);
  h.writeInt32LE(p.parentVpid ?? 999, 108);
  h.writeInt32LE(-1, 120);
  h.writeUInt32LE(p.parentVpid ? 0 : 1, 124);
  h.writeUInt32LE(p.numPeers, 128);
  h.writeUInt32LE(1, 132);
  h.write(p.procname ?? 'prog', 256, 'latin1');
  return h;
}

function record(addr: bigint, size: bigint, props: bigint, mmapFileSize: bigint, name: string): Buffer {
  const r = Buffer.alloc(4096);
  r.writeBigUInt64LE(addr, 0);
  r.writeBigUInt64LE(addr + size, 8);
  r.writeBigUInt64LE(size, 16);
  r.writeInt32LE(3, 32);
  r.writeInt32LE(0x32, 40);
  r.writeBigInt64LE(mmapFileSize, 72);
  r.writeBigUInt64LE(props, 80);
  r.write(name, 88, 'latin1');
  return r;
}

/** A complete small image: header twice, a file record with 100 data bytes, a parent with data and zero children, the end marker. */
export function dmtcpImage(p: DmtcpProc, dataPages = 2): Buffer {
  const h = dmtcpHeader(p);
  const parts = [h, h];
  parts.push(record(0x400000n, 4096n, 0n, 100n, '/bin/prog'), Buffer.alloc(100, 0x41));
  parts.push(record(0x600000n, BigInt((dataPages + 1) * 4096), 2n, -1n, '[heap]'));
  parts.push(record(0x600000n, BigInt(dataPages * 4096), 4n, -1n, '[heap]'), mixedData(dataPages * 4096, p.vpid));
  parts.push(record(0x600000n + BigInt(dataPages * 4096), 4096n, 5n, -1n, '[heap]'));
  parts.push(record(0n, 0xffffffffffffffffn, 0n, -1n, '[vsyscall]'));
  return Buffer.concat(parts);
}

export function dmtcpName(p: DmtcpProc): string {
  return `ckpt_${p.procname ?? 'prog'}_${(p.hostid ?? 0x98ffn).toString(16)}-${p.vpid}-${p.time.toString(16)}.dmtcp`;
}

export function gzip1(b: Buffer): Buffer {
  return zlib.gzipSync(b, { level: 1 });
}

/** DMTCP install for tests that need real images, or null. */
export function dmtcpPrefix(): string | null {
  const env = process.env.DMTCP_PREFIX;
  if (env && fs.existsSync(path.join(env, 'bin', 'dmtcp_launch'))) return env;
  return null;
}
