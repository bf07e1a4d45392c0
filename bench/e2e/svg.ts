// An e2e report as one SVG chart, for a README or an issue: throughput, CPU per byte and,
// when the report has them, round trips idle and under load; a cluster of bars per
// (topology, test), a bar per implementation with its rounds' spread.
// Self-contained SVG 1.1 (no script, no web font, a white background of its own), so it
// reads the same in a browser, an image viewer and GitHub's light and dark themes.
import { cellKey, cellLabel, type Report, type Result } from '../report-schema.js';
import { firstSeen, formatValue, grouped, rankIn, roundsText, startedUtc, TEST_ORDER, testLabel } from './markdown.js';

/** Okabe–Ito colours: told apart with the common colour blindnesses, all dark enough on white. */
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#D55E00', '#56B4E9', '#7F7F7F', '#000000'];

const MARGIN_LEFT = 70;
const MARGIN_RIGHT = 20;
const SLOT = 36;
const PLOT_HEIGHT = 200;
/** Above the plot: room for the value labels of the tallest bars (two lines in the CPU panel). */
const HEADROOM = 28;
const LABEL_CHAR = 6.2;

interface Panel {
  title: string;
  /** the filled bar, with whiskers and its value */
  metric: string;
  /** the outlined bar behind it */
  outline?: string;
  /** from the report's unit to the axis's */
  scale: number;
  /** left out of a report without its metric (the others say "no …" instead) */
  optional?: boolean;
}

const PANELS: Panel[] = [
  { title: 'Throughput (Mbit/s)', metric: 'throughput_bps', scale: 1e-6 },
  { title: 'CPU per byte (ns/B, both daemons; machine in outline)', metric: 'cpu_ns_per_byte', outline: 'machine_ns_per_byte', scale: 1 },
  { title: 'Round trip, idle and under load (ms: median; p99 in outline)', metric: 'rtt_p50_ms', outline: 'rtt_p99_ms', scale: 1, optional: true },
];

interface Cluster {
  group: string;
  test: string;
  /** per impl (in legend order): its results of the panel's metrics */
  slots: { main?: Result; outline?: Result }[];
}

const ENTITIES: { [c: string]: string } = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
/** For text and for attribute values alike. */
const escapeXml = (s: string): string => s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** A coordinate with one decimal; never "-0". */
const n = (x: number): string => String(Math.round(x * 10) / 10);

/** Round-number ticks from 0 up to at least max: steps of 1, 2 or 5 times a power of ten. */
function ticks(max: number): number[] {
  const top = max > 0 ? max : 1;
  const raw = top / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const count = Math.ceil(top / step - 1e-9);
  return Array.from({ length: count + 1 }, (_, i) => i * step);
}

function clustersOf(results: readonly Result[], panel: Panel, impls: readonly string[]): Cluster[] {
  const metrics = [panel.metric, ...(panel.outline === undefined ? [] : [panel.outline])];
  const mine = results.filter((r) => metrics.includes(r.metric));
  const groups = firstSeen(results, (r) => r.group);
  const testRank = rankIn(TEST_ORDER);
  // A cluster is a cell without its metric and impl: (group, test, params).
  const keyOf = (r: Result): string => cellKey({ ...r, metric: '' });
  const keys = firstSeen(mine, keyOf);
  const firsts = keys.map((k) => mine.find((r) => keyOf(r) === k)!);
  const order = firsts.map((r, i) => ({ r, i }));
  order.sort((a, b) => groups.indexOf(a.r.group) - groups.indexOf(b.r.group) || testRank(a.r.test) - testRank(b.r.test) || a.i - b.i);
  return order.map(({ r: first }) => {
    const key = keyOf(first);
    const find = (impl: string, metric: string | undefined): Result | undefined =>
      mine.find((r) => r.impl === impl && r.metric === metric && keyOf(r) === key);
    return {
      group: first.group,
      test: testLabel(first),
      slots: impls.map((impl) => ({ main: find(impl, panel.metric), outline: find(impl, panel.outline) })),
    };
  });
}

