/** Every image command has --help with examples and exit codes. */
import { describe, expect, it } from 'vitest';

import { run } from './helpers.js';

describe('image commands --help', () => {
  for (const cmd of [['images'], ['inspect'], ['verify'], ['gc'], ['image', 'convert']]) {
    it(cmd.join(' '), () => {
      const r = run([...cmd, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('Examples:');
      expect(r.stdout).toContain('Exit codes:');
      expect(r.stdout).toContain(`ckpt ${cmd.join(' ')}`);
    });
  }
});
