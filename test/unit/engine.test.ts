// Two protocol engines talking in memory with a fake clock: the handshake both
// ways, transport data, keypair rotation, replays, cookies under load and timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aeadBackend, type SealBatch } from '../../src/crypto/backends.js';
import { generatePresharedKey, generatePrivateKey } from '../../src/crypto/keys.js';
import { Drop } from '../../src/protocol/drop-reasons.js';
import { Engine, type Outgoing } from '../../src/protocol/engine.js';
import type { Endpoint } from '../../src/protocol/peer.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import {
  REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, ZERO_KEYS_AFTER,
} from '../../src/protocol/constants.js';
import { icmpEcho, parseIcmpEcho } from '../helpers/packets.js';
import { receive, type Delivered } from '../helpers/engines.js';

const A_ENDPOINT: Endpoint = { address: '198.18.0.1', port: 51820 };
const B_ENDPOINT: Endpoint = { address: '198.18.0.2', port: 51821 };

/** Two engines on one fake clock, each with the other as its peer. */
function pair(options: { psk?: boolean; bKnowsA?: boolean; rekeyAfterTime?: number } = {}) {
  const clock = { t: 1_000_000 };
  const now = (): number => clock.t;
  let wall = 1_700_000_000_000;
  const wallClock = (): number => (wall += 17);
  const aKey = generatePrivateKey();
  const bKey = generatePrivateKey();
  const { rekeyAfterTime } = options;
  const a = new Engine({ privateKey: aKey, now, wallClock, random: () => 0.5, rekeyAfterTime });
  const b = new Engine({ privateKey: bKey, now, wallClock, random: () => 0.5, rekeyAfterTime });
  const psk = options.psk === false ? undefined : generatePresharedKey();
  const pskOpt = psk === undefined ? {} : { presharedKey: psk };
  const aPeer = a.addPeer(b.publicKey!, { endpoint: B_ENDPOINT, ...pskOpt });
  const bPeer = b.addPeer(a.publicKey!, { ...pskOpt, ...(options.bKnowsA === false ? {} : { endpoint: A_ENDPOINT }) });
  a.allowedIPs.insert(parsePrefix('100.96.0.2/32'), aPeer);
  b.allowedIPs.insert(parsePrefix('100.96.0.1/32'), bPeer);
  return { a, b, aPeer, bPeer, clock };
}

/** Delivers every queued datagram, both ways, until both outboxes are empty. */
function pump(a: Engine, b: Engine, drop?: (o: Outgoing, from: 'a' | 'b') => boolean) {
  const delivered: Delivered[] = [];
  for (let rounds = 0; rounds < 20; rounds++) {
    const fromA = a.outbox.splice(0);
    const fromB = b.outbox.splice(0);
    if (fromA.length === 0 && fromB.length === 0) return delivered;
    for (const o of fromA) if (!drop?.(o, 'a')) delivered.push(receive(b, o.packet, A_ENDPOINT));
    for (const o of fromB) if (!drop?.(o, 'b')) delivered.push(receive(a, o.packet, B_ENDPOINT));
  }
  throw new Error('engines did not go quiet');
}

const ping = (seq: number, from = '100.96.0.1', to = '100.96.0.2') =>
  icmpEcho(8, from, to, 1, seq, new TextEncoder().encode(`hello ${seq}`));

function dataOf(results: Delivered[]): Uint8Array[] {
  return results.flatMap((r) => (r.kind === 'data' ? [r.packet] : []));
}

test('handshake, then data both ways; first packet is staged until the session exists', () => {
  const { a, b, aPeer, bPeer } = pair();
  a.send(aPeer, ping(1));
  assert.equal(a.outbox.length, 1);
  assert.equal(a.outbox[0]!.packet[0], 1, 'an initiation goes out first');
  const delivered = pump(a, b);
  const data = dataOf(delivered);
  assert.equal(data.length, 1);
  assert.equal(parseIcmpEcho(data[0]!)?.seq, 1);
  assert.ok(aPeer.keypairs.current && bPeer.keypairs.current, 'both sides have a current keypair');
  assert.equal(aPeer.keypairs.current.sendKey.toString(), bPeer.keypairs.current.receiveKey.toString());
  b.send(bPeer, ping(2, '100.96.0.2', '100.96.0.1'));
  assert.equal(parseIcmpEcho(dataOf(pump(a, b))[0]!)?.seq, 2);
  assert.ok(aPeer.lastHandshakeWallMs > 0 && bPeer.lastHandshakeWallMs > 0);
  assert.ok(aPeer.txBytes > 0 && bPeer.rxBytes > 0);
});

