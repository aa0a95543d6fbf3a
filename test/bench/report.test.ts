/**
 * The HTML report rendered in a real headless browser (Debian's chromium
 * driven by playwright-core; never a downloaded browser): it renders, every
 * plot draws exactly the data points of its input, it makes no network
 * request, and nothing errors in the console.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { renderReport, writeReport } from '../../src/bench/report.js';
import type { BenchDocument } from '../../src/bench/schema.js';
import { DMTCP_WORKERS, RSS, SWEEP, WORKERS, fullDocument, sparseDocument } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
// In CI the browser is installed by .ci/run; a missing one there is a failure, not a skip.
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} missing: install Debian's chromium package (see README setup)`);
if (!haveChromium) console.warn(`skipping browser tests: ${CHROMIUM} not installed (apt-get install chromium)`);

let tmp: string;
let ctx: BrowserContext;

interface Rendered {
  errors: string[];
  requests: string[];
  counts: Record<string, { circles: number; bars: number; paths: number; declared: number; width: number }>;
  title: string;
  text: string;
  embedded: unknown;
}

async function render(doc: BenchDocument, name: string): Promise<Rendered> {
  const dir = path.join(tmp, name);
  const file = writeReport(doc, dir);
  const page = await ctx.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  const url = pathToFileURL(file).href;
  await page.goto(url, { waitUntil: 'load' });
  const counts: Rendered['counts'] = {};
  for (const fig of await page.locator('figure.plot').all()) {
    const id = (await fig.getAttribute('data-plot')) as string;
    const box = await fig.locator('svg').boundingBox();
    counts[id] = {
      circles: await fig.locator('svg circle.point').count(),
      bars: await fig.locator('svg rect.bar').count(),
      paths: await fig.locator('svg path.line').count(),
      declared: Number(await fig.getAttribute('data-points')),
      width: box?.width ?? 0,
    };
  }
  const text = await page.locator('body').innerText();
  const embedded = JSON.parse((await page.locator('#ckpt-bench-data').textContent()) ?? 'null');
  const title = await page.title();
  await page.close();
  return { errors, requests: requests.filter((u) => u !== url), counts, title, text, embedded };
}

describe.skipIf(!haveChromium)('bench report in headless chromium', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-report-'));
    ctx = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      offline: true,
    });
  });
  afterAll(async () => {
    await ctx?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('renders every plot with exactly the points of the input data', async () => {
    const doc = fullDocument();
    const r = await render(doc, 'full');
    expect(r.errors).toEqual([]);
    expect(r.requests).toEqual([]);
    expect(r.title).toContain('ckpt bench');

    // Bandwidth vs block size: write and read per sweep point, joined by lines.
    expect(r.counts['storage-bandwidth']).toMatchObject({ circles: SWEEP.length * 2, paths: 2, declared: SWEEP.length * 2 });
    // Round trip vs workers: ours at every count, the original up to 961 workers.
    const latency = WORKERS.length + DMTCP_WORKERS.length;
    expect(r.counts['coordinator-latency']).toMatchObject({ circles: latency, paths: 2, declared: latency });
    // Checkpoint bandwidth vs size: built-in raw and zstd, DMTCP gzip and --no-gzip.
    expect(r.counts['checkpoint-bandwidth']).toMatchObject({ circles: RSS.length * 4, declared: RSS.length * 4 });
    // ckpt vs DMTCP: one bar per compared coordinator row, the -bc bar, two per checkpoint size, zstd vs gzip.
    const bars = DMTCP_WORKERS.length + 1 + RSS.length * 2 + 1;
    expect(r.counts['ckpt-vs-dmtcp']).toMatchObject({ bars, declared: bars });
    for (const c of Object.values(r.counts)) expect(c.width).toBeGreaterThan(100);

    // Headlines, machine description and escaping.
    expect(r.text).toContain('uncompressed image write (page cache) at 92% of storage write bandwidth');
    expect(r.text).toContain('node<01>&');
    expect(r.text).toContain('AMD EPYC');
    expect(r.text).toMatch(/ext4 \(0xef53\)/);
    expect(r.text).toContain('noisy');
    // The embedded data round-trips.
    expect(r.embedded).toEqual(JSON.parse(JSON.stringify(doc)));
  });

  it('renders the committed results of a real run (benchmarks/results) with every figure plotted', async () => {
    const file = path.resolve(__dirname, '../../benchmarks/results/ckpt-bench-all.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchDocument;
    const r = await render(doc, 'real');
    expect(r.errors).toEqual([]);
    expect(r.requests).toEqual([]);
    const s = doc.storage && doc.storage.available ? doc.storage : null;
    expect(r.counts['storage-bandwidth']?.circles).toBe((s?.sweep.length ?? 0) * 2);
    const c = doc.coordinator && doc.coordinator.available ? doc.coordinator : null;
    const latency = (c?.rows.length ?? 0) + (c?.rows.filter((x) => x.dmtcp).length ?? 0);
    expect(r.counts['coordinator-latency']?.circles).toBe(latency);
    const k = doc.checkpoint && doc.checkpoint.available ? doc.checkpoint : null;
    const sides = (k?.rows ?? []).reduce((n, x) => n + [x.builtin, x.builtinZstd, x.dmtcpGzip, x.dmtcpNoGzip].filter(Boolean).length, 0);
    expect(r.counts['checkpoint-bandwidth']?.circles).toBe(sides);
    expect(r.counts['ckpt-vs-dmtcp']?.bars).toBeGreaterThan(0);
  });

  it('renders a run with unavailable sections: reasons shown, empty plots, no errors', async () => {
    const r = await render(sparseDocument(), 'sparse');
    expect(r.errors).toEqual([]);
    expect(r.requests).toEqual([]);
    expect(r.counts['storage-bandwidth']?.circles).toBe(SWEEP.length * 2);
    expect(r.counts['coordinator-latency']).toMatchObject({ circles: 0, declared: 0 });
    expect(r.counts['ckpt-vs-dmtcp']).toMatchObject({ bars: 0, declared: 0 });
    expect(r.counts['checkpoint-bandwidth']).toBeUndefined();
    expect(r.text).toContain('engine unavailable: libckpt.so not built');
    expect(r.text).toContain('streaming core unavailable: <test>');
  });
});

describe('bench report HTML', () => {
  it('is self-contained: no external URL, script source, stylesheet link or image', () => {
    const html = renderReport(fullDocument());
    expect(html).not.toMatch(/\b(src|href)\s*=/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).not.toMatch(/<script(?![^>]*type="application\/json")/);
    expect(html).not.toContain('<01>'); // escaped in text
  });
});
