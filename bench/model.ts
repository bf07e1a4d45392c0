// bench/model.ts — what tundra's queue-worker design carries on machines with more
// cores than this one, from costs measured here:
//   node dist/bench/model.js --report R.json --label L --queues Q [--pool-label LP] [--one-core R1.json] [--group G]
//
// Inputs, per byte received: the medians of tests tcp1 and tcp4 in topology G (default
// p2p) of an e2e report R (bench/e2e/run.js: both tunnel ends and iperf3 on one machine;
// L is a tundra implementation label, run with Q queue workers):
//   S  the sending daemon's CPU (sender_cpu_ns_per_byte), S_main its main thread's
//      (sender_main_ns_per_byte, the control plane);
//   D  both daemons' CPU (cpu_ns_per_byte); M the whole machine's busy time (machine_ns_per_byte).
// So W_send = S − S_main is the sending queue worker's CPU per byte, W_recv ≈ D − S
// the receiving daemon's (its main thread is as idle), and M − D the rest (iperf3,
// the kernel's TCP and veth work). Measured here in-process: A, the native AEAD per
// byte at 64 × 1420 B, what a crypto pool takes off a queue worker. With LP, another
// implementation of the same run, with a crypto pool: O = S(LP) − S(L), what the pool's
// hand-offs add per byte (the pool's threads are in the sending daemon's CPU too).
//
// The model: a flow is pinned to one queue on each side (one TUN queue, one socket,
// one thread), so one thread's CPU bounds it; flows on different queues run side by
// side; and all the work shares the N cores:
//   one flow:       T = min(1 / W_send, 1 / W_recv, N / M)
//   F ≥ Q flows:    T = min(Q / W_send, Q / W_recv, N / M)
//   with the pool:  the queue workers shed A and, at worst, carry all of O:
//                   W' = W − A + O, and the machine M' = M + 2·O (both ends)
// The check: the model of the measured test (tcp1: one flow; tcp4: four flows on
// min(4, Q) queues) at N = R's CPU count against R's own throughput (throughput_bps),
// and at N = 1 against a run of the same on one core, R1, if given
// (`taskset -c 0 node dist/bench/e2e/run.js …`).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { aeadBackend } from '../src/crypto/backends.js';
import { DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE } from '../src/crypto/native-aead.js';
import { cellLabel, parseReport, ReportError, type Report } from './report-schema.js';

/** The batch the AEAD is measured on: 64 MTU-sized packets (a UDP GSO run). */
const BATCH_PACKETS = 64;
const PACKET_BYTES = 1420;
const CORES = [1, 2, 4, 8, 16];

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

/** A report and the file it came from, for messages. */
export interface Source {
  report: Report;
  path: string;
}

export interface ModelOptions {
  /** the tundra implementation label */
  label: string;
  /** its queue workers */
  queues: number;
  /** the topology whose tcp1 and tcp4 are read */
  group: string;
  /** the label of the same tundra with a crypto pool */
  poolLabel?: string;
  /** a run of the same on one core */
  oneCore?: Source;
}

/** Mbit/s at one core count. */
export interface ModelRow {
  cores: number;
  one: number;
  many: number;
  pool?: { one: number; many: number };
  /** the measured test's throughput at this core count, and the model's figure for that test */
  measured?: { mbit: number; model: number };
}

/** One test's costs (ns per byte) and what they carry. */
export interface TestModel {
  test: 'tcp1' | 'tcp4';
  Wsend: number;
  Wrecv: number;
  Smain: number;
  /** M − D: iperf3 and the kernel */
  rest: number;
  M: number;
  /** the pool's hand-off cost, given a pool label */
  O?: number;
  rows: ModelRow[];
}

/** A figure the model needs is not in the report. */
export class MissingCell extends Error {
  override name = 'MissingCell';
}

function median(src: Source, group: string, impl: string, test: string, metric: string): number {
  const found = src.report.results.filter((r) => r.group === group && r.impl === impl && r.test === test && r.metric === metric);
  const cell = cellLabel({ group, test, metric });
  if (found.length === 0) throw new MissingCell(`${src.path}: no ${cell} for ${impl}`);
  if (found.length > 1) throw new MissingCell(`${src.path}: ${found.length} results of ${cell} for ${impl} (with different params); the model takes one`);
  return found[0]!.median;
}

