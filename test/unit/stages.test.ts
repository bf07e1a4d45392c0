// The outbound and inbound stages over shared-memory batches, with the native AEAD
// batch, checked against @noble one message at a time (test/helpers/aead.ts) as their twin:
// what the stages seal opens with @noble, and what they open equals what was sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey } from '../../src/crypto/keys.js';
import { ADDR_ECN, ADDR_STRIDE, readAddr, writeAddr } from '../../src/pipeline/address.js';
import { openBatch, sealBatch } from '../../src/crypto/native-aead.js';
import { EngineControl, inboundContextOf, outboundContextOf } from '../../src/stages/engine-control.js';
import { HEADROOM, PacketBatch, SLOT_SIZE, TAILROOM } from '../../src/pipeline/batch.js';
import { Drop } from '../../src/protocol/drop-reasons.js';
import { Engine } from '../../src/protocol/engine.js';
import { paddingSize } from '../../src/protocol/messages.js';
import type { Endpoint } from '../../src/protocol/peer.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import { InboundStage } from '../../src/stages/inbound.js';
import { OutboundStage } from '../../src/stages/outbound.js';
import { icmpEcho, internetChecksum, tunBatch } from '../helpers/packets.js';
import { ECN_CE, ECN_ECT0, ECN_ECT1, ECN_NOT_ECT } from '../../src/protocol/ip-packet.js';
import { openTransport } from '../helpers/aead.js';
import { A, B, connectedEngines } from '../helpers/engines.js';

const SLOTS = 128;

/** Runs the outbound stage over `batch` for `engine`, as the inline device does. */
function outbound(engine: Engine, batch: PacketBatch): number {
  return new OutboundStage(SLOTS).run(batch, outboundContextOf(engine, sealBatch), new EngineControl(engine));
}

function inbound(engine: Engine, batch: PacketBatch, aqmSignals = 0): { count: number; aqmSignals: number; aqmMarked: number } | number {
  const ctx = { ...inboundContextOf(engine, openBatch), aqmSignals };
  const count = new InboundStage(SLOTS).run(batch, ctx, new EngineControl(engine));
  return aqmSignals === 0 ? count : { count, aqmSignals: ctx.aqmSignals, aqmMarked: ctx.aqmMarked };
}


function pings(count: number, to = '100.96.0.2'): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => icmpEcho(8, '100.96.0.1', to, 9, i, new Uint8Array((i * 97) % 1373).fill(i)));
}

/** Fills a batch the way udpRecv does, from datagrams and their source. */
function udpBatch(datagrams: Uint8Array[], from: Endpoint): PacketBatch {
  const batch = new PacketBatch(SLOTS, SLOT_SIZE);
  batch.resetOffsets(0);
  datagrams.forEach((d, i) => {
    batch.data.set(d, batch.offsets[i]!);
    batch.lengths[i] = d.length;
    writeAddr(batch.addrs, i, from.address, from.port);
  });
  batch.count = datagrams.length;
  return batch;
}

function datagramsOf(batch: PacketBatch): Uint8Array[] {
  return Array.from({ length: batch.count }, (_, i) => batch.data.slice(batch.offsets[i]!, batch.offsets[i]! + batch.lengths[i]!));
}

