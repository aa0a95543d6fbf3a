/**
 * Tiny inline-SVG charts for the benchmark report: line charts (optionally
 * log-scaled, with min–max error bars) and grouped bar charts. Output is a
 * plain string with no scripts, fonts or external references, so the report
 * renders anywhere, offline. Every data point is one `<circle class="point">`
 * (line charts) or `<rect class="bar">` (bar charts) with a `<title>` tooltip.
 */

export interface Point {
  x: number;
  y: number;
  /** Error bar (min – max of the runs). */
  yMin?: number;
  yMax?: number;
  /** Tooltip text. */
  label?: string;
}

export interface Series {
  name: string;
  points: Point[];
  /** Dashed line (references such as the storage bandwidth). */
  dashed?: boolean;
}

export interface LineChartSpec {
  xLabel: string;
  yLabel: string;
  series: Series[];
  xLog?: boolean;
  yLog?: boolean;
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
  /** Horizontal reference lines, e.g. the storage write bandwidth. */
  refLines?: Array<{ y: number; label: string }>;
}

export interface BarGroup {
  /** Group label on the x axis, e.g. "900 workers". */
  label: string;
  bars: Array<{ series: string; value: number; label?: string }>;
}

export interface BarChartSpec {
  yLabel: string;
  groups: BarGroup[];
  yFormat?: (v: number) => string;
  /** Log-scaled y axis with bars starting at 1 (for ratios: up = better, down = worse). */
  logFromOne?: boolean;
}

/** Colour-blind-safe palette (Okabe–Ito). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

const W = 640;
const H = 340;
const M = { l: 84, r: 30, t: 16, b: 64 };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const num = (v: number) => (Math.round(v * 100) / 100).toString();

function niceStep(lo: number, hi: number, count: number): number {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep(lo, hi, count);
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The smallest "nice" axis maximum at or above `hi` (so no point is drawn above the plot). */
function niceMax(hi: number, count = 5): number {
  if (!(hi > 0)) return 1;
  const step = niceStep(0, hi, count);
  return Math.ceil(hi / step - 1e-9) * step;
}

/** Drops ticks that would be drawn closer than `minGap` pixels to the previous one. */
function spaced(ticks: number[], pos: (v: number) => number, minGap: number): number[] {
  const out: number[] = [];
  for (const t of ticks) {
    const last = out.at(-1);
    if (last === undefined || Math.abs(pos(t) - pos(last)) >= minGap) out.push(t);
  }
  return out;
}

/** Axis label text, split at the first space into two lines when long. */
function twoLines(x: string, y: number, text: string): string {
  const i = text.indexOf(' ');
  if (text.length <= 8 || i < 0) return `<text x="${x}" y="${y}" text-anchor="middle">${escapeXml(text)}</text>`;
  return `<text x="${x}" y="${y}" text-anchor="middle"><tspan x="${x}">${escapeXml(text.slice(0, i))}</tspan><tspan x="${x}" dy="12">${escapeXml(text.slice(i + 1))}</tspan></text>`;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    const v = 10 ** e;
    if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
  }
  return out.length >= 2 ? out : [lo, hi];
}

function scale(lo: number, hi: number, a: number, b: number, log: boolean): (v: number) => number {
  if (log) {
    const l0 = Math.log10(lo);
    const l1 = Math.log10(hi);
    return (v) => a + ((Math.log10(v) - l0) / (l1 - l0 || 1)) * (b - a);
  }
  return (v) => a + ((v - lo) / (hi - lo || 1)) * (b - a);
}

function legend(names: Array<{ name: string; dashed?: boolean }>): string {
  // Items are placed one after another, each as wide as its text (about
  // 6.5 px per character at 11 px), so long names never overlap.
  let x = M.l;
  return names
    .map((s, i) => {
      const y = H - 14;
      const at = x;
      x += 24 + Math.ceil(s.name.length * 6.5) + 18;
      return legendItem(s, i, at, y);
    })
    .join('');
}

function legendItem(s: { name: string; dashed?: boolean }, i: number, x: number, y: number): string {
  const c = PALETTE[i % PALETTE.length];
  return `<g class="legend"><line x1="${x}" y1="${y}" x2="${x + 18}" y2="${y}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${x + 24}" y="${y + 4}">${escapeXml(s.name)}</text></g>`;
}

