// The peers whose timers are pending, ordered by when to wake them: a binary min-heap,
// so the device's one OS timer finds the earliest deadline in O(1) and each wakeup
// costs O(log n) per due peer, whatever the number of idle peers (a router with
// thousands of peers must not scan them all on every wakeup). The kernel and wireguard-go avoid scans the same way, with one timer per peer.
//
// A peer's wake time may be earlier than its earliest real deadline (a timer pushed
// later or cancelled does not move it), never later: waking a peer with nothing due
// costs one empty poll, and the queue is touched only when a deadline moves earlier.

/** What the queue orders: a wake time, a tie-break and the queue's own bookkeeping. */
export interface Wakeable {
  /** Monotonic ms to wake at; Infinity while not queued. */
  wakeAt: number;
  /** Position in the heap, −1 while not queued (the queue's field). */
  queueIndex: number;
  /** Breaks ties of wakeAt: lower first (the order peers were added). */
  readonly order: number;
}

export class TimerQueue<T extends Wakeable> {
  private readonly heap: T[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** The item to wake first, or undefined. */
  peek(): T | undefined {
    return this.heap[0];
  }

  /** Queues `item` at `at`, or moves it there if that is earlier than where it is queued. */
  wakeBy(item: T, at: number): void {
    if (at >= item.wakeAt) return;
    item.wakeAt = at;
    if (item.queueIndex < 0) {
      item.queueIndex = this.heap.length;
      this.heap.push(item);
    }
    this.up(item.queueIndex);
  }

  /**
   * Wakes the items due at `now`, earliest first: takes each out, calls `run` on it
   * (what it arms queues it again through wakeBy) and queues it at the deadline `run`
   * returns, if any (a timer armed before this wakeup). Stops after `max` items: true
   * when due items are left.
   */
  runDue(now: number, max: number, run: (item: T) => number | undefined): boolean {
    for (let done = 0; ; done++) {
      const item = this.heap[0];
      if (item === undefined || item.wakeAt > now) return false;
      if (done >= max) return true;
      this.remove(item);
      const next = run(item);
      if (next !== undefined) this.wakeBy(item, next);
    }
  }

  /** Takes `item` out if it is queued. */
  remove(item: T): void {
    const i = item.queueIndex;
    if (i < 0) return;
    const last = this.heap.pop()!;
    if (last !== item) {
      this.heap[i] = last;
      last.queueIndex = i;
      this.down(i);
      this.up(last.queueIndex);
    }
    item.queueIndex = -1;
    item.wakeAt = Infinity;
  }

  private before(a: T, b: T): boolean {
    return a.wakeAt < b.wakeAt || (a.wakeAt === b.wakeAt && a.order < b.order);
  }

  // Bounds: i < heap.length (callers pass an item's queueIndex or the last index), and parent < i.
  private up(i: number): void {
    const heap = this.heap;
    const item = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent]!;
      if (!this.before(item, above)) break;
      heap[i] = above;
      above.queueIndex = i;
      i = parent;
    }
    heap[i] = item;
    item.queueIndex = i;
  }

  // Bounds: i < heap.length (callers pass an item's queueIndex or 0 of a non-empty heap), and child < n is checked.
  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let below = heap[child]!;
      const right = heap[child + 1];
      if (right !== undefined && this.before(right, below)) {
        child++;
        below = right;
      }
      if (!this.before(below, item)) break;
      heap[i] = below;
      below.queueIndex = i;
      i = child;
    }
    heap[i] = item;
    item.queueIndex = i;
  }
}
