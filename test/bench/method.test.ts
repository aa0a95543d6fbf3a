import { describe, expect, it } from 'vitest';

import { NOISY_SPREAD, mapStat, measure, median, quantile, ratio, summarize } from '../../src/bench/method.js';

describe('bench method', () => {
  it('takes the median of odd and even sample counts, independent of order', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow(RangeError);
  });

  it('reports min, max, runs and keeps the samples in run order', () => {
    const s = summarize([110, 100, 105], 'MiB/s');
    expect(s).toMatchObject({ unit: 'MiB/s', median: 105, min: 100, max: 110, runs: 3, samples: [110, 100, 105] });
    expect(s.spread).toBeCloseTo(10 / 105);
    expect(s.noisy).toBe(false);
  });

  it('flags a run set as noisy when max - min exceeds the threshold of the median', () => {
    // spread = (130 - 100) / 100 = 0.3 > 0.2
    expect(summarize([100, 130, 100], 'x').noisy).toBe(true);
    // exactly at the threshold is not noisy; just above is
    expect(summarize([100, 100 + 100 * NOISY_SPREAD, 100], 'x').noisy).toBe(false);
    expect(summarize([100, 100 + 100 * NOISY_SPREAD + 1, 100], 'x').noisy).toBe(true);
    // a custom threshold
    expect(summarize([100, 110, 105], 'x', 0.05).noisy).toBe(true);
  });

  it('never flags a single run, and handles a zero median', () => {
    expect(summarize([42], 'x')).toMatchObject({ spread: 0, noisy: false, runs: 1 });
    expect(summarize([0, 0, 0], 'x').noisy).toBe(false);
    expect(summarize([0, 0, 1], 'x').noisy).toBe(true);
  });

  it('uses p10-p90 for latency distributions so one slow tail sample is not noise', () => {
    const lat = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 50];
    expect(summarize(lat, 'ms').noisy).toBe(true);
    const robust = summarize(lat, 'ms', NOISY_SPREAD, 'p10-p90');
    expect(robust.noisy).toBe(false);
    expect(robust.max).toBe(50);
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
  });

  it('rejects empty and non-finite samples', () => {
    expect(() => summarize([], 'x')).toThrow(RangeError);
    expect(() => summarize([1, NaN], 'x')).toThrow(RangeError);
    expect(() => summarize([1, Infinity], 'x')).toThrow(RangeError);
  });

  it('discards warm-up runs and reports progress for every run', async () => {
    const calls: Array<[number, boolean]> = [];
    const progress: number[] = [];
    let v = 0;
    const samples = await measure(
      { warmup: 2, runs: 3 },
      async (run, warm) => {
        calls.push([run, warm]);
        return ++v;
      },
      (done, total) => {
        expect(total).toBe(5);
        progress.push(done);
      },
    );
    expect(samples).toEqual([3, 4, 5]);
    expect(calls).toEqual([
      [0, true],
      [1, true],
      [0, false],
      [1, false],
      [2, false],
    ]);
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    await expect(measure({ warmup: 0, runs: 0 }, async () => 1)).rejects.toThrow(RangeError);
    await expect(measure({ warmup: -1, runs: 1 }, async () => 1)).rejects.toThrow(RangeError);
  });

  it('converts units and takes ratios of medians', () => {
    const secs = summarize([2, 1, 4], 's');
    const bw = mapStat(secs, 'MiB/s', (s) => 1024 / s);
    expect(bw).toMatchObject({ unit: 'MiB/s', median: 512, min: 256, max: 1024 });
    expect(ratio(summarize([90], 'x'), summarize([100], 'x'))).toBeCloseTo(0.9);
    expect(ratio(null, summarize([1], 'x'))).toBeNull();
    expect(ratio(summarize([1], 'x'), summarize([0], 'x'))).toBeNull();
  });
});
