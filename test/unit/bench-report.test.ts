// bench/micro/report.ts: schema rows from a (tiny) tinybench run, the report file it
// writes in schema tundra-bench/1, and --json to an existing report extending it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import {
  checkReport, emit, jsonPathFrom, MAX_SAMPLES, result, SCHEMA, taskResult, writeReport, type Result,
} from '../../bench/micro/report.js';
import { summarize } from '../../bench/report-schema.js';

const withDir = (fn: (dir: string) => void): void => {
  const dir = mkdtempSync(join(tmpdir(), 'tundra-bench-report-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
const read = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));

async function tinyBench(): Promise<Result[]> {
  const bench = new Bench({ time: 0, warmupTime: 0, warmupIterations: 0, iterations: 2, retainSamples: true });
  let x = 0;
  bench.add('sum', () => { for (let i = 0; i < 10_000; i++) x += i; });
  await bench.run();
  assert.ok(x > 0);
  const r = taskResult(bench.tasks[0]!, {
    group: 'tiny', impl: 'js', test: 'sum', params: { n: 10_000 }, metric: 'ops_per_s', unit: 'ops/s', perIteration: 10_000,
  });
  assert.ok(r !== undefined, 'the tiny bench completed');
  return [r];
}

test('summarize: median of odd and even counts, min, max; refuses empty and non-finite', () => {
  assert.deepEqual(summarize([3, 1, 2]), { median: 2, min: 1, max: 3 });
  assert.deepEqual(summarize([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4 });
  assert.throws(() => summarize([]));
  assert.throws(() => summarize([1, Number.POSITIVE_INFINITY]));
  assert.throws(() => summarize([Number.NaN]));
});

test('a tiny tinybench run becomes a valid schema-1 micro report', async () => {
  const rows = await tinyBench();
  const row = rows[0]!;
  assert.equal(row.better, 'higher');
  assert.ok(row.samples.length >= 1 && row.samples.length <= MAX_SAMPLES);
  assert.ok(row.samples.every((s) => Number.isFinite(s) && s > 0));
  assert.ok(row.min <= row.median && row.median <= row.max);
  withDir((dir) => {
    const path = join(dir, 'sub', 'micro.json');
    writeReport(path, rows, 'test');
    const report = read(path);
    checkReport(report);
    assert.equal(report.schema, SCHEMA);
    assert.equal(report.kind, 'micro');
    assert.equal(report.run.command, 'test');
    assert.ok(!Number.isNaN(Date.parse(report.run.started)));
    assert.ok(report.run.host.cpus >= 1);
    assert.equal(report.run.host.node, process.version);
    assert.deepEqual(report.results, rows);
  });
});

test('--json to a report that exists extends it; the same cell is replaced, the run kept', () => {
  const row = (test: string, v: number): Result =>
    result({ group: 'g', impl: 'i', test, params: { size: 64 }, metric: 'ops_per_s', unit: 'ops/s', better: 'higher', samples: [v, v + 2] });
  withDir((dir) => {
    const path = join(dir, 'r.json');
    writeReport(path, [row('a', 1), row('b', 2)]);
    const first = read(path);
    checkReport(first);
    const log = console.log;
    console.log = () => {};
    try {
      emit('g', [row('c', 3), row('a', 10)], ['--json', path]);
    } finally {
      console.log = log;
    }
    const second = read(path);
    checkReport(second);
    assert.deepEqual(second.run, first.run);
    assert.deepEqual(second.results.map((r) => [r.test, r.median]), [['b', 3], ['c', 4], ['a', 11]]);
    // A different params value is a different cell: added, not replaced.
    writeReport(path, [result({ ...row('a', 20), params: { size: 1420 } })]);
    const third = read(path);
    checkReport(third);
    assert.equal(third.results.length, 4);
  });
});

test('a file that is not a micro report is refused and left as it was', () => {
  withDir((dir) => {
    const r = result({ group: 'g', impl: 'i', test: 't', metric: 'm', unit: '', better: 'lower', samples: [1] });
    for (const text of ['not json', '{}', JSON.stringify({ schema: SCHEMA, kind: 'micro', results: [] })]) {
      const path = join(dir, 'bad.json');
      writeFileSync(path, text);
      assert.throws(() => writeReport(path, [r]), /not overwriting/);
      assert.equal(readFileSync(path, 'utf8'), text);
    }
    const e2e = join(dir, 'e2e.json');
    writeReport(e2e, [r]);
    const report = read(e2e);
    checkReport(report);
    writeFileSync(e2e, JSON.stringify({ ...report, kind: 'e2e' }));
    assert.throws(() => writeReport(e2e, [r]), /e2e report/);
  });
});

test('checkReport finds a broken row', () => {
  withDir((dir) => {
    const path = join(dir, 'r.json');
    writeReport(path, [result({ group: 'g', impl: 'i', test: 't', metric: 'm', unit: '', better: 'higher', samples: [1, 2, 3] })]);
    const good = read(path) as { results: Record<string, unknown>[] };
    for (const [k, v] of [['median', 9], ['samples', []], ['better', 'more'], ['group', 1]] as const) {
      const bad = structuredClone(good);
      bad.results[0]![k] = v;
      assert.throws(() => checkReport(bad), /not a tundra-bench\/1 report/, `${k} = ${JSON.stringify(v)}`);
    }
  });
});

test('jsonPathFrom: --json PATH, --json=PATH, TUNDRA_BENCH_JSON, and a missing path', () => {
  assert.equal(jsonPathFrom(['--crypto', 'node', '--json', 'a.json'], {}), 'a.json');
  assert.equal(jsonPathFrom(['--json=b.json'], { TUNDRA_BENCH_JSON: 'c.json' }), 'b.json');
  assert.equal(jsonPathFrom([], { TUNDRA_BENCH_JSON: 'c.json' }), 'c.json');
  assert.equal(jsonPathFrom([], {}), undefined);
  assert.throws(() => jsonPathFrom(['--json'], {}), /needs a path/);
  assert.throws(() => jsonPathFrom(['--json', '--crypto'], {}), /needs a path/);
  assert.throws(() => jsonPathFrom(['--json='], {}), /needs a path/);
});
