/**
 * A DMTCP 5.0-compatible coordinator inside the Node process.
 *
 * ```ts
 * import { Coordinator } from 'ckpt';
 * const c = new Coordinator();
 * c.on('checkpointCompleted', (ck) => console.log(ck.generation, ck.durationMs, ck.bytes));
 * const { port } = await c.start({ port: 0, ckptdir: '/scratch/ckpt' });
 * // dmtcp_launch -j -p <port> ./job ...
 * await c.checkpoint({ blocking: true });
 * await c.stop();
 * ```
 *
 * The coordinator itself is native (native/coordinator): it runs on its own
 * epoll thread and keeps serving workers while JavaScript is busy. Events
 * reach this object through one thread-safe function. Every option is
 * validated here, before anything crosses into C++.
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { CkptError, fromNative } from './errors.js';
import { native } from './native.js';

/** Options of {@link Coordinator.start}. Every one is optional. */
export interface CoordinatorOptions {
  /** TCP port; 0 lets the kernel choose (read it back from the result of start()). Default 7779. */
  port?: number;
  /** IPv4 address to listen on. Default: all interfaces (0.0.0.0), like DMTCP. */
  bind?: string;
  /** Only these peers may connect (IPv4 addresses or CIDRs, e.g. '10.0.0.0/8'). Default: anyone. */
  allow?: readonly string[];
  /** Where restart scripts are written. Default: the current directory. Must exist. */
  ckptdir?: string;
  /** Base of the dmtcp-<user>@<host> temporary directory. Default: $DMTCP_TMPDIR, $TMPDIR, /tmp. */
  tmpdir?: string;
  /** Checkpoint every this many seconds (0 = only on request). Default 0. */
  interval?: number;
  /** Quit when the last worker disconnects. Default false. */
  exitOnLast?: boolean;
  /** Workers exit after every checkpoint. Default false. */
  killAfterCkpt?: boolean;
  /** End the coordinator after this many seconds (0 = never). Default 0. */
  timeout?: number;
  /** End the coordinator after this many seconds without workers (0 = the default of 8 h). */
  staleTimeout?: number;
  /** Dump the key-value database as JSON after checkpoints, restarts and at quit. Default false. */
  writeKvData?: boolean;
  /** Directory of those JSON dumps. Default: the current directory. */
  kvDataDir?: string;
  /** DMTCP's bin directory, written into restart scripts (where dmtcp_restart is). Default: found on PATH. */
  dmtcpBinDir?: string;
  /** A new connection must send its first message within this time. Default 10000 ms. */
  handshakeTimeoutMs?: number;
  /** Which log lines are emitted as 'log' events. Default 'warning'. */
  logLevel?: 'none' | 'error' | 'warning' | 'note';
}

/** A registered worker (one process of the computation). */
export interface WorkerInfo {
  /** Client number, as in `dmtcp_command -l` (never reused). */
  number: number;
  progname: string;
  hostname: string;
  /** DMTCP unique process id, text form. */
  upid: string;
  virtualPid: number;
  realPid: number;
  /** Worker state as the worker reports it: 'RUNNING', 'CHECKPOINTING', ... */
  state: string;
  /** Last global barrier the worker reached ('' = none). */
  barrier: string;
  /** Peer IPv4 address. */
  ip: string;
}

export interface CoordinatorStatus {
  port: number;
  host: string;
  ip: string;
  numPeers: number;
  /** True when at least one worker is connected and all of them are RUNNING. */
  running: boolean;
  interval: number;
  compId: string;
  generation: number;
  checkpointInProgress: boolean;
  killInProgress: boolean;
  ckptDir: string;
  checkpointsCompleted: number;
  workers: WorkerInfo[];
}

export interface CheckpointStartedEvent {
  compId: string;
  generation: number;
  workers: number;
}