test('outbound seals a batch that @noble opens, with consecutive counters and padding', () => {
  const { a, aPeer, bPeer } = connectedEngines();
  const packets = pings(100);
  const batch = tunBatch(packets);
  const firstCounter = aPeer.keypairs.current!.sendCounter;
  assert.equal(outbound(a, batch), 100);
  const datagrams = datagramsOf(batch);
  const receiveKey = bPeer.keypairs.current!.receiveKey;
  datagrams.forEach((d, i) => {
    const view = new DataView(d.buffer);
    assert.equal(d[0], 4);
    assert.equal(view.getUint32(4, true), bPeer.keypairs.current!.localIndex);
    const counter = view.getBigUint64(8, true);
    assert.equal(counter, firstCounter + BigInt(i));
    assert.equal(d.length, 16 + packets[i]!.length + paddingSize(packets[i]!.length, 1420) + 16);
    const plain = openTransport(receiveKey, counter, d.subarray(16));
    assert.ok(plain, `datagram ${i} opens with @noble`);
    assert.deepEqual(plain.subarray(0, packets[i]!.length), packets[i]);
    assert.ok(plain.subarray(packets[i]!.length).every((x) => x === 0), 'padding is zeros');
    assert.deepEqual(readAddr(batch.addrs, i), B);
  });
  assert.equal(aPeer.keypairs.current!.sendCounter, firstCounter + 100n);
  assert.ok(aPeer.txBytes > 0);
});

test('outbound writes each keypair\'s datagrams together and in their order, so UDP GSO can send them as runs', () => {
  const { a } = connectedEngines();
  const c = new Engine({ privateKey: generatePrivateKey() });
  const C: Endpoint = { address: '198.18.0.3', port: 51822 };
  const aPeerC = a.addPeer(c.publicKey!, { endpoint: C });
  c.addPeer(a.publicKey!, { endpoint: A });
  a.allowedIPs.insert(parsePrefix('100.96.1.0/24'), aPeerC);
  a.initiateHandshake(aPeerC, false);
  c.receive(a.outbox.splice(0)[0]!.packet, A);
  a.receive(c.outbox.splice(0)[0]!.packet, C);
  a.outbox.splice(0);
  // Interleaved: every third packet goes to c (the first one too), the rest to b.
  const toC = (i: number): boolean => i % 3 === 0;
  const packets = Array.from({ length: 40 }, (_, i) => icmpEcho(8, '100.96.0.1', toC(i) ? '100.96.1.2' : '100.96.0.2', 9, i, new Uint8Array(64 + i)));
  const batch = tunBatch(packets);
  assert.equal(outbound(a, batch), 40);
  const forC = packets.filter((_, i) => toC(i)).length;
  const datagrams = datagramsOf(batch);
  const counters = datagrams.map((d) => new DataView(d.buffer).getBigUint64(8, true));
  datagrams.forEach((d, k) => {
    assert.deepEqual(readAddr(batch.addrs, k), k < forC ? C : B, `datagram ${k}'s endpoint`);
    if (k > 0 && k !== forC) assert.equal(counters[k], counters[k - 1]! + 1n, `datagram ${k} follows its predecessor`);
    const original = packets.filter((_, i) => toC(i) === k < forC)[k < forC ? k : k - forC]!;
    assert.equal(d.length, 16 + original.length + paddingSize(original.length, 1420) + 16, `datagram ${k} carries its packet`);
  });
});

test('inbound opens what outbound sealed, in order, and drops replays, forgeries and spoofed sources by reason', () => {
  const { a, b, bPeer } = connectedEngines();
  const packets = pings(60);
  const out = tunBatch(packets);
  outbound(a, out);
  const datagrams = datagramsOf(out);
  const forged = Uint8Array.from(datagrams[5]!);
  forged[30]! ^= 1;
  const input = udpBatch([...datagrams, datagrams[7]!, forged], A);
  const before = { replay: b.drops.get(Drop.Replay), forged: b.drops.get(Drop.DecryptFailed) };
  const n = inbound(b, input);
  assert.equal(n, 60);
  for (let i = 0; i < n; i++) {
    assert.deepEqual(input.data.subarray(input.offsets[i]!, input.offsets[i]! + input.lengths[i]!), packets[i], `packet ${i}`);
  }
  assert.equal(b.drops.get(Drop.Replay) - before.replay, 1);
  assert.equal(b.drops.get(Drop.DecryptFailed) - before.forged, 1);
  assert.ok(bPeer.rxBytes > 60 * 32);

  // A packet whose inner source b does not route to a is dropped after opening.
  const spoofed = tunBatch([icmpEcho(8, '100.96.0.9', '100.96.0.2', 1, 1, new Uint8Array(8))]);
  outbound(a, spoofed);
  assert.equal(inbound(b, udpBatch(datagramsOf(spoofed), A)), 0);
  assert.equal(b.drops.get(Drop.SourceNotAllowed), 1);
});

