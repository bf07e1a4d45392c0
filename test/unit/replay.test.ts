import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { REJECT_AFTER_MESSAGES, REPLAY_WINDOW_SIZE } from '../../src/protocol/constants.js';
import { REPLAY_STATE_WORDS, ReplayWindow } from '../../src/protocol/replay.js';
import { prng } from '../helpers/prng.js';

const U64_MAX = (1n << 64n) - 1n;
const WINDOW = BigInt(REPLAY_WINDOW_SIZE);

function accept(filter: ReplayWindow, counter: bigint): boolean {
  return filter.accept(Number(counter & 0xffff_ffffn), Number(counter >> 32n));
}

/** wireguard-go's replay.Filter.ValidateCounter, transcribed with BigInt. */
class ReferenceFilter {
  last = 0n;
  ring: bigint[] = new Array<bigint>(128).fill(0n);

  validate(counter: bigint): boolean {
    if (counter >= REJECT_AFTER_MESSAGES) return false;
    const indexBlock = counter >> 6n;
    if (counter > this.last) {
      const current = this.last >> 6n;
      let diff = indexBlock - current;
      if (diff > 128n) diff = 128n;
      for (let i = current + 1n; i <= current + diff; i++) this.ring[Number(i & 127n)] = 0n;
      this.last = counter;
    } else if (this.last - counter > WINDOW) {
      return false;
    }
    const index = Number(indexBlock & 127n);
    const old = this.ring[index]!;
    const updated = old | (1n << (counter & 63n));
    this.ring[index] = updated;
    return old !== updated;
  }

  /** The state laid out as ReplayWindow stores it. */
  words(): Uint32Array {
    const words = new Uint32Array(REPLAY_STATE_WORDS);
    words[0] = Number(this.last & 0xffff_ffffn);
    words[1] = Number(this.last >> 32n);
    this.ring.forEach((block, i) => {
      words[2 + 2 * i] = Number(block & 0xffff_ffffn);
      words[3 + 2 * i] = Number(block >> 32n);
    });
    return words;
  }
}


test('accepts in order and rejects duplicates', () => {
  const filter = new ReplayWindow();
  for (let c = 0n; c < 20_000n; c++) assert.equal(accept(filter, c), true, `first ${c}`);
  for (let c = 20_000n - WINDOW; c < 20_000n; c++) assert.equal(accept(filter, c), false, `again ${c}`);
});

test('accepts out-of-order counters within the window exactly once', () => {
  const filter = new ReplayWindow();
  assert.equal(accept(filter, 5000n), true);
  for (const c of [4999n, 17n, 0n, 4000n, 64n, 63n]) {
    assert.equal(accept(filter, c), true, `first ${c}`);
    assert.equal(accept(filter, c), false, `again ${c}`);
  }
  assert.equal(accept(filter, 5000n), false);
});

test('window edge: last − 8128 is accepted, last − 8129 is not', () => {
  for (const last of [10_000n, 8191n, 8192n, 1n << 40n, (1n << 32n) + 100n]) {
    const filter = new ReplayWindow();
    assert.equal(accept(filter, last), true);
    assert.equal(accept(filter, last - WINDOW - 1n), false, `${last} − 8129`);
    assert.equal(accept(filter, last - WINDOW), true, `${last} − 8128`);
    assert.equal(accept(filter, last - WINDOW), false, `${last} − 8128 again`);
  }
});

test('a far jump clears the ring so no old bit lingers', () => {
  const filter = new ReplayWindow();
  for (let c = 0n; c <= 200n; c++) assert.equal(accept(filter, c), true);
  const last = 200n + 1_000_000n;
  assert.equal(accept(filter, last), true);
  // Every counter in the window whose ring slot held one of 0..200 is fresh.
  let colliding = 0;
  for (let c = last - WINDOW; c < last; c++) {
    if (c % 8192n <= 200n) {
      assert.equal(accept(filter, c), true, `colliding ${c}`);
      colliding++;
    }
  }
  assert.ok(colliding > 0);
});

test('a jump of fewer than 128 blocks clears exactly the blocks it enters', () => {
  const filter = new ReplayWindow();
  for (let c = 0n; c < 640n; c++) accept(filter, c); // blocks 0..9
  // 8292 is in block 129: blocks 10..129 (slots 10..127, 0, 1) are cleared, slots 2..9 keep their bits.
  assert.equal(accept(filter, 8292n), true);
  assert.equal(accept(filter, 8192n + 5n), true); // slot 0, cleared
  assert.equal(accept(filter, 8192n + 64n), true); // slot 1, cleared
  for (const seen of [164n, 600n, 639n]) assert.equal(accept(filter, seen), false, `${seen} still seen`);
  assert.equal(accept(filter, 163n), false); // 8292 − 163 > 8128: behind the window
});

