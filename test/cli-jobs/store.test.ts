import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { CkptError } from '../../src/errors.js';
import { ckptHome, dirUsage, NAME_MAX, securePermissions, Store, validateName, writeFileAtomic } from '../../src/store.js';

let home: string;
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-store-'));
});
afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as CkptError).code;
  }
  return undefined;
}

describe('name validation', () => {
  it.each(['a', 'example', 'my-ckpt_2.v1', '0day', 'A'.repeat(NAME_MAX)])('accepts %s', (name) => {
    expect(validateName(name, 'checkpoint')).toBe(name);
  });

  it.each([
    ['', 'empty'],
    ['.', 'dot'],
    ['..', 'dotdot'],
    ['../etc', 'traversal'],
    ['a/b', 'separator'],
    ['a\\b', 'backslash'],
    ['-rf', 'leading dash'],
    ['.hidden', 'leading dot'],
    ['a b', 'space'],
    ['a\0b', 'nul'],
    ['ü', 'non-ascii'],
    ['A'.repeat(NAME_MAX + 1), 'too long'],
  ])('rejects %j (%s) with ERR_CKPT_INVALID_ARGUMENT', (name) => {
    expect(codeOf(() => validateName(name, 'instance'))).toBe('ERR_CKPT_INVALID_ARGUMENT');
  });

  it('explains the rule in the message', () => {
    expect(() => validateName('a/b', 'checkpoint')).toThrow(/path separators/);
    expect(() => validateName('a b', 'checkpoint')).toThrow(/A-Z a-z 0-9/);
  });

  it('reserves the Apptainer subcommand words for job names only', () => {
    expect(codeOf(() => validateName('list', 'job'))).toBe('ERR_CKPT_INVALID_ARGUMENT');
    expect(validateName('list', 'instance')).toBe('list');
  });

  it('rejects non-strings', () => {
    expect(codeOf(() => validateName(undefined, 'job'))).toBe('ERR_CKPT_INVALID_ARGUMENT');
    expect(codeOf(() => validateName(42, 'job'))).toBe('ERR_CKPT_INVALID_ARGUMENT');
  });
});

describe('store layout', () => {
  it('uses $CKPT_HOME, else $XDG_DATA_HOME/ckpt, else ~/.local/share/ckpt', () => {
    expect(ckptHome({ CKPT_HOME: '/x/y' })).toBe('/x/y');
    expect(ckptHome({ XDG_DATA_HOME: '/data' })).toBe('/data/ckpt');
    expect(ckptHome({})).toBe(path.join(os.homedir(), '.local', 'share', 'ckpt'));
  });

  it('creates checkpoint directories with mode 0700 whatever the umask', () => {
    const old = process.umask(0o022);
    try {
      const store = new Store(home);
      const dir = store.createCheckpoint('example');
      expect(dir).toBe(path.join(home, 'checkpoints', 'example'));
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(home).mode & 0o777).toBe(0o700);
      expect(fs.statSync(store.checkpointsDir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(store.runDir('instance', 'srv')).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(old);
    }
  });

  it('refuses duplicates and unknown names with stable codes', async () => {
    const store = new Store(home);
    store.createCheckpoint('a');
    expect(codeOf(() => store.createCheckpoint('a'))).toBe('ERR_CKPT_EXISTS');
    expect(codeOf(() => store.requireCheckpoint('nope'))).toBe('ERR_CKPT_NOT_FOUND');
    expect(codeOf(() => store.checkpointDir('../a'))).toBe('ERR_CKPT_INVALID_ARGUMENT');
    await expect(store.deleteCheckpoint('nope')).rejects.toMatchObject({ code: 'ERR_CKPT_NOT_FOUND' });
  });

  it('lists and deletes checkpoints, never following names outside the store', async () => {
    const store = new Store(home);
    store.createCheckpoint('b');
    store.createCheckpoint('a');
    fs.mkdirSync(path.join(store.checkpointsDir, '.deleting-x'));
    expect(store.listCheckpoints()).toEqual(['a', 'b']);
    fs.writeFileSync(path.join(store.checkpointDir('a'), 'img'), 'x');
    await store.deleteCheckpoint('a');
    expect(store.listCheckpoints()).toEqual(['b']);
    expect(fs.existsSync(path.join(store.checkpointsDir, 'a'))).toBe(false);
  });

  it('restricts images to 0600 (scripts 0700) after a checkpoint', () => {
    const store = new Store(home);
    const dir = store.createCheckpoint('p');
    fs.mkdirSync(path.join(dir, 'gen-1'), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'gen-1', 'a.ckpt'), 'data', { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'restart.sh'), '#!/bin/sh', { mode: 0o755 });
    securePermissions(dir);
    expect(fs.statSync(path.join(dir, 'gen-1')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'gen-1', 'a.ckpt')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, 'restart.sh')).mode & 0o777).toBe(0o700);
    expect(dirUsage(dir)).toMatchObject({ bytes: 13, files: 2 });
  });

  it('writes files atomically with mode 0600 and leaves no temp file', () => {
    const f = path.join(home, 'state.json');
    writeFileAtomic(f, '{"a":1}');
    writeFileAtomic(f, '{"a":2}');
    expect(fs.readFileSync(f, 'utf8')).toBe('{"a":2}');
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(home)).toEqual(['state.json']);
  });
});
