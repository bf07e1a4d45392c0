// Full WireGuard handshakes per second on one core: initiation, response and the
// first keepalive between two in-memory engines (initiator + responder work both
// counted), next to the X25519 step with node:crypto and with @noble/curves.
// Run: npm run build && node dist/bench/handshake.bench.js
import { Bench } from 'tinybench';
import { x25519 } from '@noble/curves/ed25519.js';
import { generatePrivateKey } from '../src/crypto/keys.js';
import { generateStaticKey, sharedSecret } from '../src/crypto/x25519.js';
import { REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX } from '../src/protocol/constants.js';
import { Engine } from '../src/protocol/engine.js';

const A = { address: '198.18.0.1', port: 1 };
const B = { address: '198.18.0.2', port: 2 };

// A clock that jumps past REKEY_TIMEOUT per handshake, so the one-initiation-per-5-s
// limit and the initiation-flood check never hold the benchmark back.
let t = 0;
let wall = Date.now();
const clock = { now: () => t, wallClock: () => wall };
const a = new Engine({ privateKey: generatePrivateKey(), ...clock });
const b = new Engine({ privateKey: generatePrivateKey(), ...clock });
const aPeer = a.addPeer(b.publicKey!, { endpoint: B });
b.addPeer(a.publicKey!, { endpoint: A });

function handshake(): void {
  t += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
  wall += REKEY_TIMEOUT;
  a.initiateHandshake(aPeer, false);
  const init = a.outbox.splice(0)[0]!;
  if (b.receive(init.packet, A).kind !== 'handshake') throw new Error('initiation rejected');
  const resp = b.outbox.splice(0)[0]!;
  if (a.receive(resp.packet, B).kind !== 'handshake') throw new Error('response rejected');
  const keepalive = a.outbox.splice(0)[0]!;
  if (b.receive(keepalive.packet, A).kind !== 'keepalive') throw new Error('keepalive rejected');
}

const ours = generateStaticKey();
const theirs = generateStaticKey();

const bench = new Bench({ time: 2000, warmupTime: 300 });
bench
  .add('full handshake (initiator + responder)', handshake)
  .add('X25519 shared secret, node:crypto', () => { sharedSecret(ours, theirs.publicKey); })
  .add('X25519 shared secret, @noble/curves', () => { x25519.getSharedSecret(ours.privateKey, theirs.publicKey); });

await bench.run();
console.log('operation'.padEnd(44), 'ops/s'.padStart(10), 'mean µs'.padStart(10));
for (const task of bench.tasks) {
  const r = task.result;
  if (r === undefined || !('throughput' in r)) throw new Error(`${task.name} failed`);
  console.log(task.name.padEnd(44), r.throughput.mean.toFixed(0).padStart(10), (r.latency.mean * 1000).toFixed(1).padStart(10));
}
