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

describe('help layout', () => {
  it('joins the lines of a description paragraph so commander wraps them to the terminal', async () => {
    const { Command } = await import('commander');
    const { reflowDescriptions } = await import('../../src/cli/main.js');
    const root = new Command('x').description('first line\nsecond line\n\n  indented row\n  another row\nlast');
    root.command('sub').description('a\nb');
    reflowDescriptions(root);
    expect(root.description()).toBe('first line second line\n\n  indented row\n  another row\nlast');
    expect(root.commands[0]!.description()).toBe('a b');
  });

  it('renders description paragraphs of real commands without ragged breaks at 80 columns', () => {
    // Every line of a reflowed paragraph but its last is filled to near the width.
    const out = execFileSync(ckpt, ['images', '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80' } });
    const para = out.split('\n\n')[1]!.split('\n');
    expect(para.length).toBeGreaterThan(2);
    for (const line of para.slice(0, -1)) expect(line.length).toBeGreaterThan(60);
  });
});
