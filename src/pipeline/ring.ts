// Bounded rings over SharedArrayBuffer that carry fixed-width entries of `words`
// uint32 each: batch descriptors between threads, never packets and never
// structured-clone messages (docs/design.md §3). Capacity is fixed at construction and
// push/pop allocate nothing.
//
// Layout of the buffer (Int32 words; each hot index on its own 64-byte line so the
// producer and the consumer do not bounce one cache line between cores):
//   [0]  HEAD / dequeue position      (written by consumers)
//   [16] TAIL / enqueue position      (written by producers)
//   [32] CLOSED, DATA_SLEEPERS, DATA_SEQ, ROOM_SLEEPERS, ROOM_SEQ   (read-mostly)
//   [48] MPMC only: `capacity` per-cell sequence numbers, then the entries
//        SPSC: the entries
//
// Waiting (pushWait, popWait, waitNotEmptyAsync) and why no wake-up is lost:
// a waiter for data (1) increments DATA_SLEEPERS, (2) reads DATA_SEQ, (3) checks the
// ring again and only then (4) sleeps with Atomics.wait(DATA_SEQ, seq). A producer
// (a) publishes its entry, then (b) reads DATA_SLEEPERS and only if it is non-zero
// (c) increments DATA_SEQ and (d) calls Atomics.notify. All of these are Atomics
// operations, so they fall in one total order. If (b) saw 0, then (b) precedes (1),
// so (a) precedes (3) and the waiter sees the entry and does not sleep. If (b) saw a
// sleeper, then either (c) precedes (2) — and (a) precedes (3): the waiter sees the
// entry — or (c) follows (2): then Atomics.wait's compare of DATA_SEQ against seq
// (atomic with respect to notify) either fails at once or the waiter is already
// queued when (d) runs and is woken. Waiting for room is the same with ROOM_*, and
// close() sets CLOSED before it bumps both sequences and notifies everybody, which
// every waiter checks at (3). So an uncontended push or pop costs one extra Atomics
// load of a read-mostly word and no futex system call.
//
// A woken waiter that loses the race for the entry to another consumer goes back to
// sleep; the entry was taken by someone, so nothing is left behind with all asleep.

/** The shared part of a ring: structured-clonable, post it once to a worker and attach. */
export interface RingShared {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly words: number;
  readonly kind: 'spsc' | 'mpmc';
}

export interface RingOptions {
  /**
   * Checks of the ring before a waiting push or pop goes to sleep (default
   * DEFAULT_SPIN). A cheap Atomics.load each; 0 sleeps at once.
   */
  readonly spin?: number;
  /**
   * The producer wakes a consumer that sleeps only when it calls wakeConsumer(), not
   * on every push (default false). A queue worker pushes its records for the main
   * thread while it works on a batch and rings once the batch is sent or written, so
   * the wake-up (a system call, and another thread taking a core) is not on the
   * packet's way. The order of the top comment holds: the publish still precedes the
   * read of the sleepers; a consumer that fell asleep in between sleeps until then.
   */
  readonly deferWake?: boolean;
}

/**
 * Default spin: 100 checks (about a microsecond). Measured with bench/micro/ring.bench.ts
 * on the project's 2-core machine: an idle ping-pong round trip (two hand-offs)
 * costs 21–30 µs with spin 0 (every hand-off a futex sleep and wake), 3–17 µs with
 * 100, and 2–5 µs with 1000 on a quiet machine but 56–115 µs when other work wants
 * the cores (the spinner takes the core from the thread it waits for). Streaming
 * throughput is 2–6 M entries/s for all three at capacity 1024. So: short.
 */
export const DEFAULT_SPIN = 100;
/** Largest capacity accepted (entries); keeps index arithmetic far from int32 wrap issues. */
export const MAX_CAPACITY = 1 << 24;
/** Largest entry width accepted (uint32 words). */
export const MAX_WORDS = 1024;

// Atomics.waitAsync is in Node 20 (V8) but in TypeScript's lib only from ES2024.
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number, timeoutMs: number): WaitAsyncResult;
}).waitAsync;

const HEAD = 0;
const TAIL = 16;
const CLOSED = 32;
const DATA_SLEEPERS = 33;
const DATA_SEQ = 34;
const ROOM_SLEEPERS = 35;
const ROOM_SEQ = 36;
/** Header size in int32 words. */
const HEADER_WORDS = 48;
/** Word indices of the header (Int32Array over `buffer`), for tests and debugging. */
export const RING_LAYOUT = Object.freeze({ HEAD, TAIL, CLOSED, DATA_SLEEPERS, DATA_SEQ, ROOM_SLEEPERS, ROOM_SEQ, HEADER_WORDS });
const HEADER_BYTES = HEADER_WORDS * 4;

