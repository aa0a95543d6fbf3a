import fs from 'node:fs';
import os from 'node:os';

import { describe, expect, it } from 'vitest';

import { describeFilesystem, describeMachine, findMount, parseMountinfo } from '../../src/bench/machine.js';

const MOUNTINFO = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
25 22 0:21 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
30 22 259:2 / /scratch\\040data rw,noatime shared:9 - xfs /dev/nvme0n1p2 rw
31 22 0:44 / /scratch rw - nfs4 server:/export rw,vers=4.2
`;

describe('bench machine description', () => {
  it('parses mountinfo (with escapes) and picks the longest matching mount point', () => {
    const m = parseMountinfo(MOUNTINFO);
    expect(m).toHaveLength(4);
    expect(m[2]).toMatchObject({ major: 259, minor: 2, mountPoint: '/scratch data', type: 'xfs', source: '/dev/nvme0n1p2' });
    expect(findMount(m, '/home/u')?.type).toBe('ext4');
    expect(findMount(m, '/dev/shm/x')?.type).toBe('tmpfs');
    expect(findMount(m, '/scratch data/job')?.type).toBe('xfs');
    expect(findMount(m, '/scratch/job')?.type).toBe('nfs4');
    expect(findMount(m, '/scratchy')?.type).toBe('ext4');
  });

  it('describes this machine and the filesystem of the temp dir', () => {
    const m = describeMachine('9.9.9');
    expect(m.ckpt).toBe('9.9.9');
    expect(m.kernel.release).toBe(os.release());
    expect(m.cpu.logicalCpus).toBe(os.cpus().length);
    expect(m.cpu.flagCount).toBeGreaterThanOrEqual(m.cpu.flags.length);
    const f = describeFilesystem(os.tmpdir());
    expect(f.dir).toBe(fs.realpathSync(os.tmpdir()));
    expect(f.type).not.toBe('unknown');
    expect(f.magic).toMatch(/^0x[0-9a-f]+$/);
    if (f.device) expect(fs.existsSync(`/sys/block/${f.device.name}`)).toBe(true);
  });
});
