// Inbound stage (docs/design.md §5): classify received datagrams, hand handshake and
// cookie messages to the control plane, open transport messages in one batch call,
// then — as the in-order consumer of each keypair's packets — check replay and
// inner source and rewrite the batch in place into the plaintext IP packets to
// write to the TUN. Keepalives and drops leave the batch.
//
// Like the outbound stage it is a kernel over the batch and the shared tables; the
// control plane gets back handshake messages to process and per-keypair tallies
// (bytes, whether data came, the source of the last packet) for its timers and
// roaming.
import { DESC_COUNTER_HI, DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE, type OpenBatch } from '../crypto/native-aead.js';
import { MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE, REJECT_AFTER_TIME } from '../protocol/constants.js';
import { AEAD_TAG_SIZE } from '../crypto/sizes.js';
import { Drop, type DropCounters } from '../protocol/drop-reasons.js';
import { ECN_CE, ECN_NOT_ECT, ipPacketLength, markCe } from '../protocol/ip-packet.js';
import { classifyMessage } from '../protocol/messages.js';
import { replayAccept } from '../protocol/replay.js';
import { ADDR_ECN, ADDR_STRIDE } from '../pipeline/address.js';
import type { PacketBatch } from '../pipeline/batch.js';
import type { KeyTable } from '../protocol/key-table.js';
import type { RouteTable } from '../routing/route-table.js';
import type { BatchStages } from './batch-stages.js';
import { carveScratch } from '../pipeline/scratch.js';

export interface InboundContext {
  readonly keys: KeyTable;
  routes: RouteTable;
  /** The control plane's monotonic clock (ms), for keypair expiry. */
  now: number;
  readonly drops: DropCounters;
  readonly open: OpenBatch;
  /** User stages, run on the opened and checked packets. */
  readonly stages: BatchStages | undefined;
  /**
   * Congestion signals the AQM asks of the next batch (dataplane/codel.ts; set before
   * classify, used up by it): that many data messages, the first in the batch, are
   * marked CE when their outer header is ECN-capable and dropped unopened when not.
   */
  aqmSignals: number;
  /** CE marks classify set for the AQM, counted up (the reader takes them). */
  aqmMarked: number;
}

export interface InboundControl {
  /** Handshake and cookie messages `indices[0, count)` of the batch (copy what you keep). */
  handshakes(batch: PacketBatch, indices: Int32Array, count: number): void;
  /**
   * A keypair's packets of this batch passed: `packets` datagrams of `bytes`, `dataCame` unless
   * all were keepalives, the last one's source in record `lastPacket` of batch.addrs.
   */
  received(peer: number, slot: number, generation: number, bytes: number, packets: number, dataCame: boolean, batch: PacketBatch, lastPacket: number): void;
}

const NOT_OPENED = -1;
/** A transport message with no payload: a keepalive, which signals nothing. */
const KEEPALIVE_LENGTH = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;

// Bounds: at + 4 ≤ buf.length: sort() reads only inside a transport message, whose minimum length classifyMessage checked.
function readU32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

const scratchSpec = (slots: number) => ({
  /** [groups, descriptor rows] of the batch being worked on. */
  header: [Int32Array, 2],
  desc: [Uint32Array, slots * DESC_STRIDE],
  ok: [Uint8Array, slots],
  /** Per packet: its descriptor row, and after the checks its peer (for user stages). */
  rowOf: [Int32Array, slots],
  peerOf: [Int32Array, slots],
  /** Indices of the batch's handshake and cookie messages. */
  handshakes: [Int32Array, slots],
  // Per group (one per receiving keypair in the batch).
  slot: [Int32Array, slots],
  generation: [Int32Array, slots],
  rowGroup: [Int32Array, slots],
  bytes: [Float64Array, slots],
  packets: [Int32Array, slots],
  lastPacket: [Int32Array, slots],
  dataCame: [Uint8Array, slots],
} as const);
const H_GROUPS = 0;
const H_ROWS = 1;

/**
 * The stage over one batch at a time; like the outbound stage its scratch is one
 * SharedArrayBuffer, so its phases — classify, open, accept — may run on different
 * threads. run() does all three in turn.
 */
export class InboundStage {
  readonly scratch: SharedArrayBuffer;
  private readonly header: Int32Array;
  private readonly desc: Uint32Array;
  private readonly ok: Uint8Array;
  private readonly rowOf: Int32Array;
  private readonly peerOf: Int32Array;
  private readonly handshakes: Int32Array;
  private readonly slot: Int32Array;
  private readonly generation: Int32Array;
  private readonly rowGroup: Int32Array;
  private readonly bytes: Float64Array;
  private readonly packets: Int32Array;
  private readonly lastPacket: Int32Array;
  private readonly dataCame: Uint8Array;
  private groups = 0;

