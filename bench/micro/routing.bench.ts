// Allowed-IPs lookup with 10 000 prefixes: the compiled RouteTable (an Int32Array trie)
// the data path routes every packet with, IPv4 and IPv6 apart. The prefixes are random
// (lengths /8../32 and /16../128, seeded, so every run builds the same table) over 100
// peers; each iteration looks up 1024 addresses, half inside some prefix (the rest may
// or may not match, as traffic from the internet would). Run: node dist/bench/micro/routing.bench.js
import { cpus } from 'node:os';
import { Bench } from 'tinybench';
import { AllowedIPs } from '../../src/routing/allowed-ips.js';
import { maskPrefix, type AddressFamily, type Prefix } from '../../src/routing/prefix.js';
import { fillRandom, prng, randInt } from '../../test/helpers/prng.js';
import { emit, taskResult, type Result } from './report.js';

const PREFIXES = 10_000;
const PEERS = 100;
const LOOKUPS = 1024;
const rand = prng(9);

const table = new AllowedIPs<number>();
const byFamily: Record<AddressFamily, Prefix[]> = { 4: [], 6: [] };
for (const family of [4, 6] as const) {
  const len = family === 4 ? 4 : 16;
  const [minBits, maxBits] = family === 4 ? [8, 32] : [16, 128];
  // Random prefixes can repeat; insert until there are PREFIXES distinct ones.
  const seen = new Set<string>();
  for (let tries = 0; seen.size < PREFIXES && tries < 10 * PREFIXES; tries++) {
    const p = maskPrefix({ family, address: fillRandom(new Uint8Array(len), rand), bits: minBits + randInt(rand, maxBits - minBits + 1) });
    const key = `${p.address.join('.')}/${p.bits}`;
    if (seen.has(key)) continue;
    seen.add(key);
    byFamily[family].push(p);
    table.insert(p, seen.size % PEERS);
  }
  if (seen.size !== PREFIXES) throw new Error(`bench: only ${seen.size} IPv${family} prefixes`);
}
const routes = table.compile((peer) => peer);

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

let sink = 0;
const bench = new Bench({ time: 700, warmupTime: 100, warmupIterations: 8, retainSamples: true });
bench
  .add('IPv4', () => {
    for (let i = 0; i < LOOKUPS; i++) sink += routes.lookupV4(v4, i * 4);
  })
  .add('IPv6', () => {
    for (let i = 0; i < LOOKUPS; i++) sink += routes.lookupV6(v6, i * 16);
  });
bench.runSync();
if (sink === 0.5) console.log(sink); // keeps the lookups observable

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; ${PREFIXES} prefixes per family, ${PEERS} peers, ` +
  `${routes.words.length * 4} B table; matched ${hits4} (v4) and ${hits6} (v6) of ${LOOKUPS}`);
const results: Result[] = [];
for (const task of bench.tasks) {
  const res = taskResult(task, {
    group: 'routing', impl: 'route-table', test: `allowed-IPs lookup ${task.name}`, params: { prefixes: PREFIXES, peers: PEERS },
    metric: 'ops_per_s', unit: 'lookups/s', perIteration: LOOKUPS,
  });
  if (res === undefined) throw new Error(`${task.name} did not complete`);
  results.push(res);
}
emit('routing', results);
