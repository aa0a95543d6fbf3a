/**
 * A synthetic DMTCP peer written from the protocol specification, for tests
 * of the coordinator: workers, name-service connections and user-command
 * clients. Every message is encoded and decoded by the native codec
 * (src/protocol.ts); this file only decides what to send and when.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as protocol from '../../src/protocol.js';
import type { HeaderFields, Message } from '../../src/protocol.js';

export { protocol };
export const { MsgType, WorkerState, CoordCmd, CmdStatus, KvdbOp, KvdbResult } = protocol;

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
/** The executable under test; CKPT_TEST_COORDINATOR selects another build (e.g. a sanitizer build). */
export const coordinatorBin = process.env.CKPT_TEST_COORDINATOR ?? path.join(repoRoot, 'build', 'Release', 'dmtcp_coordinator');

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value (bounded). */
export async function until<T>(
  fn: () => Promise<T | undefined | false | 0 | ''> | T | undefined | false | 0 | '',
  what: string,
  timeoutMs = 5000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last;
  do {
    last = await fn();
    if (last) return last;
    await sleep(20);
  } while (Date.now() < end);
  throw new Error(`timed out waiting for ${what}`);
}

let pidCounter = 0;
const hostid = 0x98ffn;

/** One TCP connection to the coordinator with a message queue. */
export class Peer {
  readonly sock: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private queue: Message[] = [];
  private waiters: Array<{ resolve: (m: Message | null) => void; timer: NodeJS.Timeout }> = [];
  /** Set once the coordinator closed (or reset) the connection. */
  closed = false;
  readonly closedPromise: Promise<void>;
  frameError: string | undefined;

  protected constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    this.closedPromise = new Promise((resolve) => {
      const done = (): void => {
        this.closed = true;
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.resolve(null);
        }
        resolve();
      };
      sock.on('close', done);
      sock.on('error', () => {});
    });
  }

  static async connect(port: number): Promise<Peer> {
    return new Peer(await connectSocket(port));
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (this.buf.length < protocol.HEADER_SIZE) return;
    const { messages, consumed, error } = protocol.frame(this.buf);
    let off = 0;
    for (const m of messages) {
      // Keep the exact bytes too, for byte-level comparisons.
      const size = protocol.HEADER_SIZE + m.payload.length;
      (m as Message & { raw: Buffer }).raw = Buffer.from(this.buf.subarray(off, off + size));
      off += size;
    }
    this.buf = this.buf.subarray(consumed);
    if (error) this.frameError = error;
    for (const m of messages) {
      const w = this.waiters.shift();
      if (w) {
        clearTimeout(w.timer);
        w.resolve(m);
      } else {
        this.queue.push(m);
      }
    }
  }

  send(fields: HeaderFields, payload?: Buffer | string): void {
    this.sock.write(protocol.encode(fields, payload));
  }

  sendRaw(bytes: Buffer): void {
    this.sock.write(bytes);
  }

  /** The next message, or null if the connection closed or nothing came in time. */
  recv(timeoutMs = 5000): Promise<Message | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(entry);
          if (i >= 0) this.waiters.splice(i, 1);
          resolve(null);
        }, timeoutMs),
      };
      this.waiters.push(entry);
    });
  }

  /** The next message, which must have type `type`. */
  async expect(type: number, timeoutMs = 5000): Promise<Message> {
    const m = await this.recv(timeoutMs);
    if (!m) throw new Error(`expected ${typeName(type)}, got ${this.closed ? 'connection closed' : 'nothing'}`);
    if (m.type !== type) throw new Error(`expected ${typeName(type)}, got ${m.typeName}`);
    return m;
  }

  /** Resolves true when the coordinator closes the connection within the time. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.closedPromise.then(() => true),
      new Promise<boolean>((resolve) => (t = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(t);
    return r;
  }

  /** Messages received but not yet consumed. */
  pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

function typeName(t: number): string {
  return Object.entries(MsgType).find(([, v]) => v === t)?.[0] ?? String(t);
}

export function connectSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export interface HelloOptions {
  /** Send DMT_RESTART_WORKER instead of DMT_NEW_WORKER. */
  restart?: boolean;
  state?: number;
  compGroup?: protocol.UniquePid;
  numPeers?: number;
  interval?: number;
  virtualPid?: number;
  progname?: string;
  hostname?: string;
  /** Identity override (a restarted process brings its image's identity). */
  from?: protocol.UniquePid;
}

