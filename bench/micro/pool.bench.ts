// The crypto pool on worker threads: what a batch costs to dispatch, and how
// sealing scales with workers. Run: node dist/bench/micro/pool.bench.js [--crypto native|node|noble]
//
// Batches live in a SharedArrayBuffer arena, one region per in-flight batch;
// keys and descriptors are shared too, so a task is two small numbers
// (region, count). Each variant is a function that starts a pool of N workers
// over the arena and returns a PoolHandle; the measurements only see the
// handle: piscina's task model (one run() per batch) and long-lived workers fed
// by rings (what the data path's crypto pool uses) get the same tables.
//
// Tables:
//  1. inline: the same seal on the main thread (the work with no dispatch).
//  2. dispatch: per batch, an empty task vs a seal task, 1/4/8 in flight, 1 and 2
//     workers. µs/batch is wall time over batches (at 1 in flight, the round trip);
//     main µs/batch is the main thread's CPU per batch (what dispatch costs it).
//  3. scaling: sealed MB/s at 1 and 2 workers, 8 in flight, against inline, with
//     the main thread's and the whole process's CPU over the run; configurations
//     interleaved over several rounds, median reported.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { Piscina } from 'piscina';
import { aeadBackend, parseCryptoBackend, type CryptoBackendName } from '../../src/crypto/backends.js';
import { DESC_STRIDE } from '../../src/crypto/native-aead.js';
import { setDescriptor } from '../../test/helpers/aead.js';
import { AEAD_TAG_SIZE, KEY_SIZE } from '../../src/crypto/sizes.js';
import type { ArenaShared, SealTask } from './pool-task.js';
import { RING_EMPTY, RING_SEAL, type RingTask } from './pool-ring.js';
import { MpmcRing } from '../../src/pipeline/ring.js';
import { emit, result, type Result } from './report.js';

// ---- settings ------------------------------------------------------------------

const MAX_IN_FLIGHT = 8;
const WORKER_COUNTS = [1, 2];
const IN_FLIGHT = [1, 4, 8];
const WARMUP_MS = 300;
const DISPATCH_MS = 1000;
const SCALING_MS = 1500;
const SCALING_ROUNDS = 3;

interface Shape {
  size: number; // plaintext bytes per packet
  count: number; // packets per batch
}
/** The batch a busy tunnel hands the pool: 64 MTU-sized packets (~92 KB with tags). */
const MTU_BATCH: Shape = { size: 1420, count: 64 };
/** A super-packet batch, for comparison: 16 × 64 KiB (~1 MB). */
const SUPER_BATCH: Shape = { size: 65536, count: 16 };

function cryptoArg(): CryptoBackendName {
  const i = process.argv.indexOf('--crypto');
  return i < 0 ? 'native' : parseCryptoBackend(process.argv[i + 1] ?? '', '--crypto');
}

// ---- the shared arena ----------------------------------------------------------

const slotBytes = (s: Shape): number => s.size + AEAD_TAG_SIZE;

function makeArena(backend: CryptoBackendName): ArenaShared {
  const regionBytes = Math.max(...[MTU_BATCH, SUPER_BATCH].map((s) => s.count * slotBytes(s)));
  const rowsPerRegion = Math.max(MTU_BATCH.count, SUPER_BATCH.count);
  const arena: ArenaShared = {
    data: new SharedArrayBuffer(MAX_IN_FLIGHT * regionBytes),
    keys: new SharedArrayBuffer(2 * KEY_SIZE),
    desc: new SharedArrayBuffer(MAX_IN_FLIGHT * rowsPerRegion * DESC_STRIDE * 4),
    regions: MAX_IN_FLIGHT,
    regionBytes,
    rowsPerRegion,
    descStride: DESC_STRIDE,
    backend,
  };
  new Uint8Array(arena.keys).forEach((_, i, a) => (a[i] = (i * 7 + 1) & 0xff));
  new Uint8Array(arena.data).fill(0xab);
  return arena;
}

/** Lays every region out for `shape` (nothing may be in flight). Two keys, in runs. */
function layOut(arena: ArenaShared, shape: Shape): void {
  const desc = new Uint32Array(arena.desc);
  for (let r = 0; r < arena.regions; r++) {
    const rows = desc.subarray(r * arena.rowsPerRegion * DESC_STRIDE, (r + 1) * arena.rowsPerRegion * DESC_STRIDE);
    for (let i = 0; i < shape.count; i++) {
      setDescriptor(rows, i, i * slotBytes(shape), shape.size, i < shape.count / 2 ? 0 : 1, r * 1000 + i);
    }
  }
}

