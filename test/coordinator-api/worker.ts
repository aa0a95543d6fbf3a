/**
 * A minimal synthetic DMTCP worker for tests. Messages are encoded and
 * decoded by the native codec (native().protocol); this file only decides
 * what to send when.
 */
import net from 'node:net';

import { native } from '../../src/native.js';

export interface Upid {
  hostid: bigint;
  time: bigint;
  pid: number;
  generation: number;
  text?: string;
}

export interface Msg {
  type: number;
  typeName: string;
  state: number;
  barrier: string;
  from: Upid;
  compGroup: Upid;
  virtualPid: number;
  numPeers: number;
  exitAfterCkpt: number;
  payload: Buffer;
}

interface Protocol {
  MsgType: Record<string, number>;
  WorkerState: Record<string, number>;
  encode(fields: Record<string, unknown>, payload?: Buffer | string): Buffer;
  frame(buf: Buffer): { messages: Msg[]; consumed: number; error?: string };
}

export const P = native<{ protocol: Protocol }>().protocol;
export const T = P.MsgType as Record<string, number> & {
  DMT_NEW_WORKER: number;
};
export const S = P.WorkerState;

let seq = 0;

/** One connection speaking the worker side of the protocol. */
export class SyntheticWorker {
  readonly sock: net.Socket;
  id: Upid;
  #buf = Buffer.alloc(0);
  #queue: Msg[] = [];
  #waiters: ((m: Msg | null) => void)[] = [];
  #closed = false;

  private constructor(sock: net.Socket, id: Upid) {
    this.sock = sock;
    this.id = id;
    sock.on('data', (b: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, b]);
      const r = P.frame(this.#buf);
      this.#buf = this.#buf.subarray(r.consumed);
      for (const m of r.messages) this.#push(m);
    });
    const end = () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w(null);
    };
    sock.on('close', end);
    sock.on('error', end);
  }

  static async connect(port: number): Promise<SyntheticWorker> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.setNoDelay(true);
    seq++;
    const id: Upid = { hostid: 0x1234n, time: BigInt(Date.now()) * 1000n + BigInt(seq), pid: 50000 + seq, generation: 0 };
    return new SyntheticWorker(sock, id);
  }

  #push(m: Msg): void {
    const w = this.#waiters.shift();
    if (w) w(m);
    else this.#queue.push(m);
  }

  /** The next message (rejects after `ms`, resolves null on close). */
  next(ms = 10_000): Promise<Msg | null> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
      this.#waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  async expect(typeName: string): Promise<Msg> {
    const m = await this.next();
    if (!m) throw new Error(`connection closed while waiting for ${typeName}`);
    if (m.typeName !== typeName) throw new Error(`expected ${typeName}, got ${m.typeName}`);
    return m;
  }

  send(fields: Record<string, unknown>, payload?: string): void {
    this.sock.write(P.encode({ from: this.id, ...fields }, payload === undefined ? undefined : Buffer.from(payload)));
  }

  /** NEW_WORKER hello, ACCEPT, then INIT_OR_EXEC as a launched process does. */
  async join(progname = 'synthetic'): Promise<Msg> {
    this.send({ type: T.DMT_NEW_WORKER, state: S.UNKNOWN, realPid: this.id.pid }, `testhost\0${progname}\0`);
    const accept = await this.expect('DMT_ACCEPT');
    this.id = { ...this.id, pid: accept.virtualPid };
    this.send({ type: T.DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC, state: S.RUNNING }, `${progname}\0`);
    return accept;
  }

  /** Answers DMT_DO_CHECKPOINT with the given barriers, a filename and resume. */
  async checkpoint(barriers: string[], image: string): Promise<Msg> {
    const doCk = await this.expect('DMT_DO_CHECKPOINT');
    const states = [S.PRESUSPEND, S.SUSPENDED];
    for (const [i, name] of barriers.entries()) {
      const state = i < states.length ? states[i] : i === barriers.length - 1 ? S.CHECKPOINTED : S.CHECKPOINTING;
      this.send({ type: T.DMT_BARRIER, state, barrier: name });
      const rel = await this.expect('DMT_BARRIER_RELEASED');
      if (rel.payload.toString() !== `${name}\0`) throw new Error(`released from ${rel.payload.toString()} instead of ${name}`);
    }
    this.send({ type: T.DMT_CKPT_FILENAME, state: S.CHECKPOINTED }, `${image}\0\0testhost\0`);
    this.send({ type: T.DMT_WORKER_RESUMING, state: S.RUNNING });
    return doCk;
  }

  close(): void {
    this.sock.destroy();
  }
}
