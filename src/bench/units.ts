/** Parsing and formatting of sizes and lists for `ckpt bench` options. */
import { CkptError } from '../errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** "64M", "512MiB", "2G", "4096" -> bytes (binary units: K = 1024). */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `invalid ${what} "${text}": use a number with an optional unit K, M, G or T (e.g. 512M)`);
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n <= 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `invalid ${what} "${text}": must be positive`);
  return n;
}

/** "64M,512M,2G" -> bytes[]. */
export function parseSizeList(text: string, what = 'size'): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `empty ${what} list`);
  return parts.map((p) => parseSize(p, what));
}

/** "1,100,1000" -> integers in [min, max]. */
export function parseIntList(text: string, what: string, min: number, max: number): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `empty ${what} list`);
  return parts.map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `invalid ${what} "${p}": must be an integer from ${min} to ${max}`);
    return n;
  });
}

/** An integer option in [min, max]. */
export function parseIntOption(text: string, what: string, min: number, max: number): number {
  const [n] = parseIntList(text, what, min, max);
  return n as number;
}

/** 1536 MiB/s -> "1.50 GiB/s"; 95.2 -> "95.2 MiB/s". */
export function formatMiBps(v: number): string {
  if (v >= 1024) return `${(v / 1024).toFixed(2)} GiB/s`;
  return `${v.toFixed(v >= 100 ? 0 : 1)} MiB/s`;
}

/** Seconds -> "812 µs", "12.3 ms", "1.42 s". */
export function formatSeconds(s: number): string {
  if (s < 1e-3) return `${(s * 1e6).toFixed(0)} µs`;
  if (s < 1) return `${(s * 1e3).toFixed(s < 0.01 ? 2 : 1)} ms`;
  return `${s.toFixed(2)} s`;
}

export function formatPercent(r: number): string {
  return `${(r * 100).toFixed(0)}%`;
}