/** The model of tcp1 and tcp4 from the report's medians; A is the AEAD's cost per byte. */
export function costModel(src: Source, opts: ModelOptions, A: number): TestModel[] {
  // The measured figures sit at the report's own core count, so it joins the table's.
  const cpus = src.report.run.host.cpus;
  const cores = [...new Set([...CORES, cpus])].sort((a, b) => a - b);
  return (['tcp1', 'tcp4'] as const).map((test) => {
    const get = (metric: string, impl = opts.label, from = src): number => median(from, opts.group, impl, test, metric);
    const S = get('sender_cpu_ns_per_byte');
    const Smain = get('sender_main_ns_per_byte');
    const D = get('cpu_ns_per_byte');
    const M = get('machine_ns_per_byte');
    const Wsend = S - Smain;
    const Wrecv = D - S;
    const O = opts.poolLabel === undefined ? undefined : get('sender_cpu_ns_per_byte', opts.poolLabel) - S;
    const q = test === 'tcp1' ? 1 : Math.min(4, opts.queues);
    const rows = cores.map((n): ModelRow => {
      const row: ModelRow = {
        cores: n,
        one: mbit(Math.min(1 / Wsend, 1 / Wrecv, n / M)),
        many: mbit(Math.min(n / Wsend, n / Wrecv, n / M)),
      };
      if (O !== undefined) {
        const m2 = M + 2 * O;
        row.pool = {
          one: mbit(Math.min(1 / (Wsend - A + O), 1 / (Wrecv - A + O), n / m2)),
          many: mbit(Math.min(n / (Wsend - A + O), n / (Wrecv - A + O), n / m2)),
        };
      }
      const from = n === cpus ? src : n === 1 ? opts.oneCore : undefined;
      if (from !== undefined) {
        row.measured = { mbit: get('throughput_bps', opts.label, from) / 1e6, model: mbit(Math.min(q / Wsend, q / Wrecv, n / M)) };
      }
      return row;
    });
    return { test, Wsend, Wrecv, Smain, rest: M - D, M, ...(O === undefined ? {} : { O }), rows };
  });
}

export function formatModel(models: readonly TestModel[], opts: ModelOptions, A: number): string {
  const lines: string[] = [];
  for (const m of models) {
    lines.push('', `${opts.label} ${m.test}: W_send ${m.Wsend.toFixed(2)}, W_recv ${m.Wrecv.toFixed(2)}, main ${m.Smain.toFixed(2)}, rest ${m.rest.toFixed(2)}, ` +
      `machine ${m.M.toFixed(2)} ns/byte; AEAD ${A.toFixed(2)} ns/byte${m.O === undefined ? '' : `; pool overhead (${opts.poolLabel}) ${m.O.toFixed(2)} ns/byte`} (Mbit/s below)`);
    lines.push(`cores  one flow  flows≥queues(Q=cores)${m.O === undefined ? '' : '  +pool: one flow  flows'}  measured`);
    for (const r of m.rows) {
      const poolCells = r.pool === undefined ? '' : `  ${fmt(r.pool.one).padStart(15)}  ${fmt(r.pool.many)}`;
      lines.push(`${String(r.cores).padStart(5)}  ${fmt(r.one)}  ${fmt(r.many).padStart(21)}${poolCells}` +
        `  ${r.measured === undefined ? '' : `${r.measured.mbit.toFixed(0)} (model of this test: ${r.measured.model.toFixed(0)})`}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const USAGE = 'usage: node dist/bench/model.js --report R.json --label L --queues Q [--pool-label LP] [--one-core R1.json] [--group p2p]\n';

function main(argv: string[]): number {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      report: { type: 'string' }, label: { type: 'string' }, queues: { type: 'string' }, 'pool-label': { type: 'string' },
      'one-core': { type: 'string' }, group: { type: 'string', default: 'p2p' },
    },
  });
  const queues = Number(args.queues);
  if (args.report === undefined || args.label === undefined || !(Number.isInteger(queues) && queues >= 1)) {
    process.stderr.write(USAGE);
    return 2;
  }
  try {
    const load = (path: string): Source => ({ report: parseReport(readFileSync(path, 'utf8'), path), path });
    const opts: ModelOptions = { label: args.label, queues, group: args.group };
    if (args['pool-label'] !== undefined) opts.poolLabel = args['pool-label'];
    if (args['one-core'] !== undefined) opts.oneCore = load(args['one-core']);
    const src = load(args.report);
    // Checked before the AEAD's half-second benchmark, so a wrong label fails at once.
    costModel(src, opts, 0);
    const A = aeadNsPerByte();
    process.stdout.write(formatModel(costModel(src, opts, A), opts, A));
    return 0;
  } catch (e) {
    if (e instanceof MissingCell || e instanceof ReportError || (e as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`model: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
