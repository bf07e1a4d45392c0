// Full WireGuard handshakes per second on one core: initiation, response and the
// first keepalive between two in-memory engines (initiator + responder work both
// counted); one initiation alone (an unanswered peer's retry); each side's own steps
// timed apart, as handshakes per second as initiator and as responder; next to the
// X25519 step in the addon and with @noble/curves.
// Run: npm run build && node dist/bench/micro/handshake.bench.js
import { Bench } from 'tinybench';
import { x25519 } from '@noble/curves/ed25519.js';
import { generatePrivateKey } from '../../src/crypto/keys.js';
import { generateStaticKey, sharedSecret } from '../../src/crypto/x25519.js';
import { REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX } from '../../src/protocol/constants.js';
import { Engine } from '../../src/protocol/engine.js';
import { receive } from '../../test/helpers/engines.js';
import { emit, result, taskResult, type Result } from './report.js';

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

const tick = (): void => {
  t += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
  wall += REKEY_TIMEOUT;
};
// The four steps of a handshake; each takes the message the step before produced.
let message: Uint8Array = new Uint8Array(0);
function createInitiation(): void {
  a.initiateHandshake(aPeer, false);
  message = a.outbox.splice(0)[0]!.packet;
}
function consumeInitiation(): void {
  if (b.receive(message, A).kind !== 'handshake') throw new Error('initiation rejected');
  message = b.outbox.splice(0)[0]!.packet;
}
function consumeResponse(): void {
  if (a.receive(message, B).kind !== 'handshake') throw new Error('response rejected');
  message = a.outbox.splice(0)[0]!.packet;
}
function consumeKeepalive(): void {
  if (receive(b, message, A).kind !== 'keepalive') throw new Error('keepalive rejected');
}
const STEPS = [createInitiation, consumeInitiation, consumeResponse, consumeKeepalive];

function handshake(): void {
  tick();
  for (const step of STEPS) step();
}
/**
 * Each side's work per handshake, timed step by step with performance.now() (a step
 * costs tens of µs or more, so the timer's cost is small): handshakes per second as
 * initiator (steps 0 and 2) and as responder (steps 1 and 3), one sample per round.
 */
function perSide(rounds: number, perRound: number): { initiator: number[]; responder: number[] } {
  const out = { initiator: [] as number[], responder: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    const ms = [0, 0];
    for (let h = 0; h < perRound; h++) {
      tick();
      STEPS.forEach((step, i) => {
        const t0 = performance.now();
        step();
        ms[i % 2]! += performance.now() - t0;
      });
    }
    out.initiator.push((perRound * 1000) / ms[0]!);
    out.responder.push((perRound * 1000) / ms[1]!);
  }
  return out;
}

const ours = generateStaticKey();
const theirs = generateStaticKey();

const bench = new Bench({ time: 2000, warmupTime: 300, retainSamples: true });
bench.add('full handshake (initiator + responder)', handshake);
// What each retry of a peer that never answers costs the control thread.
bench.add('initiation created (an unanswered peer\'s retry)', () => {
  tick();
  a.initiateHandshake(aPeer, false);
  a.outbox.length = 0;
});
bench
  .add('X25519 shared secret, native', () => { sharedSecret(ours, theirs.publicKey); })
  .add('X25519 shared secret, @noble/curves', () => { x25519.getSharedSecret(ours.privateKey, theirs.publicKey); });

await bench.run();
const results: Result[] = [];
console.log('operation'.padEnd(48), 'ops/s'.padStart(10), 'mean µs'.padStart(10));
for (const task of bench.tasks) {
  const r = task.result;
  if (r.state !== 'completed') throw new Error(`${task.name} ${r.state}${r.state === 'errored' ? `: ${r.error.message}` : ''}`);
  console.log(task.name.padEnd(48), (1000 / r.period).toFixed(0).padStart(10), (r.period * 1000).toFixed(1).padStart(10));
  const x25519Impl = task.name.split(', ')[1];
  const res = taskResult(task, {
    group: 'handshake', impl: x25519Impl ?? 'tundra', test: x25519Impl === undefined ? task.name : 'X25519 shared secret',
    metric: 'ops_per_s', unit: 'ops/s', perIteration: 1,
  });
  if (res !== undefined) results.push(res);
}
perSide(2, 50); // warm-up
const sides = perSide(8, 100);
for (const side of ['initiator', 'responder'] as const) {
  const row = result({
    group: 'handshake', impl: 'tundra', test: `handshakes as ${side}`,
    metric: 'ops_per_s', unit: 'handshakes/s', better: 'higher', samples: sides[side],
  });
  console.log(`handshakes/s as ${side} (median of 8 rounds)`.padEnd(48), row.median.toFixed(0).padStart(10), (1e6 / row.median).toFixed(1).padStart(10));
  results.push(row);
}
emit('handshake', results);