export interface CheckpointCompletedEvent {
  compId: string;
  generation: number;
  /** Workers that took part. */
  workers: number;
  /** Global barriers released during the checkpoint. */
  barriers: number;
  /** From the start of the checkpoint to the last image reported. */
  durationMs: number;
  /** Image files the workers reported, in arrival order. */
  images: string[];
  /** Total size of those files (files that could not be stat'ed count 0). */
  bytes: number;
  /** The restart script written for this checkpoint ('' if none). */
  restartScript: string;
}

export interface RestartCompletedEvent {
  compId: string;
  generation: number;
  workers: number;
  barriers: number;
  durationMs: number;
}

export interface CoordinatorExitEvent {
  /** 0 after quit/stop, 1 after --timeout / --stale-timeout expiry. */
  code: number;
  reason: string;
}

export interface CoordinatorLogEvent {
  level: 'error' | 'warning' | 'note';
  message: string;
}

/** Event map of {@link Coordinator}. */
export interface CoordinatorEvents {
  workerJoined: [WorkerInfo];
  workerLeft: [WorkerInfo];
  checkpointStarted: [CheckpointStartedEvent];
  checkpointCompleted: [CheckpointCompletedEvent];
  restartCompleted: [RestartCompletedEvent];
  kill: [{ workers: number }];
  exit: [CoordinatorExitEvent];
  log: [CoordinatorLogEvent];
}

// ----- the addon's shape -----------------------------------------------------

interface NativeReply {
  command: string;
  status: number;
  numPeers: number;
  running: boolean;
  interval: number;
  text: string;
}

interface NativeDelivery {
  type: string;
  worker?: WorkerInfo;
  compId?: string;
  generation?: number;
  workers?: number;
  barriers?: number;
  durationMs?: number;
  images?: string[];
  restartScript?: string;
  exitCode?: number;
  reason?: string;
  level?: CoordinatorLogEvent['level'];
  message?: string;
}

interface NativeCoordinator {
  start(): Promise<number>;
  stop(): Promise<void>;
  command(cmd: number, interval: number): Promise<NativeReply>;
  status(): CoordinatorStatus;
  ref(): void;
  unref(): void;
}

interface NativeCoordinatorModule {
  coordinator: {
    Coordinator: new (options: Record<string, unknown>, onDelivery: (d: NativeDelivery) => void) => NativeCoordinator;
  };
}

/** User-command numbers of the DMTCP protocol (spec §2.4). */
const Cmd = { Status: 1, List: 2, Checkpoint: 3, BlockingCheckpoint: 4, KillAfterCheckpoint: 5, UpdateInterval: 6, Kill: 7, Quit: 8 } as const;
const STATUS_NOT_RUNNING = -2;
const LOG_LEVELS = { none: -1, error: 0, warning: 1, note: 2 } as const;
const U32_MAX = 0xffff_ffff;

const kNative = Symbol('ckpt.coordinator.native');

// ----- validation ------------------------------------------------------------

const KNOWN_OPTIONS = new Set<keyof CoordinatorOptions>([
  'port', 'bind', 'allow', 'ckptdir', 'tmpdir', 'interval', 'exitOnLast', 'killAfterCkpt', 'timeout',
  'staleTimeout', 'writeKvData', 'kvDataDir', 'dmtcpBinDir', 'handshakeTimeoutMs', 'logLevel',
]);

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`options.${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`options.${name} must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

function checkBool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`options.${name} must be a boolean, got ${typeof v}`);
  return v;
}

function checkString(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new TypeError(`options.${name} must be a non-empty string`);
  if (v.includes('\0')) throw new TypeError(`options.${name} must not contain NUL characters`);
  return v;
}

/** Checks 'a.b.c.d' or 'a.b.c.d/n'; returns it unchanged. */
export function checkCidr(v: string, what: string): string {
  const [addr, bits, extra] = v.split('/');
  if (extra !== undefined || addr === undefined || !net.isIPv4(addr)) {
    throw new TypeError(`${what} must be an IPv4 address or CIDR such as 10.0.0.0/8, got '${v}'`);
  }
  if (bits !== undefined) {
    if (!/^\d{1,2}$/.test(bits) || Number(bits) > 32) {
      throw new RangeError(`${what}: the prefix length of '${v}' must be 0 to 32`);
    }
  }
  return v;
}

