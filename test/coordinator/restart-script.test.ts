/**
 * The generated restart script (spec §8) is executed, with a stand-in
 * dmtcp_restart that records its arguments: the interface (variables,
 * options, final exec) is what users and tools rely on.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterEach, expect, it } from 'vitest';

import { CoordCmd, type CoordinatorProcess, MsgType, SyntheticWorker, runningWorkers, startCoordinator, tempDir, until, userCommand } from './synthetic-worker.js';

const run = promisify(execFile);
let coord: CoordinatorProcess | undefined;
const workers: SyntheticWorker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) w.destroy();
  await coord?.stop();
  coord = undefined;
});

async function fakeBin(): Promise<{ dir: string; log: string }> {
  const dir = await tempDir('ckpt-fake-dmtcp-');
  const log = path.join(dir, 'args');
  await fs.writeFile(path.join(dir, 'dmtcp_restart'), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${log}'\necho "DMTCP_CHECKPOINT_INTERVAL=$DMTCP_CHECKPOINT_INTERVAL" >> '${log}'\n`, { mode: 0o755 });
  return { dir, log };
}

async function checkpointWith(c: CoordinatorProcess, images: Array<{ file: string; host?: string; shell?: '' | 'ssh' | 'rsh' }>): Promise<string> {
  const ws = await runningWorkers(c.port, images.length);
  workers.push(...ws);
  await userCommand(c.port, CoordCmd.DMT_CHECKPOINT);
  const d = await Promise.all(ws.map((w) => w.expect(MsgType.DMT_DO_CHECKPOINT)));
  await Promise.all(ws.map((w) => w.barrierAndWait('DMT:WriteCkpt', 5)));
  ws.forEach((w, i) => {
    const im = images[i]!;
    w.ckptFilename(im.file, { host: im.host ?? 'localhost', shell: im.shell ?? '' });
    w.resuming();
  });
  const script = path.join(c.dir, `dmtcp_restart_script_${d[0]!.compGroup.text}.sh`);
  // The script is renamed into place first and the symlink switched after it,
  // so wait until the link names this script too.
  const link = path.join(c.dir, 'dmtcp_restart_script.sh');
  await until(
    () => fs.access(script).then(() => fs.readlink(link).then((t) => t === path.basename(script), () => false), () => false),
    'the script and its symlink',
  );
  return script;
}

it('single host: exec dmtcp_restart with the recorded coordinator, interval and images; options override', async () => {
  const bin = await fakeBin();
  coord = await startCoordinator({ args: ['--timeout', '60', '--dmtcp-bin-dir', bin.dir, '-i', '0'] });
  const script = await checkpointWith(coord, [{ file: '/ck/a b.dmtcp' }, { file: "/ck/it's.dmtcp" }]);
  const link = path.join(coord.dir, 'dmtcp_restart_script.sh');
  const env = { ...process.env, DMTCP_COORD_HOST: '', DMTCP_COORD_PORT: '', DMTCP_CHECKPOINT_INTERVAL: '' };
  await run(link, [], { env });
  let args = (await fs.readFile(bin.log, 'utf8')).trim().split('\n');
  expect(args.slice(0, 4)).toEqual(['--coord-host', args[1]!, '--coord-port', String(coord.port)]);
  expect(args).toContain('--interval');
  expect(args.slice(-3)).toEqual(['/ck/a b.dmtcp', "/ck/it's.dmtcp", 'DMTCP_CHECKPOINT_INTERVAL=0']);

  await run(script, ['--coord-host', 'otherhost', '-p', '9999', '--interval', '30', '--restartdir', '/moved'], { env });
  args = (await fs.readFile(bin.log, 'utf8')).trim().split('\n');
  expect(args.slice(0, 4)).toEqual(['--coord-host', 'otherhost', '--coord-port', '9999']);
  expect(args.slice(-3)).toEqual(['/moved/a b.dmtcp', "/moved/it's.dmtcp", 'DMTCP_CHECKPOINT_INTERVAL=30']);

  await run(script, [], { env: { ...env, DMTCP_COORD_PORT: '1234' } });
  expect((await fs.readFile(bin.log, 'utf8')).split('\n')[3]).toBe('1234');

  const help = await run(script, ['--help'], { env });
  expect(help.stdout).toContain('--coord-port');
  await expect(run(script, ['--bogus'], { env })).rejects.toMatchObject({ code: 1 });
  await fs.rm(bin.dir, { recursive: true, force: true });
});

it('multi host: groups hosts by shell and is valid bash', async () => {
  coord = await startCoordinator({ args: ['--timeout', '60'] });
  const script = await checkpointWith(coord, [
    { file: '/ck/p1.dmtcp', host: 'alpha' },
    { file: '/ck/p2.dmtcp', host: 'beta', shell: 'ssh' },
    { file: '/ck/p3.dmtcp', host: 'alpha' },
  ]);
  const text = await fs.readFile(script, 'utf8');
  expect(text).toContain(' :: beta :bg: /ck/p2.dmtcp : ssh\n :: alpha :bg: /ck/p1.dmtcp /ck/p3.dmtcp : ssh\n');
  expect(text).toContain('# Number of hosts in the computation = 2');
  await run('bash', ['-n', script]);
});
