import { setPriority } from 'node:os';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { ADDR_STRIDE } from '../../src/pipeline/address.js';
import { BatchArena } from '../../src/pipeline/arena.js';
import { HEADER_COUNT, HEADER_SPARE, HEADER_SPARE_WORDS, HEADER_WORDS, PacketBatch, SLOT_SIZE } from '../../src/pipeline/batch.js';
import type { ArenaJob, ArenaResult } from '../helpers/ring-worker.js';

// The stress tests keep both cores busy for seconds. At the lowest priority (threads made
// from here inherit it) they take only idle CPU, so the timing-sensitive network tests that
// node --test runs beside them keep theirs: a UDP peer starved of CPU drops datagrams.
setPriority(19);

const WORKER = new URL('../helpers/ring-worker.js', import.meta.url);
/** A bound only a hang reaches (no timing assertions: issue 20). */
const HANG_MS = 120_000;

test('acquire until -1, release all, inUse back to 0', () => {
  const arena = new BatchArena({ batches: 5, slotsPerBatch: 3, slotSize: 100 });
  assert.equal(arena.inUse, 0);
  const ids: number[] = [];
  for (;;) {
    const id = arena.acquire();
    if (id < 0) break;
    ids.push(id);
    assert.equal(arena.inUse, ids.length);
    assert.ok(ids.length <= 5, 'more batches than the arena has');
  }
  assert.deepEqual([...ids].sort((a, b) => a - b), [0, 1, 2, 3, 4]);
  assert.equal(arena.acquire(), -1);
  for (const id of ids) assert.equal(arena.owned(id), true);
  for (const id of ids) arena.release(id);
  assert.equal(arena.inUse, 0);
  assert.equal(arena.freeCount, 5);
  for (const id of ids) assert.equal(arena.owned(id), false);
});

test('double release and out-of-range ids throw RangeError and change nothing', () => {
  const arena = new BatchArena({ batches: 2, slotsPerBatch: 1, slotSize: 64 });
  const a = arena.acquire();
  arena.release(a);
  assert.throws(() => arena.release(a), RangeError);
  const never = arena.acquire() === 0 ? 1 : 0; // the batch still free
  assert.throws(() => arena.release(never), RangeError, 'release of a batch that is free');
  for (const bad of [-1, 2, 1.5, NaN]) assert.throws(() => arena.release(bad), RangeError, `release(${bad})`);
  assert.throws(() => arena.batch(2), RangeError);
  assert.throws(() => arena.header(-1), RangeError);
  assert.equal(arena.inUse, 1);
  assert.equal(arena.acquire(), never);
  assert.equal(arena.acquire(), -1, 'no id went onto the free list twice');
});

test('batch views: one object per id, disjoint, exactly slotsPerBatch * slotSize bytes', () => {
  const batches = 4;
  const slotsPerBatch = 3;
  const slotSize = 256;
  const arena = new BatchArena({ batches, slotsPerBatch, slotSize });
  const views = Array.from({ length: batches }, (_, id) => arena.batch(id));
  for (let id = 0; id < batches; id++) {
    const b = views[id]!;
    assert.equal(arena.batch(id), b, 'cached: the same object every call');
    assert.ok(b instanceof PacketBatch);
    assert.equal(b.slots, slotsPerBatch);
    assert.equal(b.slotSize, slotSize);
    assert.equal(b.data.byteLength, slotsPerBatch * slotSize);
    assert.equal(b.data.byteOffset, id * slotsPerBatch * slotSize);
    assert.equal(b.offsets.length, slotsPerBatch);
    assert.equal(b.lengths.length, slotsPerBatch);
    assert.equal(b.addrs.byteLength, slotsPerBatch * ADDR_STRIDE);
    assert.equal(b.header, arena.header(id));
    assert.equal(b.header.length, HEADER_WORDS);
  }
  // Write a distinct byte through every batch's every view; each buffer then reads
  // back exactly the ids in sequence, so the views tile it with no overlap or gap.
  for (let id = 0; id < batches; id++) {
    const b = views[id]!;
    b.data.fill(id + 1);
    b.offsets.fill(id + 1);
    b.lengths.fill(id + 1);
    b.addrs.fill(id + 1);
    b.header.fill(id + 1);
  }
  const s = arena.share();
  const tiles = (buf: SharedArrayBuffer, perBatch: number): void => {
    const all = new Uint8Array(buf);
    assert.equal(all.length, perBatch * batches);
    for (let i = 0; i < all.length; i++) {
      if (all[i] !== Math.floor(i / perBatch) + 1) assert.fail(`byte ${i} of a ${all.length}-byte buffer is ${all[i]}`);
    }
  };
  tiles(s.data, slotsPerBatch * slotSize);
  tiles(s.addrs, slotsPerBatch * ADDR_STRIDE);
  // Typed arrays of 4-byte words: compare words.
  for (const [buf, per] of [[s.offsets, slotsPerBatch], [s.lengths, slotsPerBatch], [s.headers, HEADER_WORDS]] as const) {
    const words = new Int32Array(buf);
    assert.equal(words.length, per * batches);
    for (let i = 0; i < words.length; i++) assert.equal(words[i], Math.floor(i / per) + 1);
  }
});

