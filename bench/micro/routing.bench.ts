// Allowed-IPs lookup with 100 000 prefixes per family: the compiled RouteTable (an
// Int32Array trie) the data path routes every packet with, IPv4 and IPv6 apart. The
// prefixes are random (lengths /8../32 and /16../128, seeded, so every run builds the same
// table) over 10 000 peers; each iteration looks up 1024 addresses, half inside some
// prefix (the rest may or may not match, as traffic from the internet would). Also timed:
// building the table (the inserts and the compile), and checked: the lookups allocate
// nothing (a per-packet allocation would be garbage at line rate). Run: node dist/bench/micro/routing.bench.js
import { cpus } from 'node:os';
import { constants, PerformanceObserver, type NodeGCPerformanceDetail } from 'node:perf_hooks';
import { Bench } from 'tinybench';
import { AllowedIPs } from '../../src/routing/allowed-ips.js';
import { maskPrefix, type AddressFamily, type Prefix } from '../../src/routing/prefix.js';
import { fillRandom, prng, randInt } from '../../test/helpers/prng.js';
import { emit, result, taskResult, type Result } from './report.js';

const PREFIXES = 100_000;
const PEERS = 10_000;
const LOOKUPS = 1024;
const ALLOC_ROUNDS = 1000; // ~1 M lookups per family: 16 B each would be 16 MB, past any new space
const rand = prng(9);

const byFamily: Record<AddressFamily, Prefix[]> = { 4: [], 6: [] };
for (const family of [4, 6] as const) {
  const len = family === 4 ? 4 : 16;
  const [minBits, maxBits] = family === 4 ? [8, 32] : [16, 128];
  // Random prefixes can repeat (short IPv4 ones often); draw until there are PREFIXES distinct ones.
  const seen = new Set<string>();
  for (let tries = 0; seen.size < PREFIXES && tries < 10 * PREFIXES; tries++) {
    const p = maskPrefix({ family, address: fillRandom(new Uint8Array(len), rand), bits: minBits + randInt(rand, maxBits - minBits + 1) });
    const key = `${p.address.join('.')}/${p.bits}`;
    if (seen.has(key)) continue;
    seen.add(key);
    byFamily[family].push(p);
  }
  if (seen.size !== PREFIXES) throw new Error(`bench: only ${seen.size} IPv${family} prefixes`);
}
// Timed apart from drawing the prefixes: what a daemon pays for a config this big.
const buildStart = performance.now();
const table = new AllowedIPs<number>();
for (const family of [4, 6] as const) byFamily[family].forEach((p, i) => table.insert(p, i % PEERS));
const routes = table.compile((peer) => peer);
const buildMs = performance.now() - buildStart;

// Lookup addresses back to back: the even ones inside a random inserted prefix.
function addresses(family: AddressFamily): Uint8Array {
  const len = family === 4 ? 4 : 16;
  const buf = fillRandom(new Uint8Array(LOOKUPS * len), rand);
  for (let i = 0; i < LOOKUPS; i += 2) {
    const p = byFamily[family][randInt(rand, PREFIXES)]!;
    for (let b = 0; b < len; b++) {
      const keep = Math.max(0, Math.min(8, p.bits - 8 * b)); // network bits in this byte
      const mask = (0xff00 >>> keep) & 0xff;
      buf[i * len + b] = (p.address[b]! & mask) | (buf[i * len + b]! & ~mask & 0xff);
    }
  }
  return buf;
}
const v4 = addresses(4);
const v6 = addresses(6);
let hits4 = 0;
let hits6 = 0;
for (let i = 0; i < LOOKUPS; i++) {
  if (routes.lookupV4(v4, i * 4) >= 0) hits4++;
  if (routes.lookupV6(v6, i * 16) >= 0) hits6++;
}
// The planted half must match: a table that matched nothing would time only misses.
if (hits4 < LOOKUPS / 2 || hits6 < LOOKUPS / 2) throw new Error(`bench: only ${hits4}/${hits6} of ${LOOKUPS} lookups matched`);

// The sum stays a small integer: a module-level double is boxed on every store, which
// would be the bench allocating, not the lookups.
let sink = 0;
const lookups4 = (): void => {
  let s = 0;
  for (let i = 0; i < LOOKUPS; i++) s += routes.lookupV4(v4, i * 4);
  sink = (sink + s) | 0;
};
const lookups6 = (): void => {
  let s = 0;
  for (let i = 0; i < LOOKUPS; i++) s += routes.lookupV6(v6, i * 16);
  sink = (sink + s) | 0;
};

// Allocation-free, checked on the functions that are timed: without --expose-gc there is
// no forced collection, so count the scavenges while they run ~1 M times (garbage fills
// the new space and scavenges, however soon it dies) and the heap they leave behind (what
// survives, e.g. in old space). Warmed first, so the JIT's own allocations are done.
for (let r = 0; r < 50; r++) {
  lookups4();
  lookups6();
}
let scavenges = 0;
const gcs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if ((e as { detail?: NodeGCPerformanceDetail }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
});
gcs.observe({ entryTypes: ['gc'] });
await new Promise((resolve) => setTimeout(resolve, 50)); // GCs from the setup are reported before the count starts
scavenges = 0;
const heapBefore = process.memoryUsage().heapUsed;
for (let r = 0; r < ALLOC_ROUNDS; r++) {
  lookups4();
  lookups6();
}
const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
await new Promise((resolve) => setTimeout(resolve, 50)); // GC entries arrive asynchronously
gcs.disconnect();
if (scavenges > 0 || heapGrowth > 1 << 20) {
  throw new Error(`bench: lookups allocate: ${scavenges} scavenges and ${heapGrowth} B heap growth over ` +
    `${ALLOC_ROUNDS * LOOKUPS} lookups per family`);
}

const bench = new Bench({ time: 700, warmupTime: 100, warmupIterations: 8, retainSamples: true });
bench.add('IPv4', lookups4).add('IPv6', lookups6);
bench.runSync();
if (sink === 0.5) console.log(sink); // keeps the lookups observable

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; ${PREFIXES} prefixes per family, ${PEERS} peers, ` +
  `${routes.words.length * 4} B table built in ${buildMs.toFixed(0)} ms; matched ${hits4} (v4) and ${hits6} (v6) of ${LOOKUPS}; ` +
  `${ALLOC_ROUNDS * LOOKUPS} lookups per family: ${scavenges} scavenges, ${heapGrowth} B heap growth`);
const params = { prefixes: PREFIXES, peers: PEERS };
const results: Result[] = [];
for (const task of bench.tasks) {
  const res = taskResult(task, {
    group: 'routing', impl: 'route-table', test: `allowed-IPs lookup ${task.name}`, params,
    metric: 'ops_per_s', unit: 'lookups/s', perIteration: LOOKUPS,
  });
  if (res === undefined) throw new Error(`${task.name} did not complete`);
  results.push(res);
}
results.push(result({
  group: 'routing', impl: 'route-table', test: 'allowed-IPs build (insert IPv4+IPv6, compile)', params,
  metric: 'build_ms', unit: 'ms', better: 'lower', samples: [buildMs],
}));
emit('routing', results);
