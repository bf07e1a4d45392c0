// The control plane's half of the stages when it is an Engine on the same thread
// (the inline mode, and the main thread of the pipeline): it applies the tallies
// the kernels hand back to the engine's peers, timers and handshakes.
import { readAddr, readLocal, sameAddr } from '../pipeline/address.js';
import { Drop } from '../protocol/drop-reasons.js';
import type { PacketBatch } from '../pipeline/batch.js';
import type { Engine } from '../protocol/engine.js';
import type { Keypair } from '../protocol/keypair.js';
import type { Peer } from '../protocol/peer.js';
import type { OpenBatch, SealBatch } from '../crypto/native-aead.js';
import type { BatchStages } from './batch-stages.js';
import type { InboundContext, InboundControl } from './inbound.js';
import type { OutboundContext, OutboundControl } from './outbound.js';

/** The outbound kernel's context over an engine's tables (refresh `now` and `routes` before each batch). */
export function outboundContextOf(engine: Engine, seal: SealBatch, stages?: BatchStages): OutboundContext {
  return {
    keys: engine.keyTable, peers: engine.peerTable, routes: engine.routeTable(), mtu: engine.mtu, now: engine.now(),
    drops: engine.drops, seal, stages,
  };
}

/** The inbound kernel's context over an engine's tables (refresh `now` and `routes` before each batch). */
export function inboundContextOf(engine: Engine, open: OpenBatch, stages?: BatchStages): InboundContext {
  return { keys: engine.keyTable, routes: engine.routeTable(), now: engine.now(), drops: engine.drops, open, stages, aqmSignals: 0, aqmMarked: 0 };
}

export class EngineControl implements OutboundControl, InboundControl {
  /** `lanes`: where the inline queue's handshake messages wait for the control plane (HandshakeScheduler). */
  constructor(private readonly engine: Engine, private readonly lanes?: Pick<InboundControl, 'handshakes'>) {}

  needsSession(peerId: number, data: Uint8Array, offset: number, length: number): void {
    // Routed again by the control plane's own table: a queue worker may have routed with
    // a table a moment old, whose peer number a removal has freed for a new peer since.
    const peer = this.engine.allowedIPs.lookupPacketDestination(data, offset, length);
    if (peer === undefined || peer.id !== peerId) {
      this.engine.drops.add(Drop.NoPeerForDestination);
      return;
    }
    this.engine.send(peer, data.slice(offset, offset + length));
  }

  sent(peerId: number, slot: number, generation: number, bytes: number, packets: number, exhausted: boolean): void {
    const found = this.keypair(peerId, slot, generation);
    if (found === undefined) return;
    if (exhausted) this.engine.initiateHandshake(found.peer, false);
    if (bytes > 0) this.engine.noteTransportSent(found.peer, found.keypair, bytes, packets, true);
  }

  /**
   * The batch's handshake and cookie messages: into the lanes when there are (the
   * device's inline queue: the engine takes them a slice at a time), otherwise to the
   * engine at once, as copies (a pipeline of one's own that has no scheduler).
   * Bounds: k < count ≤ indices.length, each index < the batch's count (InboundStage.sort), inside offsets and lengths.
   */
  handshakes(batch: PacketBatch, indices: Int32Array, count: number): void {
    if (this.lanes !== undefined) {
      this.lanes.handshakes(batch, indices, count);
      return;
    }
    for (let k = 0; k < count; k++) {
      const i = indices[k]!;
      const offset = batch.offsets[i]!;
      this.engine.receive(batch.data.slice(offset, offset + batch.lengths[i]!), readAddr(batch.addrs, i));
    }
  }

  received(peerId: number, slot: number, generation: number, bytes: number, packets: number, dataCame: boolean, batch: PacketBatch, lastPacket: number): void {
    this.receivedFrom(peerId, slot, generation, bytes, packets, dataCame, batch.addrs, lastPacket);
  }

  /**
   * received(), with the last packet's source in record `i` of `addrs`; `roamed` when a
   * queue worker found it new and put it in the peer table itself (which is then ahead
   * of the engine's endpoint).
   */
  receivedFrom(
    peerId: number, slot: number, generation: number, bytes: number, packets: number, dataCame: boolean, addrs: Uint8Array, i: number, roamed = false,
  ): void {
    const found = this.keypair(peerId, slot, generation);
    if (found === undefined) return;
    const { peer, keypair } = found;
    // Decode the source only when it differs from the endpoint (roaming).
    const known = !roamed && peer.endpoint !== undefined && sameAddr(this.engine.peerTable.endpoints, peerId, addrs, i);
    const from = known ? peer.endpoint! : readAddr(addrs, i);
    this.engine.noteTransportReceived(peer, keypair, from, bytes, packets, !dataCame);
  }

  /**
   * Sending from the local side of record `i` of `addrs` failed (the address is gone
   * from this host): every endpoint that uses it forgets it, and sends from the routing
   * table's choice until its peer's next packet says where it sends to now. A control
   * event (a failed send), not per packet.
   */
  sourceGone(addrs: Uint8Array, i: number): void {
    const gone = readLocal(addrs, i);
    if (gone !== undefined) this.engine.forgetLocalAddress(gone.address);
  }

  /** The keypair a tally names, if it still exists (the slot may have been freed and reused since). */
  private keypair(peerId: number, slot: number, generation: number): { peer: Peer; keypair: Keypair } | undefined {
    const peer = this.engine.peerById(peerId);
    if (peer === undefined || this.engine.keyTable.generationOf(slot) !== generation) return undefined;
    const keypair = this.engine.keypairInSlot(peer, slot);
    return keypair === undefined ? undefined : { peer, keypair };
  }
}
