import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimerQueue, type Wakeable } from '../../src/protocol/timer-queue.js';
import { prng, randInt } from '../helpers/prng.js';

class Item implements Wakeable {
  wakeAt = Infinity;
  queueIndex = -1;
  constructor(readonly order: number) {}
}

test('the queue wakes items in (wakeAt, order) order after random wakeBy and remove, like a sorted list', () => {
  const rnd = prng(10);
  const items = Array.from({ length: 300 }, (_, i) => new Item(i));
  const queue = new TimerQueue<Item>();
  // The oracle: each item's wake time, Infinity = not queued.
  const expected = new Map<Item, number>();
  for (let step = 0; step < 20_000; step++) {
    const item = items[randInt(rnd, items.length)]!;
    if (rnd() < 0.2) {
      queue.remove(item);
      expected.delete(item);
    } else {
      const at = randInt(rnd, 1000);
      queue.wakeBy(item, at);
      expected.set(item, Math.min(expected.get(item) ?? Infinity, at));
    }
    assert.equal(queue.size, expected.size);
    for (const [it, at] of expected) assert.equal(it.wakeAt, at);
    if (step % 1000 === 0) {
      const first = [...expected].sort(([a, x], [b, y]) => x - y || a.order - b.order)[0];
      assert.equal(queue.peek(), first?.[0]);
    }
  }
  const order: Item[] = [];
  queue.runDue(Infinity, Infinity, (it) => { order.push(it); return undefined; });
  const sorted = [...expected].sort(([a, x], [b, y]) => x - y || a.order - b.order).map(([it]) => it);
  assert.deepEqual(order.map((it) => it.order), sorted.map((it) => it.order));
  assert.equal(queue.size, 0);
  for (const it of items) assert.deepEqual([it.wakeAt, it.queueIndex], [Infinity, -1]);
});

test('runDue takes only the due items, at most max of them, and queues each again where run says', () => {
  const queue = new TimerQueue<Item>();
  const items = Array.from({ length: 10 }, (_, i) => new Item(i));
  items.forEach((it, i) => queue.wakeBy(it, 100 + 10 * (i % 5)));
  const woken: number[] = [];
  const run = (it: Item): number | undefined => {
    woken.push(it.order);
    return it.order % 2 === 0 ? 1000 + it.order : undefined;
  };
  assert.equal(queue.runDue(99, Infinity, run), false);
  assert.deepEqual(woken, []);
  // Due at 110: the items at 100 (0, 5) and 110 (1, 6), in order; stop after 3.
  assert.equal(queue.runDue(110, 3, run), true);
  assert.deepEqual(woken, [0, 5, 1]);
  assert.equal(queue.runDue(110, 3, run), false);
  assert.deepEqual(woken, [0, 5, 1, 6]);
  assert.equal(items[0]!.wakeAt, 1000);
  assert.equal(items[6]!.wakeAt, 1006);
  assert.equal(items[5]!.queueIndex, -1);
  assert.equal(queue.size, 6 + 2);
});

test('wakeBy never moves an item later; what run arms while it runs is kept', () => {
  const queue = new TimerQueue<Item>();
  const it = new Item(0);
  queue.wakeBy(it, 50);
  queue.wakeBy(it, 80);
  assert.equal(it.wakeAt, 50);
  // run re-arms at 60 through wakeBy and returns a later pending deadline: 60 stays.
  queue.runDue(50, Infinity, (x) => { queue.wakeBy(x, 60); return 70; });
  assert.equal(it.wakeAt, 60);
  assert.equal(queue.size, 1);
});
