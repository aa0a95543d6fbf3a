/**
 * Progress for long work: a one-line status with elapsed time on stderr when
 * it is a terminal, nothing otherwise (scripts and logs stay clean).
 */
export interface Progress {
  /** Replaces the status text. */
  update(text: string): void;
  /** Prints a finished step as its own line (terminal or not, unless quiet). */
  step(text: string): void;
  done(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function progress(opts: { quiet?: boolean; extra?: () => string } = {}): Progress {
  const tty = Boolean(process.stderr.isTTY) && !opts.quiet;
  const start = Date.now();
  let text = '';
  let frame = 0;
  const render = () => {
    const secs = ((Date.now() - start) / 1000).toFixed(1);
    const extra = opts.extra ? opts.extra() : '';
    process.stderr.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${text} ${secs}s${extra ? ` ${extra}` : ''}`);
  };
  const timer = tty ? setInterval(render, 100) : null;
  timer?.unref();
  return {
    update(t) {
      text = t;
      if (tty) render();
    },
    step(t) {
      if (opts.quiet) return;
      if (tty) process.stderr.write('\r\x1b[2K');
      process.stderr.write(`${t}\n`);
    },
    done() {
      if (timer) clearInterval(timer);
      if (tty) process.stderr.write('\r\x1b[2K');
    },
  };
}

export function formatDuration(ms: number): string {
  if (ms < 10) return `${Number(ms.toFixed(1))} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatAge(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
