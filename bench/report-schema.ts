// The benchmark report, version 1: written by bench/micro and bench/e2e, read by
// bench/compare, with what both writers share (summarize, runInfo). parseReport validates a whole report and names the file and the JSON
// path of the first bad field, so a hand-edited or truncated report is caught before
// anything is compared.

import { execFileSync } from 'node:child_process';
import { cpus, release } from 'node:os';

export const SCHEMA = 'tundra-bench/1';

export type Kind = 'micro' | 'e2e';
export type Better = 'higher' | 'lower';

export interface Host {
  kernel: string;
  cpus: number;
  node: string;
}

export interface RunInfo {
  id: string;
  /** ISO-8601 */
  started: string;
  command: string;
  host: Host;
  revision?: string;
}

export interface Result {
  /** micro: the bench file ("ring", "aead", ...); e2e: the topology ("p2p", "router", ...) */
  group: string;
  /** micro: the variant ("native", "twin", ...); e2e: the implementation label */
  impl: string;
  /** what was measured ("tcp1", "udp", "push+pop one at a time", ...) */
  test: string;
  params?: { [k: string]: string | number };
  /** "ops_per_s", "throughput_bps", "cpu_ns_per_byte", "rtt_ms", "loss_ratio", ... */
  metric: string;
  /** human unit for tables ("ops/s", "Mbit/s", "ns/B", "ms", "") */
  unit: string;
  better: Better;
  /** one per repeat, at least one */
  samples: number[];
  median: number;
  min: number;
  max: number;
}

/** A cell that did not run, and why (e2e: a missing tool, an implementation that failed). */
export interface Skipped {
  group: string;
  impl: string;
  test?: string;
  reason: string;
}

export interface Report {
  schema: typeof SCHEMA;
  kind: Kind;
  run: RunInfo;
  /** e2e: the implementation ratios are taken against (e.g. "wireguard-go") */
  reference?: string;
  results: Result[];
  /** cells that did not run, and why */
  skipped?: Skipped[];
}

/** A report that does not follow the schema; message is `SOURCE: PATH: what is wrong`. */
export class ReportError extends Error {
  constructor(
    readonly source: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(path === '' ? `${source}: ${problem}` : `${source}: ${path}: ${problem}`);
    this.name = 'ReportError';
  }
}

type Obj = { [k: string]: unknown };

/** The identity of a cell, compared across impls and reports: (group, test, params, metric). */
export function cellKey(r: Pick<Result, 'group' | 'test' | 'params' | 'metric'>): string {
  // Params sorted by name: {"a":1,"b":2} and {"b":2,"a":1} are the same cell.
  const params = r.params === undefined ? [] : Object.keys(r.params).sort().map((k) => [k, r.params![k]]);
  return JSON.stringify([r.group, r.test, params, r.metric]);
}

/** "p2p/tcp1[streams=4]/throughput_bps", for tables and messages. */
export function cellLabel(r: Pick<Result, 'group' | 'test' | 'params' | 'metric'>): string {
  const keys = r.params === undefined ? [] : Object.keys(r.params).sort();
  const params = keys.length === 0 ? '' : `[${keys.map((k) => `${k}=${r.params![k]}`).join(',')}]`;
  return `${r.group}/${r.test}${params}/${r.metric}`;
}

