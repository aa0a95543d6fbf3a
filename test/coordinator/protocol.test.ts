/**
 * The codec binding (native/addon/protocol.cc) against the captured DMTCP
 * wire vectors: what TypeScript encodes from decoded fields equals the wire
 * bytes outside each message's dont_care ranges.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { protocol, repoRoot } from './synthetic-worker.js';

const vectorsDir = process.env.CKPT_VECTORS_DIR ?? path.resolve(repoRoot, '..', 'shared', 'spec', 'vectors');

interface Vector {
  seq: number;
  type: string;
  header_hex: string;
  payload_hex: string;
  dont_care: Array<[number, number]>;
}

describe('protocol codec binding', () => {
  it('exposes the constants', () => {
    expect(protocol.HEADER_SIZE).toBe(208);
    const raw = protocol.encode({ type: protocol.MsgType.DMT_ACCEPT });
    expect(raw.length).toBe(208);
    expect(raw.subarray(0, 16).toString('latin1')).toBe('DMTCP_CKPT_V0\n\0\0');
    const d = protocol.decode(raw);
    expect(d).toMatchObject({ type: 4, msgSize: 208, virtualPid: -1, realPid: -1, theCheckpointInterval: -1, valid: true });
  });

  it('frames split and invalid streams', () => {
    const a = protocol.encode({ type: protocol.MsgType.DMT_BARRIER_RELEASED }, 'DMT:SUSPEND\0');
    const b = protocol.encode({ type: protocol.MsgType.DMT_KILL_PEER });
    const both = Buffer.concat([a, b]);
    expect(protocol.frame(both.subarray(0, 300)).messages).toHaveLength(1);
    const all = protocol.frame(both);
    expect(all.messages.map((m) => m.type)).toEqual([20, 22]);
    expect(all.consumed).toBe(both.length);
    expect(protocol.frame(Buffer.alloc(300, 1)).error).toBe('bad magic');
  });

  const files = existsSync(vectorsDir) ? readdirSync(vectorsDir).filter((f) => f.endsWith('.json')) : [];
  it.skipIf(files.length === 0)(`re-encodes every captured message (vectors: ${vectorsDir})`, () => {
    let n = 0;
    for (const f of files) {
      const vectors = JSON.parse(readFileSync(path.join(vectorsDir, f), 'utf8')) as Vector[];
      for (const v of vectors) {
        const wire = Buffer.from(v.header_hex + v.payload_hex, 'hex');
        const d = protocol.decode(wire);
        expect(d.valid).toBe(true);
        expect(d.complete).toBe(true);
        const again = protocol.encode(
          {
            type: d.type,
            barrier: d.barrier,
            kvdb: d.type === 23 || d.type === 24 ? d.kvdb : 0,
            state: d.state,
            from: d.from,
            compGroup: d.compGroup,
            virtualPid: d.virtualPid,
            realPid: d.realPid,
            keyLen: d.keyLen,
            valLen: d.valLen,
            numPeers: d.numPeers,
            isRunning: d.isRunning,
            coordCmd: d.coordCmd,
            coordCmdStatus: d.coordCmdStatus,
            coordTimeStamp: d.coordTimeStamp,
            theCheckpointInterval: d.theCheckpointInterval,
            ipAddr: d.ipAddr,
            exitAfterCkpt: d.exitAfterCkpt,
          },
          d.payload,
        );
        const masked = new Set<number>();
        for (const [s, e] of v.dont_care) for (let i = s; i < e; i++) masked.add(i);
        for (let i = 0; i < wire.length; i++) {
          if (!masked.has(i) && again[i] !== wire[i]) throw new Error(`${f} #${v.seq} ${v.type}: byte ${i} differs`);
        }
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(190);
  });
});
