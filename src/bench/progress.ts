/**
 * Progress reporting for long benchmark runs: one rewritten status line on a
 * terminal (stderr), nothing otherwise, so `--json` output and logs stay clean.
 */
export interface Progress {
  /** Starts a named phase ("storage: O_DIRECT write"). */
  phase(name: string): void;
  /** Reports `done` of `total` steps of the current phase. */
  step(done: number, total: number): void;
  /** Clears the status line. */
  done(): void;
}

export const silentProgress: Progress = { phase() {}, step() {}, done() {} };

/** A status line on `stream` (a TTY): "[ 12s] storage: O_DIRECT write  3/4". */
export function ttyProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const start = Date.now();
  let name = '';
  let last = '';
  const draw = (suffix: string) => {
    const secs = Math.round((Date.now() - start) / 1000);
    const width = Math.max(20, (stream.columns || 80) - 1);
    const line = `[${String(secs).padStart(3)}s] ${name}${suffix}`.slice(0, width);
    if (line === last) return;
    last = line;
    stream.write(`\r\x1b[2K${line}`);
  };
  return {
    phase(n) {
      name = n;
      draw('');
    },
    step(d, t) {
      const w = 20;
      const filled = Math.round((d / Math.max(1, t)) * w);
      draw(`  [${'#'.repeat(filled)}${'.'.repeat(w - filled)}] ${d}/${t}`);
    },
    done() {
      if (last) stream.write('\r\x1b[2K');
      last = '';
    },
  };
}
