// Two engines with a confirmed session, a at 198.18.0.1 routing 100.96.0.0/24 to b,
// b at 198.18.0.2 routing 100.96.0.1/32 to a: for stage tests and benchmarks. And
// receive(): one datagram into an engine the way a device takes it, transport
// messages through the inbound stage.
import { generatePrivateKey } from '../../src/crypto/keys.js';
import { openBatch } from '../../src/crypto/native-aead.js';
import { writeAddr } from '../../src/pipeline/address.js';
import { PacketBatch, SLOT_SIZE } from '../../src/pipeline/batch.js';
import { MESSAGE_TRANSPORT } from '../../src/protocol/constants.js';
import { DROP_REASON_NAMES, type DropReason } from '../../src/protocol/drop-reasons.js';
import { Engine, type Received } from '../../src/protocol/engine.js';
import { classifyMessage } from '../../src/protocol/messages.js';
import type { Endpoint, Peer } from '../../src/protocol/peer.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import { EngineControl, inboundContextOf } from '../../src/stages/engine-control.js';
import { InboundStage, type InboundControl } from '../../src/stages/inbound.js';

/** What receive() made of one datagram: the engine's answer, or what the inbound stage did with a transport message. */
export type Delivered =
  | Received
  | { readonly kind: 'data'; readonly peer: Peer; readonly packet: Uint8Array }
  | { readonly kind: 'keepalive'; readonly peer: Peer };

/**
 * Hands one datagram from `from` to `engine`: a transport message goes through the
 * inbound stage in a batch of one (opened natively, tallied to the engine by
 * EngineControl, as in the inline device), anything else to engine.receive().
 */
export function receive(engine: Engine, datagram: Uint8Array, from: Endpoint): Delivered {
  if (classifyMessage(datagram, 0, datagram.length) !== MESSAGE_TRANSPORT) return engine.receive(datagram, from);
  const batch = new PacketBatch(1, SLOT_SIZE);
  batch.resetOffsets(0);
  batch.data.set(datagram, 0);
  batch.lengths[0] = datagram.length;
  writeAddr(batch.addrs, 0, from.address, from.port, from.local);
  batch.count = 1;
  const before = Float64Array.from(engine.drops.counts);
  const engineControl = new EngineControl(engine);
  let peer: Peer | undefined;
  const control: InboundControl = {
    handshakes: (...args) => engineControl.handshakes(...args),
    received: (peerId, ...rest) => {
      peer = engine.peerById(peerId);
      engineControl.received(peerId, ...rest);
    },
  };
  if (new InboundStage(1).run(batch, inboundContextOf(engine, openBatch), control) === 1) {
    return { kind: 'data', peer: peer!, packet: batch.data.slice(batch.offsets[0]!, batch.offsets[0]! + batch.lengths[0]!) };
  }
  const reason = Object.keys(DROP_REASON_NAMES).map(Number).find((r) => engine.drops.counts[r] !== before[r]);
  if (reason !== undefined) return { kind: 'drop', reason: reason as DropReason };
  if (peer === undefined) throw new Error('the inbound stage neither delivered, dropped nor tallied the message');
  return { kind: 'keepalive', peer };
}

export const A: Endpoint = { address: '198.18.0.1', port: 51820 };
export const B: Endpoint = { address: '198.18.0.2', port: 51821 };

export function connectedEngines(): { a: Engine; b: Engine; aPeer: Peer; bPeer: Peer } {
  const a = new Engine({ privateKey: generatePrivateKey() });
  const b = new Engine({ privateKey: generatePrivateKey() });
  const aPeer = a.addPeer(b.publicKey!, { endpoint: B });
  const bPeer = b.addPeer(a.publicKey!, { endpoint: A });
  a.allowedIPs.insert(parsePrefix('100.96.0.0/24'), aPeer);
  b.allowedIPs.insert(parsePrefix('100.96.0.1/32'), bPeer);
  a.initiateHandshake(aPeer, false);
  b.receive(a.outbox.splice(0)[0]!.packet, A);
  a.receive(b.outbox.splice(0)[0]!.packet, B);
  receive(b, a.outbox.splice(0)[0]!.packet, A); // a's keepalive confirms b's keypair
  if (aPeer.keypairs.current === undefined || bPeer.keypairs.current === undefined) throw new Error('no session');
  return { a, b, aPeer, bPeer };
}