function checkDims(kind: string, capacity: number, words: number): void {
  if (!Number.isInteger(capacity) || capacity < 2 || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`${kind} ring: capacity ${capacity} is not a power of two in 2..${MAX_CAPACITY}`);
  }
  if (!Number.isInteger(words) || words < 1 || words > MAX_WORDS) {
    throw new RangeError(`${kind} ring: words ${words} is not an integer in 1..${MAX_WORDS}`);
  }
}

function outside(fn: string, at: number, words: number, length: number): RangeError {
  return new RangeError(`${fn}: words ${at}..${at + words} are outside an array of ${length}`);
}

function checkSpin(spin: number): number {
  if (!Number.isInteger(spin) || spin < 0) throw new RangeError(`ring: spin ${spin} is not a non-negative integer`);
  return spin;
}

/** The API both rings share; the waiting logic lives here, the index logic in the subclasses. */
export abstract class Ring {
  readonly capacity: number;
  readonly words: number;
  abstract readonly kind: 'spsc' | 'mpmc';
  protected readonly buffer: SharedArrayBuffer;
  protected readonly ctl: Int32Array;
  protected readonly mask: number;
  private readonly spin: number;
  private readonly deferWake: boolean;
  /** deferWake: something was pushed since the last wakeConsumer(). */
  private unrung = false;

  protected constructor(capacity: number, words: number, buffer: SharedArrayBuffer, opts: RingOptions) {
    this.capacity = capacity;
    this.words = words;
    this.mask = capacity - 1;
    this.buffer = buffer;
    this.ctl = new Int32Array(buffer, 0, HEADER_WORDS);
    this.spin = checkSpin(opts.spin ?? DEFAULT_SPIN);
    this.deferWake = opts.deferWake ?? false;
  }

  /** Copies `words` words from src[at..at+words) into the ring; false when full or closed. */
  abstract tryPush(src: Uint32Array, at?: number): boolean;
  /** Copies the oldest entry into dst[at..at+words); false when empty. */
  abstract tryPop(dst: Uint32Array, at?: number): boolean;
  /** Approximate number of entries (exact when no push or pop is in progress). */
  abstract get size(): number;
  /** Whether a pop would find an entry now (the check the waiters use). */
  protected abstract hasData(): boolean;
  /** Whether a push would find room now. */
  protected abstract hasRoom(): boolean;

  /** The shared part, to post to another thread and `attach` there. */
  share(): RingShared {
    return { buffer: this.buffer, capacity: this.capacity, words: this.words, kind: this.kind };
  }

  get closed(): boolean {
    return Atomics.load(this.ctl, CLOSED) !== 0;
  }

  /**
   * Stops the ring: pushes fail from now on, pops drain what is left, and every
   * waiter (sync or async, on any thread) is woken. Idempotent. A push already past
   * its closed check when close() runs still lands, so stop the producers first if a
   * consumer must see every entry.
   */
  close(): void {
    Atomics.store(this.ctl, CLOSED, 1);
    Atomics.add(this.ctl, DATA_SEQ, 1);
    Atomics.add(this.ctl, ROOM_SEQ, 1);
    Atomics.notify(this.ctl, DATA_SEQ);
    Atomics.notify(this.ctl, ROOM_SEQ);
  }

  /**
   * Worker threads: push, spinning `spin` checks and then sleeping in Atomics.wait
   * until there is room, the ring is closed or timeoutMs (Infinity allowed) passes.
   * False on timeout or when closed. Blocks the thread: not for the main thread.
   */
  pushWait(src: Uint32Array, at: number, timeoutMs: number): boolean {
    if (this.tryPush(src, at)) return true;
    return this.waitFor(src, at, timeoutMs, true);
  }

  /**
   * Worker threads: pop, as pushWait but waiting for an entry. False on timeout, or
   * once the ring is closed and empty.
   */
  popWait(dst: Uint32Array, at: number, timeoutMs: number): boolean {
    if (this.tryPop(dst, at)) return true;
    return this.waitFor(dst, at, timeoutMs, false);
  }

