// Handshake messages on their way from a queue (a worker's, or the inline one) to the
// control plane, on a path of their own that a flood fills without touching anything
// else (tallies, keypair confirmations, roaming and first packets go over the control
// channel's rings). Two lanes, each a ring in shared memory:
//   priority — initiations and responses that carry a MAC2 while the interface is under
//              load: peers that answered a cookie reply, as a flood does not;
//   bulk     — everything else: cookie replies, and handshakes when not under load or
//              without a MAC2 (under load these get a cookie reply, nothing more).
// The writer admits each message where it is read, so a flood costs the queue a few
// loads and stores per datagram and the control plane nothing: under load, a source
// address (an IPv4 address, an IPv6 /64) may send PRIORITY_RATE handshakes with a MAC2
// and COOKIE_RATE without one per second; what exceeds it is dropped and counted. The
// control plane's own rate limiter (engine.ts) still judges the admitted ones once
// their MAC2 is verified. The control plane drains the lanes a slice at a time
// (src/device/handshake-scheduler.ts). The gate is how the two ends tell each other of
// the load: the control plane says until when it is under load, a writer until when it
// is cutting a flood (which keeps the control plane under load: what a writer cuts
// never shows in the backlog).
import { randomBytes } from 'node:crypto';
import { ADDR_STRIDE } from '../pipeline/address.js';
import type { PacketBatch } from '../pipeline/batch.js';
import { SpscRing, type RingShared } from '../pipeline/ring.js';
import {
  MAC_SIZE, MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE, MESSAGE_RESPONSE, UNDER_LOAD_SHARE, UNDER_LOAD_STICKY,
} from '../protocol/constants.js';
import { Drop, type DropCounters } from '../protocol/drop-reasons.js';
import { PACKETS_BURSTABLE, PACKETS_PER_SECOND } from '../protocol/ratelimiter.js';

/** Bulk lane capacity: wireguard-go's handshake queue (QueueHandshakeSize). */
export const BULK_CAPACITY = 1024;
const PRIORITY_CAPACITY = 128;
/** Handshakes with a MAC2 per second and source under load: the engine's rate limiter's figures. */
const PRIORITY_RATE = PACKETS_PER_SECOND;
const PRIORITY_BURST = PACKETS_BURSTABLE;
/** Cookie replies a source can draw per second under load: plenty for a NAT full of peers. */
const COOKIE_RATE = 100;
const COOKIE_BURST = 100;
/** Token buckets per lane, by a keyed hash of the source: a fixed table, nothing allocated per source. */
const BUCKETS = 1 << 16;

const ADDR_WORDS = ADDR_STRIDE / 4;
// Record: [length, arrival (ms on the control plane's clock, mod 2^32), address record..., bytes...].
const R_LENGTH = 0;
const R_ARRIVAL = 1;
const R_ADDR = 2;
const R_DATA = (R_ADDR + ADDR_WORDS) * 4;
const RECORD_WORDS = R_ADDR + ADDR_WORDS + MESSAGE_INITIATION_SIZE / 4;

export interface HandshakeLanesShared {
  readonly priority: RingShared;
  readonly bulk: RingShared;
  /** The load as both ends see it (HandshakeGate). */
  readonly gate: SharedArrayBuffer;
}

const UNDER_LOAD_UNTIL = 0;
const CUTTING_UNTIL = 1;

/**
 * Deadlines on the control plane's clock (ms; a worker's clock is shifted to it:
 * queue-worker.ts), shared by the control plane and every writer: until when the
 * control plane is under load, and until when a writer is cutting a flood.
 */
export class HandshakeGate {
  private readonly words: BigInt64Array;

  constructor(readonly buffer = new SharedArrayBuffer(16)) {
    this.words = new BigInt64Array(buffer);
  }

  /** The control plane: under load until `until` (-Infinity: not). */
  set(until: number): void {
    Atomics.store(this.words, UNDER_LOAD_UNTIL, BigInt(Number.isFinite(until) ? Math.ceil(until) : -1));
  }

