// The receive queue's CoDel (src/dataplane/codel.ts): when it signals, against RFC
// 8289's schedule, and what that does to a standing queue in a model of one
// responsive bulk flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoDel, DEFAULT_AQM } from '../../src/dataplane/codel.js';

const TARGET = DEFAULT_AQM.targetMs;
const INTERVAL = DEFAULT_AQM.intervalMs;

/** Feeds one batch of `n` every ms from `from` to `to` with the given sojourn; returns the times it signalled, once per signal. */
function run(codel: CoDel, from: number, to: number, sojourn: (t: number) => number, drained: (t: number) => boolean = () => false): number[] {
  const at: number[] = [];
  for (let t = from; t < to; t++) for (let k = codel.signals(t, sojourn(t), 64, drained(t)); k > 0; k--) at.push(t);
  return at;
}

test('a queue below target, or above it for less than an interval, is never signalled', () => {
  const codel = new CoDel(DEFAULT_AQM);
  assert.deepEqual(run(codel, 1, 1000, () => TARGET - 0.01), []);
  // Bursts: 99 ms above target, then one batch that waited less, over and over.
  assert.deepEqual(run(codel, 1000, 5000, (t) => (t % 100 === 0 ? 1 : 50)), []);
  // Or a batch that drained the socket: a lone packet that waited behind other work.
  assert.deepEqual(run(codel, 5000, 9000, () => 50, (t) => t % 100 === 0), []);
});

test('a standing queue is signalled after one interval, then at interval/sqrt(count), and no more once a batch waited less than target', () => {
  const codel = new CoDel(DEFAULT_AQM);
  const at = run(codel, 1, 1000, () => 20);
  assert.equal(at[0], 1 + INTERVAL, 'the first signal: an interval after the queue was first seen above target');
  // Each next one is due interval/sqrt(count) after the last was due, on the 1 ms grid.
  let due = at[0]!;
  for (let k = 1; k < at.length; k++) {
    due += INTERVAL / Math.sqrt(k);
    assert.equal(at[k], Math.ceil(due), `signal ${k + 1}`);
  }
  assert.ok(at.length > 20, `${at.length} signals in 900 ms of standing queue`);
  assert.deepEqual(run(codel, 1000, 1050, () => 1), [], 'a batch below target ends it at once');
  assert.ok(run(codel, 1050, 1500, () => 20).length > 0);
  assert.deepEqual(run(codel, 1500, 1550, () => 20, (t) => t === 1500), [], 'as does one that drained the socket');
});

test('back above target soon after, the signalling starts near the rate it had reached', () => {
  const codel = new CoDel(DEFAULT_AQM);
  const first = run(codel, 1, 1000, () => 20);
  run(codel, 1000, 1010, () => 1);
  const second = run(codel, 1010, 1400, () => 20);
  const gap = (xs: number[]): number => xs[1]! - xs[0]!;
  assert.ok(second.length >= 2 && gap(second) < gap(first), `second episode: first gap ${gap(second)} ms, against ${gap(first)} ms at the start`);
});

test('never more signals than the batch has datagrams, and after a pause no burst beyond it', () => {
  const codel = new CoDel(DEFAULT_AQM);
  run(codel, 1, 2000, () => 20);
  // Reads paused for 10 s with the queue standing: at most the batch, then the schedule goes on from now.
  assert.equal(codel.signals(12_000, 20, 3, false), 3);
  assert.equal(codel.signals(12_001, 20, 3, false), 0);
});

/**
 * One bulk flow that adds 10 packets to its window per round trip and halves it at a
 * signal (once per round trip), through a reader taking 100 packets a ms behind a
 * 10,000-packet socket queue (tail drop when full), a 1 ms round trip outside the
 * queue. Returns the median sojourn over the second half, and the reader's use of
 * its capacity.
 */
function bulkFlow(codel: CoDel | undefined): { medianSojournMs: number; utilisation: number } {
  const rate = 100;
  const pipe = 100;
  const buffer = 10_000;
  let window = 2 * pipe;
  let lastCut = -Infinity;
  const sojourns: number[] = [];
  let served = 0;
  const end = 20_000;
  for (let t = 0; t < end; t++) {
    const queue = Math.min(Math.max(0, window - pipe), buffer);
    const sojourn = queue / rate;
    const rtt = 1 + sojourn;
    const signalled = (codel?.signals(t, sojourn, rate, queue === 0) ?? 0) > 0 || window - pipe > buffer;
    if (signalled && t - lastCut >= rtt) {
      window /= 2;
      lastCut = t;
    } else {
      window += 10 / rtt;
    }
    if (t >= end / 2) {
      sojourns.push(sojourn);
      served += Math.min(rate, window / rtt);
    }
  }
  sojourns.sort((a, b) => a - b);
  return { medianSojournMs: sojourns[sojourns.length >> 1]!, utilisation: served / (rate * (end / 2)) };
}

test('a model bulk flow: the standing queue is cut back to about the target, and the reader stays busy', () => {
  const without = bulkFlow(undefined);
  const withCodel = bulkFlow(new CoDel(DEFAULT_AQM));
  assert.ok(without.medianSojournMs > 4 * TARGET, `without the AQM the queue stands: median ${without.medianSojournMs} ms`);
  assert.ok(withCodel.medianSojournMs < 2 * TARGET, `with it: median ${withCodel.medianSojournMs} ms`);
  assert.ok(withCodel.utilisation > 0.98, `the reader busy ${withCodel.utilisation} of the time`);
});
