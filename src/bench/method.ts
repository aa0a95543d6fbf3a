/**
 * The measurement method shared by every `ckpt bench` figure: warm-up runs
 * that are thrown away, several measured runs, the median reported with the
 * min–max range, and a run set flagged as noisy when its spread is large.
 * The median (not the mean) keeps one disturbed run from moving the figure;
 * the flag tells the reader when even the median should not be trusted.
 */

/** A summarised set of samples. Every figure in the JSON output is one of these. */
export interface Stat {
  /** Unit of every number below, e.g. "MiB/s", "s", "MiB". */
  unit: string;
  median: number;
  min: number;
  max: number;
  /** Number of measured runs (warm-up runs excluded). */
  runs: number;
  /** The measured samples in run order. */
  samples: number[];
  /** (max - min) / median (p90 - p10 for latency distributions); 0 for a single run. */
  spread: number;
  /** True when spread > NOISY_SPREAD: rerun on a quieter machine before trusting it. */
  noisy: boolean;
}

/** Spread (max - min relative to the median) above which a run set is flagged as noisy. */
export const NOISY_SPREAD = 0.2;

/** How many runs to make. */
export interface RunPlan {
  warmup: number;
  runs: number;
}

/** Median of a non-empty list (mean of the two middle values for even lengths). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list');
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Value at quantile q (0..1) of sorted values, linear interpolation. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of an empty list');
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

/**
 * Summarises samples into a Stat. Throws on an empty list or a non-finite
 * sample. `spreadOf` chooses what "spread" measures: 'range' (max - min, for a
 * few runs of one measurement) or 'p10-p90' (for many samples of a latency
 * distribution, where the extremes are the distribution's tails, not noise).
 */
export function summarize(
  samples: readonly number[],
  unit: string,
  noisySpread = NOISY_SPREAD,
  spreadOf: 'range' | 'p10-p90' = 'range',
): Stat {
  if (samples.length === 0) throw new RangeError('no samples to summarise');
  for (const s of samples) if (!Number.isFinite(s)) throw new RangeError(`sample is not a finite number: ${s}`);
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  const med = median(samples);
  const sorted = [...samples].sort((a, b) => a - b);
  const width = spreadOf === 'range' ? max - min : quantile(sorted, 0.9) - quantile(sorted, 0.1);
  const spread = samples.length < 2 ? 0 : med === 0 ? (width === 0 ? 0 : Infinity) : width / Math.abs(med);
  return {
    unit,
    median: med,
    min,
    max,
    runs: samples.length,
    samples: [...samples],
    spread: Number.isFinite(spread) ? spread : Number.MAX_VALUE,
    noisy: samples.length >= 2 && spread > noisySpread,
  };
}

/** Applies `f` to every sample of a Stat (e.g. seconds to MiB/s) and summarises again. */
export function mapStat(s: Stat, unit: string, f: (x: number) => number): Stat {
  const samples = s.samples.map(f);
  return summarize(samples, unit);
}

/**
 * Runs `once` plan.warmup times (discarded), then plan.runs times, and
 * returns the measured samples. `once` returns one sample (its own timing:
 * it knows what to put inside the clock).
 */
export async function measure(
  plan: RunPlan,
  once: (run: number, warmup: boolean) => Promise<number>,
  onRun?: (done: number, total: number) => void,
): Promise<number[]> {
  if (!Number.isInteger(plan.warmup) || plan.warmup < 0) throw new RangeError('warmup must be an integer >= 0');
  if (!Number.isInteger(plan.runs) || plan.runs < 1) throw new RangeError('runs must be an integer >= 1');
  const total = plan.warmup + plan.runs;
  const samples: number[] = [];
  for (let i = 0; i < total; i++) {
    const warm = i < plan.warmup;
    const v = await once(warm ? i : i - plan.warmup, warm);
    if (!warm) samples.push(v);
    onRun?.(i + 1, total);
  }
  return samples;
}

/** Ratio of two medians, or null when either side is missing or zero. */
export function ratio(a: Stat | null | undefined, b: Stat | null | undefined): number | null {
  if (!a || !b || b.median === 0) return null;
  return a.median / b.median;
}
