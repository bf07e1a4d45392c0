// bench/compare, the regression guard, on synthetic reports: the CLI runs as a child
// process so that its exit status (0 ok, 1 worse, 2 bad input) is what is checked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseReport, ReportError, type Report, type Result } from '../../bench/report-schema.js';
import type { Row } from '../../bench/compare.js';

const COMPARE = fileURLToPath(new URL('../../bench/compare.js', import.meta.url));
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tdr-compare-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A result whose samples are median - spread/2, median, median + spread/2 (spread relative). */
function result(impl: string, test: string, metric: string, median: number, spread = 0.02, extra: Partial<Result> = {}): Result {
  const half = (median * spread) / 2;
  return {
    group: 'p2p',
    impl,
    test,
    metric,
    unit: metric === 'cpu_ns_per_byte' ? 'ns/B' : 'Mbit/s',
    better: metric === 'cpu_ns_per_byte' ? 'lower' : 'higher',
    samples: [median - half, median, median + half],
    median,
    min: median - half,
    max: median + half,
    ...extra,
  };
}

function report(results: Result[], kind: 'e2e' | 'micro' = 'e2e', reference: string | null = 'wireguard-go'): Report {
  const r: Report = {
    schema: 'tundra-bench/1',
    kind,
    run: { id: 'r1', started: '2026-12-02T04:00:00Z', command: 'npm run bench', host: { kernel: '6.1.0', cpus: 2, node: 'v20.19.0' } },
    results,
  };
  if (reference !== null) r.reference = reference;
  return r;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  rows: Row[];
}

let n = 0;
function compare(oldR: Report | string, newR: Report | string, args: string[] = [], table = false): Run {
  n++;
  const oldPath = join(dir, `old-${n}.json`);
  const newPath = join(dir, `new-${n}.json`);
  writeFileSync(oldPath, typeof oldR === 'string' ? oldR : JSON.stringify(oldR));
  writeFileSync(newPath, typeof newR === 'string' ? newR : JSON.stringify(newR));
  const json = spawnSync(process.execPath, [COMPARE, oldPath, newPath, ...args, '--json'], { encoding: 'utf8', timeout: 10_000 });
  const rows = json.status === 2 ? [] : (JSON.parse(json.stdout) as { rows: Row[] }).rows;
  if (!table) return { status: json.status, stdout: json.stdout, stderr: json.stderr, rows };
  const t = spawnSync(process.execPath, [COMPARE, oldPath, newPath, ...args], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(t.status, json.status, 'the same exit status with and without --json');
  return { status: t.status, stdout: t.stdout, stderr: t.stderr, rows };
}

function row(r: Run, cell: string, impl = 'tundra'): Row {
  const found = r.rows.find((x) => x.cell === cell && x.impl === impl);
  assert.ok(found, `no row ${cell} ${impl} in ${JSON.stringify(r.rows)}`);
  return found;
}

const TCP = 'p2p/tcp1/throughput_bps';
const UDP = 'p2p/udp/throughput_bps';
const CPU = 'p2p/tcp1/cpu_ns_per_byte';

test('a regression beyond the spread: exit 1, that cell WORSE, the others ok', () => {
  const old = report([
    result('wireguard-go', 'tcp1', 'throughput_bps', 1000),
    result('tundra', 'tcp1', 'throughput_bps', 1200),
    result('wireguard-go', 'udp', 'throughput_bps', 800),
    result('tundra', 'udp', 'throughput_bps', 900),
  ]);
  const now = report([
    result('wireguard-go', 'tcp1', 'throughput_bps', 1000),
    result('tundra', 'tcp1', 'throughput_bps', 900),
    result('wireguard-go', 'udp', 'throughput_bps', 800),
    result('tundra', 'udp', 'throughput_bps', 905),
  ]);
  const r = compare(old, now, [], true);
  assert.equal(r.status, 1, r.stderr);
  const tcp = row(r, TCP);
  assert.equal(tcp.verdict, 'WORSE');
  assert.ok(Math.abs(tcp.old! - 1.2) < 1e-9 && Math.abs(tcp.new! - 0.9) < 1e-9);
  assert.ok(Math.abs(tcp.change! - -0.25) < 1e-9);
  assert.equal(row(r, UDP).verdict, 'ok');
  assert.equal(r.rows.length, 2, 'the reference is not a row of its own');
  assert.match(r.stdout, /p2p\/tcp1\/throughput_bps\s+tundra\s+1\.2\s+0\.9\s+-25\.0%\s+5\.0%\s+WORSE/);
});

test('a noise-only change (within the spread) is ok, exit 0; the same change with a tight spread is WORSE', () => {
  const old = report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000, 0.1), result('tundra', 'tcp1', 'throughput_bps', 1200, 0.3)]);
  const now = report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000, 0.1), result('tundra', 'tcp1', 'throughput_bps', 1080, 0.3)]);
  const r = compare(old, now);
  assert.equal(r.status, 0, r.stdout);
  const tcp = row(r, TCP);
  assert.equal(tcp.verdict, 'ok');
  assert.ok(Math.abs(tcp.allowed! - 0.4) < 1e-9, `noise = impl's + reference's spread, got ${tcp.allowed}`);
  // The control: -10% with 2% spreads is beyond max(noise, tolerance 5%).
  const tight = compare(
    report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1200)]),
    report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1080)]),
  );
  assert.equal(tight.status, 1);
  assert.equal(row(tight, TCP).verdict, 'WORSE');
  // --tolerance raises the floor: 15% lets it pass.
  const tolerant = compare(
    report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1200)]),
    report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1080)]),
    ['--tolerance', '0.15'],
  );
  assert.equal(tolerant.status, 0);
  assert.equal(row(tolerant, TCP).verdict, 'ok');
});

