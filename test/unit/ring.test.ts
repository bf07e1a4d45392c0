import { setPriority } from 'node:os';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { MpmcRing, RING_LAYOUT, SpscRing, type Ring } from '../../src/pipeline/ring.js';
import { arrive, fillEntry, type ConsumeResult, type EchoResult, type PingJudging, type PingResult, type ProduceResult, type RingJob } from '../helpers/ring-worker.js';
import { waitFor } from '../helpers/wait.js';
import { Stamps, WakeJudge } from '../helpers/wake-judge.js';

// The stress tests keep both cores busy for seconds. At the lowest priority (threads made
// from here inherit it) they take only idle CPU, so the timing-sensitive network tests that
// node --test runs beside them keep theirs: a UDP peer starved of CPU drops datagrams.
setPriority(19);

const WORKER = new URL('../helpers/ring-worker.js', import.meta.url);
// No timing assertions here (the suite passes on a busy machine): at the lowest priority on a busy machine these
// threads may get a sliver of a CPU. A test that waits for something waits up to HANG_MS
// (which only a hang reaches), and a wait that must be ended by something else than its
// timeout waits NEVER_MS, longer than the test may run.
const HANG_MS = 120_000;
const NEVER_MS = 600_000;
const KINDS = [
  ['spsc', (c: number, w: number, spin?: number) => new SpscRing(c, w, spin === undefined ? {} : { spin })],
  ['mpmc', (c: number, w: number, spin?: number) => new MpmcRing(c, w, spin === undefined ? {} : { spin })],
] as const;

function startWorker<T>(job: RingJob): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(WORKER, { workerData: job });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`ring worker exited with ${code} before its result`)));
  });
  // Handled here too: after a failed assertion the finally terminates workers whose
  // results nobody awaits any more.
  result.catch(() => {});
  return { worker, result };
}

