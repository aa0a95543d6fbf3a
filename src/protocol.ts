/**
 * The DMTCP 5.0 coordinator wire protocol (docs/protocol.md), as exposed by
 * the native codec. TypeScript never lays out message bytes itself: every
 * header is encoded and decoded by native/protocol, the same code the
 * coordinator, dmtcp_command and the load generator use.
 *
 * ```ts
 * import { protocol } from 'ckpt';
 * const hello = protocol.encode({ type: protocol.MsgType.DMT_NEW_WORKER, state: 0 },
 *                               protocol.helloPayload('host', './prog'));
 * const { messages } = protocol.frame(buffer);
 * ```
 */
import { native } from './native.js';

/** 24-byte process identity (`<hostid hex>-<pid>-<time hex>` in text form). */
export interface UniquePid {
  hostid: bigint;
  time: bigint;
  pid: number;
  generation: number;
}

/** Header fields accepted by {@link encode}. Missing fields take the defaults of spec §2.5. */
export interface HeaderFields {
  type?: number;
  /** Override of the 16 magic bytes (for negative tests). */
  magic?: Buffer | string;
  /** Barrier name or KVDB database id (bytes 16..79). */
  barrier?: string | Buffer;
  /** KVDB operation (request) or result (response). */
  kvdb?: number;
  pad84?: number;
  /** Must be 208 for a valid message; overridable for negative tests. */
  msgSize?: number;
  /** Defaults to the payload length; overridable for negative tests. */
  extraBytes?: number;
  state?: number;
  from?: Partial<UniquePid>;
  compGroup?: Partial<UniquePid>;
  virtualPid?: number;
  realPid?: number;
  keyLen?: number;
  valLen?: number;
  numPeers?: number;
  isRunning?: number;
  coordCmd?: number;
  coordCmdStatus?: number;
  coordTimeStamp?: bigint;
  theCheckpointInterval?: number;
  /** Dotted IPv4. */
  ipAddr?: string;
  uniqueIdOffset?: number;
  exitAfterCkpt?: number;
}

/** A decoded message. */
export interface Message {
  magic: Buffer;
  barrier: string;
  kvdb: number;
  msgSize: number;
  extraBytes: number;
  type: number;
  typeName: string;
  state: number;
  from: UniquePid & { text: string };
  compGroup: UniquePid & { text: string };
  virtualPid: number;
  realPid: number;
  keyLen: number;
  valLen: number;
  numPeers: number;
  isRunning: number;
  coordCmd: number;
  coordCmdStatus: number;
  coordTimeStamp: bigint;
  theCheckpointInterval: number;
  ipAddr: string;
  uniqueIdOffset: number;
  exitAfterCkpt: number;
  /** Whether the header passes the validity rules of spec §2.6. */
  valid: boolean;
  validity: string;
  payload: Buffer;
}

interface NativeProtocol {
  HEADER_SIZE: number;
  MAX_EXTRA_BYTES: number;
  MsgType: Record<string, number>;
  WorkerState: Record<string, number>;
  CoordCmd: Record<string, number>;
  CmdStatus: Record<string, number>;
  KvdbOp: Record<string, number>;
  KvdbResult: Record<string, number>;
  encode(fields: HeaderFields, payload?: Buffer | string): Buffer;
  decode(buf: Buffer): Message & { complete: boolean; size: number };
  frame(buf: Buffer): { messages: Message[]; consumed: number; error?: string };
}

function lib(): NativeProtocol {
  return native<{ protocol: NativeProtocol }>().protocol;
}

/** Size of every header on the wire. */
export const HEADER_SIZE = 208;
/** Largest valid payload (DMTCP_MAX_MESSAGE_EXTRA_BYTES). */
export const MAX_EXTRA_BYTES = 1048576;