async function checkDir(name: string, v: unknown): Promise<string> {
  const dir = path.resolve(checkString(name, v));
  let st;
  try {
    st = await fs.stat(dir);
  } catch (err) {
    throw new CkptError('ERR_CKPT_NOT_FOUND', `options.${name}: directory ${dir} does not exist; create it first`, { cause: err });
  }
  if (!st.isDirectory()) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `options.${name}: ${dir} is not a directory`);
  return dir;
}

/** Validates `opts` and converts it to the addon's option object. */
async function nativeOptions(opts: CoordinatorOptions): Promise<Record<string, unknown>> {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError('options must be an object');
  }
  for (const key of Object.keys(opts)) {
    if (!KNOWN_OPTIONS.has(key as keyof CoordinatorOptions)) {
      throw new TypeError(`unknown option '${key}' (known: ${[...KNOWN_OPTIONS].join(', ')})`);
    }
  }
  const o: Record<string, unknown> = {};
  o.port = opts.port === undefined ? 7779 : checkInt('port', opts.port, 0, 65535);
  if (opts.bind !== undefined) {
    const bind = checkString('bind', opts.bind);
    if (!net.isIPv4(bind)) throw new TypeError(`options.bind must be an IPv4 address such as 127.0.0.1, got '${bind}'`);
    o.bind = bind;
  }
  if (opts.allow !== undefined) {
    if (!Array.isArray(opts.allow)) throw new TypeError('options.allow must be an array of IPv4 addresses or CIDRs');
    o.allow = opts.allow.map((a, i) => checkCidr(checkString(`allow[${i}]`, a), `options.allow[${i}]`));
  }
  o.ckptDir = opts.ckptdir === undefined ? process.cwd() : await checkDir('ckptdir', opts.ckptdir);
  if (opts.tmpdir !== undefined) o.tmpDir = await checkDir('tmpdir', opts.tmpdir);
  if (opts.kvDataDir !== undefined) o.kvDataDir = await checkDir('kvDataDir', opts.kvDataDir);
  if (opts.dmtcpBinDir !== undefined) o.dmtcpBinDir = path.resolve(checkString('dmtcpBinDir', opts.dmtcpBinDir));
  if (opts.interval !== undefined) o.interval = checkInt('interval', opts.interval, 0, U32_MAX);
  if (opts.timeout !== undefined) o.timeout = checkInt('timeout', opts.timeout, 0, U32_MAX);
  if (opts.staleTimeout !== undefined) o.staleTimeout = checkInt('staleTimeout', opts.staleTimeout, 0, U32_MAX);
  if (opts.handshakeTimeoutMs !== undefined) {
    o.handshakeTimeoutMs = checkInt('handshakeTimeoutMs', opts.handshakeTimeoutMs, 1, U32_MAX);
  }
  if (opts.exitOnLast !== undefined) o.exitOnLast = checkBool('exitOnLast', opts.exitOnLast);
  if (opts.killAfterCkpt !== undefined) o.killAfterCkpt = checkBool('killAfterCkpt', opts.killAfterCkpt);
  if (opts.writeKvData !== undefined) o.writeKvData = checkBool('writeKvData', opts.writeKvData);
  const level = opts.logLevel ?? 'warning';
  if (!Object.hasOwn(LOG_LEVELS, level)) {
    throw new TypeError(`options.logLevel must be one of ${Object.keys(LOG_LEVELS).join(', ')}, got '${String(level)}'`);
  }
  o.logLevel = LOG_LEVELS[level];
  return o;
}

