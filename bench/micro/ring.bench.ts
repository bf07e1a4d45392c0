// Ring throughput and hand-off latency. Run: node dist/bench/micro/ring.bench.js
//
// 1. One thread, tinybench: push+pop pairs of 4-word entries (SPSC, MPMC), one at a
//    time and in bursts of 64 (what a stage hands on per batch of batches).
// 2. Across threads, timed inside the workers after a start barrier: a producer
//    worker streams entries to a consumer worker, or to the main thread (Atomics.wait
//    there, and the main-thread doorbell: tryPop + waitNotEmptyAsync), with spin 0,
//    DEFAULT_SPIN and 1000, at capacities 1024 and 16.
// 3. Ping-pong round trip between two workers (two rings, capacity 4): the wake-up
//    latency a packet pays per thread hop when the pipeline is idle, by spin count.
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Bench, type Task } from 'tinybench';
import { DEFAULT_SPIN, MpmcRing, SpscRing, type Ring } from '../../src/pipeline/ring.js';
import { emit, result, taskResult, type Result } from './report.js';
import { PING_WARMUP, type BenchResult, type EchoResult, type PingResult, type RingJob } from '../../test/helpers/ring-worker.js';

const WORDS = 4;
const WORKER = new URL('../../test/helpers/ring-worker.js', import.meta.url);
const make = (kind: 'spsc' | 'mpmc', capacity: number, spin: number): Ring =>
  kind === 'spsc' ? new SpscRing(capacity, WORDS, { spin }) : new MpmcRing(capacity, WORDS, { spin });

const table: string[][] = [['test', 'ring', 'spin', 'entries/s', 'ns/entry']];
const results: Result[] = [];
const row = (test: string, ring: string, spin: string, perSec: number): void => {
  const [kind, capacity] = ring.split(' ');
  results.push(result({
    group: 'ring', impl: kind!, test, params: { capacity: Number(capacity), spin: spin === '-' ? 'none' : Number(spin) },
    metric: 'entries_per_s', unit: 'entries/s', better: 'higher', samples: [perSec],
  }));
  table.push([test, ring, spin, Math.round(perSec).toLocaleString('en-US'), (1e9 / perSec).toFixed(1)]);
};

// --- 1. one thread --------------------------------------------------------------------
const PAIRS = 1000;
const bench = new Bench({ time: 500, warmupTime: 100, warmupIterations: 8, iterations: 16, retainSamples: true });
const perIteration = new Map<string, { ring: string; entries: number }>();
for (const kind of ['spsc', 'mpmc'] as const) {
  const ring = make(kind, 1024, DEFAULT_SPIN);
  const e = new Uint32Array(WORDS).fill(7);
  const one = `push+pop one at a time`;
  perIteration.set(`${kind} ${one}`, { ring: `${kind} 1024`, entries: PAIRS });
  bench.add(`${kind} ${one}`, () => {
    for (let i = 0; i < PAIRS; i++) {
      ring.tryPush(e);
      ring.tryPop(e);
    }
  });
  const burst = `push 64 then pop 64`;
  perIteration.set(`${kind} ${burst}`, { ring: `${kind} 1024`, entries: 64 * 16 });
  bench.add(`${kind} ${burst}`, () => {
    for (let r = 0; r < 16; r++) {
      for (let i = 0; i < 64; i++) ring.tryPush(e);
      for (let i = 0; i < 64; i++) ring.tryPop(e);
    }
  });
}
const tasks: Task[] = bench.runSync();
for (const task of tasks) {
  const meta = perIteration.get(task.name)!;
  const r = task.result;
  if (r.state !== 'completed') {
    table.push([task.name, meta.ring, '', r.state, '']);
    continue;
  }
  // period: mean ms per iteration (see aead.bench.ts for why not throughput.mean).
  table.push([`one thread: ${task.name.slice(5)}`, meta.ring, '-', Math.round((meta.entries * 1000) / r.period).toLocaleString('en-US'),
    (r.period * 1e6 / meta.entries).toFixed(1)]);
  const res = taskResult(task, {
    group: 'ring', impl: task.name.slice(0, 4), test: `one thread: ${task.name.slice(5)}`, params: { capacity: 1024, spin: 'none' },
    metric: 'entries_per_s', unit: 'entries/s', perIteration: meta.entries,
  });
  if (res !== undefined) results.push(res);
}