/** `DmtcpMessageType` values. */
export const MsgType = {
  DMT_NULL: 0,
  DMT_NEW_WORKER: 1,
  DMT_NAME_SERVICE_WORKER: 2,
  DMT_RESTART_WORKER: 3,
  DMT_ACCEPT: 4,
  DMT_REJECT_NOT_RESTARTING: 5,
  DMT_REJECT_WRONG_COMP: 6,
  DMT_REJECT_NOT_RUNNING: 7,
  DMT_REJECT_RESTART_PEER_MISMATCH: 8,
  DMT_UPDATE_PROCESS_INFO_AFTER_FORK: 9,
  DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC: 10,
  DMT_GET_CKPT_DIR: 11,
  DMT_GET_CKPT_DIR_RESULT: 12,
  DMT_UPDATE_CKPT_DIR: 13,
  DMT_CKPT_FILENAME: 14,
  DMT_UNIQUE_CKPT_FILENAME: 15,
  DMT_USER_CMD: 16,
  DMT_USER_CMD_RESULT: 17,
  DMT_DO_CHECKPOINT: 18,
  DMT_BARRIER: 19,
  DMT_BARRIER_RELEASED: 20,
  DMT_WORKER_RESUMING: 21,
  DMT_KILL_PEER: 22,
  DMT_KVDB_REQUEST: 23,
  DMT_KVDB_RESPONSE: 24,
} as const;

/** `WorkerState` values. */
export const WorkerState = {
  UNKNOWN: 0,
  RUNNING: 1,
  PRESUSPEND: 2,
  SUSPENDED: 3,
  CHECKPOINTING: 4,
  CHECKPOINTED: 5,
  RESTARTING: 6,
} as const;

/** `CoordinatorCmd` values. */
export const CoordCmd = {
  DMT_INVALID_COORDINATOR_COMMAND: 0,
  DMT_STATUS: 1,
  DMT_LIST: 2,
  DMT_CHECKPOINT: 3,
  DMT_BLOCKING_CKPT: 4,
  DMT_KILL_AFTER_CKPT: 5,
  DMT_UPDATE_CKPT_INTERVAL: 6,
  DMT_KILL: 7,
  DMT_QUIT: 8,
  DMT_HELP: 9,
} as const;

/** `CoordinatorCmdStatus` values. */
export const CmdStatus = {
  DMT_COORD_SUCCESS: 0,
  DMT_COORD_INVALID_COMMAND: -1,
  DMT_COORD_NOT_RUNNING: -2,
  DMT_COORD_NOT_FOUND: -3,
} as const;

/** KVDB request operations and response codes. */
export const KvdbOp = { GET: 0, SET: 1, INCRBY: 2, AND: 3, OR: 4, XOR: 5, MIN: 6, MAX: 7 } as const;
export const KvdbResult = { SUCCESS: 0, INVALID_REQUEST: 1, DB_NOT_FOUND: 2, KEY_NOT_FOUND: 3 } as const;

/** Encodes one message (header + payload) as one buffer, ready for a single write. */
export function encode(fields: HeaderFields, payload?: Buffer | string): Buffer {
  return lib().encode(fields, payload);
}

/** Decodes the message at the start of `buf` (which must hold at least the 208-byte header). */
export function decode(buf: Buffer): Message & { complete: boolean; size: number } {
  return lib().decode(buf);
}

/**
 * Cuts every complete message out of `buf`. `consumed` bytes may be dropped by
 * the caller; `error` is set when the stream holds an invalid header (it
 * cannot be resynchronised after that).
 */
export function frame(buf: Buffer): { messages: Message[]; consumed: number; error?: string } {
  return lib().frame(buf);
}

/** `hostname\0progname\0` (the hello payload). */
export function helloPayload(hostname: string, progname: string): Buffer {
  return Buffer.from(`${hostname}\0${progname}\0`);
}

/** `path\0shell\0host\0` (DMT_CKPT_FILENAME). */
export function ckptFilenamePayload(path: string, shell: '' | 'ssh' | 'rsh', host: string): Buffer {
  return Buffer.from(`${path}\0${shell}\0${host}\0`);
}

/** `key\0value\0` plus the keyLen/valLen fields a KVDB request needs. */
export function kvdbPayload(key: string, value: string): { payload: Buffer; keyLen: number; valLen: number } {
  const k = Buffer.from(`${key}\0`);
  const v = Buffer.from(`${value}\0`);
  return { payload: Buffer.concat([k, v]), keyLen: k.length, valLen: v.length };
}

/** Text form of a UniquePid: `<hostid hex>-<pid>-<time hex>`. */
export function upidText(u: UniquePid): string {
  return `${u.hostid.toString(16)}-${u.pid}-${u.time.toString(16)}`;
}
