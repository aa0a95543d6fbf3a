/**
 * Small readers of /proc: process identity (pid + start time, so a recycled
 * pid is never mistaken for ours), process trees, and TCP listeners with
 * their owning processes (to say which port is busy and by whom).
 */
import fs from 'node:fs';

/** A process identity that survives pid reuse: pid plus its start time in clock ticks since boot. */
export interface ProcId {
  pid: number;
  /** Field 22 of /proc/<pid>/stat. */
  startTime: number;
}

interface StatFields {
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  startTime: number;
}

function readStat(pid: number): StatFields | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: it ends at the LAST ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const num = (field: number) => Number(rest[field - 3]);
  return { comm: text.slice(open + 1, close), state: rest[0] ?? '?', ppid: num(4), pgrp: num(5), startTime: num(22) };
}

/** The identity of a running process, or null when it does not exist. */
export function procId(pid: number): ProcId | null {
  const st = readStat(pid);
  return st ? { pid, startTime: st.startTime } : null;
}

/** True when `id` still names the same live (non-zombie) process. */
export function isAlive(id: ProcId | null | undefined): boolean {
  if (!id || !Number.isInteger(id.pid) || id.pid <= 0) return false;
  const st = readStat(id.pid);
  return st !== null && st.startTime === id.startTime && st.state !== 'Z' && st.state !== 'X';
}

/** The command name of a process (comm), or null. */
export function procName(pid: number): string | null {
  return readStat(pid)?.comm ?? null;
}

/** The command line of a process, or null. */
export function procCmdline(pid: number): string[] | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const parts = raw.split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts;
  } catch {
    return null;
  }
}

function allPids(): number[] {
  try {
    return fs
      .readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}

/** `root` and all its descendants (by ppid), root first. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const st = readStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (out.includes(p)) continue;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out.filter((p) => p === root || readStat(p) !== null);
}

/** A listening TCP socket. */
export interface Listener {
  address: string;
  port: number;
  inode: number;
}

function parseHexAddr4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

/** All TCP listeners (IPv4 and IPv6) of the current network namespace. */
export function tcpListeners(): Listener[] {
  const out: Listener[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A = TCP_LISTEN
      const [addrHex, portHex] = (f[1] ?? '').split(':');
      if (!addrHex || !portHex) continue;
      const address = addrHex.length === 8 ? parseHexAddr4(addrHex) : addrHex === '0'.repeat(32) ? '::' : `[${addrHex}]`;
      out.push({ address, port: parseInt(portHex, 16), inode: Number(f[9]) });
    }
  }
  return out;
}

/** Socket inodes held open by a process. */
function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      /* fd closed meanwhile */
    }
  }
  return out;
}

/** TCP ports on which any of `pids` listens, sorted, unique. */
export function listeningPorts(pids: number[]): number[] {
  const listeners = tcpListeners();
  if (listeners.length === 0) return [];
  const ports = new Set<number>();
  for (const pid of pids) {
    const inodes = socketInodes(pid);
    for (const l of listeners) if (inodes.has(l.inode)) ports.add(l.port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** Who listens on a TCP port. */
export interface PortOwner {
  port: number;
  address: string;
  /** Owning process, when visible to us (other users' fds are not). */
  pid: number | null;
  command: string | null;
}

/** The listener on `port` and its owning process, or null when the port is free. */
export function portOwner(port: number): PortOwner | null {
  const matches = tcpListeners().filter((l) => l.port === port);
  if (matches.length === 0) return null;
  const inodes = new Set(matches.map((m) => m.inode));
  for (const pid of allPids()) {
    for (const ino of socketInodes(pid)) {
      if (inodes.has(ino)) {
        const cmd = procCmdline(pid);
        return { port, address: matches[0]!.address, pid, command: cmd ? cmd.join(' ') : procName(pid) };
      }
    }
  }
  return { port, address: matches[0]!.address, pid: null, command: null };
}

/** A sentence naming the owner of a busy port, for error messages. */
export function describePortOwner(owner: PortOwner): string {
  if (owner.pid === null) return `TCP port ${owner.port} is in use (on ${owner.address}) by a process this user cannot see`;
  const cmd = owner.command && owner.command.length > 80 ? `${owner.command.slice(0, 77)}...` : owner.command;
  return `TCP port ${owner.port} is in use by pid ${owner.pid} (${cmd ?? 'unknown'})`;
}