test('the responder confirms its keypair only on the initiator\'s first transport message', () => {
  const { a, b, aPeer, bPeer } = pair();
  a.initiateHandshake(aPeer, false);
  // initiation a→b, response b→a; a then sends a keepalive that confirms b's keypair.
  const init = a.outbox.splice(0);
  receive(b, init[0]!.packet, A_ENDPOINT);
  assert.equal(bPeer.keypairs.current, undefined);
  assert.ok(bPeer.keypairs.next);
  const resp = b.outbox.splice(0);
  receive(a, resp[0]!.packet, B_ENDPOINT);
  assert.ok(aPeer.keypairs.current);
  const keepalive = a.outbox.splice(0);
  assert.equal(keepalive.length, 1);
  assert.equal(keepalive[0]!.packet.length, 32, 'a keepalive is a bare 32-byte transport message');
  assert.equal(receive(b, keepalive[0]!.packet, A_ENDPOINT).kind, 'keepalive');
  assert.ok(bPeer.keypairs.current);
  assert.equal(bPeer.keypairs.next, undefined);
});

test('wrong preshared key: the initiator cannot open the response', () => {
  const { a, b, aPeer, bPeer } = pair();
  bPeer.update({ presharedKey: generatePresharedKey() });
  a.initiateHandshake(aPeer, false);
  const results = pump(a, b);
  assert.deepEqual(results.map((r) => r.kind), ['handshake', 'drop']);
  assert.equal(a.drops.get(Drop.HandshakeDecryptFailed), 1);
  assert.equal(aPeer.keypairs.current, undefined);
});

test('an unknown initiator, a bad mac1 and a replayed initiation are dropped with reasons', () => {
  const { a, b, aPeer } = pair();
  const stranger = new Engine({ privateKey: generatePrivateKey() });
  const strangerPeer = stranger.addPeer(b.publicKey!, { endpoint: B_ENDPOINT });
  stranger.initiateHandshake(strangerPeer, false);
  assert.deepEqual(receive(b, stranger.outbox[0]!.packet, A_ENDPOINT), { kind: 'drop', reason: Drop.UnknownPeer });

  a.initiateHandshake(aPeer, false);
  const init = a.outbox.splice(0)[0]!.packet;
  const tampered = Uint8Array.from(init);
  tampered[20]! ^= 1;
  assert.deepEqual(receive(b, tampered, A_ENDPOINT), { kind: 'drop', reason: Drop.BadMac1 });
  assert.equal(receive(b, init, A_ENDPOINT).kind, 'handshake');
  b.outbox.length = 0;
  assert.deepEqual(receive(b, init, A_ENDPOINT), { kind: 'drop', reason: Drop.StaleTimestamp });
});

test('replayed and tampered transport messages are dropped; reordered ones accepted once', () => {
  const { a, b, aPeer } = pair();
  a.send(aPeer, ping(1));
  pump(a, b);
  for (let i = 2; i <= 5; i++) a.send(aPeer, ping(i));
  const msgs = a.outbox.splice(0).map((o) => o.packet);
  assert.equal(msgs.length, 4);
  const order = [msgs[2]!, msgs[0]!, msgs[3]!, msgs[1]!];
  assert.deepEqual(order.map((m) => parseIcmpEcho((receive(b, m, A_ENDPOINT) as { packet: Uint8Array }).packet)?.seq), [4, 2, 5, 3]);
  assert.deepEqual(receive(b, msgs[0]!, A_ENDPOINT), { kind: 'drop', reason: Drop.Replay });
  const tampered = Uint8Array.from(msgs[1]!);
  tampered[40]! ^= 0x80;
  assert.deepEqual(receive(b, tampered, A_ENDPOINT), { kind: 'drop', reason: Drop.DecryptFailed });
  const unknown = Uint8Array.from(msgs[1]!);
  unknown[4]! ^= 0xff;
  assert.deepEqual(receive(b, unknown, A_ENDPOINT), { kind: 'drop', reason: Drop.UnknownIndex });
});

