// Inbound stage (design.md §2): classify received datagrams, hand handshake and
// cookie messages to the engine, open transport messages in one native call, then
// check replay and inner source and rewrite the batch in place into the plaintext
// IP packets to write to the TUN. Keepalives and drops leave the batch.
import { openBatch, DESC_STRIDE } from '../crypto/native-aead.js';
import { AEAD_TAG_SIZE, MESSAGE_TRANSPORT, MESSAGE_TRANSPORT_HEADER_SIZE } from '../protocol/constants.js';
import { Drop, type DropCounters } from '../protocol/drop-reasons.js';
import type { Engine } from '../protocol/engine.js';
import { ipPacketLength } from '../protocol/ip-packet.js';
import { classifyMessage } from '../protocol/messages.js';
import type { Endpoint, Peer } from '../protocol/peer.js';
import { sameAddr } from '../io/udp.js';
import type { PacketBatch } from '../pipeline/batch.js';
import { KeypairGroups } from './keypair-groups.js';

export interface InboundContext {
  readonly engine: Engine;
  readonly drops: DropCounters;
  /** The peer's endpoint as an address record, or undefined when it has none. */
  endpointRecord(peer: Peer): Uint8Array | undefined;
  /** Decodes address record i of `addrs` (only when an endpoint changes or for handshakes). */
  readAddress(addrs: Uint8Array, i: number): Endpoint;
}

const NOT_OPENED = -1;

function readU32(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

export class InboundStage {
  private readonly groups: KeypairGroups;
  private readonly desc: Uint32Array;
  private readonly ok: Uint8Array;
  /** Indices of the batch's handshake and cookie messages. */
  private readonly handshakes: Int32Array;

  constructor(slots: number) {
    this.groups = new KeypairGroups(slots);
    this.desc = new Uint32Array(slots * DESC_STRIDE);
    this.ok = new Uint8Array(slots);
    this.handshakes = new Int32Array(slots);
  }

  /** Turns batch.count received datagrams into plaintext packets for the TUN; returns how many. */
  run(batch: PacketBatch, ctx: InboundContext): number {
    const { data, offsets, lengths, marks, addrs } = batch;
    const { engine, drops } = ctx;
    const groups = this.groups;
    const desc = this.desc;
    const n = batch.count;
    const now = engine.now();
    groups.clear();

    let opened = 0;
    let handshakes = 0;
    for (let i = 0; i < n; i++) {
      marks[i] = NOT_OPENED;
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
      const entry = engine.lookupIndex(readU32(data, offset + 4));
      const keypair = entry?.keypair;
      if (keypair === undefined) {
        drops.add(Drop.UnknownIndex);
        continue;
      }
      if (keypair.isExpired(now)) {
        drops.add(Drop.KeypairExpired);
        continue;
      }
      const g = groups.groupOf(entry!.peer, keypair, keypair.receiveKey);
      const row = opened * DESC_STRIDE;
      desc[row] = offset + MESSAGE_TRANSPORT_HEADER_SIZE;
      desc[row + 1] = length - MESSAGE_TRANSPORT_HEADER_SIZE;
      desc[row + 2] = g;
      desc[row + 3] = readU32(data, offset + 8);
      desc[row + 4] = readU32(data, offset + 12);
      marks[i] = opened++;
    }
    this.receiveHandshakes(batch, handshakes, ctx);
    if (opened > 0) openBatch(data, groups.keys, desc, opened, this.ok);

    let m = 0;
    for (let i = 0; i < n; i++) {
      const row = marks[i]!;
      if (row === NOT_OPENED) continue;
      if (this.ok[row] !== 1) {
        drops.add(Drop.DecryptFailed);
        continue;
      }
      const base = row * DESC_STRIDE;
      const g = desc[base + 2]!;
      if (!groups.keypairs[g]!.replay.accept(desc[base + 3]!, desc[base + 4]!)) {
        drops.add(Drop.Replay);
        continue;
      }
      groups.lastPacket[g] = i;
      groups.bytes[g]! += lengths[i]!;
      const plaintextLength = desc[base + 1]! - AEAD_TAG_SIZE;
      if (plaintextLength === 0) continue; // keepalive
      groups.carriedData[g] = 1;
      const offset = desc[base]!;
      const ipLength = ipPacketLength(data, offset, plaintextLength);
      if (ipLength < 0) {
        drops.add(Drop.NotIp);
        continue;
      }
      if (engine.allowedIPs.lookupPacketSource(data, offset, ipLength) !== groups.peers[g]) {
        drops.add(Drop.SourceNotAllowed);
        continue;
      }
      offsets[m] = offset;
      lengths[m] = ipLength;
      m++;
    }
    batch.count = m;

    for (let g = 0; g < groups.size; g++) {
      const last = groups.lastPacket[g]!;
      if (last < 0) continue;
      const peer = groups.peers[g]!;
      const known = ctx.endpointRecord(peer);
      const from = known !== undefined && sameAddr(known, 0, addrs, last) ? peer.endpoint! : ctx.readAddress(addrs, last);
      engine.noteTransportReceived(peer, groups.keypairs[g]!, from, groups.bytes[g]!, groups.carriedData[g] === 0);
    }
    groups.clear();
    return m;
  }

  /**
   * Hands the batch's handshake and cookie messages to the engine, as copies. The
   * batch stands in for wireguard-go's handshake queue: how many arrived together
   * tells the engine whether it is under load and must demand cookies first.
   */
  private receiveHandshakes(batch: PacketBatch, count: number, ctx: InboundContext): void {
    if (count === 0) return;
    ctx.engine.noteHandshakeBacklog(count, batch.slots);
    for (let k = 0; k < count; k++) {
      const i = this.handshakes[k]!;
      const offset = batch.offsets[i]!;
      ctx.engine.receive(batch.data.slice(offset, offset + batch.lengths[i]!), ctx.readAddress(batch.addrs, i));
    }
  }
}
