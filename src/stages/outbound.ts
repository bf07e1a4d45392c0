// Outbound stage (docs/design.md §4): route plaintext packets read from the TUN by
// allowed-IPs, number and pad them, seal them in one batch call and rewrite the
// batch in place into transport datagrams addressed to each peer's endpoint, each
// keypair's datagrams consecutive and in their order (so UDP GSO can send a run of
// them to one endpoint in one message).
//
// The stage is a kernel over the batch and the shared tables alone (key table,
// peer table, compiled routes), so it runs on any thread. What needs the control
// plane comes back as numbers: packets for a peer without a usable session (the
// control plane stages them and handshakes), and per-keypair tallies (bytes sent,
// counters used up) that it applies to its timers.
//
// A packet no peer's allowed IPs cover, or whose peer has no endpoint (configured or
// learned), is dropped and answered with ICMP "destination unreachable" as the
// kernel's WireGuard does (ctx.unreachable, src/stages/unreachable.ts): that
// happens in prepare(), which runs on the thread that owns the TUN queue.
import { DESC_COUNTER_HI, DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE, type SealBatch } from '../crypto/native-aead.js';
import { MESSAGE_TRANSPORT_HEADER_SIZE, REJECT_AFTER_TIME } from '../protocol/constants.js';
import { AEAD_TAG_SIZE } from '../crypto/sizes.js';
import { Drop, type DropCounters } from '../protocol/drop-reasons.js';
import { paddingSize } from '../protocol/messages.js';
import { writeTransportHeader } from '../protocol/messages.js';
import { ADDR_BYTES, ADDR_ECN, ADDR_FAMILY, ADDR_PORT, ADDR_STRIDE } from '../pipeline/address.js';
import { ipEcn, outerEcn } from '../protocol/ip-packet.js';
import { HEADROOM, type PacketBatch } from '../pipeline/batch.js';
import type { KeyTable } from '../protocol/key-table.js';
import type { PeerTable } from '../protocol/peer-table.js';
import type { RouteTable } from '../routing/route-table.js';
import type { UnreachableReplies } from './unreachable.js';
import type { BatchStages } from './batch-stages.js';
import { carveScratch } from '../pipeline/scratch.js';

/** What the kernel reads: shared tables and settings, no control-plane objects. */
export interface OutboundContext {
  readonly keys: KeyTable;
  readonly peers: PeerTable;
  routes: RouteTable;
  mtu: number;
  /** The control plane's monotonic clock (ms), for keypair expiry. */
  now: number;
  readonly drops: DropCounters;
  readonly seal: SealBatch;
  /** User stages, run on the routed packets before they are numbered. */
  readonly stages: BatchStages | undefined;
  /**
   * Where the ICMP errors for unroutable packets go (the QueueLoop that runs the stage
   * sets it and writes them to its TUN queue); absent: such packets are only dropped.
   */
  unreachable?: UnreachableReplies;
  /**
   * The port this queue's datagrams leave from (the QueueLoop sets it): a packet from
   * the TUN that is one of them, to its peer's endpoint, came back through a routing
   * loop and is dropped (`routing_loop`). Absent: not checked.
   */
  listenPort?: number;
}

/** The control plane's half: what the kernel hands back. */
export interface OutboundControl {
  /** Packet i of the batch is for `peer`, which has an endpoint but no usable session: stage a copy and handshake. */
  needsSession(peer: number, data: Uint8Array, offset: number, length: number): void;
  /** `packets` datagrams of `bytes` went out for `peer` with the keypair in `slot` (of `generation`); `exhausted` when its counters ran out. */
  sent(peer: number, slot: number, generation: number, bytes: number, packets: number, exhausted: boolean): void;
}

const TWO_32 = 2 ** 32;
const NO_PEER = -1;
const NEEDS_SESSION = -2;
const NO_ENDPOINT = -3;

const scratchSpec = (slots: number) => ({
  /** [groups, descriptor rows] of the batch being worked on. */
  header: [Int32Array, 2],
  // Per packet: its peer (for user stages) and its keypair group.
  peerOf: [Int32Array, slots],
  groupOf: [Int32Array, slots],
  desc: [Uint32Array, slots * DESC_STRIDE],
  /** The group of each descriptor row, and its outer ECN field (RFC 6040, from the plaintext). */
  rowGroup: [Int32Array, slots],
  rowEcn: [Uint8Array, slots],
  // Per group (one per sending keypair in the batch).
  slot: [Int32Array, slots],
  peer: [Int32Array, slots],
  generation: [Int32Array, slots],
  count: [Int32Array, slots],
  cursor: [Int32Array, slots],
  /** Where the group's datagrams start in the rewritten batch. */
  first: [Int32Array, slots],
  bytes: [Float64Array, slots],
  counterLo: [Float64Array, slots],
  counterHi: [Float64Array, slots],
} as const);
const H_GROUPS = 0;
const H_ROWS = 1;