function regionViews(arena: ArenaShared, region: number): { data: Uint8Array; desc: Uint32Array } {
  const words = arena.rowsPerRegion * DESC_STRIDE;
  return {
    data: new Uint8Array(arena.data, region * arena.regionBytes, arena.regionBytes),
    desc: new Uint32Array(arena.desc, region * words * 4, words),
  };
}

// ---- variants --------------------------------------------------------------------

type TaskKind = 'empty' | 'seal';

/** A running pool. run() resolves to what the task returned (packets sealed, or count for empty). */
interface PoolHandle {
  run(kind: TaskKind, region: number, count: number): Promise<number>;
  close(): Promise<void>;
}
type PoolVariant = (workers: number, arena: ArenaShared) => Promise<PoolHandle>;

/**
 * piscina's task model: one run() per batch, atomics 'sync', workers kept alive.
 * With `tasksPerWorker` 1 (piscina's default) a worker gets its next batch only
 * after the main thread has taken its result; with more, piscina posts several
 * batches to a worker, which drains them from its port one after another.
 */
function piscinaVariant(tasksPerWorker: number): PoolVariant {
  return async (workers, arena) => {
    const pool = new Piscina({
      filename: new URL('./pool-task.js', import.meta.url).href,
      minThreads: workers,
      maxThreads: workers,
      idleTimeout: Infinity,
      atomics: 'sync',
      concurrentTasksPerWorker: tasksPerWorker,
      recordTiming: false,
      workerData: arena,
    });
    const tasks: SealTask[] = Array.from({ length: arena.regions }, (_, region) => ({ region, count: 0 }));
    const opts = { empty: { name: 'empty' }, seal: { name: 'sealRegion' } } as const;
    const handle: PoolHandle = {
      run(kind, region, count) {
        const task = tasks[region]!;
        task.count = count;
        return pool.run(task, opts[kind]) as Promise<number>;
      },
      close: () => pool.close(),
    };
    // Start every worker before anything is measured.
    await Promise.all(Array.from({ length: workers * 2 }, (_, r) => handle.run('empty', r, 0)));
    return handle;
  };
}

/**
 * Long-lived workers fed by rings, as the data path's crypto pool is built
 * (src/dataplane/crypto-pool.ts): piscina starts one never-ending task per thread;
 * a batch is a ring entry each way, and the main thread takes completions on a
 * waitNotEmptyAsync doorbell.
 */
const ringVariant: PoolVariant = async (workers, arena) => {
  const pool = new Piscina({
    filename: new URL('./pool-task.js', import.meta.url).href,
    minThreads: workers, maxThreads: workers, idleTimeout: Infinity, concurrentTasksPerWorker: 1, recordTiming: false, workerData: arena,
  });
  const jobs = new MpmcRing(16, 3);
  const done = new MpmcRing(16, 3);
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const task: RingTask = { jobs: jobs.share(), done: done.share(), stop };
  const running = Array.from({ length: workers }, () => pool.run(task, { name: 'ringServe' }));
  const waiting = new Map<number, (n: number) => void>();
  let open = true;
  const pump = (async () => {
    const e = new Uint32Array(3);
    while (open) {
      while (done.tryPop(e)) waiting.get(e[0]!)?.(e[1]!);
      await done.waitNotEmptyAsync(100);
    }
  })();
  const entry = new Uint32Array(3);
  const handle: PoolHandle = {
    run(kind, region, count) {
      return new Promise<number>((resolve) => {
        waiting.set(region, resolve);
        entry[0] = region;
        entry[1] = count;
        entry[2] = kind === 'seal' ? RING_SEAL : RING_EMPTY;
        if (!jobs.tryPush(entry)) throw new Error('ring variant: jobs ring full');
      });
    },
    async close() {
      Atomics.store(stop, 0, 1);
      await Promise.all(running);
      open = false;
      done.close(); // wakes the pump now: a pending waitAsync alone does not keep the process alive
      await pump;
      await pool.destroy();
    },
  };
  await Promise.all(Array.from({ length: workers * 2 }, (_, r) => handle.run('empty', r, 0)));
  return handle;
};

const VARIANTS: Record<string, PoolVariant> = {
  piscina: piscinaVariant(1),
  'piscina 4/worker': piscinaVariant(4),
  'ring-fed': ringVariant,
};

// ---- measuring ---------------------------------------------------------------------

/** CPU time of the main thread in ms (utime + stime; USER_HZ is 100, so 10 ms steps). */
function mainThreadCpuMs(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}
const processCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Run {
  batches: number;
  wallMs: number;
  mainCpuMs: number;
  processCpuMs: number;
}

