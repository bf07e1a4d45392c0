// The control channel between a queue worker's stages and the main thread: every
// record arrives once and whole, tallies that can wait stay off the doorbell ring
// and the ones the control plane must act on now go with the messages, records
// apply in the order they were made, and a full ring drops and counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADDR_STRIDE, readAddr, readLocal, writeAddr } from '../../src/pipeline/address.js';
import { PacketBatch } from '../../src/pipeline/batch.js';
import { RING_LAYOUT, type RingShared } from '../../src/pipeline/ring.js';
import { PeerTable } from '../../src/protocol/peer-table.js';
import { Drop, DropCounters } from '../../src/protocol/drop-reasons.js';
import type { EngineControl } from '../../src/stages/engine-control.js';
import { ChannelReader, ChannelWriter, createControlChannel, MESSAGE_MAX_BYTES, TALLY_INTERVAL_MS } from '../../src/dataplane/control-channel.js';
import { BULK_CAPACITY, HandshakeGate, LaneReader } from '../../src/dataplane/handshake-lanes.js';
import { waitFor } from '../helpers/wait.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** An EngineControl that writes down what it is told. */
function recorder(): { control: EngineControl; calls: string[] } {
  const calls: string[] = [];
  const control = {
    sent: (peer: number, slot: number, gen: number, bytes: number, packets: number, exhausted: boolean) =>
      calls.push(`sent ${peer} ${slot} ${gen} ${bytes}/${packets} ${exhausted}`),
    receivedFrom: (peer: number, slot: number, gen: number, bytes: number, packets: number, dataCame: boolean, addrs: Uint8Array, i: number, roamed: boolean) => {
      const port = (addrs[i * ADDR_STRIDE + 2]! << 8) | addrs[i * ADDR_STRIDE + 3]!;
      calls.push(`received ${peer} ${slot} ${gen} ${bytes}/${packets} ${dataCame} :${port}${roamed ? ' roamed' : ''}`);
    },
    needsSession: (peer: number, data: Uint8Array, offset: number, length: number) =>
      calls.push(`needs ${peer} ${Array.from(data.subarray(offset, offset + length)).join(',')}`),
    sourceGone: (addrs: Uint8Array, i: number) => calls.push(`gone ${readLocal(addrs, i)?.address}`),
  };
  return { control: control as unknown as EngineControl, calls };
}

// No fixed sleeps (on a busy machine 5 ms may pass before the reader runs, or the
// writer's 20 ms timer may fire first). What the main thread has done is polled for, up
// to a bound only a hang reaches. What it must NOT have done yet cannot be shown by
// waiting a while, so that is checked where the records are: a tally that can wait is in
// the tally ring (which the reader drains when its doorbell rings), an urgent one in the
// message ring, and a doorbell rang if the ring's wake-up word moved while the reader
// slept on it.
const arrived = (calls: string[], n: number): Promise<void> => waitFor(`${n} calls`, () => calls.length >= n, 10_000, 2);

/** A ring's doorbell: the reader asleep on it, and how often it was rung. */
function doorbell(ring: RingShared): { sleepers: () => number; rung: () => number } {
  const ctl = new Int32Array(ring.buffer, 0, RING_LAYOUT.HEADER_WORDS);
  return { sleepers: () => Atomics.load(ctl, RING_LAYOUT.DATA_SLEEPERS), rung: () => Atomics.load(ctl, RING_LAYOUT.DATA_SEQ) };
}

function setup(capacity?: { tallies: number; messages: number }, read = true) {
  const shared = createControlChannel(new HandshakeGate(), capacity?.tallies, capacity?.messages);
  const peers = new PeerTable(8);
  const peer = peers.allocate();
  peers.setSendSlot(peer, 5);
  peers.setEndpoint(peer, { address: '198.18.0.2', port: 51820 });
  const drops = new DropCounters();
  const writer = new ChannelWriter(shared, peers, drops, () => performance.now());
  const { control, calls } = recorder();
  let work = 0;
  const reader = read ? new ChannelReader(shared, control, () => { work++; }) : undefined;
  const batch = new PacketBatch(4, 256);
  batch.resetOffsets(0);
  return {
    writer, reader: reader!, calls, drops, peer, peers, batch, afterWork: () => work, tallyBell: doorbell(shared.tallies), messageBell: doorbell(shared.messages),
    lanes: new LaneReader(shared.handshakes),
  };
}

