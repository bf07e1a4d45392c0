// A batch of packets in shared memory (design.md §3): one arena of fixed-size slots
// and typed-array descriptors, so no JS object is made per packet. The same batch
// object is filled by a read, rewritten in place by the stages and drained by a write.
import { ADDR_STRIDE } from '../io/udp.js';

/** Room before a plaintext packet for the 16-byte transport header, so sealing is in place. */
export const HEADROOM = 16;
/** Room after it for padding (up to 15 bytes) and the 16-byte tag. */
export const TAILROOM = 32;

export class PacketBatch {
  readonly data: Uint8Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  /** UDP peer address of each packet (source on receive, destination on send). */
  readonly addrs: Uint8Array;
  /** Per-packet scratch for the stages (e.g. a status or a peer number). */
  readonly marks: Int32Array;
  /** Packets currently described. */
  count = 0;

  constructor(readonly slots: number, readonly slotSize: number) {
    this.data = new Uint8Array(new SharedArrayBuffer(slots * slotSize));
    this.offsets = new Uint32Array(new SharedArrayBuffer(slots * 4));
    this.lengths = new Uint32Array(new SharedArrayBuffer(slots * 4));
    this.addrs = new Uint8Array(new SharedArrayBuffer(slots * ADDR_STRIDE));
    this.marks = new Int32Array(new SharedArrayBuffer(slots * 4));
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
export const SLOT_SIZE = Math.ceil((65535 + HEADROOM + TAILROOM) / 64) * 64;