  constructor(readonly slots: number, shared?: SharedArrayBuffer) {
    const { buffer, arrays } = carveScratch(scratchSpec(slots), shared);
    this.scratch = buffer;
    ({
      header: this.header, desc: this.desc, ok: this.ok, rowOf: this.rowOf, peerOf: this.peerOf, handshakes: this.handshakes,
      slot: this.slot, generation: this.generation, rowGroup: this.rowGroup, bytes: this.bytes, packets: this.packets, lastPacket: this.lastPacket,
      dataCame: this.dataCame,
    } = arrays);
  }

  /** Turns batch.count received datagrams into plaintext packets for the TUN; returns how many. */
  run(batch: PacketBatch, ctx: InboundContext, control: InboundControl): number {
    if (this.classify(batch, ctx, control) > 0) this.open(batch.data, ctx);
    return this.accept(batch, ctx, control);
  }

  /**
   * Hands handshake and cookie messages to the control plane and describes the
   * transport messages to open; returns how many.
   */
  classify(batch: PacketBatch, ctx: InboundContext, control: InboundControl): number {
    batch.checkedCount(this.slots);
    const opened = this.sort(batch, ctx, control);
    this.header[H_GROUPS] = this.groups;
    this.header[H_ROWS] = opened;
    return opened;
  }

  /** Opens what classify() described, in place in `data` (the batch's). Bounds: H_ROWS < header's 2 words (scratchSpec). */
  open(data: Uint8Array, ctx: Pick<InboundContext, 'keys' | 'open'>): void {
    ctx.open(data, ctx.keys.receiveKeys, this.desc, this.header[H_ROWS]!, this.ok);
  }

  /**
   * The in-order part, for the consumer of this batch: replay, inner source, user
   * stages; rewrites the batch into the plaintext packets, hands the tallies to the
   * control plane and returns how many packets remain.
   * Bounds: header has 2 words; g < groups ≤ the count classify() checked ≤ slots, each per-group array's length (scratchSpec).
   */
  accept(batch: PacketBatch, ctx: InboundContext, control: InboundControl): number {
    this.groups = this.header[H_GROUPS]!;
    const m = this.check(batch, ctx);
    for (let g = 0; g < this.groups; g++) {
      const last = this.lastPacket[g]!;
      if (last < 0) continue;
      const slot = this.slot[g]!;
      control.received(ctx.keys.peerOf(slot), slot, this.generation[g]!, this.bytes[g]!, this.packets[g]!, this.dataCame[g] === 1, batch, last);
    }
    return m;
  }

  /**
   * Sorts datagrams into handshakes (to the control plane) and transport messages (descriptors to open).
   * Bounds: i < batch.count ≤ batch.slots and this.slots (classify() checked it): inside offsets, lengths and the scratch.
   */
  private sort(batch: PacketBatch, ctx: InboundContext, control: InboundControl): number {
    const { data, offsets, lengths } = batch;
    const { keys, drops, now } = ctx;
    const { desc, rowOf } = this;
    this.groups = 0;
    let opened = 0;
    let handshakes = 0;
    for (let i = 0; i < batch.count; i++) {
      rowOf[i] = NOT_OPENED;
      const offset = offsets[i]!;
      const length = lengths[i]!;
      const type = classifyMessage(data, offset, length);
      if (typeof type !== 'number') {
        drops.add(type.drop);
        continue;
      }
      if (type !== MESSAGE_TRANSPORT) {
        this.handshakes[handshakes++] = i;
        continue;
      }
      const slot = keys.activeSlot(readU32(data, offset + 4));
      if (slot < 0) {
        drops.add(Drop.UnknownIndex);
        continue;
      }
      if (now - keys.createdAtOf(slot) >= REJECT_AFTER_TIME) {
        drops.add(Drop.KeypairExpired);
        continue;
      }
      if (ctx.aqmSignals > 0 && length > KEEPALIVE_LENGTH && !this.signal(batch.addrs, i, ctx)) continue;
      const row = opened * DESC_STRIDE;
      desc[row + DESC_OFFSET] = offset + MESSAGE_TRANSPORT_HEADER_SIZE;
      desc[row + DESC_LENGTH] = length - MESSAGE_TRANSPORT_HEADER_SIZE;
      desc[row + DESC_KEY_INDEX] = slot;
      desc[row + DESC_COUNTER_LO] = readU32(data, offset + 8);
      desc[row + DESC_COUNTER_HI] = readU32(data, offset + 12);
      this.rowGroup[opened] = this.group(slot, keys);
      rowOf[i] = opened++;
    }
    if (handshakes > 0) control.handshakes(batch, this.handshakes, handshakes);
    return opened;
  }