for (const [kind, make] of KINDS) {
  test(`${kind}: full and empty edges, FIFO`, () => {
    const ring = make(8, 2);
    const e = new Uint32Array(2);
    assert.equal(ring.size, 0);
    assert.equal(ring.tryPop(e), false);
    for (let i = 0; i < 8; i++) {
      e[0] = i;
      e[1] = ~i >>> 0;
      assert.equal(ring.tryPush(e), true, `push ${i}`);
      assert.equal(ring.size, i + 1);
    }
    e[0] = 99;
    assert.equal(ring.tryPush(e), false, 'full');
    assert.equal(ring.size, 8);
    for (let i = 0; i < 8; i++) {
      assert.equal(ring.tryPop(e), true);
      assert.deepEqual([...e], [i, ~i >>> 0]);
    }
    assert.equal(ring.tryPop(e), false, 'empty again');
    assert.equal(ring.size, 0);
    // A pop makes room for exactly one push.
    for (let i = 0; i < 8; i++) assert.equal(ring.tryPush(e), true);
    assert.equal(ring.tryPop(e), true);
    assert.equal(ring.tryPush(e), true);
    assert.equal(ring.tryPush(e), false);
  });

  for (const words of [1, 8]) {
    test(`${kind}: words ${words}, wraps around many times with offsets into src/dst`, () => {
      const cap = 4;
      const ring = make(cap, words);
      const src = new Uint32Array(words * 3);
      const dst = new Uint32Array(words * 3).fill(0xdead);
      let pushed = 0;
      let popped = 0;
      // Fill levels 1..cap in turn, so head and tail wrap with every phase of the mask.
      for (let round = 0; round < 5000; round++) {
        const n = (round % cap) + 1;
        for (let i = 0; i < n; i++) {
          for (let k = 0; k < words; k++) src[words + k] = (pushed * 31 + k) >>> 0;
          assert.equal(ring.tryPush(src, words), true);
          pushed++;
        }
        if (n === cap) assert.equal(ring.tryPush(src, words), false);
        for (let i = 0; i < n; i++) {
          assert.equal(ring.tryPop(dst, 2 * words), true);
          for (let k = 0; k < words; k++) assert.equal(dst[2 * words + k], (popped * 31 + k) >>> 0);
          popped++;
        }
        assert.equal(ring.tryPop(dst, 2 * words), false);
      }
      assert.equal(popped, pushed);
      // The words outside [at, at+words) were never written.
      for (let k = 0; k < 2 * words; k++) assert.equal(dst[k], 0xdead);
    });
  }

  test(`${kind}: attach sees the same entries; close drains then refuses`, () => {
    const a = make(4, 3);
    const b: Ring = kind === 'spsc' ? SpscRing.attach(a.share()) : MpmcRing.attach(a.share());
    const e = new Uint32Array([1, 2, 3]);
    assert.equal(a.tryPush(e), true);
    e[0] = 4;
    assert.equal(a.tryPush(e), true);
    assert.equal(b.size, 2);
    assert.equal(b.tryPop(e), true);
    assert.deepEqual([...e], [1, 2, 3]);
    a.close();
    assert.equal(b.closed, true);
    assert.equal(a.tryPush(e), false, 'no push after close');
    assert.equal(b.popWait(e, 0, 1000), true, 'what was pushed before close still pops');
    assert.equal(e[0], 4);
    // Returning before its own timeout (a bound no scheduler delay reaches) means the
    // closed ring ended the wait, not the timeout. Not NEVER_MS: a synchronous wait on
    // this thread, which no test timeout could end.
    const t0 = performance.now();
    assert.equal(b.popWait(e, 0, HANG_MS / 2), false);
    assert.ok(performance.now() - t0 < HANG_MS / 2, 'closed and empty returns without waiting out its timeout');
  });

  test(`${kind}: waits time out, not before their timeout`, () => {
    // Only the lower bound is checked: a busy machine makes a wait end later, never
    // sooner, and how much later says nothing about the ring.
    const ring = make(2, 1, 10);
    const e = new Uint32Array(1);
    let t0 = performance.now();
    assert.equal(ring.popWait(e, 0, 40), false);
    let dt = performance.now() - t0;
    assert.ok(dt >= 35, `popWait returned after ${dt} ms`);
    ring.tryPush(e);
    ring.tryPush(e);
    t0 = performance.now();
    assert.equal(ring.pushWait(e, 0, 40), false);
    dt = performance.now() - t0;
    assert.ok(dt >= 35, `pushWait returned after ${dt} ms`);
  });

  test(`${kind}: close() wakes a worker asleep in popWait and one asleep in pushWait`, { timeout: HANG_MS }, async () => {
    const empty = make(4, 4, 0);
    const full = make(4, 4, 0);
    const e = new Uint32Array(4);
    for (let i = 0; i < 4; i++) assert.equal(full.tryPush(e), true);
    // A consumer with no producer and a producer with no consumer, waiting longer than
    // this test may run: only close() ends them, so results at all mean close() woke them.
    const c = startWorker<ConsumeResult>({
      role: 'consume', ring: empty.share(), spin: 0, producers: 1, count: 1,
      seen: new SharedArrayBuffer(4), timeoutMs: NEVER_MS, giveUpMs: NEVER_MS,
    });
    const p = startWorker<ProduceResult>({
      role: 'produce', ring: full.share(), spin: 0, producer: 0, count: 1, timeoutMs: NEVER_MS,
      budgetMs: NEVER_MS, ready: new SharedArrayBuffer(4), consumers: 0, giveUpMs: NEVER_MS,
    });
    try {
      // Both asleep (registered as sleepers), however long their start-up took.
      const ctl = (r: Ring) => new Int32Array(r.share().buffer, 0, RING_LAYOUT.HEADER_WORDS);
      await waitFor('both workers asleep on their rings', () =>
        Atomics.load(ctl(empty), RING_LAYOUT.DATA_SLEEPERS) === 1 && Atomics.load(ctl(full), RING_LAYOUT.ROOM_SLEEPERS) === 1, HANG_MS / 2);
      empty.close();
      full.close();
      const [cr, pr] = await Promise.all([c.result, p.result]);
      assert.deepEqual(cr, { popped: 0, torn: 0, outOfOrder: 0, badIds: 0, stalls: 0, gaveUp: false });
      // The producer's one push failed because the ring closed.
      assert.equal(pr.pushed, 0);
      assert.equal(pr.gaveUp, true);
    } finally {
      await Promise.all([c.worker.terminate(), p.worker.terminate()]);
    }
  });

  test(`${kind}: waitNotEmptyAsync resolves on a push, on close and on timeout`, { timeout: HANG_MS }, async () => {
    const ring = make(4, 1);
    const e = new Uint32Array(1);
    // Already non-empty: at once.
    ring.tryPush(e);
    await ring.waitNotEmptyAsync(NEVER_MS);
    ring.tryPop(e);
    // A pending waitAsync does not keep the event loop alive: this timer does.
    const keep = setTimeout(() => {}, NEVER_MS);
    try {
      // Waits longer than this test may run: resolving at all means the push (or the
      // close) resolved them, however late this thread got to see it.
      const waiting = ring.waitNotEmptyAsync(NEVER_MS);
      setTimeout(() => {
        e[0] = 7;
        ring.tryPush(e);
      }, 30);
      await waiting;
      assert.equal(ring.tryPop(e), true);
      assert.equal(e[0], 7);

      // Not before its timeout, and with nothing pushed and the ring open.
      const t0 = performance.now();
      await ring.waitNotEmptyAsync(40);
      const dt = performance.now() - t0;
      assert.ok(dt >= 35, `timed out after ${dt} ms`);
      assert.equal(ring.size, 0);
      assert.equal(ring.closed, false);

      const closing = ring.waitNotEmptyAsync(NEVER_MS);
      setTimeout(() => ring.close(), 30);
      await closing;
      assert.equal(ring.closed, true);
    } finally {
      clearTimeout(keep);
    }
  });
}