test('count lives in the shared header; acquire resets it; resetOffsets is relative to the batch', () => {
  const arena = new BatchArena({ batches: 2, slotsPerBatch: 4, slotSize: 128 });
  const id = arena.acquire();
  const b = arena.batch(id);
  b.count = 3;
  assert.equal(arena.header(id)[HEADER_COUNT], 3);
  arena.header(id)[HEADER_SPARE + HEADER_SPARE_WORDS - 1] = 42;
  b.resetOffsets(16);
  assert.deepEqual([...b.offsets], [16, 144, 272, 400]);
  assert.equal(b.count, 0);
  b.count = 4;
  arena.release(id);
  // The other batch first, then this one again: its count starts at 0.
  const other = arena.acquire();
  assert.notEqual(other, id);
  assert.equal(arena.acquire(), id);
  assert.equal(b.count, 0);
  assert.equal(arena.header(id)[HEADER_SPARE + HEADER_SPARE_WORDS - 1], 42, 'spare words are the pipeline’s: left alone');
});

test('PacketBatch: new PacketBatch(slots, slotSize) still stands alone; fromViews checks sizes', () => {
  const a = new PacketBatch(2, SLOT_SIZE);
  const b = new PacketBatch(2, SLOT_SIZE);
  a.count = 2;
  assert.equal(b.count, 0);
  assert.equal(a.data.byteLength, 2 * SLOT_SIZE);
  assert.notEqual(a.header.buffer, b.header.buffer);
  const views = { data: a.data, offsets: a.offsets, lengths: a.lengths, addrs: a.addrs, header: a.header };
  const c = PacketBatch.fromViews(2, SLOT_SIZE, views);
  assert.equal(c.count, 2, 'wraps the same header');
  assert.throws(() => PacketBatch.fromViews(3, SLOT_SIZE, views), RangeError);
  assert.throws(() => PacketBatch.fromViews(2, SLOT_SIZE, { ...views, header: new Int32Array(1) }), RangeError);
});

test('attach: a second view of the same arena shares state; bad buffers are refused', () => {
  const arena = new BatchArena({ batches: 3, slotsPerBatch: 2, slotSize: 64 });
  const other = BatchArena.attach(arena.share());
  const id = other.acquire();
  assert.equal(arena.inUse, 1);
  assert.equal(arena.owned(id), true);
  other.batch(id).data[5] = 9;
  assert.equal(arena.batch(id).data[5], 9);
  arena.release(id);
  assert.throws(() => other.release(id), RangeError);
  assert.equal(other.inUse, 0);
  assert.throws(() => BatchArena.attach({ ...arena.share(), batches: 4 }), RangeError);
});

