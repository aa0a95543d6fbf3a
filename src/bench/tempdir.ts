/**
 * Temporary directories of benchmark data, removed when the benchmark ends,
 * fails, or the process is interrupted (SIGINT/SIGTERM), so a cancelled run
 * never leaves gigabytes behind in the user's directory.
 */
import fs from 'node:fs';
import path from 'node:path';

const live = new Set<string>();
let hooked = false;

function cleanupAll(): void {
  for (const d of live) fs.rmSync(d, { recursive: true, force: true });
  live.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanupAll();
      process.kill(process.pid, sig);
    });
  }
}

/** Creates `<parent>/.ckpt-bench-XXXXXX`, registered for removal at exit. */
export function makeTempDir(parent: string): string {
  hook();
  const d = fs.mkdtempSync(path.join(parent, '.ckpt-bench-'));
  live.add(d);
  return d;
}

/** Removes a directory made by makeTempDir (and everything in it). */
export function removeTempDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  live.delete(d);
}
