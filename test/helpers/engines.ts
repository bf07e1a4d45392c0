// Two engines with a confirmed session, a at 198.18.0.1 routing 100.96.0.0/24 to b,
// b at 198.18.0.2 routing 100.96.0.1/32 to a: for stage tests and benchmarks.
import { generatePrivateKey } from '../../src/crypto/keys.js';
import { Engine } from '../../src/protocol/engine.js';
import type { Endpoint, Peer } from '../../src/protocol/peer.js';
import { parsePrefix } from '../../src/routing/prefix.js';

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
  b.receive(a.outbox.splice(0)[0]!.packet, A); // a's keepalive confirms b's keypair
  if (aPeer.keypairs.current === undefined || bPeer.keypairs.current === undefined) throw new Error('no session');
  return { a, b, aPeer, bPeer };
}
