// The engine's timer queue against the engine's old way (every peer polled at every
// deadline, here through expireTimers), 5,000 peers on a fake clock: persistent
// keepalives, handshakes started by data and retried unanswered, peers removed while
// queued. Both must expire the same timers in the same order and send the same messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { Engine } from '../../src/protocol/engine.js';
import type { Peer } from '../../src/protocol/peer.js';
import { icmpEcho } from '../helpers/packets.js';
import { prng } from '../helpers/prng.js';

const PEERS = 5_000;
const END = 120_000;
const REMOVE_AT = 30_000;
const KEYS = Array.from({ length: PEERS }, () => publicKeyOf(generatePrivateKey()));
const LOCAL = generatePrivateKey();
const PACKET = icmpEcho(8, '100.96.0.1', '100.96.1.1', 1, 1, new Uint8Array(8));

/** What happened, in order: an expired timer, or a message sent (its type byte). */
type Event = [time: number, peer: number, what: string];

function run(mode: 'queue' | 'scan'): { events: Event[]; polls: boolean[] } {
  const clock = { t: 0 };
  const events: Event[] = [];
  const engine = new Engine({
    privateKey: LOCAL, now: () => clock.t, wallClock: () => 1_700_000_000_000 + clock.t, random: prng(7),
    onTimer: (peer, action) => events.push([clock.t, peer.order, action]),
  });
  const peers: Peer[] = KEYS.map((key, i) => engine.addPeer(key, {
    endpoint: { address: '198.18.200.1', port: 1000 + (i % 60000) },
    // Every 100th peer keeps a persistent keepalive; it fires at once.
    persistentKeepalive: i % 100 === 0 ? 25 : 0,
  }));
  // Every 50th peer (offset 7) gets a packet to send at a time of its own.
  const sends = peers.filter((_, i) => i % 50 === 7).map((peer, k) => ({ at: 1 + ((k * 997) % 20_000), peer }));
  sends.sort((x, y) => x.at - y.at);
  const polls: boolean[] = [];
  const drain = (): void => {
    for (const out of engine.outbox.splice(0)) events.push([clock.t, out.peer!.order, `message ${out.packet[0]}`]);
  };
  let removed = false;
  for (let steps = 0; steps < 1_000_000; steps++) {
    const timer = mode === 'queue' ? engine.nextDeadline() ?? Infinity
      : Math.min(...[...engine.peers].map((p) => p.timers.nextDeadline() ?? Infinity));
    const t = Math.min(timer, sends[0]?.at ?? Infinity, removed ? Infinity : REMOVE_AT);
    if (t > END) return { events, polls };
    clock.t = t;
    while (sends.length > 0 && sends[0]!.at <= t) engine.send(sends.shift()!.peer, PACKET);
    if (!removed && t >= REMOVE_AT) {
      // A third of the retrying peers, and peers with nothing pending, go.
      for (let i = 0; i < PEERS; i += 3) if (i % 50 === 7 || i % 100 === 0 || i % 7 === 0) engine.removePeer(peers[i]!);
      removed = true;
    }
    if (mode === 'queue') {
      // In slices of 16 peers, as the device does (in slices of 64).
      while (engine.poll(16)) polls.push(true);
      polls.push(false);
    } else {
      for (const peer of engine.peers) engine.expireTimers(peer);
    }
    drain();
  }
  throw new Error('the clock never reached the end');
}

test('5,000 peers: the timer queue expires and sends what polling every peer did, in the same order', () => {
  const queued = run('queue');
  const scanned = run('scan');
  assert.ok(scanned.events.length > 2_000, `only ${scanned.events.length} events`);
  assert.deepEqual(queued.events, scanned.events);
  // The 50 persistent keepalives due at 0 took four slices of 16.
  assert.deepEqual(queued.polls.slice(0, 4), [true, true, true, false]);
});

test('a removed peer leaves the timer queue: nothing of it fires, and the queue does not hold it', () => {
  const clock = { t: 0 };
  const fired: number[] = [];
  const engine = new Engine({ privateKey: LOCAL, now: () => clock.t, onTimer: (peer) => fired.push(peer.order) });
  const peers = KEYS.slice(0, 3).map((key) => engine.addPeer(key, { endpoint: { address: '198.18.200.1', port: 9 }, persistentKeepalive: 25 }));
  assert.equal(engine.nextDeadline(), 0);
  engine.removePeer(peers[0]!);
  engine.removePeer(peers[1]!);
  engine.poll();
  assert.deepEqual(fired, [peers[2]!.order]);
  engine.removePeer(peers[2]!);
  assert.equal(engine.nextDeadline(), undefined);
  assert.deepEqual([peers[2]!.queueIndex, peers[2]!.wakeAt], [-1, Infinity]);
});
