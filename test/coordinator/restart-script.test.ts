/**
 * The generated restart script (spec §8) is executed, with a stand-in
 * dmtcp_restart that records its arguments: the interface (variables,
 * options, final exec) is what users and tools rely on.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
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

/** A bin directory with recording stand-ins for dmtcp_restart and the launchers. */
async function fakeCluster(nodes: string[]): Promise<{ dir: string; logs: string }> {
  const dir = await tempDir('ckpt-fake-rm-');
  const logs = path.join(dir, 'logs');
  await fs.mkdir(logs);
  // Each stand-in writes its arguments, one per line, to logs/<name>.<pid>.
  const recorder = (name: string) =>
    `#!/bin/sh\nf='${logs}'/${name}.$$\nfor a in "$@"; do printf '%s\\n' "$a"; done > "$f.tmp"\nmv "$f.tmp" "$f"\n`;
  await fs.writeFile(path.join(dir, 'dmtcp_restart'), recorder('dmtcp_restart'), { mode: 0o755 });
  await fs.writeFile(path.join(dir, 'pbsdsh'), recorder('pbsdsh'), { mode: 0o755 });
  await fs.writeFile(path.join(dir, 'ssh'), recorder('ssh'), { mode: 0o755 });
  await fs.writeFile(
    path.join(dir, 'srun'),
    `#!/bin/sh\nif [ "$1" = --help ]; then echo '      --overlap   share resources'; exit 0; fi\n` + recorder('srun').replace('#!/bin/sh\n', ''),
    { mode: 0o755 },
  );
  await fs.writeFile(path.join(dir, 'scontrol'), `#!/bin/sh\n[ "$1 $2" = "show hostnames" ] || exit 2\nprintf '%s\\n' ${nodes.map((n) => `'${n}'`).join(' ')}\n`, { mode: 0o755 });
  return { dir, logs };
}

async function recorded(logs: string, name: string, count: number): Promise<string[][]> {
  const files = await until(async () => {
    const f = (await fs.readdir(logs)).filter((n) => n.startsWith(`${name}.`) && !n.endsWith('.tmp'));
    return f.length >= count ? f : undefined;
  }, `${count} call(s) of ${name}`);
  return Promise.all(files.sort().map(async (f) => (await fs.readFile(path.join(logs, f), 'utf8')).trim().split('\n')));
}

const here = os.hostname();

it('multi host inside a SLURM job: groups go to the allocated nodes, remote ones through srun', async () => {
  const fake = await fakeCluster([here, 'node-b']);
  coord = await startCoordinator({ args: ['--timeout', '60', '--dmtcp-bin-dir', fake.dir, '-i', '0'] });
  const script = await checkpointWith(coord, [
    { file: '/ck/p1.dmtcp', host: 'old-a' },
    { file: '/ck/p2.dmtcp', host: 'old-b' },
    { file: '/ck/p3.dmtcp', host: 'old-a' },
  ]);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${fake.dir}:${process.env.PATH}`, SLURM_JOB_NODELIST: 'x[1-2]', DMTCP_COORD_HOST: '', DMTCP_COORD_PORT: '' };
  delete env.PBS_NODEFILE;
  const r = await run(script, [], { env });
  expect(r.stderr).toContain('old-a -> ' + here);
  expect(r.stderr).toContain('old-b -> node-b');
  const [local] = await recorded(fake.logs, 'dmtcp_restart', 1);
  expect(local!.slice(0, 5)).toEqual(['--join-coordinator', '--coord-host', local![2], '--coord-port', String(coord.port)]);
  expect(local!.slice(-2)).toEqual(['/ck/p1.dmtcp', '/ck/p3.dmtcp']);
  const [srun] = await recorded(fake.logs, 'srun', 1);
  expect(srun!.slice(0, 4)).toEqual(['--nodes=1', '--ntasks=1', '--overlap', '--nodelist=node-b']);
  expect(srun![4]).toBe('env');
  expect(srun![5]).toBe('DMTCP_CHECKPOINT_INTERVAL=0');
  expect(srun![6]).toBe(path.join(fake.dir, 'dmtcp_restart'));
  expect(srun!.slice(7, 9)).toEqual(['--join-coordinator', '--coord-host']);
  expect(srun![srun!.length - 1]).toBe('/ck/p2.dmtcp');
  await fs.rm(fake.dir, { recursive: true, force: true });
});

it('multi host inside a job with too few nodes: exit 1 with what to ask for; --no-resource-manager uses ssh', async () => {
  const fake = await fakeCluster([here]);
  coord = await startCoordinator({ args: ['--timeout', '60', '--dmtcp-bin-dir', fake.dir, '-i', '0'] });
  const script = await checkpointWith(coord, [
    { file: '/ck/p1.dmtcp', host: here },
    { file: '/ck/p2.dmtcp', host: 'old-b' },
  ]);
  const env = { ...process.env, PATH: `${fake.dir}:${process.env.PATH}`, SLURM_JOB_NODELIST: 'x1', DMTCP_COORD_HOST: '', DMTCP_COORD_PORT: '' };
  await expect(run(script, [], { env })).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('request at least 2 nodes') });
  expect(await fs.readdir(fake.logs)).toEqual([]);

  await run(script, ['--no-resource-manager'], { env });
  const [ssh] = await recorded(fake.logs, 'ssh', 1);
  expect(ssh![0]).toBe('old-b');
  expect(ssh![1]).toContain('--join-coordinator');
  expect(ssh![1]).toContain('/ck/p2.dmtcp');
  const [local] = await recorded(fake.logs, 'dmtcp_restart', 1);
  expect(local!.slice(-1)).toEqual(['/ck/p1.dmtcp']);
  await fs.rm(fake.dir, { recursive: true, force: true });
});

it('multi host inside a PBS/TORQUE job: nodes from $PBS_NODEFILE, remote groups through pbsdsh', async () => {
  const fake = await fakeCluster([]);
  const nodefile = path.join(fake.dir, 'nodes');
  await fs.writeFile(nodefile, `${here}\n${here}\nnode-b\nnode-b\n`);
  coord = await startCoordinator({ args: ['--timeout', '60', '--dmtcp-bin-dir', fake.dir, '-i', '0'] });
  const script = await checkpointWith(coord, [
    { file: '/ck/p1.dmtcp', host: 'old-a' },
    { file: '/ck/p2.dmtcp', host: 'old-b' },
  ]);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${fake.dir}:${process.env.PATH}`, PBS_NODEFILE: nodefile, DMTCP_COORD_HOST: '', DMTCP_COORD_PORT: '' };
  delete env.SLURM_JOB_NODELIST;
  await run(script, [], { env });
  const [pbs] = await recorded(fake.logs, 'pbsdsh', 1);
  expect(pbs!.slice(0, 3)).toEqual(['-h', 'node-b', 'env']);
  expect(pbs![pbs!.length - 1]).toBe('/ck/p2.dmtcp');
  const [local] = await recorded(fake.logs, 'dmtcp_restart', 1);
  expect(local!.slice(-1)).toEqual(['/ck/p1.dmtcp']);
  await fs.rm(fake.dir, { recursive: true, force: true });
});