// --- 2. across threads ----------------------------------------------------------------
function run<T>(job: RingJob): Promise<T> {
  const w = new Worker(WORKER, { workerData: job });
  return new Promise<T>((resolve, reject) => {
    w.once('message', (m: T) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

const STREAM = 1_000_000;

async function workerToWorker(kind: 'spsc' | 'mpmc', capacity: number, spin: number): Promise<number> {
  const ring = make(kind, capacity, spin);
  const barrier = new SharedArrayBuffer(4);
  const common = { ring: ring.share(), spin, total: STREAM, barrier, parties: 2 };
  const [, c] = await Promise.all([
    run<BenchResult>({ role: 'bench-produce', ...common }),
    run<BenchResult>({ role: 'bench-consume', ...common }),
  ]);
  if (c.sum !== (STREAM * (STREAM - 1)) / 2) throw new Error('bench: entries lost');
  return (STREAM * 1000) / c.elapsedMs;
}

async function workerToMain(kind: 'spsc' | 'mpmc', capacity: number, spin: number, doorbell: boolean): Promise<number> {
  const ring = make(kind, capacity, spin);
  const barrier = new SharedArrayBuffer(4);
  const producer = run<BenchResult>({ role: 'bench-produce', ring: ring.share(), spin, total: STREAM, barrier, parties: 2 });
  const b = new Int32Array(barrier);
  Atomics.add(b, 0, 1);
  Atomics.notify(b, 0);
  const e = new Uint32Array(WORDS);
  let sum = 0;
  const t0 = performance.now();
  if (doorbell) {
    for (let i = 0; i < STREAM; ) {
      if (ring.tryPop(e)) {
        sum += e[0]!;
        i++;
      } else {
        await ring.waitNotEmptyAsync(10_000);
      }
    }
  } else {
    for (let i = 0; i < STREAM; i++) {
      if (!ring.popWait(e, 0, 10_000)) throw new Error('bench: main consumer stalled');
      sum += e[0]!;
    }
  }
  const elapsed = performance.now() - t0;
  await producer;
  if (sum !== (STREAM * (STREAM - 1)) / 2) throw new Error('bench: entries lost');
  return (STREAM * 1000) / elapsed;
}

const SPINS = [0, DEFAULT_SPIN, 1000];
for (const kind of ['spsc', 'mpmc'] as const) {
  for (const capacity of [1024, 16]) {
    for (const spin of SPINS) {
      row('worker → worker', `${kind} ${capacity}`, String(spin), await workerToWorker(kind, capacity, spin));
    }
  }
}
for (const kind of ['spsc', 'mpmc'] as const) {
  row('worker → main (popWait)', `${kind} 1024`, String(DEFAULT_SPIN), await workerToMain(kind, 1024, DEFAULT_SPIN, false));
  row('worker → main (waitNotEmptyAsync)', `${kind} 1024`, String(DEFAULT_SPIN), await workerToMain(kind, 1024, DEFAULT_SPIN, true));
}

// --- 3. ping-pong round trip ----------------------------------------------------------
const ROUNDS = 20_000;
const rtt: string[][] = [['ring', 'spin', 'round trip µs (2 hand-offs)']];
for (const kind of ['spsc', 'mpmc'] as const) {
  for (const spin of SPINS) {
    const out = make(kind, 4, spin);
    const back = make(kind, 4, spin);
    const echo = run<EchoResult>({ role: 'echo', in: out.share(), out: back.share(), spin, timeoutMs: 10_000 });
    const r = await run<PingResult>({
      role: 'ping', out: out.share(), back: back.share(), spin, count: ROUNDS, timeoutMs: 10_000, maxTimeouts: 1, timed: true,
    });
    out.close();
    await echo;
    if (r.rounds !== ROUNDS || r.elapsedMs === undefined) throw new Error('bench: ping-pong failed');
    const us = (r.elapsedMs * 1000) / (ROUNDS - PING_WARMUP);
    rtt.push([`${kind} 4`, String(spin), us.toFixed(2)]);
    results.push(result({
      group: 'ring', impl: kind, test: 'ping-pong round trip (2 hand-offs)', params: { capacity: 4, spin },
      metric: 'rtt_us', unit: 'µs', better: 'lower', samples: [us],
    }));
  }
}

function print(t: string[][], numeric: boolean[]): void {
  const widths = t[0]!.map((_, c) => Math.max(...t.map((r) => r[c]!.length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
  console.log(line(t[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of t.slice(1)) console.log(line(r));
}

console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}; entries of ${WORDS} words`);
print(table, [false, false, true, true, true]);
console.log('');
print(rtt, [false, true, true]);
emit('ring', results);
