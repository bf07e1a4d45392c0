// `npm run bench` (as root): WireGuard implementations end to end, side by side, in
// network namespaces on this machine. Every step brings one topology up with one
// implementation at both tunnel ends, runs the loads through it and takes it down; the
// steps are interleaved over rounds (bench/e2e/plan.ts). It writes report.json (schema
// tundra-bench/1, what bench/compare reads), report.md and chart.svg, and the logs of
// every step, into one directory, and prints the Markdown table.
//
// Exit status: 0 every cell ran or was skipped for a reason outside the implementations
// (a missing tool: said, with its Debian package); 1 an implementation or a load failed
// (said, and in the report's skipped list); 2 bad usage or this machine cannot run it at
// all; 130/143 interrupted (namespaces and daemons removed, the partial reports written).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newRun, planOrStatus } from '../cli.js';
import { cellKey, runInfo, SCHEMA, summarize, type Report, type Result, type Skipped } from '../report-schema.js';
import { ImplFailed, Unavailable } from './errors.js';
import { implProblem } from './impls.js';
import { expectedSeconds, loadTools, runLoad, type LoadName, type Measurement } from './loads.js';
import { markdownReport } from './markdown.js';
import { parsePlan, reverseFor, SETUP_SECONDS, stepSeconds, steps, USAGE, type Plan, type Step } from './plan.js';
import { svgChart } from './svg.js';
import { missingToolMessage, which } from './tools.js';
import { downAllSync, Topology } from './topology.js';

/** What every run needs before any cell: the namespaces' and the tunnels' own tools. */
const BASE_TOOLS = ['ip', 'wg', 'ping'];

