// bench/model.ts — `node dist/bench/model.js SUMMARY.tsv LABEL QUEUES [SUMMARY-1CORE.tsv]`:
// what tundra's queue-worker design carries on machines with more cores than this
// one, from costs measured here.
//
// Inputs, per byte received, from a bench/e2e.sh summary (both tunnel ends and
// iperf3 on one machine; LABEL is the tundra column, run with QUEUES queue workers):
//   S  the sending daemon's CPU, S_main its main thread's (the control plane);
//   D  both daemons' CPU; M the whole machine's busy time.
// So W_send = S − S_main is the sending queue worker's CPU per byte, W_recv ≈ D − S
// the receiving daemon's (its main thread is as idle), R = M − D the rest (iperf3,
// the kernel's TCP and veth work). And, measured here in-process: A, native AEAD
// per byte at 64 × 1420 B (what a crypto pool would take off a queue worker).
//
// The model: a flow is pinned to one queue on each side (one TUN queue, one socket,
// one thread), so one thread's CPU bounds it; flows on different queues run side by
// side; and all the work shares the cores:
//   one flow:       T = min(1 / W_send, 1 / W_recv, N / M)
//   F ≥ Q flows:    T = min(Q / W_send, Q / W_recv, N / M),   Q queues per side
//   with a crypto pool (not built yet; what it would buy): a queue worker sheds A
//   and pays a hand-off H per batch each way:  W' = W − A + 2H/B, B bytes a batch.
// The check: the model for the measured test (tcp1: one flow; tcp4: four flows on
// min(4, QUEUES) queues) at N = 2 against the summary's own throughput, and at N = 1
// against a run of the same on one core (`taskset -c 0 bench/e2e.sh …`), if given.
import { readFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { aeadBackend } from '../src/crypto/backends.js';
import { DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE } from '../src/crypto/native-aead.js';

/** Packets and bytes of the batch the model assumes (BATCH_SIZE packets of a 1420 MTU would be 128; GSO runs are 64). */
const BATCH_PACKETS = 64;
const PACKET_BYTES = 1420;
/**
 * Hand-off cost per batch between two threads, µs: a ring push and a futex wake-up
 * (bench/ring.bench.ts: worker-to-worker ping-pong round trip 2.7–17 µs at spin 100,
 * so 1.5–8.5 µs one way; the upper end, as this machine is loaded when it matters).
 */
const HANDOFF_US = 8.5;
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

const [summaryPath, label, queuesText, oneCorePath] = process.argv.slice(2);
const queues = Number(queuesText);
if (summaryPath === undefined || label === undefined || !(queues >= 1)) {
  process.stderr.write('usage: node dist/bench/model.js SUMMARY.tsv LABEL QUEUES [SUMMARY-1CORE.tsv]\n');
  process.exit(2);
}
const column = table(summaryPath).get(label);
if (column === undefined) throw new Error(`${summaryPath} has no column ${label}`);
const oneCore = oneCorePath === undefined ? undefined : table(oneCorePath).get(label);
const A = aeadNsPerByte();
const H = (HANDOFF_US * 1000) / (BATCH_PACKETS * PACKET_BYTES);

for (const test of ['tcp1', 'tcp4'] as const) {
  const get = (m: string): number => {
    const v = column.get(`${test}_${m}`);
    if (v === undefined || Number.isNaN(v)) throw new Error(`${summaryPath}: no ${test}_${m} for ${label} (an e2e.sh from before the CPU split?)`);
    return v;
  };
  const S = get('sender_ns_per_byte');
  const Smain = get('sender_main_ns_per_byte');
  const D = get('ns_per_byte');
  const M = get('machine_ns_per_byte');
  const Wsend = S - Smain;
  const Wrecv = D - S;
  const R = M - D;
  console.log(`\n${label} ${test}: W_send ${Wsend.toFixed(2)}, W_recv ${Wrecv.toFixed(2)}, main ${Smain.toFixed(2)}, rest ${R.toFixed(2)}, ` +
    `machine ${M.toFixed(2)} ns/byte; AEAD ${A.toFixed(2)} ns/byte, hand-off ${H.toFixed(3)} ns/byte (Mbit/s below)`);
  console.log('cores  one flow  flows≥queues(Q=cores)  +pool: one flow  flows  measured');
  for (const n of CORES) {
    const one = Math.min(1 / Wsend, 1 / Wrecv, n / M);
    const many = Math.min(n / Wsend, n / Wrecv, n / M);
    // With a pool: each queue worker sheds its AEAD; the pool and the hand-offs take cores from the same N.
    const poolOne = Math.min(1 / (Wsend - A + 2 * H), 1 / (Wrecv - A + 2 * H), n / (M + 4 * H));
    const poolMany = Math.min(n / (M + 4 * H), many);
    const measured = n === 2 ? column.get(`${test}_mbit_s`) : n === 1 ? oneCore?.get(`${test}_mbit_s`) : undefined;
    const q = test === 'tcp1' ? 1 : Math.min(4, queues);
    const check = Math.min(q / Wsend, q / Wrecv, n / M);
    console.log(`${String(n).padStart(5)}  ${fmt(mbit(one))}  ${fmt(mbit(many)).padStart(21)}  ${fmt(mbit(poolOne)).padStart(15)}  ${fmt(mbit(poolMany))}` +
      `  ${measured === undefined ? '' : `${measured.toFixed(0)} (model of this test: ${mbit(check).toFixed(0)})`}`);
  }
}