/**
 * The stage over one batch at a time. Its scratch (descriptors, groups, tallies) is
 * one SharedArrayBuffer, so the three phases — prepare, seal, finish — may run on
 * different threads, each with a stage attached to the same scratch (share()).
 * run() does all three in turn.
 */
export class OutboundStage {
  readonly scratch: SharedArrayBuffer;
  private readonly header: Int32Array;
  private readonly peerOf: Int32Array;
  private readonly groupOf: Int32Array;
  private readonly desc: Uint32Array;
  private readonly rowGroup: Int32Array;
  private readonly rowEcn: Uint8Array;
  private readonly slot: Int32Array;
  private readonly peer: Int32Array;
  private readonly generation: Int32Array;
  private readonly count: Int32Array;
  private readonly cursor: Int32Array;
  private readonly first: Int32Array;
  private readonly bytes: Float64Array;
  private readonly counterLo: Float64Array;
  private readonly counterHi: Float64Array;
  private groups = 0;

  constructor(readonly slots: number, shared?: SharedArrayBuffer) {
    const { buffer, arrays } = carveScratch(scratchSpec(slots), shared);
    this.scratch = buffer;
    ({
      header: this.header, peerOf: this.peerOf, groupOf: this.groupOf, desc: this.desc, rowGroup: this.rowGroup, rowEcn: this.rowEcn,
      slot: this.slot, peer: this.peer, generation: this.generation, count: this.count, cursor: this.cursor, first: this.first,
      bytes: this.bytes, counterLo: this.counterLo, counterHi: this.counterHi,
    } = arrays);
  }

  /** Turns batch.count plaintext packets (at slot + HEADROOM) into sealed datagrams; returns how many. */
  run(batch: PacketBatch, ctx: OutboundContext, control: OutboundControl): number {
    if (this.prepare(batch, ctx, control) > 0) this.seal(batch.data, ctx);
    return this.finish(batch, ctx, control);
  }

  /**
   * Routes, runs the user stages, groups by keypair, reserves counters, pads and
   * writes headers and AEAD descriptors. Returns the number of packets to seal.
   */
  prepare(batch: PacketBatch, ctx: OutboundContext, control: OutboundControl): number {
    batch.checkedCount(this.slots);
    this.route(batch, ctx);
    const m = this.number(batch, ctx, control);
    this.header[H_GROUPS] = this.groups;
    this.header[H_ROWS] = m;
    return m;
  }

  /** Seals what prepare() described, in place in `data` (the batch's). Bounds: H_ROWS < header's 2 words (scratchSpec). */
  seal(data: Uint8Array, ctx: Pick<OutboundContext, 'keys' | 'seal'>): void {
    ctx.seal(data, ctx.keys.sendKeys, this.desc, this.header[H_ROWS]!);
  }

  /**
   * Rewrites the batch into the sealed datagrams and hands the tallies to the control plane; returns how many.
   * Bounds: header has 2 words; g < groups ≤ the count prepare() checked ≤ slots, each per-group array's length (scratchSpec).
   */
  finish(batch: PacketBatch, ctx: OutboundContext, control: OutboundControl): number {
    this.groups = this.header[H_GROUPS]!;
    const m = this.header[H_ROWS]!;
    this.reorder(batch, ctx, m);
    for (let g = 0; g < this.groups; g++) {
      const exhausted = this.counterLo[g]! < 0;
      control.sent(this.peer[g]!, this.slot[g]!, this.generation[g]!, this.bytes[g]!, exhausted ? 0 : this.count[g]!, exhausted);
    }
    return m;
  }