/** One line on stderr, rewritten in place on a terminal: what runs, which of how many, time left. */
class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly began = Date.now();
  private expectedDone = 0;
  private shown = '';

  constructor(private readonly total: number, private readonly expectedTotal: number) {}

  /** `expectedBefore`: the seconds the steps and loads before this one were expected to take. */
  show(step: Step, what: string, expectedBefore: number): void {
    this.expectedDone = expectedBefore;
    const line = `[${String(step.index).padStart(String(this.total).length)}/${this.total}] round ${step.round} · ${step.topology} · ${step.impl.label} · ${what} · ${this.left()} left`;
    if (line === this.shown) return;
    this.shown = line;
    if (this.tty) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${line}\n`);
  }

  /** A message of its own, above the progress line. */
  say(message: string): void {
    process.stderr.write(this.tty ? `\r\x1b[K${message}\n${this.shown}` : `${message}\n`);
  }

  done(): void {
    if (this.tty && this.shown !== '') process.stderr.write('\r\x1b[K');
  }

  /** The expected time left, scaled by how the run has kept to its expectations so far. */
  private left(): string {
    const elapsed = (Date.now() - this.began) / 1000;
    // Blended with the plan's own estimate until enough of the run has passed to judge.
    const pace = (elapsed + 60) / (this.expectedDone + 60);
    const s = Math.max(0, Math.round((this.expectedTotal - this.expectedDone) * pace));
    return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
  }
}

/** The samples of every (cell, impl), in the order first measured. */
class Results {
  private readonly cells = new Map<string, Omit<Result, 'median' | 'min' | 'max'>>();
  readonly skipped: Skipped[] = [];
  failures = 0;

  add(group: string, impl: string, m: Measurement): void {
    const key = `${cellKey({ group, ...m })}\0${impl}`;
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = { group, impl, test: m.test, metric: m.metric, unit: m.unit, better: m.better, samples: [] };
      if (m.params !== undefined) cell.params = m.params;
      this.cells.set(key, cell);
    }
    cell.samples.push(m.value);
  }

  /** Said once per (group, impl, test, reason): a cell skips the same way in every round. */
  skip(s: Skipped): boolean {
    if (this.skipped.some((o) => o.group === s.group && o.impl === s.impl && o.test === s.test && o.reason === s.reason)) return false;
    this.skipped.push(s);
    return true;
  }

  list(): Result[] {
    return [...this.cells.values()].map((c) => ({ ...c, ...summarize(c.samples) }));
  }
}

function writeReports(dir: string, report: Report): void {
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, 'report.md'), markdownReport(report));
  writeFileSync(join(dir, 'chart.svg'), svgChart(report));
}

async function runStep(plan: Plan, step: Step, runId: string, dir: string, results: Results, loads: LoadName[],
  progress: Progress, expectedBefore: number): Promise<void> {
  const group = step.topology;
  const impl = step.impl.label;
  const logDir = join(dir, 'logs', `r${step.round}-${group}-${impl}`);
  progress.show(step, 'setting up', expectedBefore);
  let topology: Topology;
  try {
    topology = await Topology.up({
      name: step.topology, runId, impl: step.impl, logDir, startTimeoutMs: plan.startTimeoutMs, log: (l) => progress.say(l),
    });
  } catch (e) {
    if (!(e instanceof Unavailable || e instanceof ImplFailed)) throw e;
    if (e instanceof ImplFailed) results.failures++;
    if (results.skip({ group, impl, reason: e.message })) progress.say(`${group} · ${impl}: skipped: ${e.message}`);
    return;
  }
  try {
    let expected = expectedBefore + SETUP_SECONDS;
    for (const load of loads) {
      progress.show(step, load, expected);
      expected += expectedSeconds(load, plan.seconds);
      try {
        const r = await runLoad(load, topology, { seconds: plan.seconds, reverse: reverseFor(step.topology), logDir });
        for (const m of r.measurements) results.add(group, impl, m);
        for (const s of r.skipped) {
          if (results.skip({ group, impl, test: s.test, reason: s.reason })) progress.say(`${group} · ${impl} · ${s.test}: skipped: ${s.reason}`);
        }
      } catch (e) {
        if (e instanceof Unavailable) {
          if (results.skip({ group, impl, test: load, reason: e.message })) progress.say(`${group} · ${impl} · ${load}: skipped: ${e.message}`);
          continue;
        }
        results.failures++;
        const reason = `round ${step.round}: ${(e as Error).message}`;
        results.skip({ group, impl, test: load, reason });
        progress.say(`${group} · ${impl} · ${load}: FAILED: ${reason}`);
        if (e instanceof ImplFailed) return; // the daemon is gone: the rest of the step cannot run
      }
    }
  } finally {
    await topology.down();
  }
}

async function main(argv: string[]): Promise<number> {
  const plan = planOrStatus(argv, parsePlan, USAGE, 'bench', 'the end-to-end benchmark makes network namespaces and needs root: run it with sudo (npm run bench:micro needs no root)');
  if (typeof plan === 'number') return plan;
  const missing = BASE_TOOLS.filter((t) => which(t) === null);
  if (missing.length > 0) {
    for (const t of missing) process.stderr.write(`bench: ${missingToolMessage(t)}\n`);
    return 2;
  }

  const { runId, started, dir } = newRun('e2e', plan.out);
  const results = new Results();
  const report = (): Report => ({
    schema: SCHEMA,
    kind: 'e2e',
    run: { ...runInfo(runId, argv.length === 0 ? 'npm run bench' : ['npm run bench --', ...argv].join(' ')), started: started.toISOString() },
    ...(plan.reference === undefined ? {} : { reference: plan.reference }),
    results: results.list(),
    ...(results.skipped.length === 0 ? {} : { skipped: results.skipped }),
  });

  // Cells that cannot run at all are said once, up front, and left out of every round
  // ('*': in every topology, or for every implementation).
  const impls = plan.impls.filter((impl) => {
    const problem = implProblem(impl);
    if (problem === undefined) return true;
    results.skip({ group: '*', impl: impl.label, reason: problem });
    process.stderr.write(`bench: skipping ${problem}\n`);
    return false;
  });
  const loads = plan.loads.filter((load) => {
    const absent = loadTools(load).filter((t) => which(t) === null);
    if (absent.length === 0) return true;
    const reason = absent.map(missingToolMessage).join('; ');
    results.skip({ group: '*', impl: '*', test: load, reason });
    process.stderr.write(`bench: skipping ${load}: ${reason}\n`);
    return false;
  });
  const todo = steps({ ...plan, impls });
  const perStep = stepSeconds(plan, loads);
  const progress = new Progress(todo.length, todo.length * perStep);
  // Ctrl-C, a kill, or an error anywhere: nothing of this run stays behind.
  process.on('exit', downAllSync);
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      downAllSync();
      progress.done();
      writeReports(dir, report());
      process.stderr.write(`bench: interrupted; run ${runId}'s namespaces and daemons are removed; what was measured so far is in ${dir}\n`);
      process.exit(status);
    });
  }

  process.stderr.write(`bench: run ${runId}: ${todo.length} steps (${plan.rounds} rounds × ${plan.topologies.join(', ')} × ${impls.map((i) => i.label).join(', ')}), ` +
    `loads ${loads.join(', ')}, ${plan.seconds} s each; about ${Math.ceil((todo.length * perStep) / 60)} min; logs in ${dir}\n`);

  for (const step of todo) {
    await runStep(plan, step, runId, dir, results, loads, progress, (step.index - 1) * perStep);
  }
  progress.done();

  const final = report();
  writeReports(dir, final);
  process.stdout.write(`${markdownReport(final)}\n`);
  process.stdout.write(`reports: ${join(dir, 'report.json')}, report.md, chart.svg (logs in ${join(dir, 'logs')})\n`);
  if (results.failures > 0) process.stderr.write(`bench: ${results.failures} failure(s); see the skipped list above and the logs\n`);
  return results.failures > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