/** A cluster's width: its bars, or its label's longer line if that is wider. */
const clusterWidth = (c: Cluster): number =>
  Math.max(c.slots.length * SLOT, Math.max(c.group.length, c.test.length) * LABEL_CHAR) + 16;

function panelSvg(panel: Panel, clusters: readonly Cluster[], top: number, width: number, colours: readonly string[]): string[] {
  const out = [`<text x="${MARGIN_LEFT}" y="${n(top + 14)}" font-size="13" font-weight="bold">${escapeXml(panel.title)}</text>`];
  const plotTop = top + 20 + HEADROOM;
  const base = plotTop + PLOT_HEIGHT;
  const right = width - MARGIN_RIGHT;
  const all = clusters.flatMap((c) => c.slots.flatMap((s) => [s.main?.max, s.outline?.median]))
    .filter((v): v is number => v !== undefined).map((v) => v * panel.scale);
  const axis = ticks(Math.max(0, ...all));
  const axisTop = axis[axis.length - 1]!;
  const y = (v: number): number => base - (Math.max(0, v * panel.scale) / axisTop) * PLOT_HEIGHT;
  const step = axis[1]! - axis[0]!;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (const t of axis) {
    const ty = base - (t / axisTop) * PLOT_HEIGHT;
    out.push(`<line x1="${MARGIN_LEFT}" y1="${n(ty)}" x2="${n(right)}" y2="${n(ty)}" stroke="${t === 0 ? '#333' : '#e3e3e3'}" stroke-width="1"/>`);
    out.push(`<text x="${MARGIN_LEFT - 6}" y="${n(ty + 4)}" font-size="10" text-anchor="end" fill="#333">${grouped(t, decimals)}</text>`);
  }
  out.push(`<line x1="${MARGIN_LEFT}" y1="${n(plotTop)}" x2="${MARGIN_LEFT}" y2="${n(base)}" stroke="#333" stroke-width="1"/>`);
  if (clusters.length === 0) {
    out.push(`<text x="${n((MARGIN_LEFT + right) / 2)}" y="${n(base - PLOT_HEIGHT / 2)}" font-size="12" text-anchor="middle" fill="#777">no ${escapeXml(panel.metric)} in this report</text>`);
  }
  let x = MARGIN_LEFT + 8;
  for (const c of clusters) {
    const w = clusterWidth(c);
    const bars = x + (w - c.slots.length * SLOT) / 2;
    c.slots.forEach((s, i) => {
      const sx = bars + i * SLOT;
      const mid = sx + SLOT / 2;
      const colour = colours[i]!;
      const bar = (r: Result, inset: number, paint: string): string =>
        `<rect class="bar" data-cell="${escapeXml(cellLabel(r))}" data-impl="${escapeXml(r.impl)}" x="${n(sx + inset)}" y="${n(y(r.median))}" ` +
        `width="${n(SLOT - 2 * inset)}" height="${n(base - y(r.median))}" ${paint}><title>${escapeXml(`${r.impl}: ${formatValue(r, r.median)}`)}</title></rect>`;
      const value = (r: Result, at: number, fill: string): string =>
        `<text x="${n(mid)}" y="${n(at)}" font-size="9" text-anchor="middle" fill="${fill}">${escapeXml(formatValue(r, r.median))}</text>`;
      if (s.outline !== undefined) out.push(bar(s.outline, 1.5, `fill="none" stroke="${colour}" stroke-width="1.5"`));
      let labelAt = Infinity;
      if (s.main !== undefined) {
        const r = s.main;
        out.push(bar(r, 6, `fill="${colour}"`));
        if (r.max > r.min) {
          const lo = y(r.min);
          const hi = y(r.max);
          out.push(`<path d="M${n(mid)} ${n(lo)}V${n(hi)}M${n(mid - 4)} ${n(lo)}H${n(mid + 4)}M${n(mid - 4)} ${n(hi)}H${n(mid + 4)}" stroke="#222" stroke-width="1" fill="none"/>`);
        }
        labelAt = y(r.max) - 3;
        out.push(value(r, labelAt, '#111'));
      }
      if (s.outline !== undefined) out.push(value(s.outline, Math.min(y(s.outline.median) - 3, labelAt - 10), '#666'));
      if (s.main === undefined && s.outline === undefined) {
        out.push(`<text x="${n(mid)}" y="${n(base - 3)}" font-size="10" text-anchor="middle" fill="#999">–</text>`);
      }
    });
    const cx = x + w / 2;
    out.push(`<text x="${n(cx)}" y="${n(base + 15)}" font-size="10.5" text-anchor="middle" fill="#222">` +
      `<tspan x="${n(cx)}">${escapeXml(c.group)}</tspan><tspan x="${n(cx)}" dy="13">${escapeXml(c.test)}</tspan></text>`);
    x += w;
  }
  return out;
}