  /**
   * Routes each packet to its peer; runs the user stages over the routed ones (dropping the rest).
   * Bounds: n ≤ i < batch.count, checked ≤ batch.slots and this.slots in prepare(): inside offsets, lengths and peerOf.
   */
  private route(batch: PacketBatch, ctx: OutboundContext): void {
    const { data, offsets, lengths } = batch;
    const { routes, drops, unreachable } = ctx;
    const peerOf = this.peerOf;
    let n = 0;
    for (let i = 0; i < batch.count; i++) {
      const peer = routes.destination(data, offsets[i]!, lengths[i]!);
      if (peer === NO_PEER) {
        drops.add(Drop.NoPeerForDestination);
        unreachable?.answer(data, offsets[i]!, lengths[i]!, ctx.now);
        continue;
      }
      if (ctx.listenPort !== undefined && isOwnDatagram(data, offsets[i]!, lengths[i]!, ctx.listenPort, ctx.peers.endpoints, peer)) {
        drops.add(Drop.RoutingLoop);
        continue;
      }
      offsets[n] = offsets[i]!;
      lengths[n] = lengths[i]!;
      peerOf[n] = peer;
      n++;
    }
    batch.count = ctx.stages === undefined || n === 0 ? n : ctx.stages.run('outbound', data, offsets, lengths, peerOf, n);
  }

  /**
   * Groups packets by sending keypair, reserves their counters, pads them, writes headers and AEAD descriptors.
   * Bounds: i < batch.count ≤ slots (prepare() checked it; route() only shrinks it), and g < groups ≤ count,
   * m ≤ count: every per-packet, per-group and per-row scratch array holds slots entries (scratchSpec).
   */
  private number(batch: PacketBatch, ctx: OutboundContext, control: OutboundControl): number {
    const { data, offsets, lengths } = batch;
    const { keys, peers, now } = ctx;
    const { peerOf, groupOf, desc } = this;
    const n = batch.count;
    this.groups = 0;

    for (let i = 0; i < n; i++) {
      const peer = peerOf[i]!;
      // No endpoint, configured or learned: dropped and answered with ICMP, as the kernel's wg_xmit does (not staged).
      if (!peers.hasEndpoint(peer)) {
        groupOf[i] = NO_ENDPOINT;
        ctx.drops.add(Drop.NoEndpoint);
        ctx.unreachable?.answer(data, offsets[i]!, lengths[i]!, now);
        continue;
      }
      const slot = peers.sendSlot(peer);
      if (slot === 0 || !keys.isActive(slot) || now - keys.createdAtOf(slot) >= REJECT_AFTER_TIME) {
        // Rare (no session yet, or it expired): the control plane copies and stages it, and handshakes.
        groupOf[i] = NEEDS_SESSION;
        control.needsSession(peer, data, offsets[i]!, lengths[i]!);
        continue;
      }
      groupOf[i] = this.group(slot, peer, keys);
    }

    let start = 0;
    for (let g = 0; g < this.groups; g++) {
      const first = keys.reserveSendCounters(this.slot[g]!, this.count[g]!);
      this.cursor[g] = start;
      if (first < 0n) {
        this.counterLo[g] = -1;
        ctx.drops.add(Drop.CounterExhausted, this.count[g]!);
        continue;
      }
      this.counterLo[g] = Number(first & 0xffffffffn);
      this.counterHi[g] = Number(first >> 32n);
      start += this.count[g]!;
    }

    const mtu = ctx.mtu;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const g = groupOf[i]!;
      if (g < 0 || this.counterLo[g]! < 0) continue;
      const offset = offsets[i]!;
      const length = lengths[i]!;
      const padded = length + paddingSize(length, mtu);
      data.fill(0, offset + length, offset + padded);
      const lo = this.counterLo[g]!;
      const hi = this.counterHi[g]!;
      if (lo + 1 === TWO_32) {
        this.counterLo[g] = 0;
        this.counterHi[g] = hi + 1;
      } else {
        this.counterLo[g] = lo + 1;
      }
      const slot = this.slot[g]!;
      writeTransportHeader(data, offset - HEADROOM, keys.remoteIndexOf(slot), lo, hi);
      const row = m * DESC_STRIDE;
      desc[row + DESC_OFFSET] = offset;
      desc[row + DESC_LENGTH] = padded;
      desc[row + DESC_KEY_INDEX] = slot;
      desc[row + DESC_COUNTER_LO] = lo;
      desc[row + DESC_COUNTER_HI] = hi;
      this.rowGroup[m] = g;
      this.rowEcn[m] = outerEcn(ipEcn(data, offset));
      this.bytes[g]! += MESSAGE_TRANSPORT_HEADER_SIZE + padded + AEAD_TAG_SIZE;
      m++;
    }
    return m;
  }

  /**
   * Rewrites the batch into the m sealed datagrams, in keypair order, each with its
   * peer's endpoint as it is now (read once per group: a roam seen by any thread's
   * receive path a moment ago is in force) and the outer ECN field of its plaintext.
   */
  // Bounds: g < groups and r < m, both ≤ the count prepare() checked ≤ slots, the scratch arrays' length; cursor[g] stays
  // below first[g] + count[g] ≤ m; each record at < m ≤ batch.slots lies in addrs (PacketBatch's constructor).
  private reorder(batch: PacketBatch, ctx: OutboundContext, m: number): void {
    const { offsets, lengths, addrs } = batch;
    const { desc, cursor, first } = this;
    for (let g = 0; g < this.groups; g++) {
      first[g] = cursor[g]!;
      if (this.counterLo[g]! >= 0) ctx.peers.copyEndpoint(this.peer[g]!, addrs, cursor[g]!);
    }
    // Offsets are rewritten only now, after the last descriptor was read from them.
    for (let r = 0; r < m; r++) {
      const row = r * DESC_STRIDE;
      const g = this.rowGroup[r]!;
      const at = cursor[g]!++;
      offsets[at] = desc[row + DESC_OFFSET]! - HEADROOM;
      lengths[at] = MESSAGE_TRANSPORT_HEADER_SIZE + desc[row + DESC_LENGTH]! + AEAD_TAG_SIZE;
      const to = at * ADDR_STRIDE;
      if (at !== first[g]) {
        const from = first[g]! * ADDR_STRIDE;
        for (let k = 0; k < ADDR_STRIDE; k++) addrs[to + k] = addrs[from + k]!;
      }
      addrs[to + ADDR_ECN] = this.rowEcn[r]!;
    }
    batch.count = m;
  }

  /**
   * The group of `slot`, made on first sight. Newest first: consecutive packets mostly share a keypair.
   * Bounds: g < groups ≤ packets numbered so far < slots (prepare()'s check), the per-group arrays' length.
   */
  private group(slot: number, peer: number, keys: KeyTable): number {
    for (let g = this.groups - 1; g >= 0; g--) {
      if (this.slot[g] === slot) {
        this.count[g]! += 1;
        return g;
      }
    }
    const g = this.groups++;
    this.slot[g] = slot;
    this.peer[g] = peer;
    this.generation[g] = keys.generationOf(slot);
    this.count[g] = 1;
    this.bytes[g] = 0;
    return g;
  }
}

