// bench/compare: the regression guard. Reads two reports (bench/report-schema.ts) and
// flags every figure that got worse beyond the noise of the runs.
//
// Absolute figures drift between runs on shared machines, so e2e reports are compared
// through ratios: each implementation's median over the reference implementation's median
// in the same report. A ratio's noise is the sum of the relative spreads, (max - min) /
// median, of its two results; a change is a regression when it is worse by more than
// max(old noise, new noise, tolerance). Micro reports (no reference) compare medians.
//
//   node dist/bench/compare.js OLD.json NEW.json [--reference NAME] [--tolerance F] [--json]
//
// Exit status: 0 nothing got worse, 1 something did, 2 bad input.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { cellKey, cellLabel, parseReport, ReportError, type Report, type Result } from './report-schema.js';

export type Verdict = 'ok' | 'better' | 'WORSE' | 'missing';

export interface Row {
  cell: string;
  impl: string;
  unit: string;
  better: 'higher' | 'lower';
  /** e2e: the ratio impl/reference in the old report; micro: the old median; null when missing */
  old: number | null;
  new: number | null;
  /** signed so that > 0 is better (the inverse ratio for "lower is better"); null when missing */
  change: number | null;
  /** max(old noise, new noise, tolerance): the change a verdict needs to be more than */
  allowed: number | null;
  verdict: Verdict;
  /** why a row is missing */
  note?: string;
}

export interface Comparison {
  mode: 'ratio' | 'median';
  reference: string | null;
  tolerance: number;
  rows: Row[];
  worse: number;
  better: number;
  missing: number;
}

export class InputError extends Error {}

/** (max - min) / median; no spread at all is 0 even at a zero median. */
function spread(r: Result): number {
  const width = r.max - r.min;
  if (width === 0) return 0;
  return r.median === 0 ? Infinity : width / Math.abs(r.median);
}

interface Figure {
  value: number;
  /** the figure turned so that larger is better: value or 1 / value */
  goodness: number;
  noise: number;
}

function figure(r: Result, ref: Result | undefined): Figure | string {
  if (ref === undefined) {
    if (r.better === 'lower' && r.median === 0) return 'zero median';
    return { value: r.median, goodness: r.better === 'higher' ? r.median : 1 / r.median, noise: spread(r) };
  }
  // A zero on either side leaves no ratio to compare (e.g. a loss_ratio of 0).
  if (r.median === 0 || ref.median === 0) return 'zero median: no ratio';
  const value = r.median / ref.median;
  return { value, goodness: r.better === 'higher' ? value : 1 / value, noise: spread(r) + spread(ref) };
}

export function compareReports(
  oldR: Report,
  newR: Report,
  opts: { reference?: string; tolerance?: number } = {},
): Comparison {
  const tolerance = opts.tolerance ?? 0.05;
  if (oldR.kind !== newR.kind) {
    throw new InputError(`the reports are of different kinds (old: ${oldR.kind}, new: ${newR.kind}): compare two micro or two e2e reports`);
  }
  let reference: string | null = opts.reference ?? null;
  if (reference === null) {
    if (oldR.reference !== undefined && newR.reference !== undefined && oldR.reference !== newR.reference) {
      throw new InputError(
        `the reports have different references (old: ${oldR.reference}, new: ${newR.reference}): choose one with --reference NAME`,
      );
    }
    reference = newR.reference ?? oldR.reference ?? null;
  }
  if (reference === null && newR.kind === 'e2e') {
    throw new InputError('e2e reports are compared through ratios, and neither report names its reference: give --reference NAME (e.g. wireguard-go)');
  }

  // cell key -> impl -> result, in report order.
  const index = (r: Report): Map<string, Map<string, Result>> => {
    const m = new Map<string, Map<string, Result>>();
    for (const res of r.results) {
      const k = cellKey(res);
      let impls = m.get(k);
      if (impls === undefined) m.set(k, (impls = new Map()));
      impls.set(res.impl, res);
    }
    return m;
  };
  const oldI = index(oldR);
  const newI = index(newR);
  const keys = [...newI.keys(), ...[...oldI.keys()].filter((k) => !newI.has(k))];

  const rows: Row[] = [];
  for (const k of keys) {
    const o = oldI.get(k) ?? new Map<string, Result>();
    const n = newI.get(k) ?? new Map<string, Result>();
    const impls = [...n.keys(), ...[...o.keys()].filter((i) => !n.has(i))].filter((i) => i !== reference);
    for (const impl of impls) {
      const or = o.get(impl);
      const nr = n.get(impl);
      const any = (nr ?? or)!;
      const row: Row = {
        cell: cellLabel(any),
        impl,
        unit: any.unit,
        better: any.better,
        old: null,
        new: null,
        change: null,
        allowed: null,
        verdict: 'missing',
      };
      rows.push(row);
      const of = or === undefined ? 'only in the new report' : figure(or, reference === null ? undefined : o.get(reference));
      const nf = nr === undefined ? 'only in the old report' : figure(nr, reference === null ? undefined : n.get(reference));
      if (or !== undefined && reference !== null && !o.has(reference)) {
        row.note = `no ${reference} in the old report`;
        if (typeof nf !== 'string') row.new = nf.value;
        continue;
      }
      if (nr !== undefined && reference !== null && !n.has(reference)) {
        row.note = `no ${reference} in the new report`;
        if (typeof of !== 'string') row.old = of.value;
        continue;
      }
      if (typeof of !== 'string') row.old = of.value;
      if (typeof nf !== 'string') row.new = nf.value;
      if (typeof of === 'string' || typeof nf === 'string') {
        row.note = typeof of === 'string' ? of : (nf as string);
        continue;
      }
      if (or!.better !== nr!.better) {
        row.note = `"better" changed from ${or!.better} to ${nr!.better}`;
        continue;
      }
      row.change = nf.goodness / of.goodness - 1;
      row.allowed = Math.max(of.noise, nf.noise, tolerance);
      row.verdict = row.change < -row.allowed ? 'WORSE' : row.change > row.allowed ? 'better' : 'ok';
    }
  }
  const count = (v: Verdict): number => rows.filter((r) => r.verdict === v).length;
  return {
    mode: reference === null ? 'median' : 'ratio',
    reference,
    tolerance,
    rows,
    worse: count('WORSE'),
    better: count('better'),
    missing: count('missing'),
  };
}

