// Segmentation offload throughput: native offloadSplit / offloadCoalesce vs the TypeScript
// twins (the test oracles). Run: node dist/bench/micro/offload.bench.js
//
// Split: one 64 KiB super-packet per call (as tunReadVnet does), TCPv4 at MSS 1380
// (47 segments) and UDPv4 with gso_size 1380. Coalesce: a write batch of 94 such segments
// of one flow, which becomes 2 super-packets; the batch is restored before every iteration
// (outside tinybench's timed window). GB/s counts payload bytes, 10^9 per second.
import { cpus } from 'node:os';
import { Bench, type Task } from 'tinybench';
import { nativeCoalesce, nativeSplit } from '../../src/offload/native.js';
import { COALESCE_TCP, COALESCE_TRUSTED, COALESCE_UDP } from '../../src/offload/coalesce.js';
import { splitPacket } from '../../reference/offload/split.js';
import { coalescePackets } from '../../reference/offload/coalesce.js';
import { type L4Fields, buildPacket, ipv4, layoutBatch, randomBytes, superPacket } from '../../test/helpers/offload-packets.js';
import { prng } from '../../test/helpers/prng.js';
import { emit, taskResult, type Result } from './report.js';

const MSS = 1380;
const SEGMENTS = 47; // 40 + 47 × 1380 = 64900 bytes
const rand = prng(1);
const ip = { family: 4 as const, src: ipv4('10.0.0.1'), dst: ipv4('10.0.0.2'), id: 1, df: true };
const flows: [string, L4Fields, number][] = [
  ['TCPv4', { proto: 'tcp', sport: 40000, dport: 5201, seq: 1, ack: 1, flags: 0x10, window: 502 }, 40],
  ['UDPv4', { proto: 'udp', sport: 40000, dport: 51820 }, 28],
];

interface Row {
  op: string;
  flow: string;
  impl: string;
  bytes: number; // payload bytes per iteration
  superPackets: number; // super-packets per iteration (made by coalesce, taken by split)
}

const bench = new Bench({ time: 700, warmupTime: 150, warmupIterations: 4, iterations: 8, retainSamples: true });
const rows = new Map<string, Row>();
function add(row: Row, fn: () => unknown, opts?: { beforeEach?: () => void }): void {
  const name = `${row.op} ${row.flow} ${row.impl}`;
  rows.set(name, row);
  bench.add(name, fn, opts);
}

type Split = typeof splitPacket;
type Coalesce = typeof coalescePackets;
const impls: [string, Split, Coalesce][] = [
  ['native', nativeSplit, nativeCoalesce],
  ['twin (TS)', splitPacket, coalescePackets],
];

for (const [flow, l4, hdrLen] of flows) {
  const payload = randomBytes(rand, SEGMENTS * MSS);

  // Split.
  const input = superPacket(ip, l4, payload, MSS);
  const slot = hdrLen + MSS;
  const data = new Uint8Array(64 * slot);
  const offsets = new Uint32Array(64).map((_, j) => j * slot);
  const lengths = new Uint32Array(64);
  for (const [impl, split] of impls) {
    add({ op: 'split', flow, impl, bytes: payload.length, superPackets: 1 }, () => {
      if (split(input, data, offsets, lengths, 64, slot) !== SEGMENTS) throw new Error('split failed');
    });
  }

  // Coalesce: 2 × 47 segments of one flow.
  const packets: Uint8Array[] = [];
  for (let i = 0; i < 2 * SEGMENTS; i++) {
    const piece = payload.subarray((i % SEGMENTS) * MSS, (i % SEGMENTS + 1) * MSS);
    const seg = l4.proto === 'tcp' ? { ...l4, seq: 1 + i * MSS } : l4;
    packets.push(buildPacket({ ...ip, id: i }, seg, piece));
  }
  const batch = layoutBatch(packets, 65535);
  const pristine = batch.data.slice();
  const pristineOffsets = batch.offsets.slice();
  const pristineLengths = batch.lengths.slice();
  const flags = l4.proto === 'tcp' ? COALESCE_TCP : COALESCE_UDP;
  const restore = (): void => {
    batch.data.set(pristine);
    batch.offsets.set(pristineOffsets);
    batch.lengths.set(pristineLengths);
  };
  // Verifying each packet's checksums (the tests' mode), and trusted (the daemon's: opened packets are not summed again).
  for (const [impl, , coalesce] of impls) {
    for (const [op, f] of [['coalesce', flags], ['coalesce trusted', flags | COALESCE_TRUSTED]] as const) {
      add(
        { op, flow, impl, bytes: 2 * payload.length, superPackets: 2 },
        () => {
          if (coalesce(batch.data, batch.offsets, batch.lengths, batch.count, 65535, f) !== 2) throw new Error('coalesce failed');
        },
        { beforeEach: restore },
      );
    }
  }
}

const started = performance.now();
const tasks: Task[] = bench.runSync();
const elapsed = (performance.now() - started) / 1000;

const table: string[][] = [['op', 'flow', 'implementation', 'GB/s', 'super-packets/s', 'segments/s']];
const results: Result[] = [];
for (const task of tasks) {
  const row = rows.get(task.name)!;
  const r = task.result;
  const res = taskResult(task, {
    group: 'offload', impl: row.impl === 'native' ? 'native' : 'twin', test: row.op === 'split' ? 'GSO split' : row.op === 'coalesce' ? 'GRO coalesce' : 'GRO coalesce, trusted',
    params: { flow: row.flow, mss: MSS, segments: SEGMENTS * row.superPackets },
    metric: 'bytes_per_s', unit: 'B/s', perIteration: row.bytes,
  });
  if (res !== undefined) results.push(res);
  if (r.state !== 'completed') {
    table.push([row.op, row.flow, row.impl, r.state, r.state === 'errored' ? r.error.message : '', '']);
    continue;
  }
  // period = mean time of one iteration in ms (see aead.bench.ts).
  const perSec = 1000 / r.period;
  table.push([
    row.op,
    row.flow,
    row.impl,
    ((perSec * row.bytes) / 1e9).toFixed(2),
    Math.round(perSec * row.superPackets).toLocaleString('en-US'),
    Math.round(perSec * row.superPackets * SEGMENTS).toLocaleString('en-US'),
  ]);
}

const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
const numeric = [false, false, false, true, true, true];
const line = (r: string[]): string =>
  r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; 64 KiB super-packets, MSS ${MSS}, ${SEGMENTS} segments each`);
console.log(line(table[0]!));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of table.slice(1)) console.log(line(r));
console.log(`(${elapsed.toFixed(1)} s)`);
emit('offload', results);
