// What every micro-benchmark shares: result rows in the report schema tundra-bench/1
// (the one bench/e2e and bench/compare read too), an aligned table per bench, and
// `--json PATH` (or TUNDRA_BENCH_JSON=PATH) to write the report or add to it, so
// bench/micro/run.ts can collect all benches into one file.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Task } from 'tinybench';
import { cellKey, parseReport, runInfo, SCHEMA, summarize, type Report, type Result } from '../report-schema.js';

export { SCHEMA, type Report, type Result } from '../report-schema.js';

export type ResultInput = Omit<Result, 'median' | 'min' | 'max'>;

/** A row with its median/min/max filled in from its samples. */
export function result(input: ResultInput): Result {
  return { ...input, samples: [...input.samples], ...summarize(input.samples) };
}

/** At most this many samples per row: a fast task runs millions of iterations. */
export const MAX_SAMPLES = 100;

/**
 * Rates from a tinybench task: `perIteration` units (bytes, packets, ops) per
 * iteration, per second. With retainSamples, one sample per iteration, or per run of
 * consecutive iterations when there are more than MAX_SAMPLES (total units over total
 * time of the run, so no zero-length iteration makes an infinite rate); without, the
 * mean (tinybench's period). Undefined when the task did not complete.
 */
export function taskRates(task: Task, perIteration: number): number[] | undefined {
  const r = task.result;
  if (r.state !== 'completed') return undefined;
  const lat = r.latency.samples;
  if (lat === undefined || lat.length === 0) return [(perIteration * 1000) / r.period];
  const chunks = Math.min(MAX_SAMPLES, lat.length);
  const rates: number[] = [];
  for (let c = 0; c < chunks; c++) {
    const from = Math.floor((c * lat.length) / chunks);
    const to = Math.floor(((c + 1) * lat.length) / chunks);
    let ms = 0;
    for (let i = from; i < to; i++) ms += lat[i]!;
    if (ms > 0) rates.push(((to - from) * perIteration * 1000) / ms);
  }
  return rates.length > 0 ? rates : [(perIteration * 1000) / r.period];
}

/** A schema row for a tinybench task (higher is better); undefined when the task did not complete. */
export function taskResult(
  task: Task,
  row: Omit<ResultInput, 'samples' | 'better'> & { perIteration: number },
): Result | undefined {
  const samples = taskRates(task, row.perIteration);
  if (samples === undefined) return undefined;
  const { perIteration: _, ...rest } = row;
  return result({ ...rest, better: 'higher', samples });
}

/** Figures for tables: 3 significant digits, thousands separated. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a === 0) return '0';
  return x.toPrecision(3);
}

const paramsText = (p: Result['params']): string =>
  p === undefined ? '' : Object.entries(p).map(([k, v]) => `${k}=${v}`).join(' ');

/** An aligned table of rows: test, impl, params, metric, median, min, max. */
export function formatTable(rows: readonly Result[]): string {
  const t: string[][] = [['test', 'impl', 'params', 'metric', 'median', 'min', 'max', 'n']];
  for (const r of rows) {
    t.push([r.test, r.impl, paramsText(r.params), `${r.metric} (${r.unit})`,
      formatNumber(r.median), formatNumber(r.min), formatNumber(r.max), String(r.samples.length)]);
  }
  const numeric = [false, false, false, false, true, true, true, true];
  const widths = t[0]!.map((_, c) => Math.max(...t.map((r) => r[c]!.length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(t[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...t.slice(1).map(line)].join('\n');
}

/** The report path: `--json PATH` (or `--json=PATH`) on the command line, else TUNDRA_BENCH_JSON. */
export function jsonPathFrom(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') {
      const p = argv[i + 1];
      if (p === undefined || p === '' || p.startsWith('--')) throw new Error('--json needs a path');
      return p;
    }
    if (a.startsWith('--json=')) {
      const p = a.slice('--json='.length);
      if (p === '') throw new Error('--json needs a path');
      return p;
    }
  }
  const e = env['TUNDRA_BENCH_JSON'];
  return e === undefined || e === '' ? undefined : e;
}

/** A new, empty micro report describing this run and host. */
export function newReport(command: string = process.argv.slice(1).join(' ')): Report {
  return { schema: SCHEMA, kind: 'micro', run: runInfo(randomUUID(), command), results: [] };
}

/** Throws, saying what is wrong, unless `x` is a schema-1 report (bench/report-schema.ts decides). */
export function checkReport(x: unknown): asserts x is Report {
  parseReport(JSON.stringify(x), `not a ${SCHEMA} report`);
}

/** One row per (cell, impl) in a report, as parseReport requires. */
const rowKey = (r: Result): string => `${cellKey(r)}\0${r.impl}`;

/**
 * Writes `results` to the report at `path`: creates it, or, if it exists, adds them to
 * it (a row for the same group, impl, test, params and metric replaces the old one, so
 * running one bench again updates its rows). Refuses a file that is not a micro report
 * rather than overwrite it. Written to a temporary file and renamed: a reader never
 * sees half a report.
 */
export function writeReport(path: string, results: readonly Result[], command?: string): Report {
  let report: Report;
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text === undefined) {
    report = newReport(command);
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new Error(`${path}: not JSON (${(e as Error).message}); not overwriting it`);
    }
    try {
      checkReport(parsed);
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}; not overwriting it`);
    }
    if (parsed.kind !== 'micro') throw new Error(`${path}: a ${parsed.kind} report; not adding micro results to it`);
    report = parsed;
  }
  const fresh = new Set(results.map(rowKey));
  report.results = [...report.results.filter((r) => !fresh.has(rowKey(r))), ...results];
  checkReport(report);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(tmp, path);
  return report;
}

/**
 * The end of every bench: prints the schema rows as a table (after the bench's own
 * richer table, if it has one) and writes them to the report when a path is given.
 */
export function emit(group: string, rows: readonly Result[], argv: readonly string[] = process.argv.slice(2)): void {
  for (const r of rows) if (r.group !== group) throw new Error(`bench report: row of group ${r.group} emitted by ${group}`);
  console.log(`\n${group}: report rows`);
  console.log(formatTable(rows));
  const path = jsonPathFrom(argv);
  if (path !== undefined) {
    writeReport(path, rows);
    console.log(`(${rows.length} rows added to ${path})`);
  }
}