/**
 * Whether the IP packet at data[offset, offset+length) is a UDP datagram from
 * `listenPort` to the endpoint of `peer` (its record in `endpoints`): one of this
 * tunnel's own datagrams, routed back into its interface — the peer's endpoint is
 * routed through the tunnel. Sealing it again would send it round and round (the
 * kernel's WireGuard drops these too: "packet loop"). Allocation-free; a few byte
 * reads for anything but UDP from that port.
 * Bounds: offset + length ≤ data.length and offset < data.length (the batch contract (docs/design.md §3)); each read past the
 * first byte comes after its length check (length ≥ 28 or 48, udp + 8 ≤ offset + length).
 */
export function isOwnDatagram(data: Uint8Array, offset: number, length: number, listenPort: number, endpoints: Uint8Array, peer: number): boolean {
  const version = data[offset]! >>> 4;
  let udp: number;
  let family: number;
  let address: number;
  if (version === 4) {
    udp = offset + (data[offset]! & 0x0f) * 4;
    // UDP, and the first fragment (the one with the ports).
    if (length < 28 || data[offset + 9] !== 17 || ((data[offset + 6]! & 0x1f) | data[offset + 7]!) !== 0) return false;
    family = 4;
    address = offset + 16;
  } else if (version === 6) {
    udp = offset + 40;
    if (length < 48 || data[offset + 6] !== 17) return false;
    family = 6;
    address = offset + 24;
  } else {
    return false;
  }
  if (udp + 8 > offset + length || ((data[udp]! << 8) | data[udp + 1]!) !== listenPort) return false;
  const record = peer * ADDR_STRIDE;
  if (endpoints[record + ADDR_FAMILY] !== family || endpoints[record + ADDR_PORT] !== data[udp + 2] || endpoints[record + ADDR_PORT + 1] !== data[udp + 3]) {
    return false;
  }
  const n = family === 4 ? 4 : 16;
  for (let k = 0; k < n; k++) if (endpoints[record + ADDR_BYTES + k] !== data[address + k]) return false;
  return true;
}
