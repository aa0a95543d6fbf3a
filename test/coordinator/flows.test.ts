/**
 * Every flow of the protocol specification (§3) and every case of its
 * Appendix B (the behaviour DMTCP's own coordinator tests require), driven
 * against build/Release/dmtcp_coordinator by synthetic workers.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  CmdStatus,
  CoordCmd,
  type CoordinatorProcess,
  KvdbOp,
  KvdbResult,
  MsgType,
  Peer,
  SyntheticWorker,
  WorkerState,
  listText,
  runningWorkers,
  sleep,
  startCoordinator,
  status,
  until,
  userCommand,
  waitPeers,
} from './synthetic-worker.js';

let coord: CoordinatorProcess | undefined;
const peers: Peer[] = [];

async function start(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CoordinatorProcess> {
  coord = await startCoordinator({ args: ['--timeout', '100', ...args], env });
  return coord;
}

function track<T extends Peer>(p: T): T {
  peers.push(p);
  return p;
}

async function join(port: number, opts: Parameters<typeof SyntheticWorker.join>[1] = {}) {
  const r = await SyntheticWorker.join(port, opts);
  track(r.worker);
  return r;
}

afterEach(async () => {
  for (const p of peers.splice(0)) p.destroy();
  await coord?.stop();
  coord = undefined;
});

const zeroUpid = { hostid: 0n, time: 0n, pid: 0, generation: 0 };

describe('joining (spec 3.2)', () => {
  it('accepts a worker with a virtual pid and reports it in status', async () => {
    const c = await start();
    const { worker, reply } = await join(c.port);
    expect(reply?.type).toBe(MsgType.DMT_ACCEPT);
    expect(reply!.virtualPid).toBe(40000);
    expect(reply!.extraBytes).toBe(0);
    expect(reply!.coordTimeStamp).not.toBe(0n);
    expect(reply!.ipAddr).not.toBe('0.0.0.0');
    // The computation id is the first worker's identity with the allocated vpid.
    expect(reply!.compGroup.hostid).toBe(worker.identity.hostid);
    expect(reply!.compGroup.time).toBe(worker.identity.time);
    expect(reply!.compGroup.pid).toBe(40000);
    expect((await status(c.port)).running).toBe(false); // UNKNOWN until INIT_OR_EXEC
    worker.initDone();
    const s = await until(async () => {
      const st = await status(c.port);
      return st.running ? st : undefined;
    }, 'running');
    expect(s.numPeers).toBe(1);
  });

  it('puts two workers in one computation with one timestamp', async () => {
    const c = await start();
    const a = await join(c.port);
    const b = await join(c.port);
    expect(b.reply!.virtualPid).toBe(41000);
    expect(b.reply!.compGroup.text).toBe(a.reply!.compGroup.text);
    expect(b.reply!.coordTimeStamp).toBe(a.reply!.coordTimeStamp);
    a.worker.initDone();
    b.worker.initDone();
    await until(async () => (await status(c.port)).running, 'running');
    expect((await status(c.port)).numPeers).toBe(2);
  });

  it('--interval sets the status interval; a hello interval overrides it', async () => {
    const c = await start(['--interval', '7']);
    expect((await status(c.port)).interval).toBe(7);
    await join(c.port, { interval: 9 });
    expect((await status(c.port)).interval).toBe(9);
  });

  it('rejects a new worker that names a computation group', async () => {
    const c = await start();
    const { worker, reply } = await join(c.port, { compGroup: { hostid: 1n, time: 1n, pid: 1, generation: 0 } });
    expect(reply?.type).toBe(MsgType.DMT_REJECT_WRONG_COMP);
    expect(reply!.virtualPid).toBe(40000); // the burned vpid, as the original
    expect(await worker.waitClosed()).toBe(true);
    expect((await status(c.port)).numPeers).toBe(0);
  });

  it('closes hellos in an impossible state or with a virtual pid, without a reply', async () => {
    const c = await start();
    const a = await join(c.port, { state: WorkerState.SUSPENDED });
    expect(a.reply).toBeNull();
    const b = await join(c.port, { virtualPid: 5 });
    expect(b.reply).toBeNull();
    expect(await a.worker.waitClosed()).toBe(true);
    expect(await b.worker.waitClosed()).toBe(true);
    expect((await status(c.port)).numPeers).toBe(0);
  });

  it('lets a replacement worker join after a peer disconnects', async () => {
    const c = await start();
    const [a, b] = await runningWorkers(c.port, 2);
    track(a!);
    track(b!);
    b!.destroy();
    await waitPeers(c.port, 1);
    expect((await status(c.port)).running).toBe(true);
    const r = await join(c.port);
    r.worker.initDone();
    await waitPeers(c.port, 2);
    expect((await status(c.port)).running).toBe(true);
  });

  it('the vpid cursor is not reset for a new computation', async () => {
    const c = await start();
    const a = await join(c.port);
    a.worker.destroy();
    await waitPeers(c.port, 0);
    const b = await join(c.port);
    expect(b.reply!.virtualPid).toBe(41000);
    expect(b.reply!.compGroup.pid).toBe(41000);
    expect(b.reply!.coordTimeStamp).not.toBe(a.reply!.coordTimeStamp);
  });
});

describe('restart (spec 3.3, 3.10)', () => {
  const comp = { hostid: 0x98ffn, time: 0x444b63bae1cn, pid: 40000, generation: 1 };

  it('rejects a restart hello while a computation runs', async () => {
    const c = await start();
    await runningWorkers(c.port, 1).then((ws) => ws.forEach(track));
    const { reply } = await join(c.port, { restart: true, compGroup: comp, numPeers: 1 });
    expect(reply?.type).toBe(MsgType.DMT_REJECT_NOT_RESTARTING);
    expect(reply!.virtualPid).toBe(-1);
    const s = await status(c.port);
    expect(s).toMatchObject({ numPeers: 1, running: true });
  });

  it('holds restart barriers until the quorum has connected and arrived', async () => {
    const c = await start();
    const a = await join(c.port, { restart: true, compGroup: comp, numPeers: 2 });
    expect(a.reply?.type).toBe(MsgType.DMT_ACCEPT);
    expect(a.reply!.virtualPid).toBe(-1);
    expect(a.reply!.compGroup.text).toBe('0-0-0');
    a.worker.barrier('DMT:Restart');
    expect(await a.worker.recv(300)).toBeNull();
    const b = await join(c.port, { restart: true, compGroup: comp, numPeers: 2 });
    expect(b.reply?.type).toBe(MsgType.DMT_ACCEPT);
    expect(b.reply!.coordTimeStamp).toBe(a.reply!.coordTimeStamp);
    b.worker.barrier('DMT:Restart');
    for (const w of [a.worker, b.worker]) {
      const m = await w.expect(MsgType.DMT_BARRIER_RELEASED);
      expect(m.numPeers).toBe(2);
      expect(m.compGroup.generation).toBe(1);
    }
    // Restarted workers resume; the computation is RUNNING again and the
    // next checkpoint uses generation image+1.
    a.worker.resuming();
    b.worker.resuming();
    await until(async () => (await status(c.port)).running, 'running after restart');
    expect((await userCommand(c.port, CoordCmd.DMT_CHECKPOINT))!.coordCmdStatus).toBe(0);
    expect((await a.worker.expect(MsgType.DMT_DO_CHECKPOINT)).compGroup.generation).toBe(2);
  });

  it('rejects a restart hello with another peer count', async () => {
    const c = await start();
    await join(c.port, { restart: true, compGroup: comp, numPeers: 2 });
    const { reply } = await join(c.port, { restart: true, compGroup: comp, numPeers: 3 });
    expect(reply?.type).toBe(MsgType.DMT_REJECT_RESTART_PEER_MISMATCH);
    expect(await status(c.port)).toMatchObject({ numPeers: 1, running: false });
  });

  it('rejects a restart hello of another computation', async () => {
    const c = await start();
    await join(c.port, { restart: true, compGroup: comp, numPeers: 2 });
    const { reply } = await join(c.port, { restart: true, compGroup: { ...comp, time: 7n }, numPeers: 2 });
    expect(reply?.type).toBe(MsgType.DMT_REJECT_WRONG_COMP);
    expect(await status(c.port)).toMatchObject({ numPeers: 1, running: false });
  });

  it('rejects images of another generation of the same computation (W-BUG-21)', async () => {
    const c = await start();
    await join(c.port, { restart: true, compGroup: comp, numPeers: 2 });
    const { reply } = await join(c.port, { restart: true, compGroup: { ...comp, generation: 2 }, numPeers: 2 });
    expect(reply?.type).toBe(MsgType.DMT_REJECT_WRONG_COMP);
  });

  it('rejects a new worker during a restart', async () => {
    const c = await start();
    await join(c.port, { restart: true, compGroup: comp, numPeers: 2 });
    const { reply } = await join(c.port);
    expect(reply?.type).toBe(MsgType.DMT_REJECT_NOT_RUNNING);
    expect(await status(c.port)).toMatchObject({ numPeers: 1, running: false });
  });

  it('closes a restart hello whose state is not RESTARTING', async () => {
    const c = await start();
    const { worker, reply } = await join(c.port, { restart: true, compGroup: comp, numPeers: 1, state: WorkerState.RUNNING });
    expect(reply).toBeNull();
    expect(await worker.waitClosed()).toBe(true);
  });
});

describe('barriers (spec 3.7)', () => {
  it('releases a barrier to every worker once all have arrived', async () => {
    const c = await start();
    const [a, b] = (await runningWorkers(c.port, 2)).map(track);
    a!.barrier('custom');
    expect(await a!.recv(200)).toBeNull();
    b!.barrier('custom');
    for (const w of [a!, b!]) {
      const m = await w.expect(MsgType.DMT_BARRIER_RELEASED);
      expect(m.payload.toString()).toBe('custom\0');
      expect(m.numPeers).toBe(2);
    }
    expect(await listText(c.port)).toContain(', custom\n');
  });

  it('releases the waiter when its peer disconnects', async () => {
    const c = await start();
    const [a, b] = (await runningWorkers(c.port, 2)).map(track);
    a!.barrier('B');
    await sleep(50);
    b!.destroy();
    await a!.expect(MsgType.DMT_BARRIER_RELEASED);
    expect(await status(c.port)).toMatchObject({ numPeers: 1, running: true });
  });

  it('disconnects a worker that reaches another barrier and releases the waiter', async () => {
    const c = await start();
    const [a, b] = (await runningWorkers(c.port, 2)).map(track);
    a!.barrier('one');
    await sleep(50);
    b!.barrier('two');
    expect(await b!.waitClosed()).toBe(true);
    await a!.expect(MsgType.DMT_BARRIER_RELEASED);
    expect((await status(c.port)).numPeers).toBe(1);
  });

  it('ignores a duplicate arrival until the peer arrives', async () => {
    const c = await start();
    const [a, b] = (await runningWorkers(c.port, 2)).map(track);
    a!.barrier('dup');
    a!.barrier('dup');
    expect(await a!.recv(300)).toBeNull();
    b!.barrier('dup');
    await a!.expect(MsgType.DMT_BARRIER_RELEASED);
    await b!.expect(MsgType.DMT_BARRIER_RELEASED);
    expect(await a!.recv(200)).toBeNull(); // released once
  });

  it('a worker may use the same barrier name twice in a row (W-BUG-19)', async () => {
    const c = await start();
    const [a] = (await runningWorkers(c.port, 1)).map(track);
    await a!.barrierAndWait('again');
    await a!.barrierAndWait('again');
  });
});

describe('checkpoint (spec 3.6, 3.8, 4.4)', () => {
  it('runs a blocking checkpoint, writes the restart script and answers after it', async () => {
    const c = await start();
    const ws = (await runningWorkers(c.port, 2)).map(track);
    const client = track(await Peer.connect(c.port));
    client.send({ type: MsgType.DMT_USER_CMD, coordCmd: CoordCmd.DMT_BLOCKING_CKPT });
    const dos = await Promise.all(ws.map((w) => w.expect(MsgType.DMT_DO_CHECKPOINT)));
    expect(dos[0]!.compGroup.generation).toBe(1);
    expect(dos[0]!.numPeers).toBe(2);
    expect(dos[0]!.exitAfterCkpt).toBe(0);
    const files = await Promise.all(ws.map((w) => w.checkpoint(c.dir, ['DMT:SUSPEND', 'DMT:CHECKPOINT', 'Socket::Ckpt_Register_Peer_Info', 'DMT:WriteCkpt'])));
    const reply = await client.expect(MsgType.DMT_USER_CMD_RESULT);
    expect(reply.coordCmd).toBe(CoordCmd.DMT_BLOCKING_CKPT);
    expect(reply.coordCmdStatus).toBe(0);
    expect(reply.numPeers).toBe(2);
    const compId = dos[0]!.compGroup.text;
    const script = path.join(c.dir, `dmtcp_restart_script_${compId}.sh`);
    const st = await fs.stat(script);
    expect(st.mode & 0o100).toBe(0o100);
    expect(await fs.readlink(path.join(c.dir, 'dmtcp_restart_script.sh'))).toBe(path.basename(script));
    const text = await fs.readFile(script, 'utf8');
    expect(text.startsWith('#!/bin/bash\n')).toBe(true);
    expect(text).toContain(`coord_port=${c.port}`);
    expect(text).toContain('checkpoint_interval=0');
    expect(text).toContain('# Number of processes in the computation = 2');
    for (const f of files) expect(text).toContain(f);
    expect(text).toMatch(/exec "\$dmt_rstr_cmd" --coord-host "\$coord_host" --coord-port "\$coord_port"/);
    // bash can parse it.
    const { execFileSync } = await import('node:child_process');
    execFileSync('bash', ['-n', script]);
    await until(async () => (await status(c.port)).running, 'running after checkpoint');
  });

  it('names the script by generation when a worker sends a unique filename', async () => {
    const c = await start();
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    const d = await w!.expect(MsgType.DMT_DO_CHECKPOINT);
    await w!.barrierAndWait('DMT:WriteCkpt', WorkerState.CHECKPOINTED);
    w!.ckptFilename('/ck/unique.dmtcp', { unique: true });
    w!.resuming();
    const name = `dmtcp_restart_script_${d.compGroup.text}_00001.sh`;
    await until(() => fs.access(path.join(c.dir, name)).then(() => true, () => false), 'unique script');
  });

  it('refuses a second checkpoint while one is active, and with no workers', async () => {
    const c = await start();
    expect((await userCommand(c.port, CoordCmd.DMT_CHECKPOINT))!.coordCmdStatus).toBe(CmdStatus.DMT_COORD_NOT_RUNNING);
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    const first = await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    expect(first).toMatchObject({ coordCmdStatus: 0, numPeers: 1 });
    await w!.expect(MsgType.DMT_DO_CHECKPOINT);
    expect((await userCommand(c.port, CoordCmd.DMT_CHECKPOINT))!.coordCmdStatus).toBe(CmdStatus.DMT_COORD_NOT_RUNNING);
    expect((await userCommand(c.port, CoordCmd.DMT_BLOCKING_CKPT))!.coordCmdStatus).toBe(CmdStatus.DMT_COORD_NOT_RUNNING);
    // Status still says RUNNING while no worker has answered (spec 4.3).
    expect((await status(c.port)).running).toBe(true);
  });

  it('kills during a checkpoint', async () => {
    const c = await start();
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    await w!.expect(MsgType.DMT_DO_CHECKPOINT);
    w!.barrier('DMT:SUSPEND', WorkerState.PRESUSPEND);
    await w!.expect(MsgType.DMT_BARRIER_RELEASED);
    const k = await userCommand(c.port, CoordCmd.DMT_KILL);
    expect(k!.coordCmdStatus).toBe(0);
    const kp = await w!.expect(MsgType.DMT_KILL_PEER);
    expect(kp.compGroup.generation).toBe(1);
    w!.destroy();
    await waitPeers(c.port, 0);
    expect((await status(c.port)).running).toBe(false);
  });

  it('lets a new worker join a checkpoint that has not passed a barrier', async () => {
    const c = await start();
    const [a] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    await a!.expect(MsgType.DMT_DO_CHECKPOINT);
    const b = await join(c.port);
    expect(b.reply?.type).toBe(MsgType.DMT_ACCEPT);
    expect(b.reply!.coordTimeStamp).toBe(a!.accept!.coordTimeStamp); // not 0 (W-BUG-7)
    const d = await b.worker.expect(MsgType.DMT_DO_CHECKPOINT);
    expect(d.compGroup.generation).toBe(1);
    await waitPeers(c.port, 2);
    // Both take part in the barriers.
    a!.barrier('DMT:SUSPEND', WorkerState.PRESUSPEND);
    expect(await a!.recv(200)).toBeNull();
    b.worker.barrier('DMT:SUSPEND', WorkerState.PRESUSPEND);
    await a!.expect(MsgType.DMT_BARRIER_RELEASED);
    await b.worker.expect(MsgType.DMT_BARRIER_RELEASED);
  });

  it('holds a new worker that arrives after the first barrier, then accepts it', async () => {
    const c = await start();
    const [a] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    await a!.expect(MsgType.DMT_DO_CHECKPOINT);
    await a!.barrierAndWait('DMT:SUSPEND', WorkerState.PRESUSPEND);
    const late = track(await SyntheticWorker.connect(c.port));
    const pendingReply = late.hello();
    expect(await Promise.race([pendingReply, sleep(300).then(() => 'waiting')])).toBe('waiting');
    await a!.barrierAndWait('DMT:WriteCkpt', WorkerState.CHECKPOINTED);
    a!.ckptFilename('/ck/a.dmtcp');
    a!.resuming();
    const reply = await pendingReply;
    expect(reply?.type).toBe(MsgType.DMT_ACCEPT);
    expect(reply!.compGroup.generation).toBe(1);
  });

  it('rejects a restart hello during a checkpoint', async () => {
    const c = await start();
    const [a] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    await a!.expect(MsgType.DMT_DO_CHECKPOINT);
    const { reply } = await join(c.port, { restart: true, compGroup: a!.compGroup, numPeers: 1 });
    expect(reply?.type).toBe(MsgType.DMT_REJECT_NOT_RESTARTING);
    expect((await status(c.port)).numPeers).toBe(1);
  });

  it('sends a duplicate DO_CHECKPOINT after INIT_OR_EXEC during a checkpoint', async () => {
    const c = await start();
    const [a] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    await a!.expect(MsgType.DMT_DO_CHECKPOINT);
    a!.initDone('exec-ed');
    await a!.expect(MsgType.DMT_DO_CHECKPOINT);
    expect(await listText(c.port)).toContain('exec-ed[');
  });

  it('completes when a worker disconnects before sending its filename (W-BUG-1)', async () => {
    const c = await start();
    const [a, b] = (await runningWorkers(c.port, 2)).map(track);
    const client = track(await Peer.connect(c.port));
    client.send({ type: MsgType.DMT_USER_CMD, coordCmd: CoordCmd.DMT_BLOCKING_CKPT });
    await a!.expect(MsgType.DMT_DO_CHECKPOINT);
    await b!.expect(MsgType.DMT_DO_CHECKPOINT);
    a!.barrier('DMT:WriteCkpt', WorkerState.CHECKPOINTED);
    b!.barrier('DMT:WriteCkpt', WorkerState.CHECKPOINTED);
    await a!.expect(MsgType.DMT_BARRIER_RELEASED);
    await b!.expect(MsgType.DMT_BARRIER_RELEASED);
    a!.ckptFilename('/ck/a.dmtcp');
    a!.resuming();
    b!.destroy();
    const r = await client.expect(MsgType.DMT_USER_CMD_RESULT);
    expect(r.coordCmdStatus).toBe(0);
    // Later checkpoints work.
    await until(async () => (await status(c.port)).running, 'running');
    expect((await userCommand(c.port, CoordCmd.DMT_CHECKPOINT))!.coordCmdStatus).toBe(0);
  });

  it('answers every concurrent blocking client (W-BUG-2)', async () => {
    const c = await start();
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    const c1 = track(await Peer.connect(c.port));
    c1.send({ type: MsgType.DMT_USER_CMD, coordCmd: CoordCmd.DMT_BLOCKING_CKPT });
    await w!.expect(MsgType.DMT_DO_CHECKPOINT);
    const second = await userCommand(c.port, CoordCmd.DMT_BLOCKING_CKPT);
    expect(second!.coordCmdStatus).toBe(CmdStatus.DMT_COORD_NOT_RUNNING);
    await w!.checkpoint('/ck');
    expect((await c1.expect(MsgType.DMT_USER_CMD_RESULT)).coordCmdStatus).toBe(0);
  });

  it('kill-after-checkpoint marks DO_CHECKPOINT and releases; a refused -kc is forgotten (W-BUG-3)', async () => {
    const c = await start();
    expect((await userCommand(c.port, CoordCmd.DMT_KILL_AFTER_CKPT))!.coordCmdStatus).toBe(CmdStatus.DMT_COORD_NOT_RUNNING);
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    expect((await w!.expect(MsgType.DMT_DO_CHECKPOINT)).exitAfterCkpt).toBe(0);
    await w!.checkpoint('/ck');
    await until(async () => (await status(c.port)).running, 'running');
    expect((await userCommand(c.port, CoordCmd.DMT_KILL_AFTER_CKPT))!.coordCmdStatus).toBe(0);
    expect((await w!.expect(MsgType.DMT_DO_CHECKPOINT)).exitAfterCkpt).toBe(1);
    expect((await w!.barrierAndWait('DMT:WriteCkpt', WorkerState.CHECKPOINTED)).exitAfterCkpt).toBe(1);
    w!.ckptFilename('/ck/w.dmtcp');
    w!.destroy(); // exits instead of resuming
    await waitPeers(c.port, 0);
    await until(() => fs.readdir(c.dir).then((f) => f.some((n) => n.startsWith('dmtcp_restart_script_'))), 'script');
  });

  it('--kill-after-ckpt sets exitAfterCkpt on every checkpoint', async () => {
    const c = await start(['--kill-after-ckpt']);
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
    expect((await w!.expect(MsgType.DMT_DO_CHECKPOINT)).exitAfterCkpt).toBe(1);
  });
});

describe('interval timer (spec 5.1)', () => {
  it('checkpoints automatically; -1 leaves the interval, 0 disarms it (W-BUG-4, W-BUG-5)', async () => {
    const c = await start();
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    const r = await userCommand(c.port, CoordCmd.DMT_UPDATE_CKPT_INTERVAL, 1);
    expect(r!.theCheckpointInterval).toBe(1);
    await w!.expect(MsgType.DMT_DO_CHECKPOINT, 4000);
    await w!.checkpoint('/ck');
    expect((await userCommand(c.port, CoordCmd.DMT_UPDATE_CKPT_INTERVAL, -1))!.theCheckpointInterval).toBe(1);
    expect((await userCommand(c.port, CoordCmd.DMT_UPDATE_CKPT_INTERVAL, 0))!.theCheckpointInterval).toBe(0);
    expect(await w!.recv(1800)).toBeNull();
    expect((await status(c.port)).interval).toBe(0);
  });
});

describe('fork, exec, ckpt dir (spec 3.11, 3.12)', () => {
  it('updates identities after fork and exec, and serves the ckpt dir', async () => {
    const c = await start();
    const [parent] = (await runningWorkers(c.port, 1)).map(track);
    // Pre-fork hello from the parent, on a new connection.
    const child = track(await SyntheticWorker.connect(c.port));
    const r = await child.hello({ state: WorkerState.RUNNING, from: parent!.identity, progname: 'synthetic_(forked)' });
    expect(r?.type).toBe(MsgType.DMT_ACCEPT);
    expect(r!.virtualPid).toBe(41000);
    child.identity = { ...parent!.identity, pid: 41000, time: parent!.identity.time + 5n };
    child.send({ type: MsgType.DMT_UPDATE_PROCESS_INFO_AFTER_FORK, state: WorkerState.RUNNING, from: child.identity, realPid: 4242 });
    child.initDone('child-prog');
    await until(async () => (await listText(c.port)).includes('child-prog[41000:4242]'), 'list shows the child');
    const list = await listText(c.port);
    expect(list.startsWith('Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n')).toBe(true);
    expect(list).toMatch(/^1, synthetic\[40000:\d+\]@[^,]+, [0-9a-f]+-40000-[0-9a-f]+, WorkerState::RUNNING, $/m);
    expect(list.endsWith('\n\n')).toBe(true);

    parent!.send({ type: MsgType.DMT_GET_CKPT_DIR, state: WorkerState.RUNNING, from: parent!.identity });
    const d = await parent!.expect(MsgType.DMT_GET_CKPT_DIR_RESULT);
    expect(d.payload.toString()).toBe(`${c.dir}\0`);
    parent!.send({ type: MsgType.DMT_UPDATE_CKPT_DIR, state: WorkerState.RUNNING, from: parent!.identity }, '/tmp/elsewhere\0');
    parent!.send({ type: MsgType.DMT_GET_CKPT_DIR, state: WorkerState.RUNNING, from: parent!.identity });
    expect((await parent!.expect(MsgType.DMT_GET_CKPT_DIR_RESULT)).payload.toString()).toBe('/tmp/elsewhere\0');
  });
});

describe('KVDB (spec 3.13)', () => {
  it('round-trips values with every operation, on a worker and an NS connection', async () => {
    const c = await start();
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    const ops: Array<[number, string, string]> = [
      [KvdbOp.SET, '5', '0'],
      [KvdbOp.INCRBY, '3', '5'],
      [KvdbOp.AND, '6', '8'],
      [KvdbOp.OR, '1', '0'],
      [KvdbOp.XOR, '15', '1'],
      [KvdbOp.MIN, '2', '14'],
      [KvdbOp.MAX, '100', '2'],
    ];
    for (const [op, val, old] of ops) {
      w!.kvdb(op, '/db', 'k', val);
      const r = await w!.expect(MsgType.DMT_KVDB_RESPONSE);
      expect(r.kvdb).toBe(KvdbResult.SUCCESS);
      expect(r.payload.toString()).toBe(`${old}\0`);
      expect(r.valLen).toBe(old.length + 1);
    }
    const ns = track(await Peer.connect(c.port));
    ns.send({ type: MsgType.DMT_NAME_SERVICE_WORKER });
    const get = (db: string, key: string) => {
      const { payload, keyLen, valLen } = { payload: Buffer.from(`${key}\0\0`), keyLen: key.length + 1, valLen: 1 };
      ns.send({ type: MsgType.DMT_KVDB_REQUEST, barrier: db, kvdb: KvdbOp.GET, keyLen, valLen }, payload);
      return ns.expect(MsgType.DMT_KVDB_RESPONSE);
    };
    expect((await get('/db', 'k')).payload.toString()).toBe('100\0');
    expect((await get('/none', 'k')).kvdb).toBe(KvdbResult.DB_NOT_FOUND);
    expect((await get('/db', 'x')).kvdb).toBe(KvdbResult.KEY_NOT_FOUND);
    // The coordinator's event log is readable too.
    ns.send({ type: MsgType.DMT_KVDB_REQUEST, barrier: '/db', kvdb: 9, keyLen: 2, valLen: 1 }, 'k\0\0');
    expect((await ns.expect(MsgType.DMT_KVDB_RESPONSE)).kvdb).toBe(KvdbResult.INVALID_REQUEST);
    // Inconsistent lengths and non-numeric operands: INVALID_REQUEST, connection kept.
    w!.send({ type: MsgType.DMT_KVDB_REQUEST, barrier: '/db', kvdb: KvdbOp.SET, keyLen: 5, valLen: 1 }, 'k\0v\0');
    expect((await w!.expect(MsgType.DMT_KVDB_RESPONSE)).kvdb).toBe(KvdbResult.INVALID_REQUEST);
    w!.kvdb(KvdbOp.SET, '/db', 's', 'text');
    await w!.expect(MsgType.DMT_KVDB_RESPONSE);
    w!.kvdb(KvdbOp.INCRBY, '/db', 's', '1');
    expect((await w!.expect(MsgType.DMT_KVDB_RESPONSE)).kvdb).toBe(KvdbResult.INVALID_REQUEST);
    // The NS connection is not a peer.
    expect((await status(c.port)).numPeers).toBe(1);
    ns.destroy();
    await sleep(50);
    expect((await status(c.port)).numPeers).toBe(1);
  });

  it('writes the KV json at quit with DMTCP_COORD_WRITE_KV_DATA=1', async () => {
    const c = await start([], { DMTCP_COORD_WRITE_KV_DATA: '1' });
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    w!.kvdb(KvdbOp.SET, '/mydb', 'mykey', 'myvalue');
    await w!.expect(MsgType.DMT_KVDB_RESPONSE);
    await userCommand(c.port, CoordCmd.DMT_QUIT);
    expect((await c.exited).code).toBe(0);
    const files = (await fs.readdir(c.dir)).filter((f) => /^dmtcp_coordinator_db-.*\.json$/.test(f));
    expect(files).toHaveLength(1);
    const doc = JSON.parse(await fs.readFile(path.join(c.dir, files[0]!), 'utf8')) as Record<string, Record<string, string>>;
    expect(doc['/mydb']).toEqual({ mykey: 'myvalue' });
    const events = Object.values(doc['/Event_Timestamp_Ms']!);
    expect(events[0]).toBe('00001-Initializing-Computation');
    expect(events.at(-1)).toMatch(/-Exiting$/);
  });
});

describe('kill and quit (spec 3.14, 3.15)', () => {
  it('kills workers; a hello during the kill gets KILL_PEER', async () => {
    const c = await start();
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    expect((await userCommand(c.port, CoordCmd.DMT_KILL))!.coordCmdStatus).toBe(0);
    const k = await w!.expect(MsgType.DMT_KILL_PEER);
    expect(k.numPeers).toBe(1);
    // The synthetic worker does not exit, so the kill stays in progress.
    const late = await join(c.port);
    expect(late.reply?.type).toBe(MsgType.DMT_KILL_PEER);
    expect(late.reply!.virtualPid).toBe(-1);
    expect(await late.worker.waitClosed()).toBe(true);
    w!.destroy();
    await waitPeers(c.port, 0);
    expect((await status(c.port)).running).toBe(false);
    const again = await join(c.port);
    expect(again.reply?.type).toBe(MsgType.DMT_ACCEPT);
  });

  it('quit kills workers and exits 0 with the exiting line', async () => {
    const c = await start();
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    await userCommand(c.port, CoordCmd.DMT_QUIT);
    await w!.expect(MsgType.DMT_KILL_PEER);
    expect((await c.exited).code).toBe(0);
    expect(c.stderr()).toContain('DMTCP coordinator exiting... (per request)');
    await expect(fs.access(c.portFile)).rejects.toThrow();
  });

  it('--exit-on-last exits 0 after the last worker leaves', async () => {
    const c = await start(['--exit-on-last']);
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    w!.destroy();
    expect((await c.exited).code).toBe(0);
    expect(c.stderr()).toContain('DMTCP coordinator exiting');
  });

  it('an NS connection leaving does not trigger --exit-on-last (W-BUG-6)', async () => {
    const c = await start(['--exit-on-last']);
    const [w] = (await runningWorkers(c.port, 1)).map(track);
    const ns = track(await Peer.connect(c.port));
    ns.send({ type: MsgType.DMT_NAME_SERVICE_WORKER });
    await sleep(50);
    ns.destroy();
    await sleep(100);
    expect((await status(c.port)).numPeers).toBe(1);
    w!.destroy();
    expect((await c.exited).code).toBe(0);
  });

  it('answers HELP and unknown commands', async () => {
    const c = await start();
    expect((await userCommand(c.port, CoordCmd.DMT_HELP))!.coordCmdStatus).toBe(0);
    expect((await userCommand(c.port, 42))!.coordCmdStatus).toBe(CmdStatus.DMT_COORD_INVALID_COMMAND);
    expect((await userCommand(c.port, 0))!.coordCmdStatus).toBe(CmdStatus.DMT_COORD_INVALID_COMMAND);
  });
});