test('a packet whose inner source is not the peer\'s allowed IP is dropped', () => {
  const { a, b, aPeer } = pair();
  a.send(aPeer, ping(1, '100.96.0.77'));
  const results = pump(a, b);
  assert.deepEqual(results.at(-1), { kind: 'drop', reason: Drop.SourceNotAllowed });
});

test('endpoint roams to the source of the latest authenticated packet', () => {
  const { a, b, aPeer, bPeer } = pair();
  a.send(aPeer, ping(1));
  pump(a, b);
  a.send(aPeer, ping(2));
  const roamed = { address: '198.18.1.9', port: 40000 };
  receive(b, a.outbox.splice(0)[0]!.packet, roamed);
  assert.deepEqual(bPeer.endpoint, roamed);
  // A forged packet from elsewhere does not move it.
  receive(b, new Uint8Array(32).fill(0).map((_, i) => (i === 0 ? 4 : 0)), { address: '198.18.1.10', port: 1 });
  assert.deepEqual(bPeer.endpoint, roamed);
});

test('under load, an initiation without mac2 gets a cookie reply that the initiator takes', () => {
  const { a, b, aPeer, bPeer } = pair();
  b.noteHandshakeBacklog(128, 1024);
  assert.ok(b.isUnderLoad());
  a.initiateHandshake(aPeer, false);
  receive(b, a.outbox.splice(0)[0]!.packet, A_ENDPOINT);
  assert.equal(b.drops.get(Drop.CookieSent), 1);
  const reply = b.outbox.splice(0);
  assert.equal(reply.length, 1);
  assert.equal(reply[0]!.packet[0], 3);
  assert.equal(receive(a, reply[0]!.packet, B_ENDPOINT).kind, 'cookie');
  assert.equal(bPeer.keypairs.next, undefined, 'no session was made for the cookie-less initiation');
});

test('under load, the cookie lets a retried initiation through', () => {
  const { a, b, aPeer, bPeer, clock } = pair();
  b.noteHandshakeBacklog(128, 1024);
  a.initiateHandshake(aPeer, false);
  receive(b, a.outbox.splice(0)[0]!.packet, A_ENDPOINT);
  receive(a, b.outbox.splice(0)[0]!.packet, B_ENDPOINT);
  clock.t += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
  b.noteHandshakeBacklog(128, 1024);
  a.poll();
  const retry = a.outbox.splice(0);
  assert.equal(retry.length, 1, 'the retransmit timer sent a new initiation');
  assert.equal(receive(b, retry[0]!.packet, A_ENDPOINT).kind, 'handshake');
  assert.ok(bPeer.keypairs.next);
  const wrongSource = { address: '198.18.0.99', port: 51820 };
  clock.t += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
  b.noteHandshakeBacklog(128, 1024);
  a.initiateHandshake(aPeer, false);
  const moved = a.outbox.splice(0);
  assert.equal(moved.length, 1);
  assert.deepEqual(receive(b, moved[0]!.packet, wrongSource), { kind: 'drop', reason: Drop.CookieSent }, 'a cookie is bound to the source address');
});

test('a lost initiation is retransmitted after REKEY_TIMEOUT plus jitter', () => {
  const { a, b, aPeer, clock } = pair();
  a.send(aPeer, ping(1));
  a.outbox.length = 0; // lost
  clock.t += REKEY_TIMEOUT - 1;
  a.poll();
  assert.equal(a.outbox.length, 0);
  clock.t += REKEY_TIMEOUT_JITTER_MAX + 1;
  a.poll();
  assert.equal(a.outbox.length, 1);
  const data = dataOf(pump(a, b));
  assert.equal(parseIcmpEcho(data[0]!)?.seq, 1, 'the staged packet goes out after the retried handshake');
});