for (const [kind, make] of KINDS) {
  test(`${kind}: no wake-up (futex call) without a sleeper; one when a waiter is registered`, async () => {
    const ring = make(4, 1);
    const ctl = new Int32Array(ring.share().buffer, 0, RING_LAYOUT.HEADER_WORDS);
    const e = new Uint32Array(1);
    for (let i = 0; i < 100; i++) {
      ring.tryPush(e);
      ring.tryPush(e);
      ring.tryPop(e);
      ring.tryPop(e);
    }
    for (let i = 0; i < 4; i++) ring.tryPush(e);
    ring.tryPush(e); // full
    assert.equal(ctl[RING_LAYOUT.DATA_SEQ], 0, 'pushes bumped the data futex word with nobody waiting');
    assert.equal(ctl[RING_LAYOUT.ROOM_SEQ], 0, 'pops bumped the room futex word with nobody waiting');
    while (ring.tryPop(e));
    const keep = setTimeout(() => {}, 10_000);
    try {
      const waiting = ring.waitNotEmptyAsync(5_000);
      assert.equal(ctl[RING_LAYOUT.DATA_SLEEPERS], 1);
      ring.tryPush(e);
      assert.equal(ctl[RING_LAYOUT.DATA_SEQ], 1);
      await waiting;
      assert.equal(ctl[RING_LAYOUT.DATA_SLEEPERS], 0);
    } finally {
      clearTimeout(keep);
    }
  });
}