/** Sum of the sizes of `files` (libuv's thread pool does the stat calls, never the coordinator's loop). */
async function totalBytes(files: readonly string[]): Promise<number> {
  const sizes = await Promise.all(
    files.map(async (f) => {
      try {
        return (await fs.stat(f)).size;
      } catch {
        return 0;
      }
    }),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

/**
 * The coordinator. One instance serves one listening socket for its
 * lifetime: start() once, stop() (or quit()) once.
 */
export class Coordinator extends EventEmitter<CoordinatorEvents> {
  private [kNative]: NativeCoordinator | undefined;
  #port = 0;
  #state: 'new' | 'starting' | 'running' | 'ended' = 'new';
  #exited: Promise<CoordinatorExitEvent>;
  #resolveExited!: (e: CoordinatorExitEvent) => void;
  /** Events are emitted strictly in the order the loop produced them. */
  #queue: Promise<void> = Promise.resolve();
  #ref = true;

  constructor() {
    super();
    this.#exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
  }

  /** The port listened on (0 before start()). */
  get port(): number {
    return this.#port;
  }

  /** True between a successful start() and the end of the loop. */
  get running(): boolean {
    return this.#state === 'running';
  }

  /** Resolves when the coordinator has ended (quit, stop(), timeout). */
  get exited(): Promise<CoordinatorExitEvent> {
    return this.#exited;
  }

  /**
   * Validates the options, binds and starts serving. Rejects with a CkptError:
   * ERR_CKPT_ADDR_IN_USE when the port is taken, ERR_CKPT_INVALID_ARGUMENT /
   * ERR_CKPT_NOT_FOUND for bad options; throws TypeError/RangeError for
   * options of the wrong type or range.
   */
  async start(options: CoordinatorOptions = {}): Promise<{ port: number }> {
    if (this.#state !== 'new') {
      throw new CkptError('ERR_CKPT_STATE', 'this coordinator was already started; create a new Coordinator');
    }
    this.#state = 'starting';
    let nopts: Record<string, unknown>;
    try {
      nopts = await nativeOptions(options);
    } catch (err) {
      this.#state = 'new';
      throw err;
    }
    let handle: NativeCoordinator;
    try {
      const mod = native<NativeCoordinatorModule>();
      handle = new mod.coordinator.Coordinator(nopts, (d) => this.#deliver(d));
    } catch (err) {
      this.#state = 'new';
      throw fromNative(err, 'could not create the coordinator');
    }
    this[kNative] = handle;
    if (!this.#ref) handle.unref();
    try {
      this.#port = await handle.start();
    } catch (err) {
      this.#state = 'ended';
      this[kNative] = undefined;
      const port = nopts.port as number;
      throw fromNative(err, `could not start the coordinator on port ${port}`);
    }
    this.#state = 'running';
    return { port: this.#port };
  }

  /** A consistent snapshot of the computation. */
  status(): CoordinatorStatus {
    const h = this[kNative];
    if (!h) throw new CkptError('ERR_CKPT_STATE', 'the coordinator is not started; call start() first');
    return h.status();
  }

  /**
   * Starts a checkpoint of every worker. With `blocking`, resolves when the
   * checkpoint is complete. Rejects with ERR_CKPT_STATE when the computation
   * is not running (no workers, or a checkpoint is already in progress).
   */
  async checkpoint(options: { blocking?: boolean; kill?: boolean } = {}): Promise<{ numPeers: number }> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (options.blocking !== undefined) checkBool('blocking', options.blocking);
    if (options.kill !== undefined) checkBool('kill', options.kill);
    if (options.blocking && options.kill) {
      throw new TypeError('options.blocking and options.kill cannot be combined (the workers exit after a kill checkpoint)');
    }
    const cmd = options.kill ? Cmd.KillAfterCheckpoint : options.blocking ? Cmd.BlockingCheckpoint : Cmd.Checkpoint;
    const r = await this.#command(cmd, -1);
    if (r.status === STATUS_NOT_RUNNING) {
      throw new CkptError(
        'ERR_CKPT_STATE',
        'cannot checkpoint: the computation is not running (no workers are connected, or a checkpoint is already in progress)',
      );
    }
    return { numPeers: r.numPeers };
  }

  /** Changes the checkpoint interval (seconds; 0 disables interval checkpoints). */
  async setCheckpointInterval(seconds: number): Promise<void> {
    checkInt('interval', seconds, 0, 0x7fff_ffff);
    await this.#command(Cmd.UpdateInterval, seconds);
  }

  /** Tells every worker to exit. The coordinator keeps running. */
  async kill(): Promise<void> {
    await this.#command(Cmd.Kill, -1);
  }

  /** Kills every worker and ends the coordinator (DMTCP's "quit"). */
  async quit(): Promise<CoordinatorExitEvent> {
    if (this.#state === 'running') await this.#command(Cmd.Quit, -1);
    return this.#state === 'new' ? { code: 0, reason: 'not started' } : this.#exited;
  }

  /**
   * Closes every connection (without telling workers to exit) and ends the
   * coordinator. Idempotent; resolves after the loop thread has finished and
   * the 'exit' event has been emitted.
   */
  async stop(): Promise<CoordinatorExitEvent> {
    const h = this[kNative];
    if (!h || this.#state === 'new') return { code: 0, reason: 'not started' };
    await h.stop();
    return this.#exited;
  }

  /** Lets Node exit while the coordinator runs (like net.Server#unref). */
  unref(): this {
    this.#ref = false;
    this[kNative]?.unref();
    return this;
  }

  /** Undoes unref(): a running coordinator keeps Node alive (the default). */
  ref(): this {
    this.#ref = true;
    this[kNative]?.ref();
    return this;
  }

  async #command(cmd: number, interval: number): Promise<NativeReply> {
    const h = this[kNative];
    if (!h || this.#state !== 'running') {
      throw new CkptError('ERR_CKPT_STATE', 'the coordinator is not running; call start() first');
    }
    return h.command(cmd, interval);
  }

  #deliver(d: NativeDelivery): void {
    this.#queue = this.#queue.then(() => this.#emitDelivery(d)).catch((err: unknown) => {
      // A listener threw: report it the way Node reports errors thrown by
      // listeners of other emitters, without stopping later events.
      process.nextTick(() => {
        throw err;
      });
    });
  }

  async #emitDelivery(d: NativeDelivery): Promise<void> {
    const base = { compId: d.compId ?? '', generation: d.generation ?? 0 };
    switch (d.type) {
      case 'workerJoined':
      case 'workerLeft':
        if (d.worker) this.emit(d.type, d.worker);
        return;
      case 'checkpointStarted':
        this.emit('checkpointStarted', { ...base, workers: d.workers ?? 0 });
        return;
      case 'checkpointCompleted': {
        const images = d.images ?? [];
        this.emit('checkpointCompleted', {
          ...base,
          workers: d.workers ?? 0,
          barriers: d.barriers ?? 0,
          durationMs: d.durationMs ?? 0,
          images,
          bytes: await totalBytes(images),
          restartScript: d.restartScript ?? '',
        });
        return;
      }
      case 'restartCompleted':
        this.emit('restartCompleted', {
          ...base,
          workers: d.workers ?? 0,
          barriers: d.barriers ?? 0,
          durationMs: d.durationMs ?? 0,
        });
        return;
      case 'kill':
        this.emit('kill', { workers: d.workers ?? 0 });
        return;
      case 'log':
        this.emit('log', { level: d.level ?? 'note', message: d.message ?? '' });
        return;
      case 'exit': {
        this.#state = 'ended';
        const e = { code: d.exitCode ?? 0, reason: d.reason ?? '' };
        this.emit('exit', e);
        this.#resolveExited(e);
        return;
      }
      default:
        return; // 'quit' is followed by 'exit', which carries everything
    }
  }
}