test('ephemeral private keys are zeroed once replaced by a retry and once the session is derived', () => {
  const { a, b, aPeer, bPeer, clock } = pair();
  a.send(aPeer, ping(1));
  a.outbox.length = 0; // lost
  const first = aPeer.handshake.localEphemeral!.privateKey;
  assert.ok(first.some((x) => x !== 0));
  clock.t += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + 1;
  a.poll();
  const second = aPeer.handshake.localEphemeral!.privateKey;
  assert.ok(first.every((x) => x === 0), 'the first attempt\'s key is zeroed by the retry');
  assert.ok(second.some((x) => x !== 0));
  // The responder derives its session as it answers: catch its key on the way in.
  let responder: Uint8Array | undefined;
  const setKey = bPeer.handshake.setLocalEphemeral.bind(bPeer.handshake);
  bPeer.handshake.setLocalEphemeral = (key) => {
    responder ??= key?.privateKey;
    setKey(key);
  };
  pump(a, b);
  assert.ok(second.every((x) => x === 0), 'the initiator\'s key is zeroed with the session');
  assert.ok(responder !== undefined && responder.every((x) => x === 0), 'and so is the responder\'s');
  assert.equal(aPeer.handshake.localEphemeral, undefined);
});

test('the initiator rekeys after REKEY_AFTER_TIME when it sends; old keypair still opens', () => {
  const { a, b, aPeer, bPeer, clock } = pair();
  a.send(aPeer, ping(1));
  pump(a, b);
  const first = aPeer.keypairs.current!;
  clock.t += REKEY_AFTER_TIME + 1;
  a.send(aPeer, ping(2));
  const out = a.outbox.map((o) => o.packet[0]);
  assert.deepEqual(out, [4, 1], 'data with the old keypair, then a new initiation');
  const results = pump(a, b);
  assert.equal(parseIcmpEcho(dataOf(results)[0]!)?.seq, 2);
  assert.notEqual(aPeer.keypairs.current, first);
  assert.equal(aPeer.keypairs.previous, first);
  b.send(bPeer, ping(3, '100.96.0.2', '100.96.0.1'));
  assert.equal(parseIcmpEcho(dataOf(pump(a, b))[0]!)?.seq, 3);
});

/**
 * A minute of pings both ways every 100 ms; returns when a sent initiations (ms after the
 * session began), and the distinct keypairs each side sent with. Every ping must arrive.
 */
function minuteOfPings(rekeyAfterTime: number | undefined) {
  const { a, b, aPeer, bPeer, clock } = pair({ rekeyAfterTime });
  a.send(aPeer, ping(0));
  pump(a, b);
  const start = clock.t;
  const initiations: number[] = [];
  const keypairs = { a: new Set([aPeer.keypairs.current]), b: new Set([bPeer.keypairs.current]) };
  for (let step = 1; step <= 600; step++) {
    clock.t = start + step * 100;
    a.send(aPeer, ping(step));
    b.send(bPeer, ping(step, '100.96.0.2', '100.96.0.1'));
    if (a.outbox.some((o) => o.packet[0] === 1)) initiations.push(clock.t - start);
    assert.ok(b.outbox.every((o) => o.packet[0] !== 1), 'the responder never rekeys by age');
    const seqs = dataOf(pump(a, b)).map((p) => parseIcmpEcho(p)?.seq);
    assert.deepEqual(seqs, [step, step], `both pings of step ${step} arrive`);
    a.poll();
    b.poll();
    pump(a, b);
    keypairs.a.add(aPeer.keypairs.current);
    keypairs.b.add(bPeer.keypairs.current);
  }
  return { initiations, keypairs: { a: keypairs.a.size, b: keypairs.b.size } };
}

