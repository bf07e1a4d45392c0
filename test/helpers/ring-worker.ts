// Worker entry for the ring and arena stress tests and the ring bench. The role and
// its inputs come in workerData; one result message goes back, then the worker ends.
import { parentPort, workerData } from 'node:worker_threads';
import { BatchArena, type ArenaShared } from '../../src/pipeline/arena.js';
import { HEADER_SPARE } from '../../src/pipeline/batch.js';
import { MpmcRing, SpscRing, type Ring, type RingShared } from '../../src/pipeline/ring.js';

/** Checksum word k (k >= 2) of the entry (producer, seq): a torn entry fails it. */
export function entryWord(producer: number, seq: number, k: number): number {
  let h = Math.imul((producer + 1) ^ Math.imul(seq, 0x9e3779b1), 0x85ebca6b) ^ Math.imul(k, 0xc2b2ae35);
  h ^= h >>> 13;
  h = Math.imul(h, 0x27d4eb2f);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fills an entry of `words` words at dst[at..]: producer, sequence, checksums. */
export function fillEntry(dst: Uint32Array, at: number, words: number, producer: number, seq: number): void {
  dst[at] = producer;
  if (words > 1) dst[at + 1] = seq;
  for (let k = 2; k < words; k++) dst[at + k] = entryWord(producer, seq, k);
}

export function attachRing(s: RingShared, spin?: number): Ring {
  const opts = spin === undefined ? {} : { spin };
  return s.kind === 'spsc' ? SpscRing.attach(s, opts) : MpmcRing.attach(s, opts);
}

export interface ProduceJob {
  role: 'produce';
  ring: RingShared;
  spin?: number;
  producer: number;
  count: number;
  timeoutMs: number;
  /** Overall bound: give up (and say so) after this long. */
  deadlineMs: number;
}

export interface ConsumeJob {
  role: 'consume';
  ring: RingShared;
  spin?: number;
  producers: number;
  count: number;
  /** Int32 producers*count: every consumer adds 1 per entry it pops (duplicates show as 2). */
  seen: SharedArrayBuffer;
  timeoutMs: number;
  deadlineMs: number;
}

export interface ArenaJob {
  role: 'arena';
  arena: ArenaShared;
  worker: number;
  iterations: number;
  /** Batches held at once per iteration. */
  hold: number;
  /** Int32[1] start barrier for `parties` workers, so they really overlap. */
  barrier: SharedArrayBuffer;
  parties: number;
  timeoutMs: number;
}

export interface BenchProduceJob {
  role: 'bench-produce';
  ring: RingShared;
  spin?: number;
  total: number;
  barrier?: SharedArrayBuffer;
  parties?: number;
}

export interface BenchConsumeJob {
  role: 'bench-consume';
  ring: RingShared;
  spin?: number;
  total: number;
  barrier?: SharedArrayBuffer;
  parties?: number;
}

/**
 * Ping-pong for lost wake-ups: push one entry, wait for its echo, repeat. Every hand-off
 * finds the other side asleep (with spin 0), and nothing else would wake it, so a lost
 * wake-up shows as a timed-out wait instead of healing at the next push.
 */
export interface PingJob {
  role: 'ping';
  out: RingShared;
  back: RingShared;
  spin?: number;
  count: number;
  timeoutMs: number;
  /** Stop after this many timeouts (the test fails on the first anyway). */
  maxTimeouts: number;
  /** Report elapsedMs (the bench). */
  timed?: boolean;
}

/** Pops from `in`, pushes the entry to `out`, until `in` is closed. */
export interface EchoJob {
  role: 'echo';
  in: RingShared;
  out: RingShared;
  spin?: number;
  timeoutMs: number;
}

/**
 * The same for room: `ring` starts full; the producer waits for room, pushes, then
 * acknowledges on `ack`; the consumer pops one entry and waits for the ack. So each
 * round the producer sleeps on a full ring and only the consumer's pop can wake it.
 */
export interface RoomJob {
  role: 'room-producer' | 'room-consumer';
  ring: RingShared;
  ack: RingShared;
  spin?: number;
  count: number;
  timeoutMs: number;
  maxTimeouts: number;
}

export type RingJob = ProduceJob | ConsumeJob | ArenaJob | BenchProduceJob | BenchConsumeJob | PingJob | EchoJob | RoomJob;

export const PING_WARMUP = 100;

export interface PingResult { rounds: number; timeouts: number; wrong: number; elapsedMs?: number }

export interface ProduceResult { pushed: number; timeouts: number; gaveUp: boolean }
export interface ConsumeResult { popped: number; torn: number; outOfOrder: number; badIds: number; timeouts: number; gaveUp: boolean }
export interface ArenaResult { acquired: number; conflicts: number; timeouts: number; /** times acquire() found none free and acquireWait waited */ waits: number }

function produce(job: ProduceJob): ProduceResult {
  const ring = attachRing(job.ring, job.spin);
  const w = ring.words;
  const entry = new Uint32Array(w);
  const end = performance.now() + job.deadlineMs;
  let timeouts = 0;
  let seq = 0;
  for (; seq < job.count; seq++) {
    fillEntry(entry, 0, w, job.producer, seq);
    while (!ring.pushWait(entry, 0, job.timeoutMs)) {
      timeouts++;
      if (ring.closed || performance.now() > end) return { pushed: seq, timeouts, gaveUp: true };
    }
  }
  return { pushed: seq, timeouts, gaveUp: false };
}

function consume(job: ConsumeJob): ConsumeResult {
  const ring = attachRing(job.ring, job.spin);
  const w = ring.words;
  const seen = new Int32Array(job.seen);
  const last = new Array<number>(job.producers).fill(-1);
  const entry = new Uint32Array(w);
  const end = performance.now() + job.deadlineMs;
  const r: ConsumeResult = { popped: 0, torn: 0, outOfOrder: 0, badIds: 0, timeouts: 0, gaveUp: false };
  for (;;) {
    if (!ring.popWait(entry, 0, job.timeoutMs)) {
      if (ring.closed && ring.size === 0) break;
      r.timeouts++;
      if (performance.now() > end) {
        r.gaveUp = true;
        break;
      }
      continue;
    }
    r.popped++;
    const p = entry[0]!;
    const seq = entry[1]!;
    if (p >= job.producers || seq >= job.count) {
      r.badIds++;
      continue;
    }
    let ok = true;
    for (let k = 2; k < w; k++) if (entry[k] !== entryWord(p, seq, k)) ok = false;
    if (!ok) {
      r.torn++;
      continue;
    }
    if (seq <= last[p]!) r.outOfOrder++;
    last[p] = seq;
    Atomics.add(seen, p * job.count + seq, 1);
  }
  return r;
}

function arena(job: ArenaJob): ArenaResult {
  const a = BatchArena.attach(job.arena);
  const r: ArenaResult = { acquired: 0, conflicts: 0, timeouts: 0, waits: 0 };
  const mark = job.worker + 1;
  const held = new Int32Array(job.hold);
  const barrier = new Int32Array(job.barrier);
  Atomics.add(barrier, 0, 1);
  Atomics.notify(barrier, 0);
  for (let v = Atomics.load(barrier, 0), t = 0; v < job.parties && t < 1000; v = Atomics.load(barrier, 0), t++) {
    Atomics.wait(barrier, 0, v, 10);
  }
  for (let i = 0; i < job.iterations; i++) {
    // Several at once, so with few batches the others must wait in acquireWait.
    let n = 0;
    while (n < job.hold) {
      let id = a.acquire();
      if (id < 0) {
        r.waits++;
        id = a.acquireWait(job.timeoutMs);
      }
      if (id < 0) {
        r.timeouts++;
        break;
      }
      r.acquired++;
      // Ownership is exclusive: nobody else may write this batch while we hold it.
      const h = a.header(id);
      if (h[HEADER_SPARE] !== 0) r.conflicts++;
      h[HEADER_SPARE] = mark;
      a.batch(id).count = i & 63;
      held[n++] = id;
    }
    for (let k = 0; k < n; k++) {
      const h = a.header(held[k]!);
      if (h[HEADER_SPARE] !== mark) r.conflicts++;
      h[HEADER_SPARE] = 0;
      a.release(held[k]!);
    }
    if (r.timeouts > 0) break;
  }
  return r;
}

function ping(job: PingJob): PingResult {
  const out = attachRing(job.out, job.spin);
  const back = attachRing(job.back, job.spin);
  const e = new Uint32Array(out.words);
  const r: PingResult = { rounds: 0, timeouts: 0, wrong: 0 };
  let t0 = performance.now();
  for (let i = 0; i < job.count && r.timeouts < job.maxTimeouts; i++) {
    // The bench times the rounds after PING_WARMUP (the echo worker is up by then).
    if (i === PING_WARMUP) t0 = performance.now();
    e[0] = i;
    if (!out.pushWait(e, 0, job.timeoutMs)) {
      r.timeouts++;
      continue;
    }
    while (!back.popWait(e, 0, job.timeoutMs)) {
      if (++r.timeouts >= job.maxTimeouts) return r;
    }
    if (e[0] !== i) r.wrong++;
    r.rounds++;
  }
  if (job.timed) r.elapsedMs = performance.now() - t0;
  return r;
}

function echo(job: EchoJob): number {
  const input = attachRing(job.in, job.spin);
  const out = attachRing(job.out, job.spin);
  const e = new Uint32Array(input.words);
  let n = 0;
  for (;;) {
    if (!input.popWait(e, 0, job.timeoutMs)) {
      if (input.closed) return n;
      continue;
    }
    if (!out.pushWait(e, 0, job.timeoutMs)) return n;
    n++;
  }
}

function room(job: RoomJob): PingResult {
  const ring = attachRing(job.ring, job.spin);
  const ack = attachRing(job.ack, job.spin);
  const e = new Uint32Array(ring.words);
  const r: PingResult = { rounds: 0, timeouts: 0, wrong: 0 };
  for (let i = 0; i < job.count; i++) {
    if (job.role === 'room-producer') {
      e[0] = i;
      while (!ring.pushWait(e, 0, job.timeoutMs)) if (++r.timeouts >= job.maxTimeouts) return r;
      if (!ack.pushWait(e, 0, job.timeoutMs)) r.timeouts++;
    } else {
      if (!ring.tryPop(e)) r.wrong++; // the ring is full at this point, always
      while (!ack.popWait(e, 0, job.timeoutMs)) if (++r.timeouts >= job.maxTimeouts) return r;
    }
    r.rounds++;
  }
  return r;
}

/** Bench roles: wait on the barrier (if any), then move `total` entries; report the time. */
function startTogether(barrier: SharedArrayBuffer | undefined, parties: number): void {
  if (barrier === undefined) return;
  const b = new Int32Array(barrier);
  Atomics.add(b, 0, 1);
  Atomics.notify(b, 0);
  for (let v = Atomics.load(b, 0), t = 0; v < parties && t < 1000; v = Atomics.load(b, 0), t++) Atomics.wait(b, 0, v, 10);
}

export interface BenchResult { entries: number; elapsedMs: number; sum: number }

function benchProduce(job: BenchProduceJob): BenchResult {
  const ring = attachRing(job.ring, job.spin);
  const entry = new Uint32Array(ring.words);
  startTogether(job.barrier, job.parties ?? 0);
  const t0 = performance.now();
  for (let i = 0; i < job.total; i++) {
    entry[0] = i;
    if (!ring.pushWait(entry, 0, 10_000)) throw new Error(`bench producer stalled at ${i}`);
  }
  return { entries: job.total, elapsedMs: performance.now() - t0, sum: 0 };
}

function benchConsume(job: BenchConsumeJob): BenchResult {
  const ring = attachRing(job.ring, job.spin);
  const entry = new Uint32Array(ring.words);
  startTogether(job.barrier, job.parties ?? 0);
  let sum = 0;
  const t0 = performance.now();
  for (let i = 0; i < job.total; i++) {
    if (!ring.popWait(entry, 0, 10_000)) throw new Error(`bench consumer stalled at ${i}`);
    sum += entry[0]!;
  }
  return { entries: job.total, elapsedMs: performance.now() - t0, sum };
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object' && 'role' in workerData) {
  const job = workerData as RingJob;
  let result: unknown;
  switch (job.role) {
    case 'produce': result = produce(job); break;
    case 'consume': result = consume(job); break;
    case 'arena': result = arena(job); break;
    case 'bench-produce': result = benchProduce(job); break;
    case 'bench-consume': result = benchConsume(job); break;
    case 'ping': result = ping(job); break;
    case 'echo': result = echo(job); break;
    case 'room-producer':
    case 'room-consumer': result = room(job); break;
  }
  parentPort.postMessage(result);
}
