// `npm run bench:micro`: every micro-benchmark in sequence, one process each (so one
// bench's JIT state and workers do not skew the next), all adding their rows to one
// report, bench-out/micro-<time>.json unless --json PATH says otherwise.
//   node dist/bench/micro/run.js [--json PATH] [--only NAME,NAME] [ARGS for the benches, e.g. --crypto node]
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { jsonPathFrom } from './report.js';

export const BENCHES = ['aead', 'pool', 'ring', 'stages', 'handshake', 'offload', 'routing', 'messages'];

const args = process.argv.slice(2);
let only: string[] | undefined;
const rest: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--only') only = (args[++i] ?? '').split(',').filter((s) => s !== '');
  else if (a === '--json') i++;
  else if (!a.startsWith('--json=')) rest.push(a);
}
const unknown = (only ?? []).filter((n) => !BENCHES.includes(n));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; the benches: ${BENCHES.join(', ')}`);
  process.exit(2);
}
const path = jsonPathFrom(args) ?? `bench-out/micro-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
mkdirSync('bench-out', { recursive: true });

const failed: string[] = [];
for (const name of only ?? BENCHES) {
  console.log(`\n=== ${name} ===`);
  const file = fileURLToPath(new URL(`./${name}.bench.js`, import.meta.url));
  // TUNDRA_BENCH_JSON, not --json: the benches' own arguments stay theirs.
  const r = spawnSync(process.execPath, [file, ...rest], { stdio: 'inherit', env: { ...process.env, TUNDRA_BENCH_JSON: path } });
  if (r.status !== 0) failed.push(`${name} (${r.signal ?? `exit ${r.status}`})`);
}
console.log(`\nreport: ${path}`);
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exit(1);
}
