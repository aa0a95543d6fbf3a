/**
 * Many workers: virtual pids beyond the original's 961 values (it spins
 * forever on the 962nd worker) and a full checkpoint round with all of them.
 * Behaviour only; speed is measured in benchmarks/coordinator.
 */
import { afterAll, expect, it } from 'vitest';

import {
  CoordCmd,
  type CoordinatorProcess,
  MsgType,
  SyntheticWorker,
  startCoordinator,
  status,
  until,
  userCommand,
} from './synthetic-worker.js';

const N = 1200;
let coord: CoordinatorProcess | undefined;
const workers: SyntheticWorker[] = [];

afterAll(async () => {
  for (const w of workers) w.destroy();
  await coord?.stop();
});

it(`holds ${N} workers with distinct vpids and checkpoints them all`, async () => {
  coord = await startCoordinator({ args: ['--timeout', '120', '-q'] });
  const port = coord.port;
  const joined = await Promise.all(
    Array.from({ length: N }, async () => {
      const r = await SyntheticWorker.join(port);
      workers.push(r.worker);
      return r;
    }),
  );
  const vpids = joined.map((j) => {
    expect(j.reply?.type).toBe(MsgType.DMT_ACCEPT);
    return j.reply!.virtualPid;
  });
  expect(new Set(vpids).size).toBe(N);
  expect(vpids.every((v) => v % 1000 === 0)).toBe(true);
  expect(vpids.filter((v) => v > 1000000)).toHaveLength(N - 961);
  for (const w of workers) w.initDone();
  await until(async () => (await status(port)).running, 'all running', 30000);
  expect((await status(port)).numPeers).toBe(N);

  const done = userCommand(port, CoordCmd.DMT_BLOCKING_CKPT, -1, 60000);
  await Promise.all(workers.map((w) => w.expect(MsgType.DMT_DO_CHECKPOINT, 30000)));
  await Promise.all(workers.map((w) => w.checkpoint(coord!.dir)));
  const reply = await done;
  expect(reply?.coordCmdStatus).toBe(0);
  expect(reply?.numPeers).toBe(N);
});