/** Keeps `inFlight` batches going (one region each) for about `ms`. */
async function drive(h: PoolHandle, kind: TaskKind, shape: Shape, inFlight: number, ms: number): Promise<Run> {
  let batches = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const c0 = mainThreadCpuMs();
  const p0 = processCpuMs();
  const lane = async (region: number): Promise<void> => {
    while (performance.now() < end) {
      const n = await h.run(kind, region, shape.count);
      if (n !== shape.count) throw new Error(`${kind} task returned ${n}, expected ${shape.count}`);
      batches++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, r) => lane(r)));
  return {
    batches,
    wallMs: performance.now() - t0,
    mainCpuMs: mainThreadCpuMs() - c0,
    processCpuMs: processCpuMs() - p0,
  };
}

async function measure(h: PoolHandle, kind: TaskKind, shape: Shape, inFlight: number, ms: number): Promise<Run> {
  await drive(h, kind, shape, inFlight, WARMUP_MS);
  return drive(h, kind, shape, inFlight, ms);
}

/** The same seal on the main thread, no pool: the work a batch costs by itself. */
function inline(arena: ArenaShared, shape: Shape, ms: number): Run {
  const { seal } = aeadBackend(arena.backend);
  const keys = new Uint8Array(arena.keys);
  const { data, desc } = regionViews(arena, 0);
  const loop = (until: number): number => {
    let n = 0;
    while (performance.now() < until) {
      if (seal(data, keys, desc, shape.count) !== shape.count) throw new Error('inline seal failed');
      n++;
    }
    return n;
  };
  loop(performance.now() + WARMUP_MS);
  const t0 = performance.now();
  const c0 = mainThreadCpuMs();
  const p0 = processCpuMs();
  const batches = loop(t0 + ms);
  return { batches, wallMs: performance.now() - t0, mainCpuMs: mainThreadCpuMs() - c0, processCpuMs: processCpuMs() - p0 };
}

/** A pool-sealed region must hold what sealing it on the main thread gives. */
async function checkPoolSeals(h: PoolHandle, arena: ArenaShared, shape: Shape): Promise<void> {
  const { data, desc } = regionViews(arena, MAX_IN_FLIGHT - 1);
  const expected = data.slice();
  aeadBackend(arena.backend).seal(expected, new Uint8Array(arena.keys), desc.slice(), shape.count);
  if ((await h.run('seal', MAX_IN_FLIGHT - 1, shape.count)) !== shape.count) throw new Error('pool seal count');
  if (!Buffer.from(data).equals(Buffer.from(expected))) throw new Error('pool seal bytes differ from the main thread');
}

// ---- output --------------------------------------------------------------------------

