/**
 * Runs one of the native executables (dmtcp_coordinator, dmtcp_command) as a
 * child with the caller's stdio, forwards the signals a terminal or a batch
 * system sends, and reports the child's exit status so `ckpt coordinator` and
 * `ckpt command` behave like the executables themselves.
 * @internal
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';

import { CkptError } from '../errors.js';
import { nativeBinDir } from '../native.js';

/** Signals passed on to the child instead of terminating ckpt itself. */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** DMTCP hands an auto-started coordinator its listening socket on this fd. */
const PROTECTED_COORD_FD = 821;

function fdIsOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `build/Release/<name>` with `args`. Resolves with the exit code the
 * caller should use: the child's own, or 128+signal when a signal ended it
 * (the shell convention, so `$?` reads the same as for the executable).
 */
export async function runNative(name: string, args: string[]): Promise<number> {
  const exe = path.join(nativeBinDir(), name);
  // Keep stdin/stdout/stderr, and fd 821 when we were given one (an
  // auto-started coordinator must serve on the socket its launcher bound).
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit'];
  if (fdIsOpen(PROTECTED_COORD_FD)) {
    while (stdio.length < PROTECTED_COORD_FD) stdio.push('ignore');
    stdio.push(PROTECTED_COORD_FD);
  }
  const child = spawn(exe, args, { stdio, argv0: name });
  const forward = (sig: NodeJS.Signals) => {
    child.kill(sig);
  };
  for (const sig of FORWARDED) process.on(sig, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new CkptError(
            err.code === 'ENOENT' ? 'ERR_CKPT_NOT_FOUND' : 'ERR_CKPT_IO',
            err.code === 'ENOENT'
              ? `the native ${name} is missing at ${exe}; build it with 'npm rebuild' (or 'npm ci') in the ckpt checkout`
              : `could not start ${exe}: ${err.message}`,
            { cause: err },
          ),
        );
      });
      child.once('exit', (code, signal) => {
        if (signal) {
          const num = signalNumber(signal);
          resolve(128 + num);
        } else {
          resolve(code ?? 1);
        }
      });
    });
  } finally {
    for (const sig of FORWARDED) process.off(sig, forward);
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  return constants.signals[sig] ?? 1;
}
