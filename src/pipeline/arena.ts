// A fixed set of packet batches in shared memory, one arena per direction
// (design.md §3): `batches` batches of `slotsPerBatch` slots of `slotSize` bytes,
// their descriptor arrays and headers, all allocated once. A free list (an MpmcRing
// of batch ids) hands them out and takes them back; rings between stages carry the
// ids. Nothing is allocated after construction.
//
// Leaks and double releases: every batch has a state word (FREE/OWNED) changed
// only by compareExchange, so releasing a batch that is already free throws (and a
// race between two releases lets exactly one win), and `inUse` counts acquired
// batches exactly, so a test (or a supervisor) can see a batch that was never given back.
import { ADDR_STRIDE } from './address.js';
import { HEADER_COUNT, HEADER_WORDS, PacketBatch } from './batch.js';
import { MpmcRing, type RingShared } from './ring.js';

export interface ArenaOptions {
  readonly batches: number;
  readonly slotsPerBatch: number;
  readonly slotSize: number;
}

/** Everything another thread needs to attach: SABs and numbers, structured-clonable. */
export interface ArenaShared extends ArenaOptions {
  /** batches * slotsPerBatch * slotSize bytes: batch i at i * slotsPerBatch * slotSize. */
  readonly data: SharedArrayBuffer;
  /** Uint32, slotsPerBatch per batch. */
  readonly offsets: SharedArrayBuffer;
  /** Uint32, slotsPerBatch per batch. */
  readonly lengths: SharedArrayBuffer;
  /** slotsPerBatch * ADDR_STRIDE bytes per batch. */
  readonly addrs: SharedArrayBuffer;
  /** Int32, HEADER_WORDS per batch (see batch.ts: count and spare words). */
  readonly headers: SharedArrayBuffer;
  /** Int32: [IN_USE, pad…, state of batch 0, 1, …]. */
  readonly states: SharedArrayBuffer;
  readonly freeList: RingShared;
}

/** Most batches an arena holds (the free list's capacity is the next power of two). */
export const MAX_BATCHES = 1 << 20;

/** How long release() waits at most for a free-list cell that a preempted pop still holds. */
const RELEASE_WAIT_MS = 1000;
/** Extra tries of acquire() while a concurrent release is finishing. */
const ACQUIRE_RETRIES = 100;
const FREE = 0;
const OWNED = 1;
const IN_USE = 0;
/** First state word: IN_USE sits alone on its line. */
const STATE_BASE = 16;

function checkOptions(o: ArenaOptions): void {
  const { batches, slotsPerBatch, slotSize } = o;
  if (!Number.isInteger(batches) || batches < 1 || batches > MAX_BATCHES) {
    throw new RangeError(`BatchArena: batches ${batches} is not an integer in 1..${MAX_BATCHES}`);
  }
  if (!Number.isInteger(slotsPerBatch) || slotsPerBatch < 1) {
    throw new RangeError(`BatchArena: slotsPerBatch ${slotsPerBatch} is not a positive integer`);
  }
  if (!Number.isInteger(slotSize) || slotSize < 1) {
    throw new RangeError(`BatchArena: slotSize ${slotSize} is not a positive integer`);
  }
  // offsets are Uint32 relative to a batch's data view.
  if (slotsPerBatch * slotSize > 0xffff_ffff) {
    throw new RangeError(`BatchArena: a batch of ${slotsPerBatch} × ${slotSize} bytes exceeds 4 GiB`);
  }
}

function nextPow2(n: number): number {
  let c = 2;
  while (c < n) c *= 2;
  return c;
}

export class BatchArena {
  readonly batches: number;
  readonly slotsPerBatch: number;
  readonly slotSize: number;
  private readonly shared: ArenaShared;
  private readonly free: MpmcRing;
  private readonly states: Int32Array;
  private readonly headers: Int32Array;
  private readonly views: PacketBatch[];
  private readonly headerViews: Int32Array[];
  /** One-word scratch for the free list, so acquire allocates nothing. */
  private readonly scratch = new Uint32Array(1);

  constructor(opts: ArenaOptions, shared?: ArenaShared) {
    checkOptions(opts);
    this.batches = opts.batches;
    this.slotsPerBatch = opts.slotsPerBatch;
    this.slotSize = opts.slotSize;
    const slots = this.batches * this.slotsPerBatch;
    if (shared === undefined) {
      // Zero-filled and committed by the OS page by page as packets reach them:
      // nothing here writes to the slot memory.
      shared = {
        batches: this.batches,
        slotsPerBatch: this.slotsPerBatch,
        slotSize: this.slotSize,
        data: new SharedArrayBuffer(slots * this.slotSize),
        offsets: new SharedArrayBuffer(slots * 4),
        lengths: new SharedArrayBuffer(slots * 4),
        addrs: new SharedArrayBuffer(slots * ADDR_STRIDE),
        headers: new SharedArrayBuffer(this.batches * HEADER_WORDS * 4),
        states: new SharedArrayBuffer((STATE_BASE + this.batches) * 4),
        // Twice the ids: in a Vyukov ring a pop in progress holds its cell until it
        // finishes, so a ring just big enough could refuse a release for a moment.
        freeList: new MpmcRing(nextPow2(2 * this.batches), 1).share(),
      };
      this.free = MpmcRing.attach(shared.freeList);
      const id = new Uint32Array(1);
      for (let i = 0; i < this.batches; i++) {
        id[0] = i;
        if (!this.free.tryPush(id)) throw new Error('BatchArena: free list too small');
      }
    } else {
      this.free = MpmcRing.attach(shared.freeList);
    }
    this.shared = shared;
    this.states = new Int32Array(shared.states);
    this.headers = new Int32Array(shared.headers);

    // Every batch's views are made here, once, so batch(id) and header(id) allocate nothing.
    const batchBytes = this.slotsPerBatch * this.slotSize;
    const n = this.slotsPerBatch;
    this.views = new Array<PacketBatch>(this.batches);
    this.headerViews = new Array<Int32Array>(this.batches);
    for (let i = 0; i < this.batches; i++) {
      const header = new Int32Array(shared.headers, i * HEADER_WORDS * 4, HEADER_WORDS);
      this.headerViews[i] = header;
      this.views[i] = PacketBatch.fromViews(n, this.slotSize, {
        data: new Uint8Array(shared.data, i * batchBytes, batchBytes),
        offsets: new Uint32Array(shared.offsets, i * n * 4, n),
        lengths: new Uint32Array(shared.lengths, i * n * 4, n),
        addrs: new Uint8Array(shared.addrs, i * n * ADDR_STRIDE, n * ADDR_STRIDE),
        header,
      });
    }
  }