function printTable(title: string, rows: string[][], numeric: boolean[]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
  console.log(`\n${title}`);
  console.log(line(rows[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
}

const mbps = (r: Run, s: Shape): number => (r.batches * s.count * s.size) / (r.wallMs * 1000);
const perBatchUs = (ms: number, r: Run): string => ((ms * 1000) / r.batches).toFixed(1);
const pct = (ms: number, r: Run): string => `${((100 * ms) / r.wallMs).toFixed(0)} %`;
const shapeName = (s: Shape): string => `${s.count} × ${s.size} B`;

// ---- main ------------------------------------------------------------------------------

const backend = cryptoArg();
const arena = makeArena(backend);
const started = performance.now();
console.log(
  `node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), backend ${backend}, ` +
    `piscina ${Piscina.version}, ${MAX_IN_FLIGHT} regions of ${arena.regionBytes} B, ` +
    // Other processes on these two cores skew everything: say how busy the box was.
    `load average ${loadavg()[0]!.toFixed(2)}`,
);

const results: Result[] = [];
const bytesPerSec = (runs: Run[], shape: Shape): number[] => runs.map((r) => mbps(r, shape) * 1e6);
const inlineRows: string[][] = [['batch', 'µs/batch', 'MB/s']];
for (const shape of [MTU_BATCH, SUPER_BATCH]) {
  layOut(arena, shape);
  const r = inline(arena, shape, DISPATCH_MS);
  inlineRows.push([shapeName(shape), perBatchUs(r.wallMs, r), mbps(r, shape).toFixed(0)]);
}
printTable('inline: seal on the main thread, no pool', inlineRows, [false, true, true]);

const dispatchRows: string[][] = [
  ['variant', 'workers', 'in flight', 'task', 'batches/s', 'µs/batch', 'main µs/batch', 'process µs/batch'],
];
const scalingRows: string[][] = [
  ['variant', 'batch', 'workers', 'in flight', 'MB/s', 'vs 1 worker', 'vs inline', 'main CPU', 'process CPU'],
];
// Every pool of every variant is started up front (idle workers sleep in
// Atomics.wait), so the scaling runs can be interleaved: other load on the box
// then skews every configuration alike, and the median of the rounds is reported.
const pools: { variant: string; workers: number; h: PoolHandle }[] = [];
try {
  for (const [variant, start] of Object.entries(VARIANTS)) {
    for (const workers of WORKER_COUNTS) pools.push({ variant, workers, h: await start(workers, arena) });
  }
  layOut(arena, MTU_BATCH);
  for (const { variant, workers, h } of pools) {
    await checkPoolSeals(h, arena, MTU_BATCH);
    for (const inFlight of IN_FLIGHT) {
      for (const kind of ['empty', 'seal'] as const) {
        const r = await measure(h, kind, MTU_BATCH, inFlight, DISPATCH_MS);
        results.push(result({
          group: 'pool', impl: variant, test: kind === 'seal' ? 'dispatch seal' : 'dispatch empty',
          params: { backend, workers, in_flight: inFlight, size: MTU_BATCH.size, batch: MTU_BATCH.count },
          metric: 'batches_per_s', unit: 'batches/s', better: 'higher', samples: [(r.batches * 1000) / r.wallMs],
        }));
        dispatchRows.push([
          variant,
          String(workers),
          String(inFlight),
          kind === 'seal' ? `seal ${shapeName(MTU_BATCH)}` : 'empty',
          Math.round((r.batches * 1000) / r.wallMs).toLocaleString('en-US'),
          perBatchUs(r.wallMs, r),
          perBatchUs(r.mainCpuMs, r),
          perBatchUs(r.processCpuMs, r),
        ]);
      }
    }
  }

  const shapes = [MTU_BATCH, SUPER_BATCH];
  const inlineRounds = new Map<Shape, Run[]>(shapes.map((s) => [s, []]));
  const poolRounds = new Map<string, Run[]>();
  const key = (variant: string, workers: number, shape: Shape): string => `${variant}/${workers}/${shapeName(shape)}`;
  for (let round = 0; round < SCALING_ROUNDS; round++) {
    for (const shape of shapes) {
      layOut(arena, shape);
      inlineRounds.get(shape)!.push(inline(arena, shape, SCALING_MS));
      for (const { variant, workers, h } of pools) {
        const k = key(variant, workers, shape);
        if (!poolRounds.has(k)) poolRounds.set(k, []);
        poolRounds.get(k)!.push(await measure(h, 'seal', shape, MAX_IN_FLIGHT, SCALING_MS));
      }
    }
  }
  const median = (runs: Run[], shape: Shape): Run => [...runs].sort((a, b) => mbps(a, shape) - mbps(b, shape))[runs.length >> 1]!;
  for (const shape of shapes) {
    const base = mbps(median(inlineRounds.get(shape)!, shape), shape);
    const i = median(inlineRounds.get(shape)!, shape);
    results.push(result({
      group: 'pool', impl: 'inline', test: 'seal scaling', params: { backend, workers: 0, in_flight: 1, size: shape.size, batch: shape.count },
      metric: 'bytes_per_s', unit: 'B/s', better: 'higher', samples: bytesPerSec(inlineRounds.get(shape)!, shape),
    }));
    scalingRows.push(['inline', shapeName(shape), '0', '1', base.toFixed(0), '', '1.00×', pct(i.mainCpuMs, i), pct(i.processCpuMs, i)]);
    for (const variant of Object.keys(VARIANTS)) {
      const one = mbps(median(poolRounds.get(key(variant, 1, shape))!, shape), shape);
      for (const workers of WORKER_COUNTS) {
        const r = median(poolRounds.get(key(variant, workers, shape))!, shape);
        const rate = mbps(r, shape);
        results.push(result({
          group: 'pool', impl: variant, test: 'seal scaling',
          params: { backend, workers, in_flight: MAX_IN_FLIGHT, size: shape.size, batch: shape.count },
          metric: 'bytes_per_s', unit: 'B/s', better: 'higher', samples: bytesPerSec(poolRounds.get(key(variant, workers, shape))!, shape),
        }));
        scalingRows.push([
          variant,
          shapeName(shape),
          String(workers),
          String(MAX_IN_FLIGHT),
          rate.toFixed(0),
          `${(rate / one).toFixed(2)}×`,
          `${(rate / base).toFixed(2)}×`,
          pct(r.mainCpuMs, r),
          pct(r.processCpuMs, r),
        ]);
      }
    }
  }
} finally {
  await Promise.all(pools.map((p) => p.h.close()));
}
printTable('dispatch: per batch through the pool', dispatchRows, [false, true, true, false, true, true, true, true]);
printTable(
  `scaling: sealed MB/s, ${MAX_IN_FLIGHT} in flight, median of ${SCALING_ROUNDS} interleaved rounds (CPU as a share of one core)`,
  scalingRows,
  [false, false, true, true, true, true, true, true, true],
);
console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s, load average ${loadavg()[0]!.toFixed(2)} at the end)`);
emit('pool', results);