function fmt(v: number | null): string {
  if (v === null) return '-';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

function pct(v: number | null, signed: boolean): string {
  if (v === null) return '-';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  const s = (v * 100).toFixed(1);
  return signed && v >= 0 ? `+${s}%` : `${s}%`;
}

export function formatTable(c: Comparison): string {
  const what = c.mode === 'ratio' ? `ratio impl/${c.reference}` : 'median';
  const head = ['cell', 'impl', `old ${what}`, `new ${what}`, 'change', 'noise', 'verdict'];
  const body = c.rows.map((r) => [
    r.cell,
    r.impl,
    fmt(r.old),
    fmt(r.new),
    pct(r.change, true),
    pct(r.allowed, false),
    r.note === undefined ? r.verdict : `${r.verdict} (${r.note})`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]): string =>
    cols.map((s, i) => (i >= 2 && i <= 5 ? s.padStart(widths[i]!) : s.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
  out.push(
    '',
    `${c.rows.length} rows: ${c.worse} worse, ${c.better} better, ${c.missing} missing, ` +
      `${c.rows.length - c.worse - c.better - c.missing} ok (change: + is better; noise: the change a verdict needs, ` +
      `max of both runs' spread and the tolerance ${pct(c.tolerance, false)})`,
  );
  return `${out.join('\n')}\n`;
}

const USAGE = 'usage: node dist/bench/compare.js OLD.json NEW.json [--reference NAME] [--tolerance FRACTION] [--json]';

function load(path: string): Report {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the path of a JSON report written by npm run bench or npm run bench:micro`);
  }
  return parseReport(text, path);
}

export function main(argv: string[]): number {
  try {
    let args;
    try {
      args = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          reference: { type: 'string' },
          tolerance: { type: 'string' },
          json: { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (e) {
      throw new InputError(`${(e as Error).message}\n${USAGE}`);
    }
    if (args.values.help === true) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (args.positionals.length !== 2) throw new InputError(`two reports expected, ${args.positionals.length} given\n${USAGE}`);
    let tolerance = 0.05;
    if (args.values.tolerance !== undefined) {
      tolerance = Number(args.values.tolerance);
      if (args.values.tolerance.trim() === '' || !Number.isFinite(tolerance) || tolerance < 0) {
        throw new InputError(`--tolerance ${args.values.tolerance}: give a fraction >= 0 (0.05 is 5%)`);
      }
    }
    if (args.values.reference === '') throw new InputError('--reference needs an implementation label (e.g. wireguard-go)');
    const [oldPath, newPath] = args.positionals as [string, string];
    const c = compareReports(load(oldPath), load(newPath), {
      tolerance,
      ...(args.values.reference === undefined ? {} : { reference: args.values.reference }),
    });
    if (c.mode === 'ratio' && c.rows.length > 0 && c.rows.every((r) => r.note?.startsWith(`no ${c.reference} `))) {
      throw new InputError(`no result of the reference ${c.reference} in these reports: give the label of an implementation they measured with --reference NAME`);
    }
    if (args.values.json === true) {
      // JSON has no Infinity: such a figure (a zero-median spread) is written as null.
      process.stdout.write(`${JSON.stringify({ old: oldPath, new: newPath, ...c }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
    } else {
      process.stdout.write(formatTable(c));
    }
    return c.worse > 0 ? 1 : 0;
  } catch (e) {
    if (e instanceof InputError || e instanceof ReportError) {
      process.stderr.write(`compare: ${e.message}\n`);
      if (e instanceof ReportError) process.stderr.write('compare: fix or regenerate that report (schema: bench/report-schema.ts)\n');
      return 2;
    }
    throw e;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    // Not 1: a crash must not read as "something got worse".
    process.stderr.write(`compare: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 2;
  }
}