test('tallies that can wait arrive with a later doorbell; urgent ones wake the main thread, after those made before them', async () => {
  const { writer, reader, calls, peer, peers, batch, afterWork, messageBell } = setup();
  try {
    writeAddr(batch.addrs, 0, '198.18.0.2', 51820); // the endpoint
    writeAddr(batch.addrs, 1, '198.18.0.3', 40000); // somewhere else: roaming
    writer.sent(peer, 5, 1, 100, 3, false);
    writer.received(peer, 5, 1, 200, 2, true, batch, 0);
    assert.deepEqual(reader.queued, { tallies: 2, messages: 0 }, 'no doorbell for tallies that can wait: they wait in the tally ring');
    assert.equal(messageBell.sleepers(), 1, 'the reader sleeps on the message ring\'s doorbell');
    const rung = messageBell.rung();
    writer.received(peer, 5, 1, 300, 3, true, batch, 1); // a new source: urgent
    assert.equal(messageBell.rung(), rung, 'not rung while the worker still works on the batch');
    writer.ring();
    assert.equal(messageBell.rung(), rung + 1, 'the urgent tally rang the doorbell once the work was done');
    writer.ring();
    assert.equal(messageBell.rung(), rung + 1, 'and only once');
    assert.deepEqual(readAddr(peers.endpoints, peer), { address: '198.18.0.3', port: 40000 },
      'the worker put the new source in the peer table itself, before the main thread heard of it');
    await arrived(calls, 3);
    assert.deepEqual(calls, ['sent 0 5 1 100/3 false', 'received 0 5 1 200/2 true :51820', 'received 0 5 1 300/3 true :40000 roamed'],
      'the woken reader applied the earlier tallies first');
    assert.ok(afterWork() > 0, 'then the control plane sent what the engine queued');
    calls.length = 0;
    writer.received(peer, 6, 2, 10, 1, false, batch, 1); // a keypair that is not the sending one: confirms it
    writer.sent(peer, 5, 1, 50, 2, true); // counters used up
    assert.deepEqual(reader.queued, { tallies: 0, messages: 2 }, 'both urgent');
    writer.ring();
    await arrived(calls, 2);
    assert.deepEqual(calls, ['received 0 6 2 10/1 false :40000', 'sent 0 5 1 50/2 true']);
    calls.length = 0;
    writer.sent(peer, 5, 1, 7, 1, false);
    writer.ring();
    assert.deepEqual(reader.queued, { tallies: 1, messages: 0 }, 'a tally that can wait: no doorbell at once');
    await arrived(calls, 1);
    assert.deepEqual(calls, ['sent 0 5 1 7/1 false'], 'a tally that can wait is applied too');
  } finally {
    reader.close();
  }
});

test('the reader sleeps on the tallies\' doorbell; the worker rings it TALLY_INTERVAL_MS after a tally, not at once, and the reader applies it and sleeps again', async () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const { writer, reader, calls, peer, tallyBell } = setup();
  try {
    assert.equal(timers(), before, 'the reader keeps no timer: an idle tunnel wakes nobody');
    await waitFor('the reader to sleep on the tally ring\'s doorbell', () => tallyBell.sleepers() === 1, 10_000, 2);
    const rung = tallyBell.rung();
    for (const round of [1, 2]) { // the second round re-arms the writer's timer
      writer.sent(peer, 5, 1, 9, round, false);
      writer.ring();
      writer.ring();
      assert.equal(tallyBell.rung(), rung + round - 1, 'not rung at once: that wake-up would delay the worker\'s next packet');
      assert.equal(reader.queued.tallies, 1, 'so the tally waits in its ring');
      await waitFor('the writer\'s timer to ring the doorbell', () => tallyBell.rung() > rung + round - 1, 10_000, 2);
      assert.equal(tallyBell.rung(), rung + round, 'rung later, once');
      await arrived(calls, round);
      assert.equal(calls[round - 1], `sent 0 5 1 9/${round} false`, 'the doorbell woke the reader, which applied the tally');
      await waitFor('the reader to sleep on the doorbell again', () => tallyBell.sleepers() === 1, 10_000, 2);
    }
    writer.ring();
    await sleep(2 * TALLY_INTERVAL_MS);
    assert.equal(tallyBell.rung(), rung + 2, 'no tally, no ring');
    assert.equal(calls.length, 2);
  } finally {
    reader.close();
  }
});

