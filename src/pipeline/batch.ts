// A batch of packets in shared memory (docs/design.md §1): one arena of fixed-size slots
// and typed-array descriptors, so no JS object is made per packet. The same batch
// object is filled by a read, rewritten in place by the stages and drained by a write.
import { ADDR_STRIDE } from './address.js';

/** Room before a plaintext packet for the 16-byte transport header, so sealing is in place. */
export const HEADROOM = 16;
/** Room after it for padding (up to 15 bytes) and the 16-byte tag. */
export const TAILROOM = 32;

/**
 * Per-batch header words (Int32, in shared memory). `count` lives here rather than in
 * a JS field so that a batch handed to another thread carries it: the ring hand-off
 * (an Atomics store/load pair) orders the plain writes before it, so readers need no
 * Atomics of their own.
 */
export const HEADER_COUNT = 0;
/** Words per header; padded to 64 bytes so two batches' headers never share a cache line. */
export const HEADER_WORDS = 16;

/** Existing views a PacketBatch can wrap (see PacketBatch.fromViews). */
export interface PacketBatchViews {
  /** slots * slotSize bytes; offsets are relative to its start. */
  readonly data: Uint8Array;
  /** slots entries each. */
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** slots * ADDR_STRIDE bytes. */
  readonly addrs: Uint8Array;
  /** At least HEADER_WORDS words; `count` is header[HEADER_COUNT]. */
  readonly header: Int32Array;
}

export class PacketBatch {
  readonly data: Uint8Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** UDP peer address of each packet (source on receive, destination on send). */
  readonly addrs: Uint8Array;
  /** Shared per-batch words: count and spares (HEADER_* above). */
  readonly header: Int32Array;

  /**
   * `new PacketBatch(slots, slotSize)` allocates its own shared memory; the third
   * argument (used by fromViews) wraps views that already exist instead.
   */
  constructor(readonly slots: number, readonly slotSize: number, views?: PacketBatchViews) {
    if (views === undefined) {
      this.data = new Uint8Array(new SharedArrayBuffer(slots * slotSize));
      this.offsets = new Uint32Array(new SharedArrayBuffer(slots * 4));
      this.lengths = new Uint32Array(new SharedArrayBuffer(slots * 4));
      this.addrs = new Uint8Array(new SharedArrayBuffer(slots * ADDR_STRIDE));
      this.header = new Int32Array(new SharedArrayBuffer(HEADER_WORDS * 4));
      return;
    }
    const short = (name: string, have: number, want: number): never => {
      throw new RangeError(`PacketBatch: ${name} has ${have} elements, ${want} needed for ${slots} slots of ${slotSize} bytes`);
    };
    if (views.data.length < slots * slotSize) short('data', views.data.length, slots * slotSize);
    if (views.offsets.length < slots) short('offsets', views.offsets.length, slots);
    if (views.lengths.length < slots) short('lengths', views.lengths.length, slots);
    if (views.addrs.length < slots * ADDR_STRIDE) short('addrs', views.addrs.length, slots * ADDR_STRIDE);
    if (views.header.length < HEADER_WORDS) short('header', views.header.length, HEADER_WORDS);
    this.data = views.data;
    this.offsets = views.offsets;
    this.lengths = views.lengths;
    this.addrs = views.addrs;
    this.header = views.header;
  }

  /** A batch over existing views (a flight's batch on a queue worker); allocates nothing but the object. */
  static fromViews(slots: number, slotSize: number, views: PacketBatchViews): PacketBatch {
    return new PacketBatch(slots, slotSize, views);
  }

  /**
   * Packets currently described (header[HEADER_COUNT], so it crosses threads with the batch).
   * Bounds: header has ≥ HEADER_WORDS > HEADER_COUNT words (constructor).
   */
  get count(): number {
    return this.header[HEADER_COUNT]!;
  }

  set count(n: number) {
    this.header[HEADER_COUNT] = n;
  }

  /**
   * The count, checked once per batch against this batch's slots and a stage's `scratchSlots`:
   * the bound that keeps a stage's per-packet loops inside offsets, lengths, addrs and its scratch.
   */
  checkedCount(scratchSlots: number): number {
    const n = this.count;
    if (!(n >= 0 && n <= this.slots && n <= scratchSlots)) {
      throw new RangeError(`batch count ${n} is outside [0, ${Math.min(this.slots, scratchSlots)}] (${this.slots} slots, stage scratch for ${scratchSlots})`);
    }
    return n;
  }

  /** Points every descriptor at the start of its slot plus `headroom`. */
  resetOffsets(headroom: number): void {
    for (let i = 0; i < this.slots; i++) this.offsets[i] = i * this.slotSize + headroom;
    this.count = 0;
  }
}

/**
 * One slot holds the largest IP packet (65535 bytes) with its room around it, so any
 * MTU works, also one raised after start (wg-quick sets it, jumbo underlays want it)
 * and a peer's with a larger MTU than ours. Pages of a slot that no packet reaches
 * are never touched, so the memory actually used follows the traffic.
 */
/** Packets per batch: wireguard-go's IdealBatchSize. */
export const BATCH_SIZE = 128;

export const SLOT_SIZE = Math.ceil((65535 + HEADROOM + TAILROOM) / 64) * 64;
