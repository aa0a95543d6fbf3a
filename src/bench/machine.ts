/**
 * Describes the machine and the storage a benchmark ran on, so that figures
 * in a report can be compared with other machines: CPU model and the flags
 * that matter for checkpointing (vector state size, checksums, compression),
 * kernel, memory, and for a directory its filesystem, mount and block device
 * (read from /proc/self/mountinfo and /sys/dev/block, no privileges needed).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface BlockDevice {
  /** Kernel name of the whole disk, e.g. "nvme0n1", "vda", "sda". */
  name: string;
  /** The partition or mapped device the filesystem is on, e.g. "nvme0n1p2" (null when it is the disk itself). */
  partition: string | null;
  model: string | null;
  vendor: string | null;
  /** True for spinning disks, false for SSDs/NVMe/virtual disks; null when unknown. */
  rotational: boolean | null;
  sizeBytes: number | null;
  /** Active I/O scheduler, e.g. "none", "mq-deadline". */
  scheduler: string | null;
  logicalBlockSize: number | null;
}

export interface FilesystemInfo {
  /** The directory that was measured. */
  dir: string;
  /** Filesystem type from the mount table, e.g. "ext4", "xfs", "tmpfs", "nfs4". */
  type: string;
  /** statfs f_type as hex, e.g. "0xef53". */
  magic: string | null;
  mountPoint: string;
  /** What is mounted, e.g. "/dev/nvme0n1p2", "tmpfs", "server:/export". */
  source: string;
  mountOptions: string;
  sizeBytes: number | null;
  freeBytes: number | null;
  device: BlockDevice | null;
}

export interface MachineInfo {
  hostname: string;
  cpu: {
    model: string;
    logicalCpus: number;
    /** The subset of CPU flags relevant to checkpointing (see RELEVANT_FLAGS). */
    flags: string[];
    /** How many flags /proc/cpuinfo lists in total. */
    flagCount: number;
  };
  memoryBytes: number;
  kernel: { release: string; version: string };
  os: string;
  node: string;
  ckpt: string;
}

/** CPU flags worth naming in a report: vector state (image size and restore), crc/checksum and compression speed. */
export const RELEVANT_FLAGS = [
  'sse4_2',
  'avx',
  'avx2',
  'avx512f',
  'avx512bw',
  'avx512vl',
  'amx_tile',
  'bmi2',
  'sha_ni',
  'aes',
  'pclmulqdq',
  'xsave',
  'xsaveopt',
  'xsavec',
  'fsgsbase',
  'rdrand',
  'hypervisor',
];

function readText(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

function readTrim(p: string): string | null {
  const t = readText(p);
  if (t === null) return null;
  const s = t.trim();
  return s === '' ? null : s;
}

export function describeMachine(version: string): MachineInfo {
  const cpuinfo = readText('/proc/cpuinfo') ?? '';
  const field = (name: string): string | null => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo);
    return m?.[1]?.trim() ?? null;
  };
  const allFlags = (field('flags') ?? '').split(/\s+/).filter(Boolean);
  const osRelease = readText('/etc/os-release') ?? '';
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? os.type();
  return {
    hostname: os.hostname(),
    cpu: {
      model: field('model name') ?? os.cpus()[0]?.model ?? 'unknown',
      logicalCpus: os.cpus().length,
      flags: RELEVANT_FLAGS.filter((f) => allFlags.includes(f)),
      flagCount: allFlags.length,
    },
    memoryBytes: os.totalmem(),
    kernel: { release: os.release(), version: os.version() },
    os: pretty,
    node: process.version,
    ckpt: version,
  };
}

interface MountEntry {
  major: number;
  minor: number;
  mountPoint: string;
  type: string;
  source: string;
  options: string;
}