for (const start of [0x7fff_fff0 | 0, 0xffff_fff0 | 0]) {
  for (const [kind, make] of KINDS) {
    test(`${kind}: positions wrap through ${start >>> 0 === 0x7fff_fff0 ? '2^31 (int32 sign)' : '2^32'}`, () => {
      const cap = 8;
      const first = make(cap, 2);
      const s = first.share();
      // Move a fresh ring's positions to `start`, as if it had run that long.
      const ctl = new Int32Array(s.buffer, 0, RING_LAYOUT.HEADER_WORDS);
      ctl[RING_LAYOUT.HEAD] = start;
      ctl[RING_LAYOUT.TAIL] = start;
      if (kind === 'mpmc') {
        // Cell (start + k) & mask expects the push at position start + k.
        const seqs = new Int32Array(s.buffer, RING_LAYOUT.HEADER_WORDS * 4, cap);
        for (let k = 0; k < cap; k++) seqs[(start + k) & (cap - 1)] = (start + k) | 0;
      }
      const ring: Ring = kind === 'spsc' ? SpscRing.attach(s) : MpmcRing.attach(s);
      const e = new Uint32Array(2);
      let pushed = 0;
      let popped = 0;
      for (let round = 0; round < 20; round++) {
        const n = (round % cap) + 1;
        for (let i = 0; i < n; i++) {
          e[0] = pushed++;
          e[1] = ~e[0] >>> 0;
          assert.equal(ring.tryPush(e), true);
        }
        assert.equal(ring.size, n);
        if (n === cap) assert.equal(ring.tryPush(e), false, 'full across the wrap');
        for (let i = 0; i < n; i++) {
          assert.equal(ring.tryPop(e), true);
          assert.deepEqual([...e], [popped, ~popped >>> 0]);
          popped++;
        }
        assert.equal(ring.tryPop(e), false, 'empty across the wrap');
      }
      assert.ok(((ctl[RING_LAYOUT.TAIL]! - start) | 0) === pushed && pushed > 64, 'the positions went through the wrap');
    });
  }
}

test('constructor and attach reject bad dimensions and the wrong kind', () => {
  for (const cap of [0, 1, 3, 6, 2 ** 25, 2.5]) {
    assert.throws(() => new SpscRing(cap, 1), RangeError, `capacity ${cap}`);
    assert.throws(() => new MpmcRing(cap, 1), RangeError, `capacity ${cap}`);
  }
  for (const words of [0, -1, 1.5, 1025]) assert.throws(() => new SpscRing(4, words), RangeError, `words ${words}`);
  assert.throws(() => new SpscRing(4, 1, { spin: -1 }), RangeError);
  assert.throws(() => MpmcRing.attach(new SpscRing(4, 1).share()), TypeError);
  assert.throws(() => SpscRing.attach(new MpmcRing(4, 1).share()), TypeError);
  for (const ring of [new SpscRing(4, 2), new MpmcRing(4, 2)]) {
    assert.throws(() => ring.tryPush(new Uint32Array(3), 2), RangeError, 'src too short');
    assert.equal(ring.size, 0, 'a refused push claimed nothing');
    ring.tryPush(new Uint32Array(2));
    assert.throws(() => ring.tryPop(new Uint32Array(1)), RangeError, 'dst too short');
    assert.equal(ring.size, 1, 'a refused pop took nothing');
  }
  const s = new SpscRing(4, 1).share();
  assert.throws(() => SpscRing.attach({ ...s, capacity: 8 }), RangeError);
});

// --- Stress across threads ---------------------------------------------------------
// Bounded in count and time: every producer pushes STRESS_ENTRIES or as many as it can
// in STRESS_BUDGET_MS, so a busy machine moves fewer entries, and every one of them is
// checked the same: none lost, duplicated, torn or reordered, every consumer took part.
// A wait's timeout (WAIT_MS) is how often it looks up, not a failure: a stream heals a
// lost wake-up at the next push, and a long wait here is as likely a descheduled producer.
// The lost wake-up tests are the ping-pong ones below, which tell the two apart.

const STRESS_ENTRIES = 200_000;
const STRESS_BUDGET_MS = 8_000; // the old deadline: a machine that met it moves every entry, as before
const WAIT_MS = 2_000;