test('inbound roams the endpoint to the source of the batch\'s latest authenticated packet', () => {
  const { a, b, bPeer } = connectedEngines();
  const out = tunBatch(pings(3));
  outbound(a, out);
  const moved = { address: '198.18.7.7', port: 40000 };
  inbound(b, udpBatch(datagramsOf(out), moved));
  assert.deepEqual(bPeer.endpoint, moved);
});

test('outbound: unroutable packets are counted, packets without a session are staged behind a handshake', () => {
  const a = new Engine({ privateKey: generatePrivateKey() });
  const peer = a.addPeer(new Engine({ privateKey: generatePrivateKey() }).publicKey!, { endpoint: B });
  a.allowedIPs.insert(parsePrefix('100.96.0.2/32'), peer);
  const batch = tunBatch([...pings(3), ...pings(2, '100.96.0.77')]);
  assert.equal(outbound(a, batch), 0);
  assert.equal(a.drops.get(Drop.NoPeerForDestination), 2);
  assert.equal(peer.staged.length, 3);
  assert.equal(a.outbox.length, 1);
  assert.equal(a.outbox[0]!.packet[0], 1, 'a handshake initiation went out');
});

test('outbound groups a batch by peer: each gets its own keys and counters', () => {
  const one = connectedEngines();
  const other = new Engine({ privateKey: generatePrivateKey() });
  const c = one.a.addPeer(other.publicKey!, { endpoint: { address: '198.18.0.3', port: 1 } });
  const cBack = other.addPeer(one.a.publicKey!, { endpoint: A });
  one.a.allowedIPs.insert(parsePrefix('100.96.1.0/24'), c);
  other.allowedIPs.insert(parsePrefix('100.96.0.1/32'), cBack);
  one.a.initiateHandshake(c, false);
  other.receive(one.a.outbox.splice(0)[0]!.packet, A);
  one.a.receive(other.outbox.splice(0)[0]!.packet, { address: '198.18.0.3', port: 1 });
  one.a.outbox.length = 0;
  const mixed = [...pings(4), ...pings(4, '100.96.1.5')].sort((x, y) => x[19]! - y[19]! || x[27]! - y[27]!);
  const batch = tunBatch(mixed);
  assert.equal(outbound(one.a, batch), 8);
  const toB: number[] = [];
  const toC: number[] = [];
  for (let i = 0; i < 8; i++) (readAddr(batch.addrs, i).address === B.address ? toB : toC).push(i);
  assert.equal(toB.length, 4);
  assert.equal(toC.length, 4);
  const received = inbound(other, udpBatch(toC.map((i) => datagramsOf(batch)[i]!), A));
  assert.equal(received, 4, 'the second peer opens its share with its own keys');
});

test('a slot holds the largest IP packet with room for header, padding and tag', () => {
  assert.ok(SLOT_SIZE >= 65535 + HEADROOM + TAILROOM);
  assert.equal(SLOT_SIZE % 64, 0);
});

/** An IPv4 packet with its ECN field set (the header checksum made again). */
function withEcn(packet: Uint8Array, ecn: number): Uint8Array {
  const p = packet.slice();
  p[1] = (p[1]! & ~3) | ecn;
  p[10] = 0;
  p[11] = 0;
  const check = internetChecksum(p, 0, 20);
  p[10] = check >> 8;
  p[11] = check & 0xff;
  return p;
}

const recordEcns = (batch: PacketBatch): number[] => Array.from({ length: batch.count }, (_, i) => batch.addrs[i * ADDR_STRIDE + ADDR_ECN]!);