test('the rekey knob at 5 s: the initiator starts a new handshake once its keypair is older than 5 s, and both sides rotate', () => {
  const fast = minuteOfPings(5000);
  // The first send after the keypair turned 5 s old, then every 5.1 s from the new one.
  assert.deepEqual(fast.initiations, Array.from({ length: 11 }, (_, k) => (k + 1) * 5100));
  assert.deepEqual(fast.keypairs, { a: 12, b: 12 });
  const standard = minuteOfPings(undefined);
  assert.deepEqual(standard.initiations, [], 'by default, no rekey within REKEY_AFTER_TIME');
  assert.deepEqual(standard.keypairs, { a: 1, b: 1 });
  assert.throws(() => new Engine({ rekeyAfterTime: REKEY_TIMEOUT - 1 }), /RangeError: rekeyAfterTime must be 5000 to 120000 ms/);
});

test('keypairs expire after REJECT_AFTER_TIME and keys are zeroed after 3 × REJECT_AFTER_TIME', () => {
  const { a, b, aPeer, bPeer, clock } = pair();
  a.send(aPeer, ping(1));
  pump(a, b);
  a.send(aPeer, ping(2));
  const late = a.outbox.splice(0)[0]!.packet;
  clock.t += REJECT_AFTER_TIME;
  assert.deepEqual(receive(b, late, A_ENDPOINT), { kind: 'drop', reason: Drop.KeypairExpired });
  const keypair = bPeer.keypairs.current!;
  clock.t += ZERO_KEYS_AFTER - REJECT_AFTER_TIME;
  b.poll();
  assert.equal(bPeer.keypairs.current, undefined);
  assert.ok(keypair.sendKey.every((x) => x === 0) && keypair.receiveKey.every((x) => x === 0));
  assert.equal(b.lookupIndex(keypair.localIndex), undefined, 'its index is freed');
});

test('after receiving data and sending nothing for KEEPALIVE_TIMEOUT, a keepalive goes out', () => {
  const { a, b, aPeer, bPeer, clock } = pair();
  a.send(aPeer, ping(1));
  pump(a, b);
  // b received data and sent nothing back: after 10 s it sends a keepalive.
  clock.t += 10_000;
  b.poll();
  assert.equal(b.outbox.length, 1);
  assert.equal(b.outbox[0]!.packet.length, 32);
  assert.equal(receive(a, b.outbox.splice(0)[0]!.packet, B_ENDPOINT).kind, 'keepalive');
  assert.ok(bPeer.txBytes >= 32);
});

test('removing a peer frees its indices and routes', () => {
  const { a, b, aPeer, bPeer } = pair();
  a.send(aPeer, ping(1));
  pump(a, b);
  const index = bPeer.keypairs.current!.localIndex;
  b.removePeer(bPeer);
  assert.equal(b.lookupIndex(index), undefined);
  assert.equal(b.allowedIPs.lookupPacketDestination(ping(1, '100.96.0.2', '100.96.0.1'), 0, 40), undefined);
  a.send(aPeer, ping(2));
  assert.deepEqual(pump(a, b).at(-1), { kind: 'drop', reason: Drop.UnknownIndex });
});

test('a responder that does not know the initiator\'s endpoint learns it from the initiation', () => {
  const { a, b, aPeer, bPeer } = pair({ bKnowsA: false });
  assert.equal(bPeer.endpoint, undefined);
  a.send(aPeer, ping(1));
  pump(a, b);
  assert.deepEqual(bPeer.endpoint, A_ENDPOINT);
});

test('without a preshared key the handshake works too', () => {
  const { a, b, aPeer } = pair({ psk: false });
  a.send(aPeer, ping(1));
  assert.equal(dataOf(pump(a, b)).length, 1);
});

test('random datagrams never throw and are counted', () => {
  const { b } = pair();
  for (let i = 0; i < 5000; i++) {
    const length = [0, 4, 32, 64, 92, 148, 200][i % 7]! + (i % 3);
    const buf = new Uint8Array(length).map(() => Math.floor(Math.random() * 256));
    if (length > 3) { buf[0] = 1 + (i % 4); buf[1] = buf[2] = buf[3] = 0; }
    const r = receive(b, buf, A_ENDPOINT);
    assert.equal(r.kind, 'drop');
  }
  const total = Object.values(b.drops.snapshot()).reduce((x, y) => x + y, 0);
  assert.equal(total, 5000);
});

const allZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);