/** Pops on the main thread with tryPop + waitNotEmptyAsync, as the control plane would. */
async function mainConsumer(ring: Ring, producers: number, count: number, seen: Int32Array, ready: SharedArrayBuffer): Promise<ConsumeResult> {
  const r: ConsumeResult = { popped: 0, torn: 0, outOfOrder: 0, badIds: 0, stalls: 0, gaveUp: false };
  const last = new Array<number>(producers).fill(-1);
  const e = new Uint32Array(ring.words);
  const check = new Uint32Array(ring.words);
  arrive(ready);
  let giveUp = performance.now() + HANG_MS;
  for (;;) {
    // Bounded bursts, so the event loop runs (worker messages, the close below).
    let n = 0;
    while (n < 4096 && ring.tryPop(e)) {
      n++;
      r.popped++;
      const p = e[0]!;
      const seq = e[1]!;
      if (p >= producers || seq >= count) {
        r.badIds++;
        continue;
      }
      let ok = true;
      fillEntry(check, 0, ring.words, p, seq);
      for (let k = 2; k < ring.words; k++) if (e[k] !== check[k]) ok = false;
      if (!ok) {
        r.torn++;
        continue;
      }
      if (seq <= last[p]!) r.outOfOrder++;
      last[p] = seq;
      Atomics.add(seen, p * count + seq, 1);
    }
    if (n > 0) {
      giveUp = performance.now() + HANG_MS;
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    if (ring.closed && ring.size === 0) return r;
    if (performance.now() > giveUp) {
      r.gaveUp = true;
      return r;
    }
    const t0 = performance.now();
    await ring.waitNotEmptyAsync(WAIT_MS);
    if (performance.now() - t0 >= WAIT_MS && ring.size === 0) r.stalls++;
  }
}

interface StressCase {
  name: string;
  make: () => Ring;
  producers: number;
  consumers: number;
  mainConsumer: boolean;
}

const STRESS: StressCase[] = [
  { name: 'spsc 1 → 1, capacity 256', make: () => new SpscRing(256, 4), producers: 1, consumers: 1, mainConsumer: false },
  // Tiny ring and no spinning: nearly every push and pop goes through the sleep path,
  // which is where a lost wake-up would stall both sides.
  { name: 'spsc 1 → 1, capacity 4, spin 0', make: () => new SpscRing(4, 4, { spin: 0 }), producers: 1, consumers: 1, mainConsumer: false },
  { name: 'mpmc 2 → 2 workers + main, capacity 64', make: () => new MpmcRing(64, 4), producers: 2, consumers: 2, mainConsumer: true },
  { name: 'mpmc 2 → 2, capacity 16, spin 0, words 8', make: () => new MpmcRing(16, 8, { spin: 0 }), producers: 2, consumers: 2, mainConsumer: false },
];

for (const c of STRESS) {
  test(`stress ${c.name}: up to ${STRESS_ENTRIES} entries per producer, none lost, duplicated or torn, order kept`, { timeout: HANG_MS }, async (t) => {
    const ring = c.make();
    const spin = c.name.includes('spin 0') ? 0 : undefined;
    const seenBuf = new SharedArrayBuffer(c.producers * STRESS_ENTRIES * 4);
    const seen = new Int32Array(seenBuf);
    const ready = new SharedArrayBuffer(4);
    const parties = c.consumers + (c.mainConsumer ? 1 : 0);
    const consumers = Array.from({ length: c.consumers }, () =>
      startWorker<ConsumeResult>({
        role: 'consume', ring: ring.share(), ...(spin === undefined ? {} : { spin }), producers: c.producers,
        count: STRESS_ENTRIES, seen: seenBuf, timeoutMs: WAIT_MS, ready, giveUpMs: HANG_MS,
      }),
    );
    const producers = Array.from({ length: c.producers }, (_, id) =>
      startWorker<ProduceResult>({
        role: 'produce', ring: ring.share(), ...(spin === undefined ? {} : { spin }), producer: id,
        count: STRESS_ENTRIES, timeoutMs: WAIT_MS, budgetMs: STRESS_BUDGET_MS, ready, consumers: parties, giveUpMs: HANG_MS,
      }),
    );
    try {
      const mainResult = c.mainConsumer ? mainConsumer(ring, c.producers, STRESS_ENTRIES, seen, ready) : undefined;
      const produced = await Promise.all(producers.map((p) => p.result));
      ring.close();
      const consumed = await Promise.all(consumers.map((x) => x.result));
      if (mainResult) consumed.push(await mainResult);
      t.diagnostic(`pushed ${produced.map((p) => p.pushed).join(', ')}; popped ${consumed.map((r) => r.popped).join(', ')}; ` +
        `stalls (waits that hit ${WAIT_MS} ms) ${[...produced, ...consumed].map((r) => r.stalls).join(', ')}`);

      for (const p of produced) {
        assert.equal(p.gaveUp, false, 'a producer gave up: the ring stayed full');
        assert.ok(p.pushed > 0, 'a producer pushed nothing');
      }
      let popped = 0;
      for (const r of consumed) {
        assert.equal(r.torn, 0, 'torn entries');
        assert.equal(r.badIds, 0, 'entries with impossible ids');
        assert.equal(r.outOfOrder, 0, 'a producer’s entries out of order at one consumer');
        assert.equal(r.gaveUp, false);
        popped += r.popped;
      }
      assert.equal(popped, produced.reduce((sum, p) => sum + p.pushed, 0));
      let lost = 0;
      let dup = 0;
      let invented = 0;
      for (let p = 0; p < c.producers; p++) {
        for (let seq = 0; seq < STRESS_ENTRIES; seq++) {
          const n = seen[p * STRESS_ENTRIES + seq]!;
          if (seq >= produced[p]!.pushed) {
            if (n !== 0) invented++;
          } else if (n === 0) lost++;
          else if (n !== 1) dup++;
        }
      }
      assert.equal(lost, 0, 'lost entries');
      assert.equal(dup, 0, 'duplicated entries');
      assert.equal(invented, 0, 'entries popped that were never pushed');
      if (parties > 1) {
        // Every consumer took part, or the test did not test contention.
        for (const r of consumed) assert.ok(r.popped > 0, 'a consumer popped nothing');
      }
      assert.equal(ring.size, 0);
    } finally {
      ring.close();
      await Promise.all([...consumers, ...producers].map((w) => w.worker.terminate()));
    }
  });
}

// --- Lost wake-ups -----------------------------------------------------------------
// The streams above heal a lost wake-up at the next push; these do not: each step
// waits for the other side's answer, with spin 0 so nearly every step sleeps. A wait
// looks up every PING_WAIT_MS; whether a long one lost its wake-up or only met a slow
// scheduler (the other side descheduled or starting up, or this thread woken but not
// yet on a CPU) is the WakeJudge's to tell (test/helpers/wake-judge.ts): lost is a
// thread that slept on through PING_WAIT_MS / 2 after the step it waited for was done.
// Up to ROUNDS rounds, and none started after PING_BUDGET_MS.

const ROUNDS = 20_000;
const PING_WAIT_MS = 500;
const PING_BUDGET_MS = 5_000;

function pingJudging(rounds: number): PingJudging {
  const base = Date.now();
  return { out: Stamps.create(rounds, base), back: Stamps.create(rounds, base), budgetMs: PING_BUDGET_MS, giveUpMs: HANG_MS / 2 };
}

for (const [kind, make] of KINDS) {
  test(`${kind}: ping-pong between two workers, up to ${ROUNDS} rounds, no wake-up lost (data wake-ups)`, { timeout: HANG_MS }, async (t) => {
    const out = make(4, 2, 0);
    const back = make(4, 2, 0);
    const judging = pingJudging(ROUNDS);
    const e = startWorker<EchoResult>({ role: 'echo', in: out.share(), out: back.share(), spin: 0, timeoutMs: PING_WAIT_MS, judging });
    const p = startWorker<PingResult>({
      role: 'ping', out: out.share(), back: back.share(), spin: 0, count: ROUNDS, timeoutMs: PING_WAIT_MS, maxTimeouts: 3, judging,
    });
    try {
      const r = await p.result;
      out.close();
      const er = await e.result;
      t.diagnostic(`${r.rounds} rounds; slow waits ${r.slow} + ${er.slow}; longest sleep after a done step ${Math.max(r.worstAsleepMs, er.worstAsleepMs)} ms`);
      assert.equal(er.echoed, r.rounds);
      assert.equal(r.lost, 0, 'the ping slept on although its echo was there: a lost wake-up');
      assert.equal(er.lost, 0, 'the echo slept on although the ping was there: a lost wake-up');
      assert.equal(r.stuck, false);
      assert.equal(r.wrong, 0);
      assert.ok(r.rounds > 0);
    } finally {
      out.close();
      back.close();
      await Promise.all([e.worker.terminate(), p.worker.terminate()]);
    }
  });

  test(`${kind}: producer asleep on a full ring, woken only by pops, up to ${ROUNDS} rounds (room wake-ups)`, { timeout: HANG_MS }, async (t) => {
    const ring = make(2, 1, 0);
    const ack = make(2, 1, 0);
    const x = new Uint32Array(1);
    while (ring.tryPush(x));
    const base = Date.now();
    const limit = new SharedArrayBuffer(4);
    new Int32Array(limit)[0] = ROUNDS;
    const job = {
      ring: ring.share(), ack: ack.share(), spin: 0, count: ROUNDS, timeoutMs: PING_WAIT_MS, maxLost: 3,
      popped: Stamps.create(ROUNDS, base), acked: Stamps.create(ROUNDS, base), limit, budgetMs: PING_BUDGET_MS, giveUpMs: HANG_MS / 2,
    };
    const prod = startWorker<PingResult>({ role: 'room-producer', ...job });
    const cons = startWorker<PingResult>({ role: 'room-consumer', ...job });
    try {
      const [pr, cr] = await Promise.all([prod.result, cons.result]);
      t.diagnostic(`${pr.rounds} rounds; slow waits ${pr.slow} + ${cr.slow}; longest sleep after a done step ${Math.max(pr.worstAsleepMs, cr.worstAsleepMs)} ms`);
      assert.equal(pr.lost, 0, 'the producer slept on although the consumer had made room: a lost wake-up');
      assert.equal(cr.lost, 0, 'the consumer slept on although the ack was there: a lost wake-up');
      assert.deepEqual([pr.stuck, pr.wrong, cr.stuck, cr.wrong], [false, 0, false, 0]);
      assert.equal(cr.rounds, pr.rounds);
      assert.ok(pr.rounds > 0);
      assert.equal(ring.size, ring.capacity);
    } finally {
      ring.close();
      ack.close();
      await Promise.all([prod.worker.terminate(), cons.worker.terminate()]);
    }
  });

  test(`${kind}: ping-pong with the main thread on waitNotEmptyAsync, up to 5000 rounds, no wake-up lost`, { timeout: HANG_MS }, async (t) => {
    const MAIN_ROUNDS = 5000;
    const out = make(4, 2, 0);
    const back = make(4, 2, 0);
    const judging = pingJudging(MAIN_ROUNDS);
    const e = startWorker<EchoResult>({ role: 'echo', in: out.share(), out: back.share(), spin: 0, timeoutMs: PING_WAIT_MS, judging });
    const sent = new Stamps(judging.out);
    const judge = new WakeJudge(judging.back, PING_WAIT_MS / 2);
    const v = new Uint32Array(2);
    // A pending waitAsync does not keep the event loop alive: this timer does.
    const keep = setTimeout(() => {}, NEVER_MS);
    let rounds = 0;
    try {
      let end = Infinity;
      for (let i = 0; i < MAIN_ROUNDS && judge.lost < 3 && performance.now() < end; i++) {
        if (i === 1) end = performance.now() + PING_BUDGET_MS;
        v[0] = i;
        assert.equal(out.tryPush(v), true);
        sent.mark(i);
        judge.begin();
        const giveUp = performance.now() + HANG_MS / 2;
        while (!back.tryPop(v)) {
          assert.ok(performance.now() < giveUp, `round ${i}: no echo`);
          await back.waitNotEmptyAsync(PING_WAIT_MS);
        }
        judge.end(i);
        assert.equal(v[0], i);
        rounds++;
      }
      out.close();
      const er = await e.result;
      t.diagnostic(`${rounds} rounds; slow waits ${judge.slow} + ${er.slow}; longest sleep after a done step ${Math.max(judge.worstAsleepMs, er.worstAsleepMs)} ms`);
      assert.equal(judge.lost, 0, 'a main-thread wait slept on although the echo was there: a lost wake-up');
      assert.equal(er.lost, 0, 'the echo slept on although the main thread\'s entry was there: a lost wake-up');
      assert.equal(er.echoed, rounds);
      assert.ok(rounds > 0);
    } finally {
      clearTimeout(keep);
      out.close();
      back.close();
      await e.worker.terminate();
    }
  });
}
