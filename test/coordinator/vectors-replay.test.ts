/**
 * Conformance against real DMTCP 5.0 traffic: the client side of every
 * captured scenario (../shared/spec/vectors) is replayed byte for byte
 * against our coordinator, and every message it sends back must equal the
 * one DMTCP's coordinator sent, outside the ranges the capture marks as
 * environment-dependent (dont_care). Payloads must match exactly, except
 * that our LIST reply carries a terminating NUL (docs/compat.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type CoordinatorProcess, MsgType, Peer, repoRoot, sleep, startCoordinator } from './synthetic-worker.js';

const vectorsDir = process.env.CKPT_VECTORS_DIR ?? path.resolve(repoRoot, '..', 'shared', 'spec', 'vectors');

interface Vector {
  seq: number;
  conn: number;
  dir: string;
  type: string;
  header_hex: string;
  payload_hex: string;
  dont_care: Array<[number, number]>;
  note?: string;
}

let coord: CoordinatorProcess | undefined;
afterEach(async () => {
  await coord?.stop();
  coord = undefined;
});

const files = ['launch.json', 'command.json', 'checkpoint.json', 'restart.json', 'fork.json', 'reject.json'];
const present = files.every((f) => existsSync(path.join(vectorsDir, f)));

describe.skipIf(!present)(`replay of DMTCP 5.0 captures (${vectorsDir})`, () => {
  for (const file of files) {
    it(`${file}: every coordinator message matches`, async () => {
      const vectors = JSON.parse(readFileSync(path.join(vectorsDir, file), 'utf8')) as Vector[];
      const synthetic = new Set(vectors.filter((v) => v.note).map((v) => v.conn));
      coord = await startCoordinator({ args: ['--timeout', '60', '-q'] });
      const conns = new Map<number, Peer>();
      let compared = 0;
      for (const v of vectors) {
        const wire = Buffer.from(v.header_hex + v.payload_hex, 'hex');
        if (v.dir.endsWith('->C')) {
          let p = conns.get(v.conn);
          if (!p) {
            p = await Peer.connect(coord.port);
            conns.set(v.conn, p);
          }
          p.sendRaw(wire);
          continue;
        }
        const p = conns.get(v.conn);
        if (!p) throw new Error(`${file} #${v.seq}: reply on an unknown connection`);
        const got = (await p.recv(5000)) as (Awaited<ReturnType<Peer['recv']>> & { raw?: Buffer }) | null;
        if (!got?.raw) throw new Error(`${file} #${v.seq}: expected ${v.type}, got ${p.closed ? 'a close' : 'nothing'}`);
        const masked = new Set<number>();
        for (const [s, e] of v.dont_care) for (let i = s; i < e; i++) masked.add(i);
        const diffs: number[] = [];
        for (let i = 0; i < 208; i++) if (!masked.has(i) && got.raw[i] !== wire[i]) diffs.push(i);
        expect(diffs, `${file} #${v.seq} ${v.type}: header bytes differ at ${diffs.join(',')} (got ${got.typeName})`).toEqual([]);
        const want = wire.subarray(208);
        const isList = got.type === MsgType.DMT_USER_CMD_RESULT && got.coordCmd === 2;
        const payload = isList && got.payload.at(-1) === 0 ? got.payload.subarray(0, -1) : got.payload;
        if (!isList || masked.has(92)) {
          expect(payload.toString('latin1'), `${file} #${v.seq} payload`).toBe(want.toString('latin1'));
        }
        compared++;
        // Real workers exit when told to; the capture's synthetic ones did not.
        if (got.type === MsgType.DMT_KILL_PEER && !synthetic.has(v.conn)) {
          p.destroy();
          await sleep(50);
        }
      }
      expect(compared).toBe(vectors.filter((v) => !v.dir.endsWith('->C')).length);
      // Nothing beyond what the original sent (e.g. no reply to QUIT).
      for (const [id, p] of conns) {
        const extra = await p.recv(100);
        expect(extra?.typeName, `${file}: unexpected message on connection ${id}`).toBeUndefined();
        p.destroy();
      }
    });
  }
});