test('a replaced or cleared private key is zeroed, with the DH results made with it; the caller\'s buffer is not', () => {
  const { a, aPeer, b, bPeer } = pair();
  a.initiateHandshake(aPeer, false);
  pump(a, b);
  assert.ok(aPeer.keypairs.current !== undefined);
  const given = generatePrivateKey();
  const old = a.privateKey!;
  const oldStaticStatic = aPeer.handshake.staticStatic!;
  assert.ok(!allZero(old) && !allZero(oldStaticStatic));
  a.setPrivateKey(given);
  assert.ok(allZero(old), 'the old private key is zeroed');
  assert.ok(allZero(oldStaticStatic), 'the old static-static DH is zeroed');
  assert.ok(!allZero(given), 'the key the caller passed stays as it was (tundra keeps a copy)');
  assert.notEqual(a.privateKey, given);
  assert.deepEqual(a.privateKey, given);
  // Setting the same key again (as a UAPI client may) still leaves a working key.
  a.setPrivateKey(a.privateKey);
  assert.deepEqual(a.privateKey, given);
  const current = a.privateKey!;
  const staticStatic = aPeer.handshake.staticStatic!;
  a.setPrivateKey(undefined);
  assert.equal(a.privateKey, undefined);
  assert.ok(allZero(current) && allZero(staticStatic), 'a cleared key is zeroed too');
  // b keeps working with its own key.
  assert.ok(!allZero(b.privateKey!) && !allZero(bPeer.handshake.staticStatic!));
});

test('a replaced preshared key, and a removed peer\'s keys, are zeroed', () => {
  const { a, aPeer, b } = pair();
  a.initiateHandshake(aPeer, false);
  pump(a, b);
  const given = generatePresharedKey();
  const old = aPeer.handshake.presharedKey;
  assert.ok(!allZero(old));
  aPeer.update({ presharedKey: given });
  assert.ok(allZero(old), 'the old preshared key is zeroed');
  assert.ok(!allZero(given), 'the caller\'s buffer is left alone');
  assert.deepEqual(aPeer.handshake.presharedKey, given);
  const second = aPeer.handshake.presharedKey;
  aPeer.update({ presharedKey: new Uint8Array(32) });
  assert.ok(allZero(second), 'cleared (all zero) replaces and zeroes it too');
  aPeer.update({ presharedKey: given });
  const psk = aPeer.handshake.presharedKey;
  const staticStatic = aPeer.handshake.staticStatic!;
  const sendKey = aPeer.keypairs.current!.sendKey;
  a.removePeer(aPeer);
  assert.ok(allZero(psk), 'the removed peer\'s preshared key is zeroed');
  assert.ok(allZero(staticStatic), 'and its static-static DH');
  assert.ok(allZero(sendKey), 'and its session keys (as before)');
});

test('keepalives and packets staged for a handshake are sealed with the backend the engine is given (--crypto)', () => {
  const noble = aeadBackend('noble');
  const sealed: number[] = [];
  const counting: SealBatch = (data, keys, desc, count, ok) => {
    sealed.push(count);
    return noble.seal(data, keys, desc, count, ok);
  };
  const a = new Engine({ privateKey: generatePrivateKey(), seal: counting });
  const b = new Engine({ privateKey: generatePrivateKey() });
  const aPeer = a.addPeer(b.publicKey!, { endpoint: B_ENDPOINT });
  b.allowedIPs.insert(parsePrefix('100.96.0.1/32'), b.addPeer(a.publicKey!, { endpoint: A_ENDPOINT }));
  a.send(aPeer, ping(1));
  assert.deepEqual(sealed, [], 'nothing to seal before the handshake');
  const delivered = pump(a, b);
  assert.deepEqual(sealed, [1], 'the staged ping, sealed through the backend as a batch of one');
  assert.equal(parseIcmpEcho(dataOf(delivered)[0]!)?.seq, 1, 'and the peer opens it');
  a.sendKeepalive(aPeer);
  assert.deepEqual(sealed, [1, 1], 'the keepalive too');
  assert.equal(receive(b, a.outbox.splice(0)[0]!.packet, A_ENDPOINT).kind, 'keepalive');
});