test('constructor rejects bad dimensions', () => {
  for (const bad of [
    { batches: 0, slotsPerBatch: 1, slotSize: 1 },
    { batches: 1.5, slotsPerBatch: 1, slotSize: 1 },
    { batches: 1, slotsPerBatch: 0, slotSize: 1 },
    { batches: 1, slotsPerBatch: 1, slotSize: -1 },
    { batches: 1, slotsPerBatch: 65536, slotSize: 65536 },
  ]) {
    assert.throws(() => new BatchArena(bad), RangeError, JSON.stringify(bad));
  }
});

test('large arenas cost address space, not memory: 64 × 64 × SLOT_SIZE', () => {
  const before = process.memoryUsage().rss;
  const arena = new BatchArena({ batches: 64, slotsPerBatch: 64, slotSize: SLOT_SIZE });
  const after = process.memoryUsage().rss;
  assert.equal(arena.share().data.byteLength, 64 * 64 * SLOT_SIZE); // ~256 MiB reserved
  assert.ok(after - before < 32 * 1024 * 1024, `RSS grew by ${((after - before) / 1048576).toFixed(1)} MiB`);
});

test('acquire/release from 2 workers at once: exclusive ownership, ends with inUse 0 and every id free once', { timeout: HANG_MS }, async (t) => {
  // Two workers each holding 2 of 3 batches at a time: one of them often sleeps in
  // acquireWait until the other releases (the free list's room/data wake-ups). Up to ITER
  // iterations each, none started after BUDGET_MS: a busy machine does fewer, checked the
  // same. A wait that hits its timeout waits again (a holder was descheduled); the ring
  // tests tell lost wake-ups from slow schedulers, this one checks ownership.
  const batches = 3;
  const arena = new BatchArena({ batches, slotsPerBatch: 4, slotSize: 64 });
  const ITER = 50_000;
  const BUDGET_MS = 5_000;
  const barrier = new SharedArrayBuffer(4);
  const workers = [0, 1].map((worker) => {
    const job: ArenaJob = {
      role: 'arena', arena: arena.share(), worker, iterations: ITER, budgetMs: BUDGET_MS, hold: 2, timeoutMs: 2_000, giveUpMs: HANG_MS / 2, barrier, parties: 2,
    };
    const w = new Worker(WORKER, { workerData: job });
    const result = new Promise<ArenaResult>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`arena worker exited with ${code}`)));
    });
    result.catch(() => {});
    return { w, result };
  });
  try {
    // The main thread contends too, holding a batch now and then, while the workers run.
    let mine = 0;
    const done = Promise.all(workers.map((x) => x.result));
    let finished = false;
    void done.then(() => (finished = true), () => (finished = true));
    while (!finished) {
      const id = arena.acquire();
      if (id >= 0) {
        mine++;
        arena.release(id);
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    const results = await done;
    t.diagnostic(`iterations ${results.map((r) => r.iterations).join(', ')}; waits ${results.map((r) => r.waits).join(', ')}; ` +
      `stalls ${results.map((r) => r.stalls).join(', ')}; the main thread's ${mine}`);
    for (const r of results) {
      assert.deepEqual({ conflicts: r.conflicts, gaveUp: r.gaveUp }, { conflicts: 0, gaveUp: false });
      assert.ok(r.iterations > 0);
      assert.equal(r.acquired, 2 * r.iterations, 'every iteration acquired its 2 batches');
    }
    assert.ok(results[0]!.waits + results[1]!.waits > 0, 'nobody ever had to wait: the test did not contend');
    assert.ok(mine > 0);
    assert.equal(arena.inUse, 0);
    // Every id exactly once on the free list: drain it.
    const ids: number[] = [];
    for (let id = arena.acquire(); id >= 0; id = arena.acquire()) ids.push(id);
    assert.deepEqual(ids.sort((a, b) => a - b), Array.from({ length: batches }, (_, i) => i));
  } finally {
    await Promise.all(workers.map((x) => x.w.terminate()));
  }
});
