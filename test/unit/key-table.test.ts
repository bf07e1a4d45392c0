// The shared key and peer tables: slots named by receiver indices, counters reserved
// atomically and never past the limit, replay windows per slot, and a full table
// that refuses with a clear error instead of failing silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { constants, PerformanceObserver, type NodeGCPerformanceDetail } from 'node:perf_hooks';
import { KeyTable, NO_REPLAY_LOCKS, queueLockOwner } from '../../src/protocol/key-table.js';
import { PeerTable } from '../../src/protocol/peer-table.js';
import { PeerTableFullError } from '../../src/errors.js';
import { REJECT_AFTER_MESSAGES } from '../../src/protocol/constants.js';
import { Drop } from '../../src/protocol/drop-reasons.js';
import { Engine } from '../../src/protocol/engine.js';
import { replayAccept } from '../../src/protocol/replay.js';
import { generatePrivateKey } from '../../src/crypto/keys.js';
import { readAddr, writeAddr } from '../../src/pipeline/address.js';
import { openBatch, sealBatch } from '../../src/crypto/native-aead.js';
import { EngineControl, inboundContextOf, outboundContextOf } from '../../src/stages/engine-control.js';
import { InboundStage } from '../../src/stages/inbound.js';
import { OutboundStage } from '../../src/stages/outbound.js';
import { icmpEcho, tunBatch } from '../helpers/packets.js';
import { A, connectedEngines, receive } from '../helpers/engines.js';

const key = (b: number): Uint8Array => new Uint8Array(32).fill(b);

/** Another index that names the same slot as `index` (what a forger who knew the slot would try). */
function forgeIndex(table: KeyTable, index: number): number {
  const slot = table.slotOfIndex(index);
  let x = index;
  // About 1 in 65,536 numbers names a given slot; the bound is far beyond that.
  for (let i = 0; i < 50_000_000; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    if (x !== index && table.slotOfIndex(x) === slot) return x;
  }
  throw new Error('no other index for the slot');
}

test('key table: an index names its slot; stale, unknown and handshake-only indices resolve to no slot', () => {
  const table = new KeyTable(8);
  const index = table.allocate(3)!;
  assert.notEqual(index, 0);
  const slot = table.slotOfIndex(index);
  assert.ok(slot >= 1 && slot < 8);
  assert.equal(table.activeSlot(index), -1, 'no keys yet');
  table.install(index, key(1), key(2), 0xdeadbeef, 5);
  assert.equal(table.activeSlot(index), slot);
  assert.equal(table.peerOf(slot), 3);
  assert.equal(table.remoteIndexOf(slot), 0xdeadbeef);
  assert.deepEqual(table.sendKeys.subarray(slot * 32, slot * 32 + 32), key(1));
  assert.deepEqual(table.receiveKeys.subarray(slot * 32, slot * 32 + 32), key(2));
  // Same slot, another random part: a stale or forged index.
  assert.equal(table.activeSlot(forgeIndex(table, index)), -1);
  assert.equal(table.activeSlot(0), -1);
  const generation = table.generationOf(slot);
  table.release(index);
  assert.equal(table.activeSlot(index), -1);
  assert.ok(table.generationOf(slot) !== generation, 'a freed slot has a new generation');
  assert.deepEqual(table.sendKeys.subarray(slot * 32, slot * 32 + 32), new Uint8Array(32), 'keys zeroed');
});

test('key table: full at capacity (slot 0 is never used), and every slot comes back', () => {
  const table = new KeyTable(8);
  const indices = Array.from({ length: 7 }, () => table.allocate(0)!);
  assert.equal(new Set(indices.map((i) => table.slotOfIndex(i))).size, 7);
  assert.equal(table.allocate(0), undefined);
  for (const i of indices) table.release(i);
  table.release(indices[0]!); // twice: ignored
  assert.equal(table.freeSlots, 7);
});