/** Parses /proc/self/mountinfo (octal escapes such as \040 decoded). */
export function parseMountinfo(text: string): MountEntry[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const pre = line.slice(0, dash).split(' ');
    const post = line.slice(dash + 3).split(' ');
    const [maj, min] = (pre[2] ?? '0:0').split(':').map(Number);
    out.push({
      major: maj ?? 0,
      minor: min ?? 0,
      mountPoint: unescape(pre[4] ?? '/'),
      options: pre[5] ?? '',
      type: post[0] ?? 'unknown',
      source: unescape(post[1] ?? ''),
    });
  }
  return out;
}

/** Finds the mount holding `dir`: the longest mount point that prefixes its real path (last mount wins on ties). */
export function findMount(entries: readonly MountEntry[], realDir: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const e of entries) {
    const mp = e.mountPoint;
    const inside = mp === '/' || realDir === mp || realDir.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = e;
  }
  return best;
}

function describeDevice(major: number, minor: number): BlockDevice | null {
  if (major === 0) return null; // anonymous device: tmpfs, overlay, nfs, ...
  const sysdev = `/sys/dev/block/${major}:${minor}`;
  let real: string;
  try {
    real = fs.realpathSync(sysdev);
  } catch {
    return null;
  }
  const own = path.basename(real);
  // A partition's sysfs directory sits inside its disk's and has a "partition" file.
  const isPartition = fs.existsSync(path.join(real, 'partition'));
  let disk = isPartition ? path.basename(path.dirname(real)) : own;
  // Device-mapper / md: name the first underlying disk.
  const slaves = (() => {
    try {
      return fs.readdirSync(path.join(real, 'slaves'));
    } catch {
      return [];
    }
  })();
  if (!isPartition && slaves.length > 0) {
    try {
      const slaveReal = fs.realpathSync(path.join(real, 'slaves', slaves[0] as string));
      disk = fs.existsSync(path.join(slaveReal, 'partition')) ? path.basename(path.dirname(slaveReal)) : path.basename(slaveReal);
    } catch {
      /* keep the mapped name */
    }
  }
  const base = `/sys/block/${disk}`;
  const sectors = Number(readTrim(`${base}/size`));
  const sched = readTrim(`${base}/queue/scheduler`);
  const rot = readTrim(`${base}/queue/rotational`);
  const lbs = Number(readTrim(`${base}/queue/logical_block_size`));
  return {
    name: disk,
    partition: disk === own ? null : own,
    model: readTrim(`${base}/device/model`),
    vendor: readTrim(`${base}/device/vendor`),
    rotational: rot === null ? null : rot === '1',
    sizeBytes: Number.isFinite(sectors) && sectors > 0 ? sectors * 512 : null,
    scheduler: sched ? (/\[([^\]]+)\]/.exec(sched)?.[1] ?? sched) : null,
    logicalBlockSize: Number.isFinite(lbs) && lbs > 0 ? lbs : null,
  };
}

/** Filesystem, mount and block device of `dir` (which must exist). */
export function describeFilesystem(dir: string): FilesystemInfo {
  const real = fs.realpathSync(dir);
  const mounts = parseMountinfo(readText('/proc/self/mountinfo') ?? '');
  const m = findMount(mounts, real);
  let magic: string | null = null;
  let sizeBytes: number | null = null;
  let freeBytes: number | null = null;
  try {
    const s = fs.statfsSync(real);
    magic = `0x${Number(s.type).toString(16)}`;
    sizeBytes = Number(s.blocks) * Number(s.bsize);
    freeBytes = Number(s.bavail) * Number(s.bsize);
  } catch {
    /* statfs unavailable: leave nulls */
  }
  // stat().dev is the authoritative device of the directory (mountinfo may
  // show a bind mount's major:minor as well, but this also covers btrfs subvolumes).
  const st = fs.statSync(real, { bigint: true });
  const dev = st.dev;
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return {
    dir: real,
    type: m?.type ?? 'unknown',
    magic,
    mountPoint: m?.mountPoint ?? '/',
    source: m?.source ?? 'unknown',
    mountOptions: m?.options ?? '',
    sizeBytes,
    freeBytes,
    device: describeDevice(major || m?.major || 0, major ? minor : (m?.minor ?? 0)),
  };
}