test('ECN (RFC 6040): each datagram goes out with its plaintext\'s ECN field, CE as ECT(0); a CE that came on the way is set on ECT packets, and a Not-ECT one is dropped', () => {
  const { a, b } = connectedEngines();
  const sent = [ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE].map((ecn, i) => withEcn(icmpEcho(8, '100.96.0.1', '100.96.0.2', 9, i, new Uint8Array(40).fill(i)), ecn));
  const out = tunBatch(sent);
  assert.equal(outbound(a, out), 4);
  assert.deepEqual(recordEcns(out), [ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_ECT0]);

  // Every datagram met congestion on the way.
  const marked = udpBatch(datagramsOf(out), A);
  for (let i = 0; i < marked.count; i++) marked.addrs[i * ADDR_STRIDE + ADDR_ECN] = ECN_CE;
  assert.equal(inbound(b, marked), 3);
  assert.equal(b.drops.get(Drop.EcnCeNotEct), 1, 'the Not-ECT packet could not carry the mark: dropped');
  const delivered = datagramsOf(marked);
  assert.deepEqual(delivered, sent.slice(1).map((p) => withEcn(p, ECN_CE)), 'CE set, the header checksum still right, nothing else changed');

  // Without a mark (outer ECT, as sent): what arrives is what was sent, Not-ECT included.
  const again = tunBatch(sent);
  assert.equal(outbound(a, again), 4);
  const unmarked = udpBatch(datagramsOf(again), A);
  assert.equal(inbound(b, unmarked), 4);
  assert.deepEqual(datagramsOf(unmarked), sent);
  assert.equal(b.drops.get(Drop.EcnCeNotEct), 1);
});

test('AQM signals: the first data messages of the batch are marked CE when ECN-capable and dropped unopened when not; keepalives and an outer CE take no extra mark', () => {
  const { a, b, aPeer } = connectedEngines();
  const sent = [ECN_NOT_ECT, ECN_ECT1, ECN_CE, ECN_ECT0, ECN_ECT0].map((ecn, i) => withEcn(icmpEcho(8, '100.96.0.1', '100.96.0.2', 9, i, new Uint8Array(40).fill(i)), ecn));
  const out = tunBatch(sent);
  assert.equal(outbound(a, out), 5);
  a.sendKeepalive(aPeer);
  const keepalive = a.outbox.splice(0)[0]!.packet;
  assert.equal(keepalive.length, 32);
  const batch = udpBatch([keepalive, ...datagramsOf(out)], A);
  // Outer fields as sent (Not-ECT for the keepalive), as udpRecv would read them.
  recordEcns(out).forEach((ecn, i) => (batch.addrs[(i + 1) * ADDR_STRIDE + ADDR_ECN] = ecn));
  const decryptsBefore = b.drops.get(Drop.DecryptFailed);
  // Four signals: the keepalive takes none; Not-ECT dropped, ECT(1) marked, the CE (sent as ECT(0)) marked, ECT(0) marked.
  assert.deepEqual(inbound(b, batch, 4), { count: 4, aqmSignals: 0, aqmMarked: 3 });
  assert.equal(b.drops.get(Drop.QueueDelay), 1);
  assert.equal(b.drops.get(Drop.DecryptFailed), decryptsBefore);
  assert.deepEqual(datagramsOf(batch), [...sent.slice(1, 4).map((p) => withEcn(p, ECN_CE)), sent[4]!], 'CE on the three marked, the last as sent');
  // More signals than data messages: what is left is not carried over.
  const again = tunBatch(sent.slice(1, 2));
  assert.equal(outbound(a, again), 1);
  const one = udpBatch(datagramsOf(again), A);
  one.addrs[ADDR_ECN] = ECN_ECT1;
  assert.deepEqual(inbound(b, one, 3), { count: 1, aqmSignals: 2, aqmMarked: 1 });
});
