import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ckpt = path.resolve(__dirname, '../../bin/ckpt');

describe('ckpt CLI', () => {
  it('prints help with examples and exit codes', () => {
    const out = execFileSync(ckpt, ['--help'], { encoding: 'utf8' });
    expect(out).toContain('Usage: ckpt');
    expect(out).toContain('Examples:');
    expect(out).toContain('Exit codes:');
  });

  it('rejects an unknown command with the usage exit code', () => {
    const r = spawnSync(ckpt, ['no-such-command'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command|too many arguments/);
  });
});