  /**
   * Main thread: resolves when the ring may have an entry (a push happened), when it
   * is closed, or after timeoutMs; the caller then tries tryPop again and waits again
   * if it finds nothing. A doorbell only: on Node 20 a pending Atomics.waitAsync does
   * NOT keep the event loop alive, so a caller that must stay up keeps its own handle
   * (a timer, a socket, a worker) for as long as it waits. Allocates a promise per
   * call, i.e. per time the ring ran dry, not per entry.
   */
  waitNotEmptyAsync(timeoutMs: number): Promise<void> {
    const ctl = this.ctl;
    Atomics.add(ctl, DATA_SLEEPERS, 1);
    const seq = Atomics.load(ctl, DATA_SEQ);
    if (this.hasData() || Atomics.load(ctl, CLOSED) !== 0) {
      Atomics.sub(ctl, DATA_SLEEPERS, 1);
      return Promise.resolve();
    }
    const r = waitAsync(ctl, DATA_SEQ, seq, timeoutMs);
    if (!r.async) {
      Atomics.sub(ctl, DATA_SLEEPERS, 1);
      return Promise.resolve();
    }
    return r.value.then(() => {
      Atomics.sub(ctl, DATA_SLEEPERS, 1);
    });
  }

  private waitFor(buf: Uint32Array, at: number, timeoutMs: number, push: boolean): boolean {
    const ctl = this.ctl;
    const sleepers = push ? ROOM_SLEEPERS : DATA_SLEEPERS;
    const seqWord = push ? ROOM_SEQ : DATA_SEQ;
    let deadline = -1;
    for (;;) {
      if (push ? this.tryPush(buf, at) : this.tryPop(buf, at)) return true;
      if (Atomics.load(ctl, CLOSED) !== 0) return push ? false : this.tryPop(buf, at);
      // Spin on the cheap check only, so a hand-off that is about to happen costs no
      // futex round trip.
      for (let i = this.spin; i > 0; i--) {
        if ((push ? this.hasRoom() : this.hasData()) || Atomics.load(ctl, CLOSED) !== 0) break;
      }
      if (push ? this.tryPush(buf, at) : this.tryPop(buf, at)) return true;
      const now = performance.now();
      if (deadline < 0) deadline = now + timeoutMs;
      const left = deadline - now;
      if (left <= 0) return false;
      // Steps (1)-(4) of the comment at the top.
      Atomics.add(ctl, sleepers, 1);
      const seq = Atomics.load(ctl, seqWord);
      if (!(push ? this.hasRoom() : this.hasData()) && Atomics.load(ctl, CLOSED) === 0) {
        Atomics.wait(ctl, seqWord, seq, left);
      }
      Atomics.sub(ctl, sleepers, 1);
    }
  }

  /** Producer side, after publishing: wake a consumer only if one may be asleep (with deferWake: later, in wakeConsumer). */
  protected wakeData(): void {
    if (this.deferWake) this.unrung = true;
    else this.wakeSleeper();
  }

  /** deferWake: something was pushed since the last wakeConsumer() and a consumer sleeps, so that call would wake it. */
  get wakeDue(): boolean {
    return this.unrung && Atomics.load(this.ctl, DATA_SLEEPERS) !== 0;
  }

  /** deferWake: wakes a consumer that may be asleep if anything was pushed since the last call. Cheap when nothing was. */
  wakeConsumer(): void {
    if (!this.unrung) return;
    this.unrung = false;
    this.wakeSleeper();
  }

  private wakeSleeper(): void {
    if (Atomics.load(this.ctl, DATA_SLEEPERS) !== 0) {
      Atomics.add(this.ctl, DATA_SEQ, 1);
      Atomics.notify(this.ctl, DATA_SEQ, 1);
    }
  }

  /** Consumer side, after freeing a cell: wake a producer only if one may be asleep. */
  protected wakeRoom(): void {
    if (Atomics.load(this.ctl, ROOM_SLEEPERS) !== 0) {
      Atomics.add(this.ctl, ROOM_SEQ, 1);
      Atomics.notify(this.ctl, ROOM_SEQ, 1);
    }
  }
}

/**
 * Single producer, single consumer: FIFO. One thread pushes and one thread pops (they
 * may be the same thread); each side may hold its own attached object.
 */
export class SpscRing extends Ring {
  readonly kind = 'spsc' as const;
  private readonly data: Uint32Array;
  /**
   * The producer's last view of HEAD, so a push reads the consumer's line only when
   * the ring looks full: stale only low (HEAD never goes back), so never unsafe.
   */
  private headCache: number;
  /** The consumer's last view of TAIL, likewise. */
  private tailCache: number;

