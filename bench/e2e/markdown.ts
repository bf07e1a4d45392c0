// An e2e report as Markdown: a table per topology, a row per (test, metric), a column per
// implementation, each cell the median with its spread and, against the reference, its ratio.
// Written next to the JSON so that a run can be read (and pasted into an issue) as it is.
import { cellKey, type Report, type Result } from '../report-schema.js';

/** The tests in the order a reader goes through them: bulk TCP, UDP, then latency. */
export const TEST_ORDER = [
  'tcp1', 'tcp4', 'udp', 'udp-gso', 'secnetperf',
  'ping-idle', 'sockperf-idle', 'ping-load', 'sockperf-load', 'ping-udp-load', 'sockperf-udp-load',
];

/** The metrics in table order, each with its row label (the unit as the cells show it). */
const METRICS: [metric: string, label: string][] = [
  ['throughput_bps', 'throughput, Mbit/s'],
  ['cpu_ns_per_byte', 'CPU of both daemons, ns/B'],
  ['machine_ns_per_byte', 'machine CPU, ns/B'],
  ['sender_cpu_ns_per_byte', 'sender CPU, ns/B'],
  ['sender_main_ns_per_byte', 'sender main thread, ns/B'],
  ['retransmits', 'retransmits'],
  ['loss_ratio', 'loss, %'],
  ['reorder_ratio', 'reordered, %'],
  ['rtt_ms', 'RTT, ms'],
  ['rtt_p50_ms', 'RTT p50, ms'],
  ['rtt_p99_ms', 'RTT p99, ms'],
  ['tun_drops', 'TUN drops'],
];
/** The rows that also get the ratio to the reference: the figures compare.ts guards. */
const RATIO_METRICS = new Set(['throughput_bps', 'cpu_ns_per_byte']);

/** Values in first-appearance order. */
export function firstSeen<T, K>(items: readonly T[], key: (item: T) => K): K[] {
  return [...new Set(items.map(key))];
}

/** Sorts by a fixed order first; what the order does not know keeps its first-appearance order after it. */
export function rankIn(order: readonly string[]): (name: string) => number {
  return (name) => {
    const i = order.indexOf(name);
    return i === -1 ? order.length : i;
  };
}
const testRank = rankIn(TEST_ORDER);
const metricRank = rankIn(METRICS.map(([m]) => m));

/** "tcp1" or, with params, "tcp1 streams=4". */
export function testLabel(r: Pick<Result, 'test' | 'params'>): string {
  const keys = r.params === undefined ? [] : Object.keys(r.params).sort();
  return [r.test, ...keys.map((k) => `${k}=${r.params![k]}`)].join(' ');
}

/** "1234567.8" → "1,234,568" style digit groups, without the locale's say. */
export function grouped(x: number, decimals: number): string {
  const digits = Math.abs(x).toFixed(decimals);
  const [int, frac] = digits.split('.');
  const sign = x < 0 && Number(digits) !== 0 ? '-' : '';
  return `${sign}${int!.replace(/\B(?=(\d{3})+$)/g, ',')}${frac === undefined ? '' : `.${frac}`}`;
}

/** A value in the unit the tables show for its result: Mbit/s, ns/B, %, ms or a count. */
export function formatValue(r: Pick<Result, 'metric' | 'unit'>, x: number): string {
  switch (r.unit) {
    case 'bit/s': return grouped(x / 1e6, 0);
    case 'ns/B': return x.toFixed(2);
    case 'ms': return x.toFixed(3);
    case '': return r.metric.endsWith('_ratio') ? (x * 100).toFixed(2) : grouped(x, 0);
    default: return grouped(x, 2);
  }
}

function rowLabel(r: Result): string {
  const known = METRICS.find(([m]) => m === r.metric);
  if (known !== undefined) return known[1];
  return r.unit === '' ? r.metric : `${r.metric}, ${r.unit}`;
}

/** Backslash-escapes what Markdown (and a GFM table) would read as markup. */
function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_[\]<>|~&]/g, '\\$&');
}

/** Report text on one line: a reason may carry a daemon's last log lines. */
const oneLine = (s: string): string => s.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' / ');

