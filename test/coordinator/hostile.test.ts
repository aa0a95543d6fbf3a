/**
 * Hostile and broken peers (spec §2.6, §11.1, §11.2): after each, the
 * coordinator must still answer a fresh client's status request, keep its
 * registered workers and never exit.
 */
import net from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CoordCmd,
  type CoordinatorProcess,
  KvdbOp,
  MsgType,
  Peer,
  SyntheticWorker,
  connectSocket,
  protocol,
  runningWorkers,
  sleep,
  startCoordinator,
  status,
  until,
  userCommand,
  waitPeers,
} from './synthetic-worker.js';

let c: CoordinatorProcess;
let anchor: SyntheticWorker;

beforeAll(async () => {
  c = await startCoordinator({ args: ['--timeout', '200'] });
  // A healthy worker that must survive everything below.
  [anchor] = (await runningWorkers(c.port, 1)) as [SyntheticWorker];
});

afterAll(async () => {
  anchor?.destroy();
  await c?.stop();
});

async function healthy(): Promise<void> {
  const s = await status(c.port);
  expect(s.numPeers).toBe(1);
  expect(s.running).toBe(true);
  expect(c.proc.exitCode).toBeNull();
}

function helloBytes(fields: protocol.HeaderFields = {}): Buffer {
  return protocol.encode(
    { type: MsgType.DMT_NEW_WORKER, state: 0, realPid: 1, from: { hostid: 1n, time: 2n, pid: 3 }, ...fields },
    protocol.helloPayload('h', 'p'),
  );
}

describe('invalid first messages are closed without a reply', () => {
  const cases: Array<[string, protocol.HeaderFields]> = [
    ['wrong magic', { magic: 'DMTCP_CKPT_V1\n\0\0' }],
    ['msgSize 207', { msgSize: 207 }],
    ['extraBytes 1 MiB + 1', { extraBytes: protocol.MAX_EXTRA_BYTES + 1 }],
  ];
  for (const [name, fields] of cases) {
    it(name, async () => {
      const p = await Peer.connect(c.port);
      p.sendRaw(helloBytes(fields));
      expect(await p.recv(2000)).toBeNull();
      expect(p.closed).toBe(true);
      await healthy();
    });
  }

  it('a first message with a payload over 16 KiB (unauthenticated buffering is bounded)', async () => {
    const p = await Peer.connect(c.port);
    p.sendRaw(protocol.encode({ type: MsgType.DMT_NEW_WORKER, state: 0 }, Buffer.alloc(20000, 0x41)));
    expect(await p.recv(2000)).toBeNull();
    expect(p.closed).toBe(true);
    await healthy();
  });

  it('a message that is not a hello', async () => {
    const p = await Peer.connect(c.port);
    p.send({ type: MsgType.DMT_BARRIER, barrier: 'x' });
    expect(await p.waitClosed()).toBe(true);
    await healthy();
  });
});

