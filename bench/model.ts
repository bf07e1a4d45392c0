// bench/model.ts — what tundra's queue-worker design carries on machines with more
// cores than this one, from costs measured here:
//   node dist/bench/model.js --summary S.tsv --label L --queues Q [--pool-label LP] [--one-core S1.tsv]
//
// Inputs, per byte received, from a bench/e2e.sh summary S (both tunnel ends and
// iperf3 on one machine; L is a tundra column, run with Q queue workers):
//   S  the sending daemon's CPU, S_main its main thread's (the control plane);
//   D  both daemons' CPU; M the whole machine's busy time.
// So W_send = S − S_main is the sending queue worker's CPU per byte, W_recv ≈ D − S
// the receiving daemon's (its main thread is as idle), and M − D the rest (iperf3,
// the kernel's TCP and veth work). Measured here in-process: A, the native AEAD per
// byte at 64 × 1420 B, what a crypto pool takes off a queue worker. With LP, a column
// of the same run with a crypto pool: O = S(LP) − S(L), what the pool's hand-offs
// add per byte (the pool's threads are in the sending daemon's CPU too).
//
// The model: a flow is pinned to one queue on each side (one TUN queue, one socket,
// one thread), so one thread's CPU bounds it; flows on different queues run side by
// side; and all the work shares the N cores:
//   one flow:       T = min(1 / W_send, 1 / W_recv, N / M)
//   F ≥ Q flows:    T = min(Q / W_send, Q / W_recv, N / M)
//   with the pool:  the queue workers shed A and, at worst, carry all of O:
//                   W' = W − A + O, and the machine M' = M + 2·O (both ends)
// The check: the model of the measured test (tcp1: one flow; tcp4: four flows on
// min(4, Q) queues) at N = 2 against S's own throughput, and at N = 1 against a run
// of the same on one core (`taskset -c 0 bench/e2e.sh …`, S1), if given.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { aeadBackend } from '../src/crypto/backends.js';
import { DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE } from '../src/crypto/native-aead.js';

/** The batch the AEAD is measured on: 64 MTU-sized packets (a UDP GSO run). */
const BATCH_PACKETS = 64;
const PACKET_BYTES = 1420;
const CORES = [1, 2, 4, 8, 16];

function table(path: string): Map<string, Map<string, number>> {
  const [head, ...rows] = readFileSync(path, 'utf8').trim().split('\n').map((l) => l.split('\t'));
  const labels = head!.slice(1);
  const out = new Map<string, Map<string, number>>();
  for (const label of labels) out.set(label, new Map());
  for (const row of rows) labels.forEach((label, i) => out.get(label)!.set(row[0]!, Number.parseFloat(row[i + 1]!)));
  return out;
}

function aeadNsPerByte(): number {
  const { seal } = aeadBackend('native');
  const data = new Uint8Array(BATCH_PACKETS * 2048);
  const keys = new Uint8Array(64).fill(7);
  const desc = new Uint32Array(BATCH_PACKETS * DESC_STRIDE);
  for (let i = 0; i < BATCH_PACKETS; i++) {
    desc[i * DESC_STRIDE + DESC_OFFSET] = i * 2048 + 16;
    desc[i * DESC_STRIDE + DESC_LENGTH] = PACKET_BYTES;
    desc[i * DESC_STRIDE + DESC_KEY_INDEX] = 1;
    desc[i * DESC_STRIDE + DESC_COUNTER_LO] = i;
  }
  const bench = new Bench({ time: 500 });
  bench.add('seal', () => void seal(data, keys, desc, BATCH_PACKETS));
  const [task] = bench.runSync();
  const r = task!.result;
  if (r.state !== 'completed') throw new Error(`AEAD benchmark ${r.state}`);
  // period: the mean time of one iteration, ms.
  return (r.period * 1e6) / (BATCH_PACKETS * PACKET_BYTES);
}

const mbit = (bytesPerNs: number): number => bytesPerNs * 8000;
const fmt = (x: number): string => x.toFixed(0).padStart(7);

const { values: args } = parseArgs({
  options: { summary: { type: 'string' }, label: { type: 'string' }, queues: { type: 'string' }, 'pool-label': { type: 'string' }, 'one-core': { type: 'string' } },
});
const queues = Number(args.queues);
if (args.summary === undefined || args.label === undefined || !(queues >= 1)) {
  process.stderr.write('usage: node dist/bench/model.js --summary S.tsv --label L --queues Q [--pool-label LP] [--one-core S1.tsv]\n');
  process.exit(2);
}
const summary = table(args.summary);
const metric = (label: string, test: string, m: string): number => {
  const v = summary.get(label)?.get(`${test}_${m}`);
  if (v === undefined || Number.isNaN(v)) throw new Error(`${args.summary}: no ${test}_${m} for ${label}`);
  return v;
};
const oneCore = args['one-core'] === undefined ? undefined : table(args['one-core']).get(args.label);
const A = aeadNsPerByte();

for (const test of ['tcp1', 'tcp4'] as const) {
  const get = (m: string): number => metric(args.label!, test, m);
  const S = get('sender_ns_per_byte');
  const Smain = get('sender_main_ns_per_byte');
  const D = get('ns_per_byte');
  const M = get('machine_ns_per_byte');
  const Wsend = S - Smain;
  const Wrecv = D - S;
  const pool = args['pool-label'];
  const O = pool === undefined ? undefined : metric(pool, test, 'sender_ns_per_byte') - S;
  console.log(`\n${args.label} ${test}: W_send ${Wsend.toFixed(2)}, W_recv ${Wrecv.toFixed(2)}, main ${Smain.toFixed(2)}, rest ${(M - D).toFixed(2)}, ` +
    `machine ${M.toFixed(2)} ns/byte; AEAD ${A.toFixed(2)} ns/byte${O === undefined ? '' : `; pool overhead (${pool}) ${O.toFixed(2)} ns/byte`} (Mbit/s below)`);
  console.log(`cores  one flow  flows≥queues(Q=cores)${O === undefined ? '' : '  +pool: one flow  flows'}  measured`);
  for (const n of CORES) {
    const one = Math.min(1 / Wsend, 1 / Wrecv, n / M);
    const many = Math.min(n / Wsend, n / Wrecv, n / M);
    const poolCells = O === undefined ? '' : (() => {
      const m2 = M + 2 * O;
      const poolOne = Math.min(1 / (Wsend - A + O), 1 / (Wrecv - A + O), n / m2);
      const poolMany = Math.min(n / (Wsend - A + O), n / (Wrecv - A + O), n / m2);
      return `  ${fmt(mbit(poolOne)).padStart(15)}  ${fmt(mbit(poolMany))}`;
    })();
    const q = test === 'tcp1' ? 1 : Math.min(4, queues);
    const check = Math.min(q / Wsend, q / Wrecv, n / M);
    const measured = n === 2 ? summary.get(args.label)!.get(`${test}_mbit_s`) : n === 1 ? oneCore?.get(`${test}_mbit_s`) : undefined;
    console.log(`${String(n).padStart(5)}  ${fmt(mbit(one))}  ${fmt(mbit(many)).padStart(21)}${poolCells}` +
      `  ${measured === undefined ? '' : `${measured.toFixed(0)} (model of this test: ${mbit(check).toFixed(0)})`}`);
  }
}