  /** The last argument is for attach(); leave it out to allocate a new ring. */
  constructor(capacity: number, words: number, opts: RingOptions = {}, buffer?: SharedArrayBuffer) {
    checkDims('spsc', capacity, words);
    const bytes = HEADER_BYTES + capacity * words * 4;
    if (buffer !== undefined && buffer.byteLength !== bytes) {
      throw new RangeError(`spsc ring: buffer has ${buffer.byteLength} bytes, ${bytes} expected`);
    }
    super(capacity, words, buffer ?? new SharedArrayBuffer(bytes), opts);
    this.data = new Uint32Array(this.buffer, HEADER_BYTES, capacity * words);
    // Start the caches from the live indices (an attached ring may be mid-stream).
    this.headCache = Atomics.load(this.ctl, HEAD);
    this.tailCache = Atomics.load(this.ctl, TAIL);
  }

  static attach(s: RingShared, opts: RingOptions = {}): SpscRing {
    if (s.kind !== 'spsc') throw new TypeError(`SpscRing.attach: a ${s.kind} ring`);
    return new SpscRing(s.capacity, s.words, opts, s.buffer);
  }

  // Bounds: at + words ≤ src.length / dst.length, checked above; base + k < capacity × words = data.length (the cell is masked by capacity − 1).
  tryPush(src: Uint32Array, at = 0): boolean {
    const ctl = this.ctl;
    if (Atomics.load(ctl, CLOSED) !== 0) return false;
    const tail = Atomics.load(ctl, TAIL);
    if (((tail - this.headCache) >>> 0) >= this.capacity) {
      this.headCache = Atomics.load(ctl, HEAD);
      if (((tail - this.headCache) >>> 0) >= this.capacity) return false;
    }
    const w = this.words;
    if (at < 0 || at + w > src.length) throw outside('tryPush', at, w, src.length);
    const base = (tail & this.mask) * w;
    const data = this.data;
    for (let k = 0; k < w; k++) data[base + k] = src[at + k]!;
    // The Atomics store publishes the plain writes above to whoever loads TAIL.
    Atomics.store(ctl, TAIL, (tail + 1) | 0);
    this.wakeData();
    return true;
  }

  // Bounds: at + words ≤ src.length / dst.length, checked above; base + k < capacity × words = data.length (the cell is masked by capacity − 1).
  tryPop(dst: Uint32Array, at = 0): boolean {
    const ctl = this.ctl;
    const head = Atomics.load(ctl, HEAD);
    const avail = (this.tailCache - head) >>> 0;
    if (avail === 0 || avail > this.capacity) {
      this.tailCache = Atomics.load(ctl, TAIL);
      if (this.tailCache === head) return false;
    }
    const w = this.words;
    if (at < 0 || at + w > dst.length) throw outside('tryPop', at, w, dst.length);
    const base = (head & this.mask) * w;
    const data = this.data;
    for (let k = 0; k < w; k++) dst[at + k] = data[base + k]!;
    Atomics.store(ctl, HEAD, (head + 1) | 0);
    this.wakeRoom();
    return true;
  }

  get size(): number {
    return (Atomics.load(this.ctl, TAIL) - Atomics.load(this.ctl, HEAD)) >>> 0;
  }

  protected hasData(): boolean {
    return Atomics.load(this.ctl, TAIL) !== Atomics.load(this.ctl, HEAD);
  }

  protected hasRoom(): boolean {
    return ((Atomics.load(this.ctl, TAIL) - Atomics.load(this.ctl, HEAD)) >>> 0) < this.capacity;
  }
}

/**
 * Many producers, many consumers: Dmitry Vyukov's bounded MPMC queue (a sequence
 * number per cell; producers and consumers claim positions with compareExchange).
 * No locks: a push or pop never waits for another thread to finish, except that a
 * producer stopped between claiming a cell and publishing it makes pops report empty
 * at that cell until it resumes, and a consumer stopped between claiming and freeing
 * a cell makes pushes report full at that cell one lap later (the known property of
 * this design: a free list on it wants more cells than ids).
 *
 * Order, exactly: entries are popped in the order of the positions their pushes
 * claimed, and one producer's pushes claim increasing positions. So one consumer
 * sees one producer's entries in push order (FIFO per producer as seen by one
 * consumer); entries taken by different consumers have no order relation after the
 * pop, and entries of different producers are ordered by their claims only.
 */
export class MpmcRing extends Ring {
  readonly kind = 'mpmc' as const;
  private readonly seqs: Int32Array;
  private readonly data: Uint32Array;