test('an improvement is better, exit 0', () => {
  const r = compare(
    report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1200)]),
    report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1500)]),
  );
  assert.equal(r.status, 0);
  assert.equal(row(r, TCP).verdict, 'better');
  assert.ok(row(r, TCP).change! > 0.2);
});

test('a "lower is better" metric that rose (cpu_ns_per_byte) is WORSE; one that fell is better', () => {
  const r = compare(
    report([result('wireguard-go', 'tcp1', 'cpu_ns_per_byte', 10), result('tundra', 'tcp1', 'cpu_ns_per_byte', 10)]),
    report([result('wireguard-go', 'tcp1', 'cpu_ns_per_byte', 10), result('tundra', 'tcp1', 'cpu_ns_per_byte', 13)]),
  );
  assert.equal(r.status, 1);
  assert.equal(row(r, CPU).verdict, 'WORSE');
  assert.ok(row(r, CPU).change! < 0);
  const down = compare(
    report([result('wireguard-go', 'tcp1', 'cpu_ns_per_byte', 10), result('tundra', 'tcp1', 'cpu_ns_per_byte', 13)]),
    report([result('wireguard-go', 'tcp1', 'cpu_ns_per_byte', 10), result('tundra', 'tcp1', 'cpu_ns_per_byte', 10)]),
  );
  assert.equal(down.status, 0);
  assert.equal(row(down, CPU).verdict, 'better');
});

test('absolute figures that drift together (both 30% slower, the ratio holds) are ok; as medians they would be WORSE', () => {
  const old = [result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1200)];
  const now = [result('wireguard-go', 'tcp1', 'throughput_bps', 700), result('tundra', 'tcp1', 'throughput_bps', 840)];
  const r = compare(report(old), report(now));
  assert.equal(r.status, 0, r.stdout);
  assert.equal(row(r, TCP).verdict, 'ok');
  assert.ok(Math.abs(row(r, TCP).change!) < 1e-9);
  // The control: the same figures as micro reports (medians compared directly).
  const m = compare(report(old, 'micro', null), report(now, 'micro', null));
  assert.equal(m.status, 1);
  assert.equal(row(m, TCP).verdict, 'WORSE');
  assert.equal(row(m, TCP, 'wireguard-go').verdict, 'WORSE');
});

test('cells in one report only are missing, not failures', () => {
  const r = compare(
    report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1200)]),
    report([
      result('wireguard-go', 'tcp1', 'throughput_bps', 1000),
      result('tundra', 'tcp1', 'throughput_bps', 1200),
      result('wireguard-go', 'udp', 'throughput_bps', 800),
      result('tundra', 'udp', 'throughput_bps', 900),
      result('boringtun', 'tcp1', 'throughput_bps', 500),
    ]),
    [],
    true,
  );
  assert.equal(r.status, 0);
  assert.equal(row(r, UDP).verdict, 'missing');
  assert.equal(row(r, TCP, 'boringtun').verdict, 'missing');
  assert.equal(row(r, TCP).verdict, 'ok');
  assert.match(r.stdout, /missing \(only in the new report\)/);
});

test('params are part of the cell, in any key order', () => {
  const p = (impl: string, median: number, params: Result['params']): Result => result(impl, 'tcp', 'throughput_bps', median, 0.02, { params });
  const r = compare(
    report([p('wireguard-go', 1000, { streams: 1, mss: 1380 }), p('tundra', 1000, { streams: 1, mss: 1380 }), p('wireguard-go', 1000, { streams: 4 }), p('tundra', 1000, { streams: 4 })]),
    report([p('wireguard-go', 1000, { mss: 1380, streams: 1 }), p('tundra', 1000, { mss: 1380, streams: 1 }), p('wireguard-go', 1000, { streams: 4 }), p('tundra', 500, { streams: 4 })]),
  );
  assert.equal(r.status, 1);
  assert.equal(row(r, 'p2p/tcp[mss=1380,streams=1]/throughput_bps').verdict, 'ok');
  assert.equal(row(r, 'p2p/tcp[streams=4]/throughput_bps').verdict, 'WORSE');
});

