// The UDP load generator's accounting (bench/e2e/sequence.ts): loss, reordering and
// duplicates, against hand-made streams and a Set-based oracle.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SequenceTracker } from '../../bench/e2e/sequence.js';
import { prng, randInt } from '../helpers/prng.js';

function counts(t: SequenceTracker): Record<string, number> {
  return { received: t.received, lost: t.lost, reordered: t.reordered, duplicates: t.duplicates, highest: t.highest };
}

function feed(seqs: number[], windowBits?: number): SequenceTracker {
  const t = new SequenceTracker(windowBits);
  for (const s of seqs) t.account(s);
  return t;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('SequenceTracker', () => {
  test('before any datagram: nothing counted, highest -1', () => {
    assert.deepEqual(counts(new SequenceTracker()), { received: 0, lost: 0, reordered: 0, duplicates: 0, highest: -1 });
  });

  test('in order: nothing lost, reordered or duplicated', () => {
    assert.deepEqual(counts(feed(range(0, 1000))), { received: 1000, lost: 0, reordered: 0, duplicates: 0, highest: 999 });
  });

  test('a gap is lost', () => {
    assert.deepEqual(counts(feed([0, 1, 2, 5, 6])), { received: 5, lost: 2, reordered: 0, duplicates: 0, highest: 6 });
  });

  test('a gap filled late: each late arrival repays a loss and counts as reordered', () => {
    assert.deepEqual(counts(feed([0, 1, 2, 5, 3])), { received: 5, lost: 1, reordered: 1, duplicates: 0, highest: 5 });
    assert.deepEqual(counts(feed([0, 1, 2, 5, 3, 4])), { received: 6, lost: 0, reordered: 2, duplicates: 0, highest: 5 });
  });

  test('duplicates within the window are duplicates, not reordered', () => {
    assert.deepEqual(counts(feed([0, 1, 2, 1, 2, 2])), { received: 6, lost: 0, reordered: 0, duplicates: 3, highest: 2 });
    // a late arrival that was already seen late is a duplicate too
    assert.deepEqual(counts(feed([0, 2, 1, 1])), { received: 4, lost: 0, reordered: 1, duplicates: 1, highest: 2 });
  });

  test('a very late arrival beyond the window is counted late, not as a duplicate', () => {
    const t = feed([...range(0, 5), ...range(6, 200), 5], 64);
    assert.deepEqual(counts(t), { received: 200, lost: 0, reordered: 1, duplicates: 0, highest: 199 });
  });

  test('a jump larger than the window forgets everything before it', () => {
    const t = feed([0, 1000], 64);
    assert.deepEqual(counts(t), { received: 2, lost: 999, reordered: 0, duplicates: 0, highest: 1000 });
    t.account(960); // same ring slot as 0, which was seen before the jump: new, not a duplicate
    t.account(990);
    assert.deepEqual(counts(t), { received: 4, lost: 997, reordered: 2, duplicates: 0, highest: 1000 });
    t.account(990);
    t.account(1000);
    assert.deepEqual(counts(t), { received: 6, lost: 997, reordered: 2, duplicates: 2, highest: 1000 });
  });

  test('the window must be a positive multiple of 8 bits', () => {
    assert.throws(() => new SequenceTracker(12), RangeError);
    assert.throws(() => new SequenceTracker(0), RangeError);
  });

  test('a shuffled stream with drops and duplicates matches a Set-based oracle', () => {
    const rnd = prng(9);
    for (let round = 0; round < 5; round++) {
      // 0..N-1, some dropped, neighbours swapped, some repeated a little later
      const stream: number[] = [];
      for (let s = 0; s < 20_000; s++) if (rnd() >= 0.03) stream.push(s);
      for (let i = 0; i < stream.length; i++) {
        const j = Math.min(stream.length - 1, i + randInt(rnd, 50));
        if (rnd() < 0.1) [stream[i], stream[j]] = [stream[j]!, stream[i]!];
      }
      for (let k = 0; k < 500; k++) {
        const at = randInt(rnd, stream.length);
        stream.splice(Math.min(stream.length, at + randInt(rnd, 300)), 0, stream[at]!);
      }

      const seen = new Set<number>();
      const want = { received: 0, lost: 0, reordered: 0, duplicates: 0, highest: -1 };
      for (const s of stream) {
        want.received++;
        if (s > want.highest) {
          want.lost += s - want.highest - 1;
          want.highest = s;
        } else if (seen.has(s)) {
          want.duplicates++;
          continue;
        } else {
          want.reordered++;
          want.lost--;
        }
        seen.add(s);
      }
      assert.ok(want.duplicates > 0 && want.reordered > 0 && want.lost > 0, 'the stream exercises every case');
      assert.deepEqual(counts(feed(stream)), want, `round ${round}`);
    }
  });
});
