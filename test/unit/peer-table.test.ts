// The peer table's endpoint records have several writers (the control plane, and any
// queue worker whose receive path saw a peer roam) and readers on every thread that
// sends. A worker thread rewrites one peer's endpoint between two addresses as fast as
// it can while this thread copies it: every copy is one of the two records whole,
// never a mix of both (without the sequence lock, a copy mixes them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { ADDR_ECN, ADDR_STRIDE, readAddr, writeAddr } from '../../src/pipeline/address.js';
import { PeerTable } from '../../src/protocol/peer-table.js';

const WRITER = new URL('../helpers/endpoint-writer.js', import.meta.url);

test('learnEndpoint on another thread and copyEndpoint here: every copy is one whole record', async () => {
  const peers = new PeerTable(4);
  const peer = peers.allocate();
  const records = new Uint8Array(new SharedArrayBuffer(2 * ADDR_STRIDE));
  writeAddr(records, 0, '198.18.0.2', 51821, { address: '198.18.0.1', ifindex: 2 });
  writeAddr(records, 1, 'fd7a:7d0:ee::2', 9997, { address: 'fd7a:7d0:ee::1', ifindex: 3 });
  peers.learnEndpoint(peer, records, 0);
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WRITER, { workerData: { shared: peers.share(), records: records.buffer, stop: stop.buffer, peer } });
  const writes = new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const copy = new Uint8Array(ADDR_STRIDE);
  const seen = new Set<string>();
  const whole = [records.subarray(0, ADDR_STRIDE).join(), records.subarray(ADDR_STRIDE).join()];
  try {
    for (let i = 0; i < 300_000; i++) {
      peers.copyEndpoint(peer, copy, 0);
      const text = copy.join();
      if (!whole.includes(text)) assert.fail(`copy ${i} is a mix of both records: ${JSON.stringify(readAddr(copy, 0))}`);
      seen.add(text);
    }
  } finally {
    Atomics.store(stop, 0, 1);
  }
  assert.ok((await writes) > 0, 'the worker wrote');
  await worker.terminate();
  assert.ok(peers.hasEndpoint(peer));
  assert.ok(seen.size >= 1);
});

test('an endpoint learnt from a datagram does not keep that datagram\'s ECN field (sends would carry it)', () => {
  const peers = new PeerTable(4);
  const peer = peers.allocate();
  const records = new Uint8Array(2 * ADDR_STRIDE);
  writeAddr(records, 0, '198.18.0.2', 51821, { address: '198.18.0.1', ifindex: 2 });
  records[ADDR_ECN] = 3; // arrived CE-marked
  peers.learnEndpoint(peer, records, 0);
  peers.copyEndpoint(peer, records, 1);
  assert.equal(records[ADDR_STRIDE + ADDR_ECN], 0);
  assert.deepEqual(readAddr(records, 1), readAddr(records, 0));
});
