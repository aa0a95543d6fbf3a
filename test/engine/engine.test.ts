/**
 * The built-in engine end to end: every program runs through three
 * checkpoint/restart cycles (checkpoint + SIGKILL, checkpoint-and-kill,
 * checkpoint + SIGKILL of a restarted job) and must finish with exactly the
 * result of an uninterrupted run.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import net from 'node:net';

import { checkImage } from '../../src/engines/builtin.js';

import {
  compile,
  computationDir,
  Coordinator,
  fixturesDir,
  Job,
  latestGeneration,
  binDir,
  liveJobs,
  missing,
  namespacesAvailable,
  mkWork,
  threeCycles,
  waitFor,
  type JobOptions,
} from './harness.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function http(port: number, method: 'GET' | 'POST'): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/`, { method, body: method === 'POST' ? 'x' : undefined });
  return (await r.text()).trim();
}

const why = missing();
if (why) console.warn(`engine tests skipped: ${why}`);

describe.skipIf(why !== null)('built-in engine: three checkpoint/restart cycles', () => {
  let work: string;
  let coord: Coordinator;

  beforeAll(() => {
    work = mkWork('ckpt-engine-');
  });
  // A fresh coordinator per test: a failing test cannot disturb the next.
  beforeEach(async () => {
    coord = await Coordinator.start(work);
  });
  afterEach(async () => {
    try {
      for (const j of [...liveJobs]) await j.kill9();
    } finally {
      coord?.stop();
    }
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  function opts(name: string): JobOptions {
    const ckptDir = path.join(work, `${name}-ckpt`);
    fs.mkdirSync(ckptDir, { recursive: true });
    return { work, coord, ckptDir, out: path.join(work, `${name}.out`) };
  }

  function reference(argv: string[]): string {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: work });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    return lines[lines.length - 1]!;
  }

  it('single-threaded compute loop with a running checksum', async () => {
    const exe = compile(work, 'counter');
    const want = reference([exe, '400', '0']);
    expect(want).toMatch(/^done sum=/);
    const got = await threeCycles(opts('counter'), [exe, '400', '15000']);
    expect(got).toBe(want);
  });

  it('8 pthreads with mutexes and condition variables', async () => {
    const exe = compile(work, 'threads', ['-pthread']);
    const want = reference([exe, '400', '0']);
    // Uncompressed images: the restarter reads raw chunks straight into place.
    const got = await threeCycles({ ...opts('threads'), env: { CKPT_COMPRESS: 'none' } }, [exe, '400', '15000']);
    expect(got).toBe(want);
  });

  it('threads created at any moment, and a thread that blocks every signal', async () => {
    const exe = compile(work, 'spawner', ['-pthread']);
    const want = reference([exe, '400', '0']);
    expect(want).toMatch(/blocker_ran=1$/);
    const got = await threeCycles(opts('spawner'), [exe, '400', '15000']);
    expect(got).toBe(want);
  });

  it('OpenMP parallel reductions', async () => {
    const exe = compile(work, 'omp', ['-fopenmp']);
    const want = reference([exe, '400', '0']);
    const got = await threeCycles(opts('omp'), [exe, '400', '15000']);
    expect(got).toBe(want);
  });

  it('fork with pipes between parent and child', async () => {
    const exe = compile(work, 'fork_pipe');
    const want = reference([exe, '400', '0']);
    expect(want).toMatch(/child_exit=0$/);
    const got = await threeCycles({ ...opts('fork_pipe'), env: { CKPT_COMPRESS: 'none' } }, [exe, '400', '15000'], {
      peers: 2,
    });
    expect(got).toBe(want);
  });

  it('a forked job with threads and 40 MiB per process keeps its memory, PIDs and TIDs', async () => {
    const exe = compile(work, 'tids', ['-pthread']);
    const want = reference([exe, '300', '0', '40']);
    expect(want).toMatch(/tids_kept=1 child_exit=0$/);
    // Uncompressed, so the restarter reads raw runs and populates pages
    // ahead of them with its helper task (CKPT_LOG=2 says how much). 40 MiB
    // would be read synchronously; CKPT_RESTORE_AIO_MIN=0 keeps this test on
    // the AIO path, the one large images take.
    const o = { ...opts('tids'), env: { CKPT_COMPRESS: 'none', CKPT_LOG: '2', CKPT_RESTORE_AIO_MIN: '0' } };
    const got = await threeCycles(o, [exe, '300', '15000', '40'], { peers: 2 });
    if (namespacesAvailable()) {
      expect(got).toBe(want);
    } else {
      console.warn('engine test: no user namespaces, PIDs/TIDs are not preserved; memory checked only');
      expect(got.replace(/tids_kept=\d child_exit=\d+/, '')).toBe(want.replace(/tids_kept=\d child_exit=\d+/, ''));
    }
    const reports = [...fs.readFileSync(`${o.out}.err`, 'utf8').matchAll(/populated ahead: ([\d.]+) MiB by the helper, ([\d.]+) MiB by the restarter(, [a-z ]+)?;/g)];
    // Three restarts of two processes.
    expect(reports.length).toBe(6);
    for (const r of reports) {
      if (r[3] === ', not supported') continue;  // Linux < 5.14
      expect(r[3]).toBeUndefined();
      expect(Number(r[1]) + Number(r[2])).toBeGreaterThan(0);
    }
  });

  it('a writer appending to a file keeps its offset', async () => {
    const exe = compile(work, 'file_writer');
    const refFile = path.join(work, 'writer-ref.txt');
    const want = reference([exe, refFile, '400', '0']);
    const o = opts('file_writer');
    const file = path.join(work, 'writer.txt');
    const got = await threeCycles(o, [exe, file, '400', '15000']);
    expect(got).toBe(want);
    expect(fs.readFileSync(file, 'utf8')).toBe(fs.readFileSync(refFile, 'utf8'));
  });

  // Page-cache residency of the images of the latest generation (0..1),
  // or null where the page cache is the file itself (tmpfs).
  function cachedFraction(ckptDir: string): number | null {
    const gen = path.join(computationDir(ckptDir), 'latest');
    const fsType = spawnSync('stat', ['-f', '-c', '%T', gen], { encoding: 'utf8' }).stdout.trim();
    if (fsType === 'tmpfs') return null;
    let res = 0;
    let size = 0;
    for (const f of fs.readdirSync(gen).filter((n) => n.endsWith('.ckpt'))) {
      const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES,SIZE', path.join(gen, f)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`fincore (util-linux) is required: ${r.stderr}`);
      const [a, b] = r.stdout.trim().split(/\s+/).map(Number);
      res += a!;
      size += b!;
    }
    return res / size;
  }

  it('huge page advice survives restarts; images are written and read with O_DIRECT', async () => {
    const exe = compile(work, 'thp');
    const want = reference([exe, '300', '0']);
    expect(want).toMatch(/^A=hg B=nh C=- done sum=/);
    // Uncompressed: raw chunks are what the restarter reads with O_DIRECT.
    const o = { ...opts('thp'), env: { CKPT_COMPRESS: 'none' } };
    expect(await threeCycles(o, [exe, '300', '15000'])).toBe(want);
    // The last generation was written by the checkpoint and read by the
    // restart: with O_DIRECT on both sides it never entered the page cache.
    const direct = cachedFraction(o.ckptDir);
    // The dense region without advice keeps none by default...
    const dLine = (out: string) => fs.readFileSync(out, 'utf8').match(/^D=\S+$/gm)?.pop();
    expect(dLine(o.out)).toBe('D=-');
    // Buffered on both sides (CKPT_O_DIRECT=0) the image stays cached.
    const b = { ...opts('thp-buffered'), env: { CKPT_COMPRESS: 'none', CKPT_O_DIRECT: '0', CKPT_RESTORE_THP: '1' } };
    expect(await threeCycles(b, [exe, '300', '15000'])).toBe(want);
    const buffered = cachedFraction(b.ckptDir);
    // ...and is filled on huge pages (advised MADV_HUGEPAGE) with CKPT_RESTORE_THP=1.
    expect(dLine(b.out)).toBe('D=hg');
    if (direct === null || buffered === null) {
      console.warn('engine test: images on tmpfs, O_DIRECT residency not checked');
    } else {
      expect(direct).toBeLessThan(0.25);
      expect(buffered).toBeGreaterThan(0.75);
    }
  });

  it('shared and private file mappings', async () => {
    const exe = compile(work, 'mmaps');
    const refDir = path.join(work, 'mm-ref');
    const dir = path.join(work, 'mm');
    fs.mkdirSync(refDir);
    fs.mkdirSync(dir);
    const want = reference([exe, refDir, '400', '0']);
    expect(want).toMatch(/private_file_untouched=1$/);
    const got = await threeCycles(opts('mmaps'), [exe, dir, '400', '15000']);
    expect(got).toBe(want);
  });

  it('interval timers, timerfd and signal handlers', async () => {
    const exe = compile(work, 'timers');
    const want = reference([exe, '500']);
    const got = await threeCycles(opts('timers'), [exe, '500']);
    expect(got).toBe(want);
  });

  it('eventfd, signalfd, UDP and Unix sockets, epoll', async () => {
    const exe = compile(work, 'fds');
    const refDir = path.join(work, 'fds-ref');
    const dir = path.join(work, 'fds-run');
    fs.mkdirSync(refDir);
    fs.mkdirSync(dir);
    const want = reference([exe, refDir, '400', '0']);
    expect(want).toBe('done eventfd=400 udp=1 unix=1 signalfd=1');
    const got = await threeCycles(opts('fds'), [exe, dir, '400', '15000']);
    expect(got).toBe(want);
  });

  it('a Node.js script', async () => {
    const script = path.join(fixturesDir, 'counter.js');
    const want = reference([process.execPath, script, '300', '0']);
    expect(want).toMatch(/^done sum=/);
    const got = await threeCycles(opts('node'), [process.execPath, script, '300', '15']);
    expect(got).toBe(want);
  });

  it("Python's http.server keeps its value and its port across stop/restart", async () => {
    const python = '/usr/bin/python3';
    if (!fs.existsSync(python)) return expect.fail('/usr/bin/python3 is required for this test');
    const o = opts('http');
    const port = await freePort();
    let job = Job.launch(o, [python, path.join(fixturesDir, 'counter_server.py'), String(port)]);
    await waitFor(`the server to listen; stderr: ${job.stderr()}`, () => fs.readFileSync(o.out, 'utf8').includes('listening'));
    await waitFor('the server to register', () => coord.status().running);
    expect(await http(port, 'GET')).toBe('0');
    expect(await http(port, 'POST')).toBe('1');
    for (let cycle = 1; cycle <= 3; cycle++) {
      // Stop right after the checkpoint (cycle 2: SIGKILL after a checkpoint
      // of the running server), then restart at once on the same port.
      if (cycle === 2 && namespacesAvailable()) {
        expect(coord.command('bc').status).toBe(0);
        await job.kill9();
      } else {
        expect(coord.command('kc').status).toBe(0);
        await job.exited;
      }
      expect(latestGeneration(o.ckptDir)).toBe(cycle);
      await waitFor('the coordinator to drop the stopped server', () => coord.peers() === 0);
      job = Job.restart(o, computationDir(o.ckptDir));
      await waitFor(`the restarted server to register; stderr: ${job.stderr()}`, () => coord.status().running);
      expect(await http(port, 'GET')).toBe(String(cycle));
      expect(await http(port, 'POST')).toBe(String(cycle + 1));
    }
    await job.kill9();
  });

  it('without namespaces: restarts (with new PIDs unless privileged, and says so)', async () => {
    const exe = compile(work, 'threads', ['-pthread']);
    const want = reference([exe, '300', '0']);
    const o = { ...opts('nons'), noNs: true };
    const got = await threeCycles(o, [exe, '300', '15000']);
    expect(got).toBe(want);
    // Root may choose PIDs on the host (CAP_CHECKPOINT_RESTORE); others cannot.
    if (process.getuid?.() !== 0)
      expect(fs.readFileSync(`${o.out}.err`, 'utf8')).toMatch(/restarted as \d+ \(PID not preserved\)/);
  });

  it('refuses a program it cannot handle at checkpoint time, and the program goes on', async () => {
    const exe = compile(work, 'deleted_file');
    const o = opts('refused');
    const job = Job.launch(o, [exe, work, '150']);
    await waitFor('progress', () => coord.status().running && fs.readFileSync(o.out, 'utf8').includes('step 10'));
    expect(coord.command('bc').status).toBe(0);
    const errors = fs
      .readdirSync(o.ckptDir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.error'));
    expect(errors).toHaveLength(1);
    const text = fs.readFileSync(path.join(o.ckptDir, errors[0]!), 'utf8');
    expect(text).toMatch(/checkpoint refused: descriptor \d+ refers to a deleted file/);
    expect(await job.exited).toBe(0);
    expect(fs.readFileSync(o.out, 'utf8')).toMatch(/done bytes=150\n$/);
    // Nothing was committed, and the restarter says why.
    const r = spawnSync(path.join(binDir, 'ckpt-restart'), ['restart', o.ckptDir], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/no complete checkpoint.*deleted file/);
  });

  it('a blocking checkpoint leaves the computation running: checkpoints back to back all succeed', async () => {
    // The worker announces its image and its resumption in two messages in a
    // row. Without TCP_NODELAY on its coordinator socket the second one waited
    // ~40 ms for a delayed ACK, the coordinator was not RUNNING when
    // `dmtcp_command bc` returned, and the next command was refused.
    const exe = compile(work, 'counter');
    const o = opts('backtoback');
    const job = Job.launch(o, [exe, '100000', '10000']);
    await waitFor('the job to join', () => coord.status().running);
    for (let i = 0; i < 3; i++) {
      const r = coord.command('bc');
      expect(r.status, r.stdout).toBe(0);
      expect(coord.status().running).toBe(true);
    }
    expect(latestGeneration(o.ckptDir)).toBe(3);
    await job.kill9();
  });

  it('interval checkpoints driven by the coordinator', async () => {
    const exe = compile(work, 'counter');
    const o = { ...opts('interval'), env: { DMTCP_CHECKPOINT_INTERVAL: '1' } };
    const job = Job.launch(o, [exe, '100000', '10000']);
    await waitFor('three generations', () => {
      try {
        return latestGeneration(o.ckptDir) >= 3;
      } catch {
        return false;
      }
    });
    await job.kill9();
    await waitFor('the coordinator to drop the job', () => coord.peers() === 0);
    expect(coord.command('i', '0').status).toBe(0);
  });

  it('refuses to restart while the saved port is taken, says so, and restarts once it is free', async () => {
    const python = '/usr/bin/python3';
    if (!fs.existsSync(python)) return expect.fail('/usr/bin/python3 is required for this test');
    const o = opts('port');
    const port = await freePort();
    const job = Job.launch(o, [python, path.join(fixturesDir, 'counter_server.py'), String(port)]);
    await waitFor('the server to listen', () => fs.readFileSync(o.out, 'utf8').includes('listening') && coord.status().running);
    expect(await http(port, 'POST')).toBe('1');
    expect(coord.command('kc').status).toBe(0);
    await job.exited;
    await waitFor('the coordinator to drop the server', () => coord.peers() === 0);
    const dir = computationDir(o.ckptDir);
    const ok = checkImage([dir], binDir);
    expect(ok.ok).toBe(true);
    expect(ok.processes).toHaveLength(1);
    // Someone else takes the port.
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', () => r()));
    try {
      const bad = checkImage([dir], binDir);
      expect(bad.ok).toBe(false);
      expect(bad.issues.some((i) => i.level === 'error' && i.message.includes(`address in use: 127.0.0.1:${port}`))).toBe(true);
      const r = spawnSync(path.join(binDir, 'ckpt-restart'), ['restart', dir], {
        encoding: 'utf8',
        env: { ...process.env, DMTCP_COORD_PORT: String(coord.port) },
      });
      expect(r.status).toBe(3);
      expect(r.stderr).toContain(`cannot restart`);
      expect(r.stderr).toContain(`address in use: 127.0.0.1:${port}`);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    const again = Job.restart(o, dir);
    await waitFor(`the restarted server; stderr: ${again.stderr()}`, () => coord.status().running);
    expect(await http(port, 'GET')).toBe('1');
    await again.kill9();
  });

  it('a program outlives its coordinator', async () => {
    const exe = compile(work, 'counter');
    const want = reference([exe, '150', '0']);
    const o = opts('orphan');
    const job = Job.launch(o, [exe, '150', '10000']);
    await waitFor('the job to register', () => coord.status().running);
    coord.stop();
    expect(await job.exited).toBe(0);
    expect(fs.readFileSync(o.out, 'utf8').trim().split('\n').pop()).toBe(want);
  });

  it('an established TCP connection to an outside peer is reset after a restart', async () => {
    const exe = compile(work, 'tcp_client');
    // The client's end disappears with the killed job: resets are expected.
    const server = net.createServer((c) => {
      c.on('error', () => {});
      c.on('data', (d) => c.write(d));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const o = opts('tcp');
      const job = Job.launch(o, [exe, String(port), '100000']);
      await waitFor('progress', () => coord.status().running && fs.readFileSync(o.out, 'utf8').includes('step 20'));
      expect(coord.command('kc').status).toBe(0);
      await job.exited;
      await waitFor('the coordinator to drop the job', () => coord.peers() === 0);
      const dir = computationDir(o.ckptDir);
      const report = checkImage([dir], binDir);
      expect(report.ok).toBe(true);
      expect(report.issues.some((i) => i.level === 'warning' && /TCP connection; the program will see it reset/.test(i.message))).toBe(true);
      const again = Job.restart(o, dir);
      expect(await again.exited).toBe(0);
      expect(fs.readFileSync(o.out, 'utf8')).toMatch(/connection lost at step \d+: Connection reset by peer\n$/);
    } finally {
      server.close();
    }
  });
});