/** A worker process as libdmtcp would drive it. */
export class SyntheticWorker extends Peer {
  identity: protocol.UniquePid;
  state: number = WorkerState.UNKNOWN;
  compGroup: protocol.UniquePid = { hostid: 0n, time: 0n, pid: 0, generation: 0 };
  virtualPid = -1;
  accept: Message | undefined;

  protected constructor(sock: net.Socket) {
    super(sock);
    pidCounter += 1;
    this.identity = { hostid, time: BigInt(Date.now()) * 1000000n + BigInt(pidCounter), pid: 100000 + pidCounter, generation: 0 };
  }

  static override async connect(port: number): Promise<SyntheticWorker> {
    return new SyntheticWorker(await connectSocket(port));
  }

  /** Connects and says hello; resolves with the coordinator's reply (or null if it closed). */
  static async join(port: number, opts: HelloOptions = {}): Promise<{ worker: SyntheticWorker; reply: Message | null }> {
    const w = await SyntheticWorker.connect(port);
    const reply = await w.hello(opts);
    return { worker: w, reply };
  }

  hello(opts: HelloOptions = {}): Promise<Message | null> {
    if (opts.from) this.identity = opts.from;
    const restart = opts.restart ?? false;
    this.state = opts.state ?? (restart ? WorkerState.RESTARTING : WorkerState.UNKNOWN);
    this.send(
      {
        type: restart ? MsgType.DMT_RESTART_WORKER : MsgType.DMT_NEW_WORKER,
        state: this.state,
        from: this.identity,
        compGroup: opts.compGroup ?? { hostid: 0n, time: 0n, pid: 0, generation: 0 },
        numPeers: opts.numPeers ?? 0,
        realPid: process.pid,
        virtualPid: opts.virtualPid ?? -1,
        theCheckpointInterval: opts.interval ?? -1,
      },
      protocol.helloPayload(opts.hostname ?? os.hostname(), opts.progname ?? './synthetic'),
    );
    return this.recv().then((m) => {
      if (m && m.type === MsgType.DMT_ACCEPT) {
        this.accept = m;
        this.virtualPid = m.virtualPid;
        if (!restart) this.compGroup = { ...m.compGroup };
        else this.compGroup = opts.compGroup ?? this.compGroup;
      }
      return m;
    });
  }

  /** DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC: the worker is now RUNNING under its virtual pid. */
  initDone(progname = 'synthetic'): void {
    this.state = WorkerState.RUNNING;
    if (this.virtualPid > 0) this.identity = { ...this.identity, pid: this.virtualPid };
    this.send(
      { type: MsgType.DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC, state: this.state, from: this.identity },
      Buffer.from(`${progname}\0`),
    );
  }

  barrier(name: string, state = this.state): void {
    this.state = state;
    this.send({ type: MsgType.DMT_BARRIER, state, from: this.identity, barrier: name });
  }

  /** Sends a barrier and waits for its release. */
  async barrierAndWait(name: string, state = this.state): Promise<Message> {
    this.barrier(name, state);
    const m = await this.expect(MsgType.DMT_BARRIER_RELEASED);
    if (m.payload.toString() !== `${name}\0`) throw new Error(`released ${m.payload.toString()} instead of ${name}`);
    return m;
  }

  ckptFilename(file: string, opts: { unique?: boolean; shell?: '' | 'ssh' | 'rsh'; host?: string } = {}): void {
    this.state = WorkerState.CHECKPOINTED;
    this.send(
      {
        type: opts.unique ? MsgType.DMT_UNIQUE_CKPT_FILENAME : MsgType.DMT_CKPT_FILENAME,
        state: this.state,
        from: this.identity,
      },
      protocol.ckptFilenamePayload(file, opts.shell ?? '', opts.host ?? os.hostname()),
    );
  }

  resuming(): void {
    this.state = WorkerState.RUNNING;
    this.send({ type: MsgType.DMT_WORKER_RESUMING, state: this.state, from: this.identity });
  }

