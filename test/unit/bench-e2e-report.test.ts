// bench/e2e/markdown.ts and svg.ts (a report as a table and a chart) and bench/model.ts
// (the cost model on an e2e report), on small reports built here.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { markdownReport } from '../../bench/e2e/markdown.js';
import { svgChart } from '../../bench/e2e/svg.js';
import { costModel, formatModel, MissingCell, type ModelOptions } from '../../bench/model.js';
import { parseReport, SCHEMA, type Report, type Result } from '../../bench/report-schema.js';

const UNITS: { [metric: string]: [unit: string, better: 'higher' | 'lower'] } = {
  throughput_bps: ['bit/s', 'higher'],
  cpu_ns_per_byte: ['ns/B', 'lower'],
  machine_ns_per_byte: ['ns/B', 'lower'],
  sender_cpu_ns_per_byte: ['ns/B', 'lower'],
  sender_main_ns_per_byte: ['ns/B', 'lower'],
  retransmits: ['', 'lower'],
  loss_ratio: ['', 'lower'],
  rtt_ms: ['ms', 'lower'],
  rtt_p50_ms: ['ms', 'lower'],
  rtt_p99_ms: ['ms', 'lower'],
};

function result(group: string, impl: string, test: string, metric: string, samples: number[]): Result {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const [unit, better] = UNITS[metric]!;
  return { group, impl, test, metric, unit, better, samples, median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

function report(results: Result[], extra: Partial<Report> = {}): Report {
  return {
    schema: SCHEMA,
    kind: 'e2e',
    run: { id: 'ab12', started: '2025-05-01T12:34:56.789Z', command: 'node dist/bench/e2e/run.js --rounds 3', host: { kernel: '6.12.0-test', cpus: 2, node: 'v20.19.0' }, revision: '3f94711' },
    results,
    ...extra,
  };
}

/** 2 groups, 3 impls (wireguard-go the reference); kernel has no daemon CPU, router has no ping; one cell skipped. */
const FIXTURE = report([
  result('p2p', 'tundra', 'tcp1', 'throughput_bps', [2_100e6, 2_345.4e6, 2_400e6]),
  result('p2p', 'wireguard-go', 'tcp1', 'throughput_bps', [2_500e6, 2_600e6, 2_700e6]),
  result('p2p', 'kernel', 'tcp1', 'throughput_bps', [3_000e6, 3_100e6, 3_300e6]),
  result('p2p', 'tundra', 'tcp1', 'retransmits', [0, 3, 12]),
  result('p2p', 'wireguard-go', 'tcp1', 'retransmits', [1, 1, 1]),
  result('p2p', 'kernel', 'tcp1', 'retransmits', [0, 0, 0]),
  result('p2p', 'tundra', 'tcp1', 'cpu_ns_per_byte', [3.1, 3.2, 3.5]),
  result('p2p', 'wireguard-go', 'tcp1', 'cpu_ns_per_byte', [4, 4.1, 4.2]),
  result('p2p', 'tundra', 'tcp1', 'machine_ns_per_byte', [7.5, 7.6, 7.9]),
  result('p2p', 'wireguard-go', 'tcp1', 'machine_ns_per_byte', [8, 8.2, 8.3]),
  result('p2p', 'kernel', 'tcp1', 'machine_ns_per_byte', [5, 5.1, 5.5]),
  result('p2p', 'tundra', 'ping-idle', 'rtt_ms', [0.0612, 0.0625, 0.07]),
  result('p2p', 'wireguard-go', 'ping-idle', 'rtt_ms', [0.08, 0.081, 0.09]),
  result('p2p', 'kernel', 'ping-idle', 'rtt_ms', [0.03, 0.031, 0.04]),
  result('p2p', 'tundra', 'tcp4', 'throughput_bps', [2_900e6, 3_000e6, 3_050e6]),
  result('p2p', 'wireguard-go', 'tcp4', 'throughput_bps', [2_800e6, 2_900e6, 3_000e6]),
  result('p2p', 'kernel', 'tcp4', 'throughput_bps', [4_000e6, 4_100e6, 4_200e6]),
  result('router', 'tundra', 'udp', 'loss_ratio', [0.0012]),
  result('router', 'wireguard-go', 'udp', 'loss_ratio', [0.0345]),
  result('router', 'tundra', 'tcp1', 'throughput_bps', [1_500e6]),
  result('router', 'wireguard-go', 'tcp1', 'throughput_bps', [1_000e6]),
  result('router', 'kernel', 'tcp1', 'throughput_bps', [2_000e6]),
], {
  reference: 'wireguard-go',
  skipped: [
    { group: 'router', impl: 'kernel', test: 'udp', reason: 'kernel: udp-load died\n  last lines of its log: x|y\n' },
    { group: '*', impl: '*', test: 'secnetperf', reason: 'secnetperf is not on PATH' },
    { group: 'p2p', impl: 'boring', reason: 'no module' },
    { group: 'router', impl: 'boring', reason: 'no module' },
  ],
});

test('the fixtures are reports the schema accepts', () => {
  for (const r of [FIXTURE, MODEL]) {
    const parsed = parseReport(JSON.stringify(r), 'fixture');
    assert.deepEqual([parsed.run, parsed.reference, parsed.results], [r.run, r.reference, r.results]);
  }
});

test('markdown: the run line, a table per group, spreads, ratios to the reference, – for a missing cell, the skipped cells', () => {
  assert.equal(markdownReport(FIXTURE), `# tundra end-to-end benchmark

2025-05-01 12:34 UTC · Linux 6.12.0-test, 2 CPUs, Node v20.19.0 · revision 3f94711 · 1–3 rounds · run ab12: \`node dist/bench/e2e/run.js --rounds 3\`

A cell is the median of the rounds, (lowest–highest) when there are more than one; on throughput and CPU rows, × is its ratio to the reference's (wireguard-go).

## p2p

| test | metric | tundra | wireguard-go (ref) | kernel |
| --- | --- | ---: | ---: | ---: |
| tcp1 | throughput, Mbit/s | 2,345 (2,100–2,400) ×0.90 | 2,600 (2,500–2,700) | 3,100 (3,000–3,300) ×1.19 |
| tcp1 | CPU of both daemons, ns/B | 3.20 (3.10–3.50) ×0.78 | 4.10 (4.00–4.20) | – |
| tcp1 | machine CPU, ns/B | 7.60 (7.50–7.90) | 8.20 (8.00–8.30) | 5.10 (5.00–5.50) |
| tcp1 | retransmits | 3 (0–12) | 1 (1–1) | 0 (0–0) |
| tcp4 | throughput, Mbit/s | 3,000 (2,900–3,050) ×1.03 | 2,900 (2,800–3,000) | 4,100 (4,000–4,200) ×1.41 |
| ping-idle | RTT, ms | 0.063 (0.061–0.070) | 0.081 (0.080–0.090) | 0.031 (0.030–0.040) |

## router

| test | metric | tundra | wireguard-go (ref) | kernel |
| --- | --- | ---: | ---: | ---: |
| tcp1 | throughput, Mbit/s | 1,500 ×1.50 | 1,000 | 2,000 ×2.00 |
| udp | loss, % | 0.12 | 3.45 | – |

## Skipped

- kernel, udp (router): kernel: udp-load died / last lines of its log: x\\|y
- every implementation, secnetperf (every topology): secnetperf is not on PATH
- boring (p2p, router): no module
`);
});

test('markdown: labels escaped, one sample count said once, no reference, no results', () => {
  const r = report([result('p|2', 'a<&">|_b', 'tcp1', 'throughput_bps', [1e9]), result('p|2', 'k', 'tcp1', 'throughput_bps', [2e9])]);
  delete r.run.revision;
  const md = markdownReport(r);
  assert.match(md, /· 1 round · run ab12/);
  assert.match(md, /^## p\\\|2$/m);
  assert.match(md, /^\| test \| metric \| a\\<\\&"\\>\\\|\\_b \| k \|$/m);
  assert.match(md, /^\| tcp1 \| throughput, Mbit\/s \| 1,000 \| 2,000 \|$/m, 'no ratio without a reference');
  assert.doesNotMatch(md, /revision|×|Skipped/);
  const empty = markdownReport(report([]));
  assert.match(empty, /No results\./);
  assert.doesNotMatch(empty, /\d rounds?|NaN|undefined/);
});

/** Every tag closed in order (the XML declaration aside): a tiny well-formedness check. */
function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" version="1.1"'));
  const body = svg.slice(svg.indexOf('?>') + 2);
  const open: string[] = [];
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    if (m[1] === '/') assert.equal(open.pop(), m[2], `</${m[2]}> closes what was open`);
    else if (m[4] !== '/') open.push(m[2]!);
  }
  assert.deepEqual(open, [], 'every tag is closed');
  // No < or & outside a tag or an entity: everything from the report was escaped.
  const text = body.replace(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g, '');
  assert.doesNotMatch(text, /<|&(?!(amp|lt|gt|quot|apos);)/);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity|<script/);
}

const bars = (svg: string): string[] =>
  [...svg.matchAll(/<rect class="bar" data-cell="([^"]*)" data-impl="([^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`).sort();

test('svg: well-formed, a bar per (cell, impl) of throughput, CPU and machine CPU, nothing else', () => {
  const svg = svgChart(FIXTURE);
  assertWellFormed(svg);
  const expected = FIXTURE.results.filter((r) => ['throughput_bps', 'cpu_ns_per_byte', 'machine_ns_per_byte'].includes(r.metric))
    .map((r) => `${r.group}/${r.test}/${r.metric} ${r.impl}`).sort();
  assert.deepEqual(bars(svg), expected);
  assert.match(svg, />Throughput \(Mbit\/s\)</);
  assert.match(svg, />CPU per byte \(ns\/B, both daemons; machine in outline\)</);
  assert.match(svg, />wireguard-go \(ref\)</);
  assert.match(svg, /<rect x="0" y="0" width="[\d.]+" height="[\d.]+" fill="#ffffff"\/>/, 'a background of its own');
});

test('svg: a report with round trips gets a latency panel (median filled, p99 outlined); one without has none', () => {
  const latency = report([
    result('p2p', 'tundra', 'tcp1', 'throughput_bps', [1e9]),
    ...['ping-idle', 'ping-load', 'ping-udp-load', 'sockperf-load'].flatMap((t) => ['tundra', 'wireguard-go'].flatMap((impl) => [
      result('p2p', impl, t, 'rtt_p50_ms', [0.5, 0.6]), result('p2p', impl, t, 'rtt_p99_ms', [2, 3]), result('p2p', impl, t, 'rtt_ms', [1])])),
  ]);
  const svg = svgChart(latency);
  assertWellFormed(svg);
  assert.match(svg, />Round trip, idle and under load \(ms: median; p99 in outline\)</);
  assert.deepEqual(bars(svg).filter((b) => b.includes('rtt')), latency.results.filter((r) => r.metric === 'rtt_p50_ms' || r.metric === 'rtt_p99_ms')
    .map((r) => `${r.group}/${r.test}/${r.metric} ${r.impl}`).sort());
  assert.doesNotMatch(svgChart(FIXTURE), /Round trip/, 'rtt_ms alone (an older report) draws no latency panel');
});

test('svg: a label with <&"> is escaped everywhere; width grows with the clusters', () => {
  const label = 'a<&">b';
  const one = report([result('p2p', label, 'tcp1', 'throughput_bps', [1e9, 2e9]), result('p2p', label, 'tcp1', 'cpu_ns_per_byte', [3, 4])]);
  const svg = svgChart(one);
  assertWellFormed(svg);
  assert.deepEqual(bars(svg), ['p2p/tcp1/cpu_ns_per_byte a&lt;&amp;&quot;&gt;b', 'p2p/tcp1/throughput_bps a&lt;&amp;&quot;&gt;b']);
  assert.doesNotMatch(svg, /a<&/);
  const many = report(['p2p', 'router', 'router-tuned', 'exit-node'].flatMap((g) => ['tcp1', 'tcp4', 'udp', 'udp-gso'].flatMap((t) =>
    ['x', 'y', 'z'].map((impl) => result(g, impl, t, 'throughput_bps', [1e9])))));
  const width = (s: string): number => Number(/<svg [^>]*width="([\d.]+)"/.exec(s)![1]);
  assert.ok(width(svgChart(many)) > width(svg) + 16 * 3 * 30, `${width(svgChart(many))} for 16 clusters of 3`);
});

test('svg: a single implementation and an empty report draw without throwing', () => {
  const single = svgChart(report([result('p2p', 'tundra', 'tcp1', 'throughput_bps', [0])]));
  assertWellFormed(single);
  assert.equal(bars(single).length, 1);
  const empty = svgChart(report([]));
  assertWellFormed(empty);
  assert.deepEqual(bars(empty), []);
  assert.match(empty, /no throughput_bps in this report/);
});

/** The model's inputs, ns/B: W_send = 4 − 1 = 3, W_recv = 6 − 4 = 2, M = 10; the pool's O = 4.5 − 4 = 0.5. */
const MODEL = report(['tcp1', 'tcp4'].flatMap((t) => [
  result('p2p', 'tundra', t, 'sender_cpu_ns_per_byte', [4]),
  result('p2p', 'tundra', t, 'sender_main_ns_per_byte', [1]),
  result('p2p', 'tundra', t, 'cpu_ns_per_byte', [6]),
  result('p2p', 'tundra', t, 'machine_ns_per_byte', [10]),
  result('p2p', 'tundra', t, 'throughput_bps', [t === 'tcp1' ? 1.5e9 : 1.55e9]),
  result('p2p', 'tundra-pool', t, 'sender_cpu_ns_per_byte', [4.5]),
  result('router', 'tundra', t, 'throughput_bps', [1e9]),
]));
const ONE_CORE = report([result('p2p', 'tundra', 'tcp1', 'throughput_bps', [0.7e9]), result('p2p', 'tundra', 'tcp4', 'throughput_bps', [0.75e9])]);

const round = (x: number): number => Math.round(x * 1000) / 1000;

test('model: the figures of a report, with a pool and a one-core run', () => {
  const opts: ModelOptions = { label: 'tundra', queues: 2, group: 'p2p', poolLabel: 'tundra-pool', oneCore: { report: ONE_CORE, path: 'R1.json' } };
  // A = O: the pool's queue workers carry what they did, the machine 2·O more.
  const [tcp1, tcp4] = costModel({ report: MODEL, path: 'R.json' }, opts, 0.5);
  assert.deepEqual({ ...tcp1!, rows: [] }, { test: 'tcp1', Wsend: 3, Wrecv: 2, Smain: 1, rest: 4, M: 10, O: 0.5, rows: [] });
  const rows = (m: typeof tcp1) => m!.rows.map((r) => ({
    cores: r.cores, one: round(r.one), many: round(r.many), pool: r.pool && { one: round(r.pool.one), many: round(r.pool.many) },
    measured: r.measured && { mbit: round(r.measured.mbit), model: round(r.measured.model) },
  }));
  // Mbit/s = bytes per ns × 8000: one flow min(1/3, 1/2, N/10); flows min(N/3, N/2, N/10); the pool's machine N/11.
  assert.deepEqual(rows(tcp1), [
    { cores: 1, one: 800, many: 800, pool: { one: 727.273, many: 727.273 }, measured: { mbit: 700, model: 800 } },
    { cores: 2, one: 1600, many: 1600, pool: { one: 1454.545, many: 1454.545 }, measured: { mbit: 1500, model: 1600 } },
    { cores: 4, one: 2666.667, many: 3200, pool: { one: 2666.667, many: 2909.091 }, measured: undefined },
    { cores: 8, one: 2666.667, many: 6400, pool: { one: 2666.667, many: 5818.182 }, measured: undefined },
    { cores: 16, one: 2666.667, many: 12800, pool: { one: 2666.667, many: 11636.364 }, measured: undefined },
  ]);
  // tcp4: four flows on min(4, Q = 2) queues, measured at the report's 2 CPUs.
  assert.deepEqual(rows(tcp4).map((r) => r.measured), [{ mbit: 750, model: 800 }, { mbit: 1550, model: 1600 }, undefined, undefined, undefined]);
  const text = formatModel([tcp1!], opts, 0.5).split('\n');
  assert.deepEqual(text.slice(0, 5), [
    '',
    'tundra tcp1: W_send 3.00, W_recv 2.00, main 1.00, rest 4.00, machine 10.00 ns/byte; AEAD 0.50 ns/byte; pool overhead (tundra-pool) 0.50 ns/byte (Mbit/s below)',
    'cores  one flow  flows≥queues(Q=cores)  +pool: one flow  flows  measured',
    '    1      800                    800              727      727  700 (model of this test: 800)',
    '    2     1600                   1600             1455     1455  1500 (model of this test: 1600)',
  ]);
});

test('model: a core count not in the table joins it; a missing cell is named', () => {
  const twelve = structuredClone(MODEL);
  twelve.run.host.cpus = 12;
  const [tcp1] = costModel({ report: twelve, path: 'R.json' }, { label: 'tundra', queues: 1, group: 'p2p' }, 0.5);
  assert.deepEqual(tcp1!.rows.map((r) => [r.cores, r.measured?.mbit, r.pool]), [[1, undefined, undefined], [2, undefined, undefined], [4, undefined, undefined],
    [8, undefined, undefined], [12, 1500, undefined], [16, undefined, undefined]]);
  assert.throws(() => costModel({ report: MODEL, path: 'R.json' }, { label: 'tundra', queues: 1, group: 'router' }, 0),
    (e: Error) => e instanceof MissingCell && e.message === 'R.json: no router/tcp1/sender_cpu_ns_per_byte for tundra');
  assert.throws(() => costModel({ report: MODEL, path: 'R.json' }, { label: 'tundra', queues: 1, group: 'p2p', oneCore: { report: MODEL, path: 'R1.json' }, poolLabel: 'nope' }, 0),
    /^MissingCell: R\.json: no p2p\/tcp1\/sender_cpu_ns_per_byte for nope$/);
});

test('model CLI: a bad label fails at once with exit 2, naming the cell', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tundra-model-'));
  try {
    const path = join(dir, 'r.json');
    writeFileSync(path, JSON.stringify(MODEL));
    const run = spawnSync(process.execPath, ['dist/bench/model.js', '--report', path, '--label', 'wg', '--queues', '1'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 2, run.stderr);
    assert.equal(run.stderr, `model: ${path}: no p2p/tcp1/sender_cpu_ns_per_byte for wg\n`);
    const usage = spawnSync(process.execPath, ['dist/bench/model.js', '--report', path], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /^usage: node dist\/bench\/model\.js --report R\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
