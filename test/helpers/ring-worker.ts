// Worker entry for the ring stress tests and the ring bench. The role and
// its inputs come in workerData; one result message goes back, then the worker ends.
import { parentPort, workerData } from 'node:worker_threads';
import { MpmcRing, SpscRing, type Ring, type RingShared } from '../../src/pipeline/ring.js';
import { Stamps, WakeJudge, type StampsShared } from './wake-judge.js';

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

/**
 * Stress roles. Producers start together once every consumer is up (`ready`), so the
 * consumers all take part, and push `count` entries or as many as they can in `budgetMs`
 * of pushing, whichever comes first: bounded in count and time, and a slow machine moves
 * fewer entries instead of failing. A wait's timeout (`timeoutMs`) is only how often it
 * looks up: a stream heals a lost wake-up at the next push, so these roles count such
 * stalls for the diagnostics; the ping-pong roles below are the lost wake-up tests.
 */
export interface ProduceJob {
  role: 'produce';
  ring: RingShared;
  spin?: number;
  producer: number;
  count: number;
  timeoutMs: number;
  budgetMs: number;
  /** Int32[1]: consumers add 1 when they start; producers wait for `consumers` of them. */
  ready: SharedArrayBuffer;
  consumers: number;
  /** Give up (gaveUp) after this long without a push: something hangs. */
  giveUpMs: number;
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
  /** As ProduceJob.ready; undefined: none (the close() test). */
  ready?: SharedArrayBuffer;
  /** Give up (gaveUp) after this long without a pop while the ring is open. */
  giveUpMs: number;
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
 * Stamps for the lost wake-up tests (see wake-judge.ts): `out[i]` when round i's push to
 * `out` returned, `back[i]` when its echo's push to `back` did.
 */
export interface PingJudging {
  out: StampsShared;
  back: StampsShared;
  /** No round starts after this long from the end of the first (the echo is up by then). */
  budgetMs: number;
  /** A round still waiting after this long: give up (stuck), something hangs. */
  giveUpMs: number;
}

/**
 * Ping-pong for lost wake-ups: push one entry, wait for its echo, repeat. Every hand-off
 * finds the other side asleep (with spin 0), and nothing else would wake it, so a lost
 * wake-up costs a whole timeout instead of healing at the next push.
 */
export interface PingJob {
  role: 'ping';
  out: RingShared;
  back: RingShared;
  spin?: number;
  count: number;
  timeoutMs: number;
  /**
   * Without `judging` (the bench): stop after this many timed-out waits. With it: after
   * this many lost wake-ups (the test fails on the first anyway).
   */
  maxTimeouts: number;
  /** Report elapsedMs (the bench). */
  timed?: boolean;
  judging?: PingJudging;
}

/** Pops from `in`, pushes the entry to `out`, until `in` is closed. */
export interface EchoJob {
  role: 'echo';
  in: RingShared;
  out: RingShared;
  spin?: number;
  timeoutMs: number;
  /** The ping's stamps: `out` judges this side's waits, `back` is where it stamps. */
  judging?: Pick<PingJudging, 'out' | 'back'>;
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
  maxLost: number;
  /** `popped[i]`: the consumer's pop of round i returned; `acked[i]`: the producer's ack push. */
  popped: StampsShared;
  acked: StampsShared;
  /** Int32[1], starts at `count`: the producer lowers it when budgetMs is up; the consumer stops there. */
  limit: SharedArrayBuffer;
  budgetMs: number;
  giveUpMs: number;
}

export type RingJob = ProduceJob | ConsumeJob | BenchProduceJob | BenchConsumeJob | PingJob | EchoJob | RoomJob;

export const PING_WARMUP = 100;

/**
 * rounds done; timeouts: waits that hit their timeout (with judging: the look-ups of a
 * wait, not failures); lost and slow: see WakeJudge; stuck: gave up on a round.
 */
export interface PingResult { rounds: number; timeouts: number; wrong: number; lost: number; slow: number; worstAsleepMs: number; stuck: boolean; elapsedMs?: number }
export interface EchoResult { echoed: number; lost: number; slow: number; worstAsleepMs: number }

/** stalls: waits that hit their timeout (a slow other side or a lost wake-up, healed by the stream). */
export interface ProduceResult { pushed: number; stalls: number; gaveUp: boolean }
export interface ConsumeResult { popped: number; torn: number; outOfOrder: number; badIds: number; stalls: number; gaveUp: boolean }

/** Adds this thread to `ready` (a consumer that has started). */
export function arrive(ready: SharedArrayBuffer): void {
  const b = new Int32Array(ready);
  Atomics.add(b, 0, 1);
  Atomics.notify(b, 0);
}

/** Waits until `parties` threads arrived, or giveUpMs passed. */
function awaitParties(ready: SharedArrayBuffer, parties: number, giveUpMs: number): void {
  const b = new Int32Array(ready);
  const end = performance.now() + giveUpMs;
  for (let v = Atomics.load(b, 0); v < parties && performance.now() < end; v = Atomics.load(b, 0)) Atomics.wait(b, 0, v, 50);
}

function produce(job: ProduceJob): ProduceResult {
  const ring = attachRing(job.ring, job.spin);
  const w = ring.words;
  const entry = new Uint32Array(w);
  awaitParties(job.ready, job.consumers, job.giveUpMs);
  const end = performance.now() + job.budgetMs;
  let stalls = 0;
  let seq = 0;
  for (; seq < job.count && performance.now() < end; seq++) {
    fillEntry(entry, 0, w, job.producer, seq);
    const giveUp = performance.now() + job.giveUpMs;
    while (!ring.pushWait(entry, 0, job.timeoutMs)) {
      stalls++;
      if (ring.closed || performance.now() > giveUp) return { pushed: seq, stalls, gaveUp: true };
    }
  }
  return { pushed: seq, stalls, gaveUp: false };
}

function consume(job: ConsumeJob): ConsumeResult {
  const ring = attachRing(job.ring, job.spin);
  const w = ring.words;
  const seen = new Int32Array(job.seen);
  const last = new Array<number>(job.producers).fill(-1);
  const entry = new Uint32Array(w);
  const r: ConsumeResult = { popped: 0, torn: 0, outOfOrder: 0, badIds: 0, stalls: 0, gaveUp: false };
  if (job.ready !== undefined) arrive(job.ready);
  let giveUp = performance.now() + job.giveUpMs;
  for (;;) {
    if (!ring.popWait(entry, 0, job.timeoutMs)) {
      if (ring.closed && ring.size === 0) break;
      r.stalls++;
      if (performance.now() > giveUp) {
        r.gaveUp = true;
        break;
      }
      continue;
    }
    giveUp = performance.now() + job.giveUpMs;
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

function ping(job: PingJob): PingResult {
  const out = attachRing(job.out, job.spin);
  const back = attachRing(job.back, job.spin);
  const e = new Uint32Array(out.words);
  const r: PingResult = { rounds: 0, timeouts: 0, wrong: 0, lost: 0, slow: 0, worstAsleepMs: 0, stuck: false };
  const j = job.judging;
  const sent = j && new Stamps(j.out);
  const judge = j && new WakeJudge(j.back, job.timeoutMs / 2);
  const failures = (): number => (judge === undefined ? r.timeouts : judge.lost);
  let t0 = performance.now();
  let end = Infinity;
  for (let i = 0; i < job.count && failures() < job.maxTimeouts && performance.now() < end; i++) {
    // The bench times the rounds after PING_WARMUP (the echo worker is up by then).
    if (i === PING_WARMUP) t0 = performance.now();
    if (i === 1 && j !== undefined) end = performance.now() + j.budgetMs;
    e[0] = i;
    // `out` never holds more than this round's entry: never full.
    if (!out.pushWait(e, 0, job.timeoutMs)) {
      r.timeouts++;
      continue;
    }
    sent?.mark(i);
    judge?.begin();
    const giveUp = performance.now() + (j?.giveUpMs ?? Infinity);
    while (!back.popWait(e, 0, job.timeoutMs)) {
      r.timeouts++;
      // Without judging a timeout is a failure; with it, a look-up: the round is judged below.
      if (judge === undefined && r.timeouts >= job.maxTimeouts) return r;
      if (performance.now() > giveUp) {
        r.stuck = true;
        break;
      }
    }
    if (r.stuck) break;
    judge?.end(i);
    if (e[0] !== i) r.wrong++;
    r.rounds++;
  }
  if (job.timed) r.elapsedMs = performance.now() - t0;
  if (judge !== undefined) Object.assign(r, { lost: judge.lost, slow: judge.slow, worstAsleepMs: judge.worstAsleepMs });
  return r;
}

function echo(job: EchoJob): EchoResult {
  const input = attachRing(job.in, job.spin);
  const out = attachRing(job.out, job.spin);
  const e = new Uint32Array(input.words);
  const judge = job.judging && new WakeJudge(job.judging.out, job.timeoutMs / 2);
  const sent = job.judging && new Stamps(job.judging.back);
  let n = 0;
  const result = (): EchoResult => ({ echoed: n, lost: judge?.lost ?? 0, slow: judge?.slow ?? 0, worstAsleepMs: judge?.worstAsleepMs ?? 0 });
  for (;;) {
    judge?.begin();
    while (!input.popWait(e, 0, job.timeoutMs)) if (input.closed) return result();
    judge?.end(n);
    if (!out.pushWait(e, 0, job.timeoutMs)) return result();
    sent?.mark(n);
    n++;
  }
}

function room(job: RoomJob): PingResult {
  const ring = attachRing(job.ring, job.spin);
  const ack = attachRing(job.ack, job.spin);
  const limit = new Int32Array(job.limit);
  const e = new Uint32Array(ring.words);
  const r: PingResult = { rounds: 0, timeouts: 0, wrong: 0, lost: 0, slow: 0, worstAsleepMs: 0, stuck: false };
  const producer = job.role === 'room-producer';
  // The producer waits for the consumer's pops, the consumer for the producer's acks.
  const judge = new WakeJudge(producer ? job.popped : job.acked, job.timeoutMs / 2);
  const stamps = new Stamps(producer ? job.acked : job.popped);
  const wait = (step: () => boolean): boolean => {
    const giveUp = performance.now() + job.giveUpMs;
    while (!step()) {
      r.timeouts++;
      if (performance.now() > giveUp) return false;
    }
    return true;
  };
  let end = Infinity;
  for (let i = 0; i < Atomics.load(limit, 0) && judge.lost < job.maxLost; i++) {
    if (i === 1) end = performance.now() + job.budgetMs;
    if (producer) {
      e[0] = i;
      judge.begin();
      if (!wait(() => ring.pushWait(e, 0, job.timeoutMs))) {
        r.stuck = true;
        break;
      }
      judge.end(i);
      // Out of time: this round is the last; the consumer reads the limit after this ack.
      if (performance.now() > end) Atomics.store(limit, 0, i + 1);
      // `ack` never holds more than this round's entry: a full one is wrong.
      if (!ack.pushWait(e, 0, job.timeoutMs)) r.wrong++;
      stamps.mark(i);
    } else {
      if (!ring.tryPop(e)) r.wrong++; // the ring is full at this point, always
      stamps.mark(i);
      judge.begin();
      if (!wait(() => ack.popWait(e, 0, job.timeoutMs))) {
        r.stuck = true;
        break;
      }
      judge.end(i);
    }
    r.rounds++;
  }
  return Object.assign(r, { lost: judge.lost, slow: judge.slow, worstAsleepMs: judge.worstAsleepMs });
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
    case 'bench-produce': result = benchProduce(job); break;
    case 'bench-consume': result = benchConsume(job); break;
    case 'ping': result = ping(job); break;
    case 'echo': result = echo(job); break;
    case 'room-producer':
    case 'room-consumer': result = room(job); break;
  }
  parentPort.postMessage(result);
}