test('key table: send counters are reserved by batch, disjoint across threads, and stop at the limit', async () => {
  const table = new KeyTable(4);
  const index = table.allocate(0)!;
  const slot = table.install(index, key(1), key(2), 1, 0);
  assert.equal(table.reserveSendCounters(slot, 10), 0n);
  assert.equal(table.reserveSendCounters(slot, 5), 10n);
  // Two workers and this thread reserve 64 at a time; the ranges must not overlap.
  const source = `
    const { workerData, parentPort } = require('node:worker_threads');
    const counters = new BigUint64Array(workerData.buffer);
    const firsts = [];
    for (let i = 0; i < 2000; i++) {
      for (;;) {
        const first = Atomics.load(counters, workerData.slot);
        if (Atomics.compareExchange(counters, workerData.slot, first, first + 64n) === first) { firsts.push(first); break; }
      }
    }
    parentPort.postMessage(firsts);
  `;
  const shared = table.share();
  const run = () => new Promise<bigint[]>((resolve, reject) => {
    const w = new Worker(source, { eval: true, workerData: { buffer: shared.sendCounters, slot } });
    w.once('message', resolve);
    w.once('error', reject);
  });
  const mine: bigint[] = [];
  const others = Promise.all([run(), run()]);
  for (let i = 0; i < 2000; i++) mine.push(table.reserveSendCounters(slot, 64));
  const all = [...mine, ...(await others).flat()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  assert.equal(all.length, 6000);
  for (let i = 1; i < all.length; i++) assert.ok(all[i]! - all[i - 1]! >= 64n, `ranges at ${all[i - 1]} and ${all[i]} overlap`);
  assert.equal(table.sendCounter(slot), 15n + 6000n * 64n);

  // Near the limit: a batch that would reach it is refused and the counter does not move (no wrap-around).
  new BigUint64Array(shared.sendCounters)[slot] = REJECT_AFTER_MESSAGES - 3n;
  assert.equal(table.reserveSendCounters(slot, 3), REJECT_AFTER_MESSAGES - 3n);
  for (let i = 0; i < 10_000; i++) assert.equal(table.reserveSendCounters(slot, 128), -1n);
  assert.equal(table.sendCounter(slot), REJECT_AFTER_MESSAGES);
});

test('key table: each slot has its own replay window, fresh on install', () => {
  const table = new KeyTable(4);
  const a = table.install(table.allocate(0)!, key(1), key(2), 1, 0);
  const bIndex = table.allocate(0)!;
  const b = table.install(bIndex, key(3), key(4), 2, 0);
  table.lockReplay(a);
  assert.equal(replayAccept(table.replay, table.replayBase(a), 7, 0), true);
  assert.equal(replayAccept(table.replay, table.replayBase(a), 7, 0), false);
  table.unlockReplay(a);
  assert.equal(replayAccept(table.replay, table.replayBase(b), 7, 0), true, 'another slot, another window');
  table.release(bIndex);
  const again = table.install(table.allocate(0)!, key(5), key(6), 3, 0);
  assert.equal(again, b, 'the freed slot is reused');
  assert.equal(replayAccept(table.replay, table.replayBase(again), 7, 0), true, 'and its window starts empty');
});

test('peer table: endpoints and send slots as the data path reads them; full means ENOSPC', () => {
  const peers = new PeerTable(2);
  const id = peers.allocate();
  assert.equal(peers.sendSlot(id), 0);
  assert.equal(peers.hasEndpoint(id), false);
  peers.setEndpoint(id, { address: '198.18.0.9', port: 5000 });
  peers.setSendSlot(id, 5);
  assert.equal(peers.hasEndpoint(id), true);
  assert.equal(peers.sendSlot(id), 5);
  assert.deepEqual(readAddr(peers.endpoints, id), { address: '198.18.0.9', port: 5000 });
  const attached = PeerTable.attach(peers.share());
  assert.equal(attached.sendSlot(id), 5, 'another view sees the same table');
  peers.allocate();
  assert.throws(() => peers.allocate(), (err: unknown) => err instanceof PeerTableFullError && err.code === 'TUNDRA_PEER_TABLE_FULL' && /at most 2 peers/.test(err.message));
});

test('engine keeps the tables in step: handshake slots, the current send slot, endpoints, and a full key table', () => {
  const a = new Engine({ privateKey: generatePrivateKey() });
  const b = new Engine({ privateKey: generatePrivateKey() });
  const aPeer = a.addPeer(b.publicKey!, { endpoint: { address: '198.18.0.2', port: 2 } });
  const bPeer = b.addPeer(a.publicKey!, { endpoint: { address: '198.18.0.1', port: 1 } });
  assert.deepEqual(readAddr(a.peerTable.endpoints, aPeer.id), { address: '198.18.0.2', port: 2 });
  assert.equal(a.peerTable.sendSlot(aPeer.id), 0);
  a.initiateHandshake(aPeer, false);
  b.receive(a.outbox.splice(0)[0]!.packet, { address: '198.18.0.1', port: 1 });
  a.receive(b.outbox.splice(0)[0]!.packet, { address: '198.18.0.2', port: 2 });
  const current = aPeer.keypairs.current!;
  assert.equal(a.peerTable.sendSlot(aPeer.id), current.slot, 'the initiator sends at once');
  assert.equal(b.peerTable.sendSlot(bPeer.id), 0, 'the responder waits for confirmation');
  receive(b, a.outbox.splice(0)[0]!.packet, { address: '198.18.7.7', port: 7 });
  assert.equal(b.peerTable.sendSlot(bPeer.id), bPeer.keypairs.current!.slot, 'confirmed by the keepalive');
  assert.deepEqual(readAddr(b.peerTable.endpoints, bPeer.id), { address: '198.18.7.7', port: 7 }, 'roamed');
  a.removePeer(aPeer);
  assert.equal(a.keyTable.activeSlot(current.localIndex), -1, 'removing the peer frees its slots');

  const tiny = new Engine({ privateKey: generatePrivateKey(), keySlots: 2 });
  const p1 = tiny.addPeer(b.publicKey!, { endpoint: { address: '198.18.0.2', port: 2 } });
  const p2 = tiny.addPeer(generatePrivateKey().subarray(0, 32), { endpoint: { address: '198.18.0.3', port: 3 } });
  tiny.initiateHandshake(p1, false);
  tiny.initiateHandshake(p2, false);
  assert.equal(tiny.drops.get(Drop.KeyTableFull), 1, 'no slot for the second handshake: counted');
  assert.equal(tiny.outbox.length, 1);
});

test('key table: the replay locks a dead thread held are freed', () => {
  const table = new KeyTable(4);
  const a = table.install(table.allocate(0)!, key(1), key(2), 1, 0);
  const worker = KeyTable.attach(table.share(), queueLockOwner(0));
  worker.lockReplay(a);
  table.releaseReplayLocks(3);
  table.releaseReplayLocks(2);
  table.lockReplay(a); // would spin for ever if the dead worker's lock were still held
  table.unlockReplay(a);
});

test('key table: a view attached with NO_REPLAY_LOCKS refuses to lock (0 marks a free lock, so it would take none)', () => {
  const table = new KeyTable(4);
  const a = table.install(table.allocate(0)!, key(1), key(2), 1, 0);
  const cryptoView = KeyTable.attach(table.share(), NO_REPLAY_LOCKS);
  assert.throws(() => cryptoView.lockReplay(a), /takes no replay locks/);
  table.lockReplay(a); // still free
  table.unlockReplay(a);
});

test('receiver indices look like random 32-bit numbers: not sequential, every bit in use, fresh on each reuse of a slot', () => {
  const table = new KeyTable();
  const indices = Array.from({ length: 1000 }, () => table.allocate(0)!);
  assert.deepEqual(indices.map((i) => table.slotOfIndex(i)), Array.from({ length: 1000 }, (_, i) => i + 1), 'the slots are still taken lowest first');
  assert.equal(new Set(indices).size, 1000);
  assert.ok(indices.every((i) => i !== 0 && i === i >>> 0));
  for (const [name, half] of [['low', (i: number) => i & 0xffff], ['high', (i: number) => i >>> 16]] as const) {
    const halves = indices.map(half);
    // 1,000 draws from 65,536 repeat about 8 times; a counter or a constant repeats or steps by one.
    assert.ok(new Set(halves).size > 950, `${name} halves repeat: ${new Set(halves).size} distinct`);
    const steps = halves.filter((h, k) => k > 0 && h - halves[k - 1]! === 1).length;
    assert.ok(steps < 10, `${name} halves count up: ${steps} steps of one`);
  }
  // Each bit is set in about half of them (the binomial's deviation is 1.6 %: 15 % is 9 of them).
  for (let bit = 0; bit < 32; bit++) {
    const set = indices.filter((i) => ((i >>> bit) & 1) === 1).length;
    assert.ok(set > 350 && set < 650, `bit ${bit} is set in ${set} of 1000 indices`);
  }
  // One slot freed and taken again 300 times: a new random-looking index each time.
  const again: number[] = [];
  for (let n = 0; n < 300; n++) {
    const index = table.allocate(0)!;
    again.push(index);
    table.release(index);
  }
  assert.equal(new Set(again.map((i) => table.slotOfIndex(i))).size, 1, 'the same slot each time');
  assert.ok(new Set(again.map((i) => i & 0xffff)).size > 280 && new Set(again.map((i) => i >>> 16)).size > 280);
  // Another table (another daemon, or a restart) numbers the same slots otherwise.
  const other = new KeyTable(8);
  assert.notEqual(other.allocate(0), new KeyTable(8).allocate(0));
});

test('another thread\'s view of the table resolves the same indices', () => {
  const table = new KeyTable(64);
  const index = table.allocate(7)!;
  const slot = table.install(index, key(1), key(2), 9, 0);
  const view = KeyTable.attach(table.share(), queueLockOwner(0));
  assert.equal(view.slotOfIndex(index), slot);
  assert.equal(view.activeSlot(index), slot);
  assert.equal(view.activeSlot(forgeIndex(table, index)), -1);
});

test('the data path drops a datagram whose index names a live slot but is not its index: unknown_index', () => {
  const { a, b, bPeer } = connectedEngines();
  const out = tunBatch([icmpEcho(8, '100.96.0.1', '100.96.0.2', 1, 1, new Uint8Array(32)), icmpEcho(8, '100.96.0.1', '100.96.0.2', 1, 2, new Uint8Array(32))]);
  new OutboundStage(out.count).run(out, outboundContextOf(a, sealBatch), new EngineControl(a));
  assert.equal(out.count, 2);
  const localIndex = bPeer.keypairs.current!.localIndex;
  const forged = forgeIndex(b.keyTable, localIndex);
  assert.equal(b.keyTable.slotOfIndex(forged), bPeer.keypairs.current!.slot, 'the forged index names the live slot');
  new DataView(out.data.buffer, out.data.byteOffset).setUint32(out.offsets[1]! + 4, forged, true);
  for (let i = 0; i < out.count; i++) writeAddr(out.addrs, i, A.address, A.port);
  const before = b.drops.get(Drop.UnknownIndex);
  const delivered = new InboundStage(out.count).run(out, inboundContextOf(b, openBatch), new EngineControl(b));
  assert.equal(delivered, 1, 'the genuine one is delivered');
  assert.equal(b.drops.get(Drop.UnknownIndex) - before, 1, 'the forged one is unknown_index');
});

test('resolving a received index allocates nothing', async () => {
  const table = new KeyTable();
  const indices = new Uint32Array(1024);
  for (let i = 0; i < 512; i++) {
    const index = table.allocate(0)!;
    table.install(index, key(1), key(2), 1, 0);
    indices[2 * i] = index;
    indices[2 * i + 1] = forgeIndex(table, index);
  }
  let sink = 0;
  const lookups = (): void => {
    let s = 0;
    for (let i = 0; i < 1 << 20; i++) s += table.activeSlot(indices[i & 1023]!);
    sink = (sink + s) | 0;
  };
  for (let r = 0; r < 5; r++) lookups(); // warmed: the JIT's own allocations are done
  // Without --expose-gc: count the scavenges while 4 M lookups run (16 B each would be 64 MB of garbage).
  let scavenges = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as { detail?: NodeGCPerformanceDetail }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
  });
  gcs.observe({ entryTypes: ['gc'] });
  await new Promise((resolve) => setTimeout(resolve, 50));
  scavenges = 0;
  for (let r = 0; r < 4; r++) lookups();
  await new Promise((resolve) => setTimeout(resolve, 50));
  gcs.disconnect();
  assert.equal(scavenges, 0, 'lookups allocate');
  assert.ok(Number.isInteger(sink)); // the lookups' results are used
});