  /** The last argument is for attach(); leave it out to allocate a new ring. */
  constructor(capacity: number, words: number, opts: RingOptions = {}, buffer?: SharedArrayBuffer) {
    checkDims('mpmc', capacity, words);
    const bytes = HEADER_BYTES + capacity * 4 + capacity * words * 4;
    if (buffer !== undefined && buffer.byteLength !== bytes) {
      throw new RangeError(`mpmc ring: buffer has ${buffer.byteLength} bytes, ${bytes} expected`);
    }
    const fresh = buffer === undefined;
    super(capacity, words, buffer ?? new SharedArrayBuffer(bytes), opts);
    this.seqs = new Int32Array(this.buffer, HEADER_BYTES, capacity);
    this.data = new Uint32Array(this.buffer, HEADER_BYTES + capacity * 4, capacity * words);
    // Cell i is free for the push at position i. Only the sequence words are touched
    // (4 bytes a cell), not the entries.
    if (fresh) for (let i = 0; i < capacity; i++) this.seqs[i] = i;
  }

  static attach(s: RingShared, opts: RingOptions = {}): MpmcRing {
    if (s.kind !== 'mpmc') throw new TypeError(`MpmcRing.attach: a ${s.kind} ring`);
    return new MpmcRing(s.capacity, s.words, opts, s.buffer);
  }

  // Bounds: at + words ≤ src.length / dst.length, checked above; base + k < capacity × words = data.length (the cell is masked by capacity − 1).
  tryPush(src: Uint32Array, at = 0): boolean {
    const ctl = this.ctl;
    if (Atomics.load(ctl, CLOSED) !== 0) return false;
    if (at < 0 || at + this.words > src.length) throw outside('tryPush', at, this.words, src.length);
    const seqs = this.seqs;
    let pos = Atomics.load(ctl, TAIL);
    let cell: number;
    for (;;) {
      cell = pos & this.mask;
      const dif = (Atomics.load(seqs, cell) - pos) | 0;
      if (dif === 0) {
        const seen = Atomics.compareExchange(ctl, TAIL, pos, (pos + 1) | 0);
        if (seen === pos) break;
        pos = seen;
      } else if (dif < 0) {
        return false; // the cell still holds the entry from one lap ago: full
      } else {
        pos = Atomics.load(ctl, TAIL);
      }
    }
    const w = this.words;
    const base = cell * w;
    const data = this.data;
    for (let k = 0; k < w; k++) data[base + k] = src[at + k]!;
    Atomics.store(seqs, cell, (pos + 1) | 0);
    this.wakeData();
    return true;
  }

  // Bounds: at + words ≤ src.length / dst.length, checked above; base + k < capacity × words = data.length (the cell is masked by capacity − 1).
  tryPop(dst: Uint32Array, at = 0): boolean {
    const ctl = this.ctl;
    if (at < 0 || at + this.words > dst.length) throw outside('tryPop', at, this.words, dst.length);
    const seqs = this.seqs;
    let pos = Atomics.load(ctl, HEAD);
    let cell: number;
    for (;;) {
      cell = pos & this.mask;
      const dif = (Atomics.load(seqs, cell) - ((pos + 1) | 0)) | 0;
      if (dif === 0) {
        const seen = Atomics.compareExchange(ctl, HEAD, pos, (pos + 1) | 0);
        if (seen === pos) break;
        pos = seen;
      } else if (dif < 0) {
        return false; // not yet published at this position: empty
      } else {
        pos = Atomics.load(ctl, HEAD);
      }
    }
    const w = this.words;
    const base = cell * w;
    const data = this.data;
    for (let k = 0; k < w; k++) dst[at + k] = data[base + k]!;
    // Free for the push one lap ahead.
    Atomics.store(seqs, cell, (pos + this.capacity) | 0);
    this.wakeRoom();
    return true;
  }

  get size(): number {
    const n = (Atomics.load(this.ctl, TAIL) - Atomics.load(this.ctl, HEAD)) | 0;
    return n < 0 ? 0 : n > this.capacity ? this.capacity : n;
  }

  // As tryPop/tryPush without the claim. A cell one lap ahead (dif > 0) means the
  // position moved under us: look again rather than answer "empty", or a waiter
  // could sleep past an entry published before it registered (a lost wake-up).
  protected hasData(): boolean {
    for (;;) {
      const pos = Atomics.load(this.ctl, HEAD);
      const dif = (Atomics.load(this.seqs, pos & this.mask) - ((pos + 1) | 0)) | 0;
      if (dif === 0) return true;
      if (dif < 0) return false;
    }
  }

  protected hasRoom(): boolean {
    for (;;) {
      const pos = Atomics.load(this.ctl, TAIL);
      const dif = (Atomics.load(this.seqs, pos & this.mask) - pos) | 0;
      if (dif === 0) return true;
      if (dif < 0) return false;
    }
  }
}
