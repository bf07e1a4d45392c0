// Outbound stage (design.md §2): route plaintext packets read from the TUN by
// allowed-IPs, number and pad them, seal them in one native call and rewrite the
// batch in place into transport datagrams addressed to each peer's endpoint, each
// keypair's datagrams consecutive and in their order (so UDP GSO can send a run of
// them to one endpoint in one message). Packets for a peer without a session are
// staged in the engine, which starts the handshake; the rest of the batch goes on.
import { sealBatch, DESC_STRIDE } from '../crypto/native-aead.js';
import { AEAD_TAG_SIZE, MESSAGE_TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import { Drop, type DropCounters } from '../protocol/drop-reasons.js';
import { paddingSize, type Engine } from '../protocol/engine.js';
import { writeTransportHeader } from '../protocol/messages.js';
import type { Peer } from '../protocol/peer.js';
import { ADDR_STRIDE } from '../io/udp.js';
import { HEADROOM, type PacketBatch } from '../pipeline/batch.js';
import { KeypairGroups } from './keypair-groups.js';

export interface OutboundContext {
  readonly engine: Engine;
  readonly drops: DropCounters;
  /** The peer's endpoint as an address record, or undefined when it has none. */
  endpointRecord(peer: Peer): Uint8Array | undefined;
}

const TWO_32 = 2 ** 32;
const NO_GROUP = -1;

export class OutboundStage {
  private readonly groups: KeypairGroups;
  private readonly desc: Uint32Array;

  constructor(slots: number) {
    this.groups = new KeypairGroups(slots);
    this.desc = new Uint32Array(slots * DESC_STRIDE);
  }

  /** Turns batch.count plaintext packets (at slot + HEADROOM) into sealed datagrams; returns how many. */
  run(batch: PacketBatch, ctx: OutboundContext): number {
    const { data, offsets, lengths, marks, addrs } = batch;
    const { engine, drops } = ctx;
    const groups = this.groups;
    const desc = this.desc;
    const n = batch.count;
    groups.clear();

    for (let i = 0; i < n; i++) {
      marks[i] = NO_GROUP;
      const peer = engine.allowedIPs.lookupPacketDestination(data, offsets[i]!, lengths[i]!);
      if (peer === undefined) {
        drops.add(Drop.NoPeerForDestination);
        continue;
      }
      const keypair = engine.sendingKeypair(peer);
      if (keypair === undefined || ctx.endpointRecord(peer) === undefined) {
        // Rare (no session yet): the engine copies and stages it, and handshakes.
        engine.send(peer, data.slice(offsets[i]!, offsets[i]! + lengths[i]!));
        continue;
      }
      const g = groups.groupOf(peer, keypair, keypair.sendKey);
      groups.counts[g]! += 1;
      marks[i] = g;
    }

    let start = 0;
    for (let g = 0; g < groups.size; g++) {
      const first = groups.keypairs[g]!.reserveSendCounters(groups.counts[g]!);
      groups.cursor[g] = start;
      if (first === undefined) {
        groups.counterLo[g] = -1;
        drops.add(Drop.CounterExhausted, groups.counts[g]!);
        engine.initiateHandshake(groups.peers[g]!, false);
        continue;
      }
      groups.counterLo[g] = Number(first & 0xffffffffn);
      groups.counterHi[g] = Number(first >> 32n);
      start += groups.counts[g]!;
    }

    const mtu = engine.mtu;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const g = marks[i]!;
      if (g === NO_GROUP || groups.counterLo[g]! < 0) continue;
      const offset = offsets[i]!;
      const length = lengths[i]!;
      const padded = length + paddingSize(length, mtu);
      data.fill(0, offset + length, offset + padded);
      const lo = groups.counterLo[g]!;
      const hi = groups.counterHi[g]!;
      if (lo + 1 === TWO_32) {
        groups.counterLo[g] = 0;
        groups.counterHi[g] = hi + 1;
      } else {
        groups.counterLo[g] = lo + 1;
      }
      writeTransportHeader(data, offset - HEADROOM, groups.keypairs[g]!.remoteIndex, lo, hi);
      const row = m * DESC_STRIDE;
      desc[row] = offset;
      desc[row + 1] = padded;
      desc[row + 2] = g;
      desc[row + 3] = lo;
      desc[row + 4] = hi;
      groups.bytes[g]! += MESSAGE_TRANSPORT_HEADER_SIZE + padded + AEAD_TAG_SIZE;
      m++;
    }
    if (m > 0) sealBatch(data, groups.keys, desc, m);
    // Datagrams in keypair order; offsets are rewritten only now, after the last one was read.
    for (let r = 0; r < m; r++) {
      const row = r * DESC_STRIDE;
      const g = desc[row + 2]!;
      const at = groups.cursor[g]!++;
      offsets[at] = desc[row]! - HEADROOM;
      lengths[at] = MESSAGE_TRANSPORT_HEADER_SIZE + desc[row + 1]! + AEAD_TAG_SIZE;
      addrs.set(ctx.endpointRecord(groups.peers[g]!)!, at * ADDR_STRIDE);
    }
    batch.count = m;

    for (let g = 0; g < groups.size; g++) {
      if (groups.bytes[g]! > 0) {
        engine.noteTransportSent(groups.peers[g]!, groups.keypairs[g]!, groups.bytes[g]!, true);
      }
    }
    groups.clear();
    return m;
  }
}
