// The "destination unreachable" errors one queue owes the host (src/protocol/icmp.ts):
// the outbound stage writes them into this small batch, reserved at start, while it
// routes a batch read from the TUN, and the thread that owns the TUN queue writes
// them back into it after the batch was prepared (QueueLoop), one batch write for
// all of them. Rate-limited per queue by a token bucket of the kernel's global ICMP
// limit (1000 a second, bursts of 50): with N queues the host may get up to N times
// as many errors, as the kernel's limit is per host.
import { TokenBucket, UNREACHABLE_MAX_BYTES, unanswerable, NoAnswer, writeUnreachable } from '../protocol/icmp.js';
import { HEADROOM, PacketBatch } from '../pipeline/batch.js';

/** net.ipv4.icmp_msgs_per_sec and net.ipv4.icmp_msgs_burst's defaults. */
export const ICMP_MSGS_PER_SEC = 1000;
export const ICMP_MSGS_BURST = 50;
/** Errors one batch holds: more than one outbound batch can use (a burst is 50, and `now` is one per batch). */
export const UNREACHABLE_SLOTS = 64;
/** Room before each error for the vnet header of a TUN write, after it for the largest error. */
const SLOT_SIZE = Math.ceil((HEADROOM + UNREACHABLE_MAX_BYTES) / 64) * 64;

export class UnreachableReplies {
  readonly batch = new PacketBatch(UNREACHABLE_SLOTS, SLOT_SIZE);
  /** What a packet may grow to from its offset when written (TunPort.write's capacity). */
  readonly capacity = SLOT_SIZE - HEADROOM;
  /** Errors held back by the rate limit since the caller last took the count. */
  limited = 0;
  private readonly bucket = new TokenBucket(ICMP_MSGS_PER_SEC, ICMP_MSGS_BURST);

  constructor() {
    this.batch.resetOffsets(HEADROOM);
  }

  /**
   * Answers the packet at data[offset, offset+length) with an error, unless it may not be answered or the limit holds it back.
   * Bounds: n < batch.slots, checked first; offsets has slots entries (PacketBatch's constructor).
   */
  answer(data: Uint8Array, offset: number, length: number, now: number): void {
    if (unanswerable(data, offset, length) !== NoAnswer.None) return;
    const batch = this.batch;
    const n = batch.count;
    if (n === batch.slots || !this.bucket.take(now)) {
      this.limited++;
      return;
    }
    batch.lengths[n] = writeUnreachable(data, offset, length, batch.data, batch.offsets[n]!);
    batch.count = n + 1;
  }

  /** After the batch was written: empty again (a write may have moved its offsets). */
  clear(): void {
    this.batch.resetOffsets(HEADROOM);
  }
}