export function parseReport(text: string, source: string): Report {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new ReportError(source, '', `not JSON (${(e as Error).message})`);
  }
  const fail = (path: string, problem: string): never => {
    throw new ReportError(source, path, problem);
  };
  const obj = (v: unknown, path: string): Obj => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path || '(top level)', 'not an object');
    return v as Obj;
  };
  const str = (o: Obj, key: string, path: string): string => {
    const v = o[key];
    if (v === undefined) fail(path, 'missing');
    if (typeof v !== 'string') fail(path, 'not a string');
    return v as string;
  };
  const nonEmpty = (o: Obj, key: string, path: string): string => {
    const s = str(o, key, path);
    if (s === '') fail(path, 'empty string');
    return s;
  };
  const num = (o: Obj, key: string, path: string): number => {
    const v = o[key];
    if (v === undefined) fail(path, 'missing');
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'not a number');
    return v as number;
  };

  const top = obj(root, '');
  const schema = top['schema'];
  if (schema === undefined) fail('schema', `missing (expected "${SCHEMA}")`);
  if (schema !== SCHEMA) fail('schema', `${JSON.stringify(schema)} is not "${SCHEMA}"`);
  const kind = top['kind'];
  if (kind === undefined) fail('kind', 'missing');
  if (kind !== 'micro' && kind !== 'e2e') fail('kind', `${JSON.stringify(kind)} is not "micro" or "e2e"`);

  const runO = obj(top['run'], 'run');
  const hostO = obj(runO['host'], 'run.host');
  const started = str(runO, 'started', 'run.started');
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(started) || Number.isNaN(Date.parse(started))) {
    fail('run.started', `${JSON.stringify(started)} is not an ISO-8601 time`);
  }
  const run: RunInfo = {
    id: nonEmpty(runO, 'id', 'run.id'),
    started,
    command: str(runO, 'command', 'run.command'),
    host: {
      kernel: str(hostO, 'kernel', 'run.host.kernel'),
      cpus: num(hostO, 'cpus', 'run.host.cpus'),
      node: str(hostO, 'node', 'run.host.node'),
    },
  };
  if (runO['revision'] !== undefined) run.revision = str(runO, 'revision', 'run.revision');

  const report: Report = { schema: SCHEMA, kind: kind as Kind, run, results: [] };
  if (top['reference'] !== undefined) report.reference = nonEmpty(top, 'reference', 'reference');

  const results = top['results'];
  if (results === undefined) fail('results', 'missing');
  if (!Array.isArray(results)) fail('results', 'not an array');
  const seen = new Map<string, number>();
  (results as unknown[]).forEach((item, i) => {
    const at = `results[${i}]`;
    const o = obj(item, at);
    const r: Result = {
      group: nonEmpty(o, 'group', `${at}.group`),
      impl: nonEmpty(o, 'impl', `${at}.impl`),
      test: nonEmpty(o, 'test', `${at}.test`),
      metric: nonEmpty(o, 'metric', `${at}.metric`),
      unit: str(o, 'unit', `${at}.unit`),
      better: 'higher',
      samples: [],
      median: num(o, 'median', `${at}.median`),
      min: num(o, 'min', `${at}.min`),
      max: num(o, 'max', `${at}.max`),
    };
    if (o['params'] !== undefined) {
      const p = obj(o['params'], `${at}.params`);
      const params: { [k: string]: string | number } = {};
      for (const [k, v] of Object.entries(p)) {
        if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) params[k] = v;
        else fail(`${at}.params.${k}`, 'not a string or a number');
      }
      r.params = params;
    }
    const better = o['better'];
    if (better === undefined) fail(`${at}.better`, 'missing');
    if (better !== 'higher' && better !== 'lower') {
      fail(`${at}.better`, `${JSON.stringify(better)} is not "higher" or "lower"`);
    }
    r.better = better as Better;
    const samples = o['samples'];
    if (samples === undefined) fail(`${at}.samples`, 'missing');
    if (!Array.isArray(samples)) fail(`${at}.samples`, 'not an array');
    if ((samples as unknown[]).length === 0) fail(`${at}.samples`, 'empty (one sample per repeat, at least one)');
    (samples as unknown[]).forEach((s, j) => {
      if (typeof s !== 'number' || !Number.isFinite(s)) fail(`${at}.samples[${j}]`, 'not a number');
      r.samples.push(s as number);
    });
    if (!(r.min <= r.median && r.median <= r.max)) {
      fail(`${at}.median`, `min ${r.min} <= median ${r.median} <= max ${r.max} does not hold`);
    }
    // Two results for one (cell, impl) would make the comparison depend on their order.
    const key = `${cellKey(r)}\0${r.impl}`;
    const first = seen.get(key);
    if (first !== undefined) fail(at, `same cell and impl as results[${first}] (${cellLabel(r)}, ${r.impl})`);
    seen.set(key, i);
    report.results.push(r);
  });
  const skipped = top['skipped'];
  if (skipped !== undefined) {
    if (!Array.isArray(skipped)) fail('skipped', 'not an array');
    report.skipped = (skipped as unknown[]).map((item, i) => {
      const at = `skipped[${i}]`;
      const o = obj(item, at);
      const s: Skipped = {
        group: nonEmpty(o, 'group', `${at}.group`),
        impl: nonEmpty(o, 'impl', `${at}.impl`),
        reason: nonEmpty(o, 'reason', `${at}.reason`),
      };
      if (o['test'] !== undefined) s.test = nonEmpty(o, 'test', `${at}.test`);
      return s;
    });
  }
  return report;
}

/** Median, min and max of a non-empty list of finite numbers. */
export function summarize(samples: readonly number[]): { median: number; min: number; max: number } {
  if (samples.length === 0 || !samples.every(Number.isFinite)) throw new Error('bench report: samples must be finite numbers, at least one');
  const s = [...samples].sort((x, y) => x - y);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

function revision(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The run part of a new report: this host, now, and the checkout's commit when there is one. */
export function runInfo(id: string, command: string): RunInfo {
  const rev = revision();
  return {
    id,
    started: new Date().toISOString(),
    command,
    host: { kernel: release(), cpus: cpus().length, node: process.version },
    ...(rev === undefined ? {} : { revision: rev }),
  };
}