describe('stalling peers do not stall anyone else', () => {
  it('half a header, then silence', async () => {
    const p = await Peer.connect(c.port);
    p.sendRaw(helloBytes().subarray(0, 100));
    const t0 = Date.now();
    await healthy();
    expect(Date.now() - t0).toBeLessThan(2000);
    p.destroy();
  });

  it('half a header, then close: no computation is started', async () => {
    const p = await Peer.connect(c.port);
    p.sendRaw(helloBytes().subarray(0, 50));
    p.close();
    await p.waitClosed();
    await healthy();
  });

  it('a header announcing a payload that never comes', async () => {
    const p = await Peer.connect(c.port);
    p.sendRaw(protocol.encode({ type: MsgType.DMT_NEW_WORKER, extraBytes: 5000 }, 'short'));
    await healthy();
    p.destroy();
  });

  it('an idle open connection', async () => {
    const s = await connectSocket(c.port);
    await healthy();
    s.destroy();
  });

  it('half-open connections (write side shut)', async () => {
    const socks: net.Socket[] = [];
    for (let i = 0; i < 20; i++) {
      const s = await connectSocket(c.port);
      s.end();
      socks.push(s);
    }
    await healthy();
    socks.forEach((s) => s.destroy());
  });

  it('a user command whose client shuts its write side still gets the reply', async () => {
    const p = await Peer.connect(c.port);
    p.sock.end(protocol.encode({ type: MsgType.DMT_USER_CMD, coordCmd: CoordCmd.DMT_STATUS }));
    const m = await p.expect(MsgType.DMT_USER_CMD_RESULT);
    expect(m.numPeers).toBe(1);
  });

  it('random bytes', async () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16) & 0xff;
    for (let i = 0; i < 10; i++) {
      const s = await connectSocket(c.port);
      s.on('error', () => {});
      s.write(Buffer.from(Array.from({ length: 1000 + i * 97 }, rnd)));
      s.end();
    }
    await healthy();
  });

  it('closing right after asking for the list', async () => {
    for (let i = 0; i < 20; i++) {
      const s = await connectSocket(c.port);
      s.on('error', () => {});
      s.write(protocol.encode({ type: MsgType.DMT_USER_CMD, coordCmd: CoordCmd.DMT_LIST }));
      s.destroy();
    }
    await healthy();
  });

  it('a worker that stops reading is dropped once its queue is full, without stalling others', async () => {
    const { worker: greedy } = await SyntheticWorker.join(c.port);
    greedy.initDone();
    await waitPeers(c.port, 2);
    greedy.sock.pause(); // never read again
    // Store a large value, then ask for it again and again without reading
    // the answers: the replies pile up on the coordinator's side.
    const big = 'x'.repeat(1000000);
    greedy.kvdb(KvdbOp.SET, '/big', 'k', big);
    for (let i = 0; i < 100; i++) greedy.kvdb(KvdbOp.GET, '/big', 'k');
    // Meanwhile everyone else is served.
    await healthy().catch(() => {}); // peer count may already be 1 or 2
    const s = await status(c.port);
    expect([1, 2]).toContain(s.numPeers);
    await waitPeers(c.port, 1, 20000);
    await until(() => c.stderr().includes('peer is not reading'), 'the drop to be logged');
    greedy.destroy();
    await healthy();
  });
});

describe('protocol violations on established connections drop only that peer', () => {
  async function victim(): Promise<SyntheticWorker> {
    const { worker } = await SyntheticWorker.join(c.port);
    worker.initDone();
    await waitPeers(c.port, 2);
    return worker;
  }

  it('bad magic from a registered worker', async () => {
    const w = await victim();
    w.sendRaw(protocol.encode({ type: MsgType.DMT_BARRIER, magic: 'XXXXXXXXXXXXXXXX' }));
    expect(await w.waitClosed()).toBe(true);
    await waitPeers(c.port, 1);
    await healthy();
  });

  it('an unexpected message type (DMT_ACCEPT) after the hello', async () => {
    const w = await victim();
    w.send({ type: MsgType.DMT_ACCEPT });
    expect(await w.waitClosed()).toBe(true);
    await waitPeers(c.port, 1);
    await healthy();
  });

  it('messages without their required payloads (W-ROB-3, W-ROB-4)', async () => {
    for (const type of [MsgType.DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC, MsgType.DMT_UPDATE_CKPT_DIR]) {
      const w = await victim();
      w.send({ type, state: 1 });
      expect(await w.waitClosed()).toBe(true);
      await waitPeers(c.port, 1);
    }
    const w = await victim();
    w.send({ type: MsgType.DMT_CKPT_FILENAME, state: 5 }, 'a\0bogus-shell\0h\0');
    expect(await w.waitClosed()).toBe(true);
    await waitPeers(c.port, 1);
    await healthy();
  });

  it('a worker disconnecting at a barrier during a checkpoint', async () => {
    const w = await victim();
    expect((await userCommand(c.port, CoordCmd.DMT_CHECKPOINT))!.coordCmdStatus).toBe(0);
    await anchor.expect(MsgType.DMT_DO_CHECKPOINT);
    await w.expect(MsgType.DMT_DO_CHECKPOINT);
    anchor.barrier('DMT:SUSPEND', 2);
    w.barrier('DMT:SUSPEND', 2);
    await anchor.expect(MsgType.DMT_BARRIER_RELEASED);
    w.barrier('DMT:CHECKPOINT', 3);
    await sleep(30);
    w.destroy();
    await waitPeers(c.port, 1);
    await anchor.checkpoint('/ck', ['DMT:CHECKPOINT', 'DMT:WriteCkpt']);
    await until(async () => (await status(c.port)).running, 'anchor running again');
    await healthy();
  });
});