  underLoad(now: number): boolean {
    return now < Number(Atomics.load(this.words, UNDER_LOAD_UNTIL));
  }

  /** A writer cut a message of a flood at `now`. */
  cut(now: number): void {
    Atomics.store(this.words, CUTTING_UNTIL, BigInt(Math.ceil(now + UNDER_LOAD_STICKY)));
  }

  cutting(now: number): boolean {
    return now < Number(Atomics.load(this.words, CUTTING_UNTIL));
  }
}

/** One queue's lanes (main thread; post the result to the queue's worker). */
export function createHandshakeLanes(gate: HandshakeGate): HandshakeLanesShared {
  return {
    priority: new SpscRing(PRIORITY_CAPACITY, RECORD_WORDS).share(),
    bulk: new SpscRing(BULK_CAPACITY, RECORD_WORDS).share(),
    gate: gate.buffer,
  };
}

/** Token buckets (wireguard-go's rate limiter's arithmetic) keyed by a hash of the source address. */
class SourceBuckets {
  private readonly tokens = new Float64Array(BUCKETS);
  private readonly last = new Float64Array(BUCKETS);
  // A key unknown outside this process: nobody can aim a flood at another source's bucket.
  private readonly key = randomBytes(4).readUInt32LE(0);
  private readonly cost: number;
  private readonly max: number;

  constructor(perSecond: number, burst: number) {
    this.cost = 1000 / perSecond;
    this.max = this.cost * burst;
  }

  /**
   * Whether the source of address record `i` may send one more now (ms).
   * Bounds: i < the batch's count, so its record lies in addrs (the batch contract (docs/design.md §3)); slot is masked by BUCKETS − 1, the arrays' length.
   */
  allow(addrs: Uint8Array, i: number, now: number): boolean {
    const base = i * ADDR_STRIDE;
    // IPv4: the address; IPv6: its /64, which one host usually holds whole.
    const bytes = addrs[base] === 4 ? 4 : 8;
    let h = this.key;
    for (let k = 0; k < bytes; k++) h = Math.imul(h ^ addrs[base + 4 + k]!, 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    const slot = (h ^ (h >>> 12)) & (BUCKETS - 1);
    const tokens = Math.min(this.max, this.tokens[slot]! + (now - this.last[slot]!));
    this.last[slot] = now;
    if (tokens < this.cost) {
      this.tokens[slot] = tokens;
      return false;
    }
    this.tokens[slot] = tokens - this.cost;
    return true;
  }
}

/** The queue's end: admits each handshake message into a lane, or drops and counts it. */
export class LaneWriter {
  private readonly priority: SpscRing;
  private readonly bulk: SpscRing;
  private readonly gate: HandshakeGate;
  private readonly words = new Uint32Array(RECORD_WORDS);
  private readonly bytes = new Uint8Array(this.words.buffer);
  private readonly withMac2 = new SourceBuckets(PRIORITY_RATE, PRIORITY_BURST);
  private readonly withoutMac2 = new SourceBuckets(COOKIE_RATE, COOKIE_BURST);

  /** `now`: the control plane's clock (ms). */
  constructor(shared: HandshakeLanesShared, private readonly drops: DropCounters, private readonly now: () => number) {
    this.priority = SpscRing.attach(shared.priority);
    this.bulk = SpscRing.attach(shared.bulk);
    this.gate = new HandshakeGate(shared.gate);
  }