/** A code span that holds any text: its fence is longer than the longest backtick run inside. */
function codeSpan(s: string): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${s}${pad}${fence}`;
}

function cell(r: Result | undefined, ref: Result | undefined): string {
  if (r === undefined) return '–';
  let s = formatValue(r, r.median);
  if (r.samples.length > 1) s += ` (${formatValue(r, r.min)}–${formatValue(r, r.max)})`;
  if (ref !== undefined && ref !== r && RATIO_METRICS.has(r.metric) && ref.median !== 0) {
    s += ` ×${(r.median / ref.median).toFixed(2)}`;
  }
  return s;
}

/** "2025-05-01 12:00 UTC": the same wherever the report is read; an odd string as it is. */
export function startedUtc(started: string): string {
  const t = new Date(started);
  return Number.isNaN(t.getTime()) ? started : `${t.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "3 rounds", or "1–3 rounds" when some cells have fewer samples (a round failed or was cut). */
export function roundsText(results: readonly Result[]): string | undefined {
  if (results.length === 0) return undefined;
  const counts = results.map((r) => r.samples.length);
  const lo = Math.min(...counts);
  const hi = Math.max(...counts);
  return lo === hi ? `${lo} round${lo === 1 ? '' : 's'}` : `${lo}–${hi} rounds`;
}

function runLine(report: Report): string {
  const { run } = report;
  const rounds = roundsText(report.results);
  return [
    escapeMarkdown(startedUtc(run.started)),
    `Linux ${escapeMarkdown(run.host.kernel)}, ${run.host.cpus} CPUs, Node ${escapeMarkdown(run.host.node)}`,
    ...(run.revision === undefined ? [] : [`revision ${escapeMarkdown(run.revision.slice(0, 12))}`]),
    ...(rounds === undefined ? [] : [rounds]),
    `run ${escapeMarkdown(run.id)}: ${codeSpan(run.command)}`,
  ].join(' · ');
}

function groupTable(group: string, results: readonly Result[], impls: readonly string[], reference: string | undefined): string[] {
  const mine = results.filter((r) => r.group === group);
  const columns = impls.filter((impl) => mine.some((r) => r.impl === impl));
  // A row is a cell without its impl. Rows sort by test, a test's params by first appearance,
  // then by metric: one test's rows stay together.
  const variants = firstSeen(mine, testLabel);
  const rows = new Map<string, Result[]>();
  for (const r of mine) {
    const key = cellKey(r);
    const row = rows.get(key);
    if (row === undefined) rows.set(key, [r]);
    else row.push(r);
  }
  const order = [...rows.values()].map((row, i) => ({ row, i }));
  order.sort((a, b) => {
    const x = a.row[0]!;
    const y = b.row[0]!;
    return testRank(x.test) - testRank(y.test) || variants.indexOf(testLabel(x)) - variants.indexOf(testLabel(y)) ||
      metricRank(x.metric) - metricRank(y.metric) || a.i - b.i;
  });
  const head = ['test', 'metric', ...columns.map((impl) => `${escapeMarkdown(impl)}${impl === reference ? ' (ref)' : ''}`)];
  const lines = [`## ${escapeMarkdown(group)}`, '', `| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const { row } of order) {
    const first = row[0]!;
    const ref = row.find((r) => r.impl === reference);
    const cells = columns.map((impl) => cell(row.find((r) => r.impl === impl), ref));
    lines.push(`| ${[escapeMarkdown(testLabel(first)), escapeMarkdown(rowLabel(first)), ...cells].join(' | ')} |`);
  }
  return lines;
}

export function markdownReport(report: Report): string {
  const { results } = report;
  const title = report.kind === 'e2e' ? 'tundra end-to-end benchmark' : 'tundra micro-benchmarks';
  const lines = [`# ${title}`, '', runLine(report)];
  if (results.length > 0) {
    const ratio = report.reference === undefined ? '' : `; on throughput and CPU rows, × is its ratio to the reference's (${escapeMarkdown(report.reference)})`;
    lines.push('', `A cell is the median of the rounds, (lowest–highest) when there are more than one${ratio}.`);
  }
  const impls = firstSeen(results, (r) => r.impl);
  for (const group of firstSeen(results, (r) => r.group)) lines.push('', ...groupTable(group, results, impls, report.reference));
  if (results.length === 0) lines.push('', 'No results.');
  const skipped = report.skipped ?? [];
  if (skipped.length > 0) {
    lines.push('', '## Skipped', '');
    // One bullet per (impl, test, reason): an implementation the kernel lacks is skipped
    // the same way in every topology. '*' is the runner's "every topology / implementation".
    const bullets = new Map<string, { head: string; groups: string[]; reason: string }>();
    for (const s of skipped) {
      const impl = s.impl === '*' ? 'every implementation' : s.impl;
      const key = JSON.stringify([impl, s.test, s.reason]);
      let bullet = bullets.get(key);
      if (bullet === undefined) {
        bullet = { head: s.test === undefined ? impl : `${impl}, ${s.test}`, groups: [], reason: s.reason };
        bullets.set(key, bullet);
      }
      bullet.groups.push(s.group === '*' ? 'every topology' : s.group);
    }
    for (const b of bullets.values()) {
      lines.push(`- ${escapeMarkdown(b.head)} (${escapeMarkdown(b.groups.join(', '))}): ${escapeMarkdown(oneLine(b.reason))}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