  /** Answers a DMT_DO_CHECKPOINT the way libdmtcp does, through `barriers`, then resumes (or exits). */
  async checkpoint(dir: string, barriers = ['DMT:SUSPEND', 'DMT:CHECKPOINT', 'DMT:WriteCkpt']): Promise<string> {
    const states = [WorkerState.PRESUSPEND, WorkerState.SUSPENDED, WorkerState.CHECKPOINTED];
    for (let i = 0; i < barriers.length; i++) {
      await this.barrierAndWait(barriers[i]!, states[Math.min(i, states.length - 1)]);
    }
    const file = path.join(dir, `ckpt_synthetic_${protocol.upidText(this.identity)}.dmtcp`);
    this.ckptFilename(file);
    this.resuming();
    return file;
  }

  kvdb(op: number, db: string, key: string, value = ''): void {
    const { payload, keyLen, valLen } = protocol.kvdbPayload(key, value);
    this.send({ type: MsgType.DMT_KVDB_REQUEST, state: this.state, from: this.identity, barrier: db, kvdb: op, keyLen, valLen }, payload);
  }
}

/** Sends one user command on a new connection and returns the reply (null for QUIT or no reply). */
export async function userCommand(port: number, cmd: number, interval = -1, timeoutMs = 5000): Promise<Message | null> {
  const p = await Peer.connect(port);
  p.send({ type: MsgType.DMT_USER_CMD, coordCmd: cmd, theCheckpointInterval: interval });
  if (cmd === CoordCmd.DMT_QUIT) {
    p.close();
    return null;
  }
  const m = await p.recv(timeoutMs);
  p.destroy();
  return m;
}

export interface StatusReply {
  numPeers: number;
  running: boolean;
  interval: number;
}

export async function status(port: number): Promise<StatusReply> {
  const m = await userCommand(port, CoordCmd.DMT_STATUS);
  if (!m) throw new Error('no status reply');
  return { numPeers: m.numPeers, running: m.isRunning === 1, interval: m.theCheckpointInterval };
}

export async function listText(port: number): Promise<string> {
  const m = await userCommand(port, CoordCmd.DMT_LIST);
  if (!m) throw new Error('no list reply');
  return m.payload.toString('utf8').replace(/\0$/, '');
}

export async function waitPeers(port: number, n: number, timeoutMs = 5000): Promise<StatusReply> {
  return until(async () => {
    const s = await status(port);
    return s.numPeers === n ? s : undefined;
  }, `${n} peers`, timeoutMs);
}

/** A dmtcp_coordinator process started for a test. */
export interface CoordinatorProcess {
  port: number;
  proc: ChildProcess;
  dir: string;
  portFile: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Writes to the console (stdin). */
  type(text: string): void;
  /** Quits (if still running) and waits for the exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Keep stdin as a pipe for console tests (default: /dev/null). */
  console?: boolean;
}

export async function tempDir(prefix = 'ckpt-coord-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function startCoordinator(opts: StartOptions = {}): Promise<CoordinatorProcess> {
  const dir = await tempDir();
  const portFile = path.join(dir, 'port');
  const args = ['--coord-port', '0', '--port-file', portFile, '--ckptdir', dir, ...(opts.args ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, DMTCP_TMPDIR: dir, ...(opts.env ?? {}) };
  delete env.DMTCP_COORD_PORT;
  const proc = spawn(coordinatorBin, args, {
    cwd: opts.cwd ?? dir,
    env,
    stdio: [opts.console ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let running = true;
  void exited.then(() => (running = false));
  const port = await until(
    async () => {
      if (!running) throw new Error(`coordinator exited early: ${err}`);
      const text = await fs.readFile(portFile, 'utf8').catch(() => '');
      return text ? Number(text) : 0;
    },
    'the port file',
    10000,
  );
  return {
    port,
    proc,
    dir,
    portFile,
    stdout: () => out,
    stderr: () => err,
    exited,
    type: (text) => proc.stdin!.write(text),
    async stop() {
      if (running) {
        await userCommand(port, CoordCmd.DMT_QUIT).catch(() => {});
        const t = setTimeout(() => proc.kill('SIGKILL'), 1500);
        await exited;
        clearTimeout(t);
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Starts N workers that are accepted and RUNNING. */
export async function runningWorkers(port: number, n: number): Promise<SyntheticWorker[]> {
  const ws: SyntheticWorker[] = [];
  for (let i = 0; i < n; i++) {
    const { worker, reply } = await SyntheticWorker.join(port);
    if (reply?.type !== MsgType.DMT_ACCEPT) throw new Error(`worker ${i} not accepted: ${reply?.typeName}`);
    worker.initDone();
    ws.push(worker);
  }
  await until(async () => (await status(port)).running, 'computation running');
  return ws;
}