test('counters across the 2^32 boundary', () => {
  const base = 1n << 32n;
  const filter = new ReplayWindow();
  for (let c = base - 100n; c < base + 100n; c++) assert.equal(accept(filter, c), true, `${c}`);
  for (let c = base - 100n; c < base + 100n; c++) assert.equal(accept(filter, c), false, `again ${c}`);

  // Low half wraps while the window moves a few blocks: 0xffffff00 → 2^32 + 0x10.
  const wrap = new ReplayWindow();
  assert.equal(accept(wrap, 0xffff_ff00n), true);
  assert.equal(accept(wrap, base + 0x10n), true);
  assert.equal(accept(wrap, 0xffff_ff00n), false);
  assert.equal(accept(wrap, 0xffff_ff01n), true);
  assert.equal(accept(wrap, base + 0x10n - WINDOW), true);
  assert.equal(accept(wrap, base + 0x10n - WINDOW - 1n), false);

  // High halves two or more apart are always behind the window.
  const far = new ReplayWindow();
  assert.equal(accept(far, (2n << 32n) + 5n), true);
  assert.equal(accept(far, 5n), false);
  assert.equal(accept(far, (1n << 32n) + 5n), false);
  assert.equal(accept(far, (2n << 32n) + 4n), true);
});

test('counters near 2^64: REJECT_AFTER_MESSAGES and above are refused', () => {
  const filter = new ReplayWindow();
  assert.equal(accept(filter, REJECT_AFTER_MESSAGES), false);
  assert.equal(accept(filter, U64_MAX), false);
  assert.equal(accept(filter, REJECT_AFTER_MESSAGES - 1n), true);
  assert.equal(accept(filter, REJECT_AFTER_MESSAGES - 1n), false);
  assert.equal(accept(filter, REJECT_AFTER_MESSAGES - 2n), true);
  assert.equal(accept(filter, REJECT_AFTER_MESSAGES), false);
  assert.equal(accept(filter, U64_MAX), false);
  assert.equal(accept(filter, 0n), false); // far behind now
});

test('reset empties the filter', () => {
  const filter = new ReplayWindow();
  for (let c = 0n; c < 300n; c++) accept(filter, c);
  accept(filter, 1n << 50n);
  filter.reset();
  assert.deepEqual(filter.state, new Uint32Array(REPLAY_STATE_WORDS));
  for (let c = 0n; c < 300n; c++) assert.equal(accept(filter, c), true);
});

test('matches a BigInt transcription of wireguard-go on random operations', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = prng(seed);
    const below = (n: number): bigint => BigInt(Math.floor(random() * n));
    const filter = new ReplayWindow();
    const reference = new ReferenceFilter();
    const recent: bigint[] = [];
    let accepted = 0;
    for (let op = 0; op < 4000; op++) {
      const last = reference.last;
      const r = random();
      let counter: bigint;
      if (r < 0.4) counter = last + 1n + below(3);
      else if (r < 0.6) counter = last - below(9000);
      else if (r < 0.7) counter = recent[Math.floor(random() * recent.length)] ?? 0n;
      else if (r < 0.8) counter = last + 64n + below(20_000);
      else if (r < 0.85) counter = last + below(2 ** 36);
      else if (r < 0.9) counter = (((last >> 32n) + 1n) << 32n) - below(300); // just below a 2^32 multiple
      else if (r < 0.93) counter = last + (1n << 32n) + below(2 ** 32); // high half +1, any low half
      else if (r < 0.95) counter = REJECT_AFTER_MESSAGES - below(20_000);
      else if (r < 0.97) counter = BigInt.asUintN(64, (below(2 ** 32) << 32n) | below(2 ** 32));
      else if (r < 0.98) {
        filter.reset();
        reference.last = 0n;
        reference.ring.fill(0n);
        continue;
      } else counter = last - 8000n - below(300); // around the window edge
      counter = counter < 0n ? 0n : counter > U64_MAX ? U64_MAX : counter;

      const expected = reference.validate(counter);
      assert.equal(accept(filter, counter), expected, `seed ${seed} op ${op} counter ${counter}`);
      if (expected) accepted++;
      recent.push(counter);
      if (recent.length > 64) recent.shift();
      if (op % 100 === 0) assert.deepEqual(filter.state, reference.words(), `seed ${seed} op ${op}`);
    }
    assert.deepEqual(filter.state, reference.words());
    assert.ok(accepted > 1000, `seed ${seed} accepted only ${accepted}`);
  }
});

test('state can live in a SharedArrayBuffer shared with a worker', async () => {
  const shared = new Uint32Array(new SharedArrayBuffer(REPLAY_STATE_WORDS * 4));
  const here = new ReplayWindow(shared);
  assert.equal(here.accept(1000, 0), true);
  assert.equal(new ReplayWindow(shared).accept(1000, 0), false);

  const moduleUrl = new URL('../../src/protocol/replay.js', import.meta.url).href;
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     import(${JSON.stringify(moduleUrl)}).then(({ ReplayWindow }) => {
       const filter = new ReplayWindow(workerData);
       const results = [];
       for (let c = 990; c < 1010; c++) results.push(filter.accept(c, 0));
       parentPort.postMessage(results);
     });`,
    { eval: true, workerData: shared },
  );
  const results = await new Promise<boolean[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => 990 + i !== 1000));
  for (let c = 990; c < 1010; c++) assert.equal(here.accept(c, 0), false);
  assert.equal(here.accept(1010, 0), true);
});

test('rejects a state array of the wrong size', () => {
  assert.throws(() => new ReplayWindow(new Uint32Array(REPLAY_STATE_WORDS - 1)), RangeError);
});