  /**
   * The handshake, response and cookie messages at `indices` of `batch` (sizes checked by the classifier).
   * Bounds: k < count ≤ indices.length and each index < batch.count (the stage's classifier fills them); a packet and its
   * address record lie inside data and addrs (the batch contract (docs/design.md §3)); length ≤ MESSAGE_INITIATION_SIZE, the classifier's sizes, fits the record.
   */
  handshakes(batch: PacketBatch, indices: Int32Array, count: number): void {
    const now = this.now();
    // Under load as the control plane last said, or as the backlog says now (the control
    // plane may be too busy to say), or while cutting a flood.
    const underLoad = this.gate.underLoad(now) || this.gate.cutting(now) || this.bulk.size >= BULK_CAPACITY * UNDER_LOAD_SHARE;
    let cut = false;
    const { data, addrs } = batch;
    const w = this.words;
    for (let k = 0; k < count; k++) {
      const i = indices[k]!;
      const offset = batch.offsets[i]!;
      const length = batch.lengths[i]!;
      let lane = this.bulk;
      const type = data[offset];
      if (underLoad && (type === MESSAGE_INITIATION || type === MESSAGE_RESPONSE)) {
        if (hasMac2(data, offset, length)) {
          if (!this.withMac2.allow(addrs, i, now)) {
            this.drops.add(Drop.RateLimited);
            cut = true;
            continue;
          }
          lane = this.priority;
        } else if (!this.withoutMac2.allow(addrs, i, now)) {
          this.drops.add(Drop.CookieRateLimited);
          cut = true;
          continue;
        }
      }
      w[R_LENGTH] = length;
      w[R_ARRIVAL] = Math.floor(now) >>> 0;
      const to = this.bytes;
      for (let b = 0, from = i * ADDR_STRIDE; b < ADDR_STRIDE; b++) to[R_ADDR * 4 + b] = addrs[from + b]!;
      for (let b = 0; b < length; b++) to[R_DATA + b] = data[offset + b]!;
      if (!lane.tryPush(w)) this.drops.add(Drop.HandshakeQueueFull);
    }
    if (cut) this.gate.cut(now);
  }
}

function hasMac2(data: Uint8Array, offset: number, length: number): boolean {
  for (let b = offset + length - MAC_SIZE; b < offset + length; b++) if (data[b] !== 0) return true;
  return false;
}

/** The control plane's end of one queue's lanes: the priority lane first. */
export class LaneReader {
  private readonly priority: SpscRing;
  private readonly bulk: SpscRing;
  private readonly words = new Uint32Array(RECORD_WORDS);
  private readonly bytes = new Uint8Array(this.words.buffer);
  /** The last message popped: its source's address record and its bytes. */
  readonly addr = this.bytes.subarray(R_ADDR * 4, R_ADDR * 4 + ADDR_STRIDE);
  private closed = false;

  constructor(shared: HandshakeLanesShared) {
    this.priority = SpscRing.attach(shared.priority);
    this.bulk = SpscRing.attach(shared.bulk);
  }

  /** Messages waiting, and how many could. */
  get waiting(): number {
    return this.priority.size + this.bulk.size;
  }

  /** What the backlog is measured against: the bulk lane's size (the priority lane is for the few). */
  get capacity(): number {
    return BULK_CAPACITY;
  }

  /** Takes the next message of `lane`; false when it has none. */
  pop(lane: 'priority' | 'bulk'): boolean {
    return (lane === 'priority' ? this.priority : this.bulk).tryPop(this.words);
  }

  /** A copy of the last message popped (the engine keeps what it is given). Bounds: R_LENGTH < RECORD_WORDS, words' length. */
  message(): Uint8Array {
    return this.bytes.slice(R_DATA, R_DATA + this.words[R_LENGTH]!);
  }

  /** How long the last message popped waited, at `now` on the control plane's clock (ms). Bounds: R_ARRIVAL < RECORD_WORDS. */
  waited(now: number): number {
    return ((Math.floor(now) >>> 0) - this.words[R_ARRIVAL]!) >>> 0;
  }

  /** Resolves when either lane may have a message, on close, or after timeoutMs (a doorbell). */
  waitNotEmptyAsync(timeoutMs: number): Promise<void> {
    if (this.closed || this.waiting > 0) return Promise.resolve();
    return Promise.race([this.priority.waitNotEmptyAsync(timeoutMs), this.bulk.waitNotEmptyAsync(timeoutMs)]);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.priority.close();
    this.bulk.close();
  }
}
