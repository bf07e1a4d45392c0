// npm run fuzz -- [--runs N] [--seconds S] [--seed N] [target ...]
// Long fuzzing runs, one target at a time: every native target (libFuzzer) and
// TypeScript target (seeded mutations) by default, or the ones named. New
// coverage is merged into fuzz/corpus/<target>/; a crash is saved in
// fuzz/regressions/<target>/, to be kept as a regression case.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildNative, inputs, NATIVE_TARGETS, ROOT, runFuzzer } from './native.js';
import { runTsTarget } from './ts/target.js';
import { TS_TARGETS } from './ts/targets.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { runs: { type: 'string' }, seconds: { type: 'string' }, seed: { type: 'string' } },
});
const native = Object.keys(NATIVE_TARGETS);
const ts = TS_TARGETS.map((t) => t.name);
const chosen = positionals.length > 0 ? positionals : [...native, ...ts];
const unknown = chosen.filter((t) => !native.includes(t) && !ts.includes(t));
if (unknown.length > 0) {
  console.error(`unknown fuzz target ${unknown.join(', ')}; the targets are ${[...native, ...ts].join(', ')}`);
  process.exit(2);
}
const number = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} ${v}: want a whole number`);
    process.exit(2);
  }
  return n;
};
const runs = number(values.runs, 'runs');
const seconds = number(values.seconds, 'seconds');
const seed = number(values.seed, 'seed') ?? Date.now() % 2 ** 31;
const dir = (kind: string, t: string) => join(ROOT, 'fuzz', kind, t);
const report = (t: string, r: { executions: number; seconds: number }) =>
  console.log(`${t}: ${r.executions} executions in ${r.seconds.toFixed(0)} s (${Math.round(r.executions / r.seconds)}/s)`);

const binaries = await buildNative(chosen.filter((t) => native.includes(t)));
for (const t of chosen) {
  if (native.includes(t)) {
    const regressions = inputs(dir('regressions', t));
    if (regressions.length > 0) await runFuzzer(binaries[t]!, regressions);
    mkdirSync(dir('regressions', t), { recursive: true });
    const work = mkdtempSync(join(tmpdir(), `tundra-fuzz-${t}-`));
    try {
      const limit = seconds !== undefined ? [`-max_total_time=${seconds}`] : [`-runs=${runs ?? 10_000_000}`];
      console.log(`${t}: ${binaries[t]} ${work} ${dir('corpus', t)} ${limit.join(' ')} -seed=${seed}`);
      report(t, await runFuzzer(binaries[t]!, [work, dir('corpus', t), ...limit, `-seed=${seed}`, `-artifact_prefix=${dir('regressions', t)}/`], true));
      await runFuzzer(binaries[t]!, ['-merge=1', dir('corpus', t), work]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  } else {
    const target = TS_TARGETS.find((x) => x.name === t)!;
    console.log(`${t}: ${runs ?? 1_000_000} runs, seed ${seed}`);
    report(t, runTsTarget(target, {
      runs: runs ?? 1_000_000, seed, corpusDir: dir('corpus', t), regressionsDir: dir('regressions', t), crashDir: dir('regressions', t),
    }));
  }
}
