// PacketBatch on its own: its shared memory, the count in the shared header, offsets
// reset relative to the batch, and batches over views that already exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEADER_COUNT, PacketBatch, SLOT_SIZE } from '../../src/pipeline/batch.js';

test('count lives in the shared header; resetOffsets points at each slot plus the headroom and clears it', () => {
  const b = new PacketBatch(4, 128);
  b.count = 3;
  assert.equal(b.header[HEADER_COUNT], 3);
  b.resetOffsets(16);
  assert.deepEqual([...b.offsets], [16, 144, 272, 400]);
  assert.equal(b.count, 0);
});

test('new PacketBatch(slots, slotSize) allocates its own memory; fromViews wraps views and checks their sizes', () => {
  const a = new PacketBatch(2, SLOT_SIZE);
  const b = new PacketBatch(2, SLOT_SIZE);
  a.count = 2;
  assert.equal(b.count, 0);
  assert.equal(a.data.byteLength, 2 * SLOT_SIZE);
  assert.notEqual(a.header.buffer, b.header.buffer);
  const views = { data: a.data, offsets: a.offsets, lengths: a.lengths, addrs: a.addrs, header: a.header };
  const c = PacketBatch.fromViews(2, SLOT_SIZE, views);
  assert.equal(c.count, 2, 'wraps the same header');
  assert.throws(() => PacketBatch.fromViews(3, SLOT_SIZE, views), RangeError);
  assert.throws(() => PacketBatch.fromViews(2, SLOT_SIZE, { ...views, header: new Int32Array(1) }), RangeError);
});