test('bad input: exit 2 with the file and the field named', () => {
  const good = report([result('wireguard-go', 'tcp1', 'throughput_bps', 1000), result('tundra', 'tcp1', 'throughput_bps', 1200)]);
  const bad = JSON.parse(JSON.stringify(good)) as { results: { median: unknown }[] };
  bad.results[1]!.median = 'fast';
  const r = compare(JSON.stringify(bad), good);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /old-\d+\.json: results\[1\]\.median: not a number/);

  const notJson = compare('{"schema": "tundra-bench/1", ', good);
  assert.equal(notJson.status, 2);
  assert.match(notJson.stderr, /old-\d+\.json: not JSON/);

  const kinds = compare(good, report(good.results, 'micro'));
  assert.equal(kinds.status, 2);
  assert.match(kinds.stderr, /different kinds \(old: e2e, new: micro\)/);

  const noRef = compare(report(good.results, 'e2e', null), report(good.results, 'e2e', null));
  assert.equal(noRef.status, 2);
  assert.match(noRef.stderr, /--reference NAME/);
  // ... and with it given, the same reports compare.
  assert.equal(compare(report(good.results, 'e2e', null), report(good.results, 'e2e', null), ['--reference', 'wireguard-go']).status, 0);

  const wrongRef = compare(good, good, ['--reference', 'kernel']);
  assert.equal(wrongRef.status, 2);
  assert.match(wrongRef.stderr, /no result of the reference kernel/);

  const missing = spawnSync(process.execPath, [COMPARE, join(dir, 'nope.json'), join(dir, 'nope2.json')], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read .*nope\.json \(ENOENT\)/);

  const usage = spawnSync(process.execPath, [COMPARE, join(dir, 'x.json')], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /two reports expected, 1 given\nusage:/);

  const tol = compare(good, good, ['--tolerance', 'lots']);
  assert.equal(tol.status, 2);
  assert.match(tol.stderr, /--tolerance lots/);
});

test('parseReport names the JSON path of the first bad field', () => {
  const good = report([result('tundra', 'tcp1', 'throughput_bps', 1200, 0.02, { params: { streams: 4 } })]);
  good.skipped = [{ group: 'p2p', impl: 'kernel', reason: 'the kernel has no WireGuard module' }, { group: 'p2p', impl: 'tundra', test: 'sockperf-idle', reason: 'sockperf is not installed' }];
  assert.deepEqual(parseReport(JSON.stringify(good), 'a.json'), good);
  const cases: [(r: any) => void, RegExp][] = [
    [(r) => (r.schema = 'tundra-bench/2'), /^a\.json: schema: "tundra-bench\/2" is not "tundra-bench\/1"$/],
    [(r) => (r.kind = 'macro'), /^a\.json: kind: "macro" is not/],
    [(r) => delete r.run.host.cpus, /^a\.json: run\.host\.cpus: missing$/],
    [(r) => (r.run.started = 'yesterday'), /^a\.json: run\.started: "yesterday" is not an ISO-8601 time$/],
    [(r) => (r.results = {}), /^a\.json: results: not an array$/],
    [(r) => (r.results[0].samples[2] = null), /^a\.json: results\[0\]\.samples\[2\]: not a number$/],
    [(r) => (r.results[0].samples = []), /^a\.json: results\[0\]\.samples: empty/],
    [(r) => (r.results[0].params.streams = [4]), /^a\.json: results\[0\]\.params\.streams: not a string or a number$/],
    [(r) => (r.results[0].better = 'more'), /^a\.json: results\[0\]\.better: "more" is not "higher" or "lower"$/],
    [(r) => (r.results[0].min = 2000), /^a\.json: results\[0\]\.median: min 2000 <= median 1200/],
    [(r) => r.results.push(r.results[0]), /^a\.json: results\[1\]: same cell and impl as results\[0\]/],
    [(r) => (r.results[0] = 7), /^a\.json: results\[0\]: not an object$/],
    [(r) => (r.skipped = 'none'), /^a\.json: skipped: not an array$/],
    [(r) => delete r.skipped[0].reason, /^a\.json: skipped\[0\]\.reason: missing$/],
    [(r) => (r.skipped[1].test = ''), /^a\.json: skipped\[1\]\.test: empty string$/],
  ];
  for (const [spoil, message] of cases) {
    const r = JSON.parse(JSON.stringify(good));
    spoil(r);
    assert.throws(() => parseReport(JSON.stringify(r), 'a.json'), (e: unknown) => e instanceof ReportError && message.test(e.message));
  }
  assert.throws(() => parseReport('[]', 'a.json'), /a\.json: \(top level\): not an object/);
});