const PANEL_HEIGHT = 20 + HEADROOM + PLOT_HEIGHT + 44;

export function svgChart(report: Report): string {
  const { results, run } = report;
  const impls = firstSeen(results, (r) => r.impl);
  const colours = impls.map((_, i) => COLOURS[i % COLOURS.length]!);
  const panels = PANELS.map((p) => ({ panel: p, clusters: clustersOf(results, p, impls) }))
    .filter(({ panel, clusters }) => panel.optional !== true || clusters.length > 0);
  const plotWidth = Math.max(...panels.map(({ clusters }) => clusters.reduce((sum, c) => sum + clusterWidth(c), 16)));
  const width = Math.max(560, MARGIN_LEFT + plotWidth + MARGIN_RIGHT);

  // The legend wraps to the width: one row per what fits.
  const legend: string[] = [];
  let lx = MARGIN_LEFT;
  let ly = 78;
  impls.forEach((impl, i) => {
    const text = `${impl}${impl === report.reference ? ' (ref)' : ''}`;
    const w = 16 + text.length * 6.6 + 18;
    if (lx + w > width - MARGIN_RIGHT && lx > MARGIN_LEFT) {
      lx = MARGIN_LEFT;
      ly += 18;
    }
    legend.push(`<rect x="${n(lx)}" y="${n(ly - 10)}" width="11" height="11" fill="${colours[i]}"/>`,
      `<text x="${n(lx + 16)}" y="${n(ly)}" font-size="11.5">${escapeXml(text)}</text>`);
    lx += w;
  });

  const title = report.kind === 'e2e' ? 'tundra end-to-end benchmark' : 'tundra micro-benchmarks';
  const rounds = roundsText(results);
  const host = [startedUtc(run.started), `Linux ${run.host.kernel}, ${run.host.cpus} CPUs`, ...(run.revision === undefined ? [] : [`revision ${run.revision.slice(0, 12)}`])].join(' · ');
  const how = `bars: the median${rounds === undefined ? '' : ` of ${rounds}`}; whiskers: the lowest and highest round`;
  let top = ly + 16;
  const body: string[] = [];
  for (const { panel, clusters } of panels) {
    body.push(...panelSvg(panel, clusters, top, width, colours));
    top += PANEL_HEIGHT;
  }
  const height = top;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${n(width)}" height="${n(height)}" viewBox="0 0 ${n(width)} ${n(height)}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<title>${escapeXml(`${title}, run ${run.id}`)}</title>`,
    `<rect x="0" y="0" width="${n(width)}" height="${n(height)}" fill="#ffffff"/>`,
    `<text x="${MARGIN_LEFT}" y="24" font-size="16" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${MARGIN_LEFT}" y="42" font-size="11" fill="#444">${escapeXml(host)}</text>`,
    `<text x="${MARGIN_LEFT}" y="57" font-size="11" fill="#444">${escapeXml(how)}</text>`,
    ...legend,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
