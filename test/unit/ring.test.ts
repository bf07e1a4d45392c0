import { setPriority } from 'node:os';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { MpmcRing, RING_LAYOUT, SpscRing, type Ring } from '../../src/pipeline/ring.js';
import { fillEntry, type ConsumeResult, type PingResult, type ProduceResult, type RingJob } from '../helpers/ring-worker.js';

// The stress tests keep both cores busy for seconds. At the lowest priority (threads made
// from here inherit it) they take only idle CPU, so the timing-sensitive network tests that
// node --test runs beside them keep theirs: a UDP peer starved of CPU drops datagrams.
setPriority(19);

const WORKER = new URL('../helpers/ring-worker.js', import.meta.url);
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
    const t0 = performance.now();
    assert.equal(b.popWait(e, 0, 5000), false);
    assert.ok(performance.now() - t0 < 1000, 'closed and empty returns at once');
  });

  test(`${kind}: waits time out`, () => {
    const ring = make(2, 1, 10);
    const e = new Uint32Array(1);
    let t0 = performance.now();
    assert.equal(ring.popWait(e, 0, 40), false);
    let dt = performance.now() - t0;
    assert.ok(dt >= 35 && dt < 2000, `popWait took ${dt} ms`);
    ring.tryPush(e);
    ring.tryPush(e);
    t0 = performance.now();
    assert.equal(ring.pushWait(e, 0, 40), false);
    dt = performance.now() - t0;
    assert.ok(dt >= 35 && dt < 2000, `pushWait took ${dt} ms`);
  });

  test(`${kind}: close() wakes a worker asleep in popWait and one asleep in pushWait`, async () => {
    const empty = make(4, 4, 0);
    const full = make(4, 4, 0);
    const e = new Uint32Array(4);
    for (let i = 0; i < 4; i++) assert.equal(full.tryPush(e), true);
    // A consumer with no producer and a producer with no consumer: only close() ends them.
    const c = startWorker<ConsumeResult>({
      role: 'consume', ring: empty.share(), spin: 0, producers: 1, count: 1,
      seen: new SharedArrayBuffer(4), timeoutMs: 30_000, deadlineMs: 30_000,
    });
    const p = startWorker<ProduceResult>({
      role: 'produce', ring: full.share(), spin: 0, producer: 0, count: 1, timeoutMs: 30_000, deadlineMs: 30_000,
    });
    try {
      // Let both reach Atomics.wait (worker start-up is ~tens of ms).
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      empty.close();
      full.close();
      const [cr, pr] = await Promise.all([c.result, p.result]);
      const dt = performance.now() - t0;
      assert.ok(dt < 5000, `woken after ${dt} ms`);
      assert.deepEqual(cr, { popped: 0, torn: 0, outOfOrder: 0, badIds: 0, timeouts: 0, gaveUp: false });
      // The producer's one push failed because the ring closed: its first timeout
      // or closed return, not a 30 s wait.
      assert.equal(pr.pushed, 0);
      assert.equal(pr.gaveUp, true);
    } finally {
      await Promise.all([c.worker.terminate(), p.worker.terminate()]);
    }
  });

  test(`${kind}: waitNotEmptyAsync resolves on a push, on close and on timeout`, async () => {
    const ring = make(4, 1);
    const e = new Uint32Array(1);
    // Already non-empty: at once.
    ring.tryPush(e);
    await ring.waitNotEmptyAsync(10_000);
    ring.tryPop(e);
    // A pending waitAsync does not keep the event loop alive: this timer does.
    const keep = setTimeout(() => {}, 20_000);
    try {
      let t0 = performance.now();
      const waiting = ring.waitNotEmptyAsync(10_000);
      setTimeout(() => {
        e[0] = 7;
        ring.tryPush(e);
      }, 30);
      await waiting;
      let dt = performance.now() - t0;
      assert.ok(dt < 5000, `resolved ${dt} ms after the wait started`);
      assert.equal(ring.tryPop(e), true);
      assert.equal(e[0], 7);

      t0 = performance.now();
      await ring.waitNotEmptyAsync(40);
      dt = performance.now() - t0;
      assert.ok(dt >= 35 && dt < 5000, `timed out after ${dt} ms`);

      t0 = performance.now();
      const closing = ring.waitNotEmptyAsync(10_000);
      setTimeout(() => ring.close(), 30);
      await closing;
      assert.ok(performance.now() - t0 < 5000);
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

const STRESS_ENTRIES = 200_000;
const WAIT_MS = 2_000; // a lost wake-up shows as a wait this long: counted, asserted 0
const DEADLINE_MS = 8_000;

/** Pops on the main thread with tryPop + waitNotEmptyAsync, as the control plane would. */
async function mainConsumer(ring: Ring, producers: number, count: number, seen: Int32Array): Promise<ConsumeResult> {
  const r: ConsumeResult = { popped: 0, torn: 0, outOfOrder: 0, badIds: 0, timeouts: 0, gaveUp: false };
  const last = new Array<number>(producers).fill(-1);
  const e = new Uint32Array(ring.words);
  const check = new Uint32Array(ring.words);
  const end = performance.now() + DEADLINE_MS;
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
      await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    if (ring.closed && ring.size === 0) return r;
    if (performance.now() > end) {
      r.gaveUp = true;
      return r;
    }
    const t0 = performance.now();
    await ring.waitNotEmptyAsync(WAIT_MS);
    if (performance.now() - t0 >= WAIT_MS - 50 && ring.size === 0 && !ring.closed) r.timeouts++;
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
  test(`stress ${c.name}: ${STRESS_ENTRIES} entries per producer, none lost, duplicated or torn, order kept`, { timeout: 20_000 }, async () => {
    const ring = c.make();
    const spin = c.name.includes('spin 0') ? 0 : undefined;
    const seenBuf = new SharedArrayBuffer(c.producers * STRESS_ENTRIES * 4);
    const seen = new Int32Array(seenBuf);
    const started = performance.now();
    const consumers = Array.from({ length: c.consumers }, () =>
      startWorker<ConsumeResult>({
        role: 'consume', ring: ring.share(), ...(spin === undefined ? {} : { spin }), producers: c.producers,
        count: STRESS_ENTRIES, seen: seenBuf, timeoutMs: WAIT_MS, deadlineMs: DEADLINE_MS,
      }),
    );
    const producers = Array.from({ length: c.producers }, (_, id) =>
      startWorker<ProduceResult>({
        role: 'produce', ring: ring.share(), ...(spin === undefined ? {} : { spin }), producer: id,
        count: STRESS_ENTRIES, timeoutMs: WAIT_MS, deadlineMs: DEADLINE_MS,
      }),
    );
    try {
      const mainResult = c.mainConsumer ? mainConsumer(ring, c.producers, STRESS_ENTRIES, seen) : undefined;
      const produced = await Promise.all(producers.map((p) => p.result));
      ring.close();
      const consumed = await Promise.all(consumers.map((x) => x.result));
      if (mainResult) consumed.push(await mainResult);
      const elapsed = performance.now() - started;

      for (const p of produced) assert.deepEqual(p, { pushed: STRESS_ENTRIES, timeouts: 0, gaveUp: false });
      let popped = 0;
      for (const r of consumed) {
        assert.equal(r.torn, 0, 'torn entries');
        assert.equal(r.badIds, 0, 'entries with impossible ids');
        assert.equal(r.outOfOrder, 0, 'a producer’s entries out of order at one consumer');
        assert.equal(r.timeouts, 0, 'a wait hit its timeout: a lost wake-up');
        assert.equal(r.gaveUp, false);
        popped += r.popped;
      }
      assert.equal(popped, c.producers * STRESS_ENTRIES);
      let lost = 0;
      let dup = 0;
      for (let i = 0; i < seen.length; i++) {
        if (seen[i] === 0) lost++;
        else if (seen[i] !== 1) dup++;
      }
      assert.equal(lost, 0, 'lost entries');
      assert.equal(dup, 0, 'duplicated entries');
      if (c.consumers + (c.mainConsumer ? 1 : 0) > 1) {
        // Every consumer took part, or the test did not test contention.
        for (const r of consumed) assert.ok(r.popped > 0, 'a consumer popped nothing');
      }
      assert.equal(ring.size, 0);
      assert.ok(elapsed < 10_000, `took ${elapsed.toFixed(0)} ms`);
    } finally {
      ring.close();
      await Promise.all([...consumers, ...producers].map((w) => w.worker.terminate()));
    }
  });
}

// --- Lost wake-ups -----------------------------------------------------------------
// The streams above heal a lost wake-up at the next push; these do not: each step
// waits for the other side's answer, with spin 0 so nearly every step sleeps.

const ROUNDS = 20_000;
const PING_WAIT_MS = 500;

for (const [kind, make] of KINDS) {
  test(`${kind}: ping-pong between two workers, ${ROUNDS} rounds, no wait times out (data wake-ups)`, { timeout: 20_000 }, async () => {
    const out = make(4, 2, 0);
    const back = make(4, 2, 0);
    const e = startWorker<number>({ role: 'echo', in: out.share(), out: back.share(), spin: 0, timeoutMs: 5_000 });
    const p = startWorker<PingResult>({
      role: 'ping', out: out.share(), back: back.share(), spin: 0, count: ROUNDS, timeoutMs: PING_WAIT_MS, maxTimeouts: 3,
    });
    try {
      const t0 = performance.now();
      const r = await p.result;
      out.close();
      assert.equal(await e.result, r.rounds);
      assert.deepEqual(r, { rounds: ROUNDS, timeouts: 0, wrong: 0 });
      assert.ok(performance.now() - t0 < 10_000);
    } finally {
      out.close();
      back.close();
      await Promise.all([e.worker.terminate(), p.worker.terminate()]);
    }
  });

  test(`${kind}: producer asleep on a full ring, woken only by pops, ${ROUNDS} rounds (room wake-ups)`, { timeout: 20_000 }, async () => {
    const ring = make(2, 1, 0);
    const ack = make(2, 1, 0);
    const x = new Uint32Array(1);
    while (ring.tryPush(x));
    const job = { ring: ring.share(), ack: ack.share(), spin: 0, count: ROUNDS, timeoutMs: PING_WAIT_MS, maxTimeouts: 3 };
    const prod = startWorker<PingResult>({ role: 'room-producer', ...job });
    const cons = startWorker<PingResult>({ role: 'room-consumer', ...job });
    try {
      const [pr, cr] = await Promise.all([prod.result, cons.result]);
      assert.deepEqual(pr, { rounds: ROUNDS, timeouts: 0, wrong: 0 });
      assert.deepEqual(cr, { rounds: ROUNDS, timeouts: 0, wrong: 0 });
      assert.equal(ring.size, ring.capacity);
    } finally {
      ring.close();
      ack.close();
      await Promise.all([prod.worker.terminate(), cons.worker.terminate()]);
    }
  });

  test(`${kind}: ping-pong with the main thread on waitNotEmptyAsync, 5000 rounds`, { timeout: 20_000 }, async () => {
    const out = make(4, 2, 0);
    const back = make(4, 2, 0);
    const e = startWorker<number>({ role: 'echo', in: out.share(), out: back.share(), spin: 0, timeoutMs: 5_000 });
    const v = new Uint32Array(2);
    let timeouts = 0;
    try {
      for (let i = 0; i < 5000 && timeouts < 3; i++) {
        v[0] = i;
        assert.equal(out.tryPush(v), true);
        for (;;) {
          if (back.tryPop(v)) break;
          const t0 = performance.now();
          await back.waitNotEmptyAsync(PING_WAIT_MS);
          if (performance.now() - t0 >= PING_WAIT_MS - 20 && back.size === 0) timeouts++;
          if (timeouts >= 3) break;
        }
        if (timeouts === 0) assert.equal(v[0], i);
      }
      assert.equal(timeouts, 0, 'a main-thread wait timed out: a lost wake-up');
      out.close();
      assert.equal(await e.result, 5000);
    } finally {
      out.close();
      back.close();
      await e.worker.terminate();
    }
  });
}