  /** Attaches to an arena made on another thread (from its share()). */
  static attach(s: ArenaShared): BatchArena {
    const expect = s.batches * s.slotsPerBatch;
    if (
      s.data.byteLength !== expect * s.slotSize ||
      s.offsets.byteLength !== expect * 4 ||
      s.headers.byteLength !== s.batches * HEADER_WORDS * 4 ||
      s.states.byteLength !== (STATE_BASE + s.batches) * 4
    ) {
      throw new RangeError('BatchArena.attach: buffers do not match the dimensions');
    }
    return new BatchArena(s, s);
  }

  share(): ArenaShared {
    return this.shared;
  }

  /**
   * A free batch's id with its count reset to 0, or -1 when none is free. Never
   * blocks (it may look again up to ACQUIRE_RETRIES times while a release on another
   * thread is finishing). The caller owns the batch until release(id).
   */
  acquire(): number {
    // A pop also fails while a release on another thread is mid-way at the head of
    // the free list; inUse < batches says one is, so look again a bounded number of times.
    for (let tries = ACQUIRE_RETRIES; !this.free.tryPop(this.scratch); tries--) {
      if (tries === 0 || Atomics.load(this.states, IN_USE) >= this.batches) return -1;
    }
    return this.take(this.scratch[0]!);
  }

  /** Workers only (blocks in Atomics.wait): as acquire, waiting up to timeoutMs for a batch. */
  acquireWait(timeoutMs: number): number {
    if (!this.free.popWait(this.scratch, 0, timeoutMs)) return -1;
    return this.take(this.scratch[0]!);
  }

  /**
   * Gives an acquired batch back. RangeError for an id out of range or a batch that is
   * free. Does not block, except in the rare case commented inside (≤ RELEASE_WAIT_MS).
   */
  release(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.batches) {
      throw new RangeError(`BatchArena.release: batch ${id} is out of range 0..${this.batches - 1}`);
    }
    if (Atomics.compareExchange(this.states, STATE_BASE + id, OWNED, FREE) !== OWNED) {
      throw new RangeError(`BatchArena.release: batch ${id} is already free (double release)`);
    }
    Atomics.sub(this.states, IN_USE, 1);
    this.scratch[0] = id;
    // The free list holds every id at most once and has room for twice as many, so a
    // push fails only while a pop on another thread that claimed the cell a lap ago
    // is mid-way (preempted between claim and finish): wait for it, briefly.
    if (!this.free.tryPush(this.scratch) && !this.free.pushWait(this.scratch, 0, RELEASE_WAIT_MS)) {
      throw new Error(`BatchArena.release: free list refused batch ${id} for ${RELEASE_WAIT_MS} ms`);
    }
  }

  /**
   * The batch's views into the arena (the same object every call): data covers
   * exactly slotsPerBatch * slotSize bytes and offsets are relative to it.
   */
  batch(id: number): PacketBatch {
    const b = this.views[id];
    if (b === undefined) throw new RangeError(`BatchArena.batch: batch ${id} is out of range 0..${this.batches - 1}`);
    return b;
  }

  /**
   * The batch's header words (Int32, shared; the same view as batch(id).header):
   * HEADER_COUNT is the packet count, HEADER_SPARE.. the pipeline's spare words.
   * Written by the batch's owner before it hands the id on through a ring, read by
   * the next owner after it pops the id: the ring orders them, no Atomics needed.
   */
  header(id: number): Int32Array {
    const h = this.headerViews[id];
    if (h === undefined) throw new RangeError(`BatchArena.header: batch ${id} is out of range 0..${this.batches - 1}`);
    return h;
  }

  /** Whether batch id is acquired and not yet released. */
  owned(id: number): boolean {
    return Atomics.load(this.states, STATE_BASE + id) === OWNED;
  }

  /** Batches acquired and not released, over all threads (exact when quiescent). */
  get inUse(): number {
    return Atomics.load(this.states, IN_USE);
  }

  /** Ids on the free list now (approximate while others acquire or release). */
  get freeCount(): number {
    return this.free.size;
  }

  private take(id: number): number {
    if (Atomics.compareExchange(this.states, STATE_BASE + id, FREE, OWNED) !== FREE) {
      // Only a corrupted free list gets here: an id on it twice.
      throw new Error(`BatchArena.acquire: batch ${id} from the free list is not free`);
    }
    Atomics.add(this.states, IN_USE, 1);
    this.headers[id * HEADER_WORDS + HEADER_COUNT] = 0;
    return id;
  }
}