  /**
   * Replay window (under the keypair's lock, one keypair at a time so two consumers
   * never deadlock), inner packet length, source and ECN; then the user stages.
   * Bounds: m ≤ i < batch.count ≤ slots (classify()'s check); row < opened ≤ count and g < groups ≤ count index the
   * scratch (slots entries each), base = row × DESC_STRIDE inside desc (slots × DESC_STRIDE).
   */
  private check(batch: PacketBatch, ctx: InboundContext): number {
    const { data, offsets, lengths, addrs } = batch;
    const { keys, routes, drops } = ctx;
    const { desc, rowOf, peerOf } = this;
    const replay = keys.replay;
    let locked = 0;
    let m = 0;
    for (let i = 0; i < batch.count; i++) {
      const row = rowOf[i]!;
      if (row === NOT_OPENED) continue;
      if (this.ok[row] !== 1) {
        drops.add(Drop.DecryptFailed);
        continue;
      }
      const base = row * DESC_STRIDE;
      const slot = desc[base + DESC_KEY_INDEX]!;
      if (slot !== locked) {
        if (locked !== 0) keys.unlockReplay(locked);
        keys.lockReplay(slot);
        locked = slot;
      }
      if (!replayAccept(replay, keys.replayBase(slot), desc[base + DESC_COUNTER_LO]!, desc[base + DESC_COUNTER_HI]!)) {
        drops.add(Drop.Replay);
        continue;
      }
      const g = this.rowGroup[row]!;
      this.lastPacket[g] = i;
      this.bytes[g]! += lengths[i]!;
      this.packets[g]! += 1;
      const plaintextLength = desc[base + DESC_LENGTH]! - AEAD_TAG_SIZE;
      if (plaintextLength === 0) continue; // keepalive
      this.dataCame[g] = 1;
      const offset = desc[base + DESC_OFFSET]!;
      const ipLength = ipPacketLength(data, offset, plaintextLength);
      if (ipLength < 0) {
        drops.add(Drop.NotIp);
        continue;
      }
      const peer = keys.peerOf(slot);
      if (routes.source(data, offset, ipLength) !== peer) {
        drops.add(Drop.SourceNotAllowed);
        continue;
      }
      // Congestion met on the way (RFC 6040): the inner packet carries the mark on, and
      // one that cannot carry it (Not-ECT) is dropped, as the congested router would have.
      if (addrs[i * ADDR_STRIDE + ADDR_ECN] === ECN_CE && !markCe(data, offset)) {
        drops.add(Drop.EcnCeNotEct);
        continue;
      }
      offsets[m] = offset;
      lengths[m] = ipLength;
      peerOf[m] = peer;
      m++;
    }
    if (locked !== 0) keys.unlockReplay(locked);
    batch.count = ctx.stages === undefined || m === 0 ? m : ctx.stages.run('inbound', data, offsets, lengths, peerOf, m);
    return batch.count;
  }

  /**
   * Carries one of the AQM's signals on datagram i: a CE mark in its record when the
   * outer header is ECN-capable (the inner packet gets it after opening, as from a
   * router on the way), else a drop (false). An outer CE already carries one.
   * Bounds: i < batch.count ≤ batch.slots, so record i lies inside addrs (PacketBatch's constructor).
   */
  private signal(addrs: Uint8Array, i: number, ctx: InboundContext): boolean {
    ctx.aqmSignals--;
    const at = i * ADDR_STRIDE + ADDR_ECN;
    const ecn = addrs[at]!;
    if (ecn === ECN_NOT_ECT) {
      ctx.drops.add(Drop.QueueDelay);
      return false;
    }
    if (ecn !== ECN_CE) {
      addrs[at] = ECN_CE;
      ctx.aqmMarked++;
    }
    return true;
  }

  /** The group of `slot`, made on first sight (newest first). */
  private group(slot: number, keys: KeyTable): number {
    for (let g = this.groups - 1; g >= 0; g--) if (this.slot[g] === slot) return g;
    const g = this.groups++;
    this.slot[g] = slot;
    this.generation[g] = keys.generationOf(slot);
    this.bytes[g] = 0;
    this.packets[g] = 0;
    this.lastPacket[g] = -1;
    this.dataCame[g] = 0;
    return g;
  }
}