test('a datagram to another local address is urgent (it moves the sticky source); a gone source reaches the control plane', async () => {
  const { writer, reader, calls, peer, peers, batch } = setup();
  try {
    peers.setEndpoint(peer, { address: '198.18.0.2', port: 51820, local: { address: '198.18.0.3', ifindex: 2 } });
    writeAddr(batch.addrs, 0, '198.18.0.2', 51820, { address: '198.18.0.3', ifindex: 2 }); // as the endpoint
    writeAddr(batch.addrs, 1, '198.18.0.2', 51820, { address: '198.18.0.1', ifindex: 2 }); // to another local address
    writeAddr(batch.addrs, 2, '198.18.0.2', 51820); // no local address at all
    writer.received(peer, 5, 1, 10, 1, true, batch, 0);
    assert.deepEqual(reader.queued, { tallies: 1, messages: 0 }, 'same remote, same local: waits for the interval');
    writer.received(peer, 5, 1, 20, 1, true, batch, 1);
    assert.deepEqual(reader.queued, { tallies: 1, messages: 1 }, 'another local address: urgent');
    writer.ring();
    await arrived(calls, 2);
    assert.deepEqual(calls, ['received 0 5 1 10/1 true :51820', 'received 0 5 1 20/1 true :51820 roamed'], 'in the order they were made');
    assert.deepEqual(readLocal(peers.endpoints, peer), { address: '198.18.0.1', ifindex: 2 }, 'the new local address is the source now');
    calls.length = 0;
    writer.received(peer, 5, 1, 30, 1, true, batch, 2);
    assert.deepEqual(reader.queued, { tallies: 0, messages: 1 }, 'no local side against an endpoint with one: urgent');
    writer.ring();
    await arrived(calls, 1);
    assert.deepEqual(calls, ['received 0 5 1 30/1 true :51820 roamed']);
    calls.length = 0;
    writer.sourceGone(batch.addrs, 1);
    assert.deepEqual(reader.queued, { tallies: 0, messages: 1 });
    writer.ring();
    await arrived(calls, 1);
    assert.deepEqual(calls, ['gone 198.18.0.1']);
  } finally {
    reader.close();
  }
});

test('handshake messages take their own lanes: a flood of them fills those, and urgent records still arrive', async () => {
  const { writer, reader, calls, drops, batch, lanes } = setup();
  try {
    for (let i = 0; i < 2; i++) {
      batch.data[batch.offsets[i]!] = 1; // an initiation without MAC2
      batch.lengths[i] = 148;
      writeAddr(batch.addrs, i, `198.18.9.${i}`, 40000);
    }
    // Nobody drains the lanes: more than they hold (from 2 sources, under the per-source limits).
    for (let n = 0; n < BULK_CAPACITY; n++) writer.handshakes(batch, Int32Array.of(0, 1), 2);
    assert.ok(drops.get(Drop.HandshakeQueueFull) > 0 || drops.get(Drop.CookieRateLimited) > 0, 'the excess was dropped and counted');
    assert.ok(lanes.waiting > 0 && lanes.waiting <= lanes.capacity);
    writer.needsSession(3, Uint8Array.of(9, 8, 7, 6), 1, 2);
    writer.ring();
    await arrived(calls, 1);
    assert.deepEqual(calls, ['needs 3 8,7'], 'the urgent record came through; no handshake went over the message ring');
    assert.equal(drops.get(Drop.ControlRingFull), 0);
    assert.ok(lanes.pop('bulk'));
    assert.equal(lanes.message().length, 148);
    assert.deepEqual(readAddr(lanes.addr, 0), { address: '198.18.9.0', port: 40000 }, 'a message arrives whole, with its source');
  } finally {
    reader.close();
    lanes.close();
  }
});

test('a full ring or an oversized packet is dropped and counted, never half written', () => {
  const { writer, calls, drops, peer } = setup({ tallies: 4, messages: 2 }, false); // nobody drains: the rings fill
  for (let i = 0; i < 6; i++) writer.sent(peer, 5, 1, i, i % 7 + 1, false);
  assert.equal(drops.get(Drop.ControlRingFull), 2, 'four fit, two were counted');
  for (let i = 0; i < 3; i++) writer.needsSession(peer, new Uint8Array(10), 0, 10);
  assert.equal(drops.get(Drop.ControlRingFull), 3);
  writer.needsSession(peer, new Uint8Array(MESSAGE_MAX_BYTES + 1), 0, MESSAGE_MAX_BYTES + 1);
  assert.deepEqual(drops.snapshot(), { control_ring_full: 3, control_record_too_big: 1 },
    'a packet longer than a record has a reason of its own: no queue or ring was full');
  assert.deepEqual(calls, []);
});