/** A line chart; returns an `<svg>` element. Series without points are listed in the legend only. */
export function lineChart(spec: LineChartSpec): string {
  const pts = spec.series.flatMap((s) => s.points);
  const fx = spec.xFormat ?? ((v: number) => num(v));
  const fy = spec.yFormat ?? ((v: number) => num(v));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" class="chart line-chart">`);
  if (pts.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="empty">no data</text></svg>`);
    return parts.join('');
  }
  const ys = pts.flatMap((p) => [p.y, p.yMin ?? p.y, p.yMax ?? p.y]).concat((spec.refLines ?? []).map((r) => r.y));
  const xs = pts.map((p) => p.x);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  let y0 = spec.yLog ? Math.min(...ys) : 0;
  let y1 = Math.max(...ys);
  if (x0 === x1) {
    x0 = spec.xLog ? x0 / 2 : x0 - 1;
    x1 = spec.xLog ? x1 * 2 : x1 + 1;
  }
  if (spec.yLog) {
    y0 = 10 ** Math.floor(Math.log10(y0 > 0 ? y0 : 1e-6));
    y1 = 10 ** Math.ceil(Math.log10(y1 > 0 ? y1 : 1));
    if (y0 === y1) y1 = y0 * 10;
  } else {
    y1 = niceMax(y1 * 1.05);
  }
  const sx = scale(x0, x1, M.l, W - M.r, spec.xLog === true);
  const sy = scale(y0, y1, H - M.b, M.t, spec.yLog === true);
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  const xt = spaced(spec.xLog ? (distinct.length <= 8 ? distinct : logTicks(x0, x1)) : niceTicks(x0, x1), sx, 36);
  const yt = spec.yLog ? logTicks(y0, y1) : niceTicks(y0, y1);
  // Axes and grid.
  parts.push(`<g class="axes">`);
  for (const t of yt)
    parts.push(`<line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${num(sy(t))}" y2="${num(sy(t))}"/><text x="${M.l - 6}" y="${num(sy(t) + 4)}" text-anchor="end">${escapeXml(fy(t))}</text>`);
  for (const t of xt) parts.push(`<text x="${num(sx(t))}" y="${H - M.b + 16}" text-anchor="middle">${escapeXml(fx(t))}</text>`);
  parts.push(`<line class="axis" x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}"/><line class="axis" x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${H - M.b}"/>`);
  parts.push(`<text class="label" x="${(M.l + W - M.r) / 2}" y="${H - M.b + 34}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  parts.push(`<text class="label" transform="translate(14 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`);
  parts.push(`</g>`);
  for (const r of spec.refLines ?? []) {
    const y = num(sy(r.y));
    parts.push(`<g class="ref"><line x1="${M.l}" x2="${W - M.r}" y1="${y}" y2="${y}" stroke="#777" stroke-dasharray="2 3"/><text x="${W - M.r - 4}" y="${Number(y) - 4}" text-anchor="end">${escapeXml(r.label)}</text></g>`);
  }
  spec.series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length];
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    parts.push(`<g class="series" data-series="${escapeXml(s.name)}">`);
    if (sorted.length > 1)
      parts.push(`<path class="line" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''} d="${sorted.map((p, j) => `${j ? 'L' : 'M'}${num(sx(p.x))} ${num(sy(p.y))}`).join(' ')}"/>`);
    for (const p of sorted) {
      const cx = num(sx(p.x));
      if (p.yMin !== undefined && p.yMax !== undefined && p.yMax > p.yMin)
        parts.push(`<line class="errbar" x1="${cx}" x2="${cx}" y1="${num(sy(p.yMin))}" y2="${num(sy(p.yMax))}" stroke="${c}"/>`);
      parts.push(`<circle class="point" cx="${cx}" cy="${num(sy(p.y))}" r="4" fill="${c}"><title>${escapeXml(p.label ?? `${s.name}: ${fx(p.x)} → ${fy(p.y)}`)}</title></circle>`);
    }
    parts.push(`</g>`);
  });
  parts.push(legend(spec.series));
  parts.push(`</svg>`);
  return parts.join('');
}

/** A grouped bar chart (one colour per series); returns an `<svg>` element. */
export function barChart(spec: BarChartSpec): string {
  const fy = spec.yFormat ?? ((v: number) => num(v));
  const series = [...new Set(spec.groups.flatMap((g) => g.bars.map((b) => b.series)))];
  const values = spec.groups.flatMap((g) => g.bars.map((b) => b.value));
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" class="chart bar-chart">`];
  if (values.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="empty">no data</text></svg>`);
    return parts.join('');
  }
  const log = spec.logFromOne === true && values.every((v) => v > 0);
  const y0 = log ? 10 ** Math.floor(Math.log10(Math.min(1, ...values))) : 0;
  const y1 = log ? 10 ** Math.ceil(Math.log10(Math.max(2, ...values) * 1.05)) : niceMax(Math.max(...values) * 1.05);
  const sy = scale(y0, y1, H - M.b, M.t, log);
  const base = log ? sy(1) : H - M.b;
  parts.push(`<g class="axes">`);
  for (const t of log ? logTicks(y0, y1) : niceTicks(0, y1))
    parts.push(`<line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${num(sy(t))}" y2="${num(sy(t))}"/><text x="${M.l - 6}" y="${num(sy(t) + 4)}" text-anchor="end">${escapeXml(fy(t))}</text>`);
  parts.push(`<line class="axis" x1="${M.l}" x2="${W - M.r}" y1="${num(base)}" y2="${num(base)}"/>`);
  parts.push(`<text class="label" transform="translate(14 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text></g>`);
  const gw = (W - M.l - M.r) / spec.groups.length;
  const bw = Math.min(48, (gw * 0.8) / Math.max(1, series.length));
  spec.groups.forEach((g, gi) => {
    const gx = M.l + gi * gw + (gw - bw * series.length) / 2;
    parts.push(`<g class="group">`);
    for (const b of g.bars) {
      const si = series.indexOf(b.series);
      const x = gx + si * bw;
      const y = sy(b.value);
      const top = Math.min(y, base);
      const height = Math.max(1, Math.abs(base - y));
      parts.push(`<rect class="bar" x="${num(x)}" y="${num(top)}" width="${num(bw - 2)}" height="${num(height)}" fill="${PALETTE[si % PALETTE.length]}"><title>${escapeXml(b.label ?? `${g.label}, ${b.series}: ${fy(b.value)}`)}</title></rect>`);
    }
    parts.push(`${twoLines(num(M.l + gi * gw + gw / 2), H - M.b + 16, g.label)}</g>`);
  });
  parts.push(legend(series.map((name) => ({ name }))));
  parts.push(`</svg>`);
  return parts.join('');
}
