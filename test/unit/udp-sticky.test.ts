// Sticky source addresses on the UDP batch calls: udpRecv records the local address
// each datagram was sent to, udpSend sends from a record's local address, GSO runs
// never merge datagrams of different local addresses, and UdpPort resends a datagram
// whose local address is gone from the routing table's choice, telling the control
// plane once. On loopback in the root namespace: all of 127.0.0.0/8 is local on lo,
// so 127.0.0.1 and 127.0.0.2 are two addresses of this host with no set-up at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { ADDR_STRIDE, clearLocal, hasLocal, readAddr, readLocal, sameAddr, writeAddr, type LocalAddress } from '../../src/pipeline/address.js';
import { udpOpen, udpRecv, udpSend, UDP_GSO_IPV4, UDP_GSO_IPV6, type UdpSocket } from '../../src/conn/udp.js';
import { udpSendStats } from '../../src/offload/udp-stats.js';
import { closeFd } from '../../src/io/fd.js';
import { UdpPort } from '../../src/conn/udp-port.js';
import { Logger } from '../../src/log.js';
import { OffloadCounters } from '../../src/offload/counters.js';
import { ALL_OFFLOADS } from '../../src/offload/settings.js';
import { PacketBatch } from '../../src/pipeline/batch.js';

const E = constants.errno;
const LO = 1; // lo's ifindex, in every namespace
/** Not on any interface of this host (a test-net address no test assigns to lo). */
const GONE4 = '198.18.255.77';
const GONE6 = 'fd7a:7d0:ffff::77';

interface Got {
  address: string;
  port: number;
  local: LocalAddress | undefined;
  payload: number[];
}

/** Receives until `n` datagrams came or `timeoutMs` passed (polling: bounded, for a hang). */
async function receive(fd: number, n: number, timeoutMs = 10_000): Promise<Got[]> {
  const slots = 64;
  const data = new Uint8Array(slots * 2048);
  const offsets = Uint32Array.from({ length: slots }, (_, i) => i * 2048);
  const lengths = new Uint32Array(slots);
  const addrs = new Uint8Array(slots * ADDR_STRIDE);
  const got: Got[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < n && Date.now() < deadline) {
    const k = udpRecv(fd, data, offsets, lengths, addrs, slots, 2048);
    for (let i = 0; i < k; i++) {
      const { address, port } = readAddr(addrs, i);
      got.push({ address, port, local: readLocal(addrs, i), payload: [...data.subarray(offsets[i]!, offsets[i]! + lengths[i]!)] });
    }
    if (k === 0) await new Promise((r) => setTimeout(r, 5));
  }
  return got;
}

interface Item {
  to: { address: string; port: number };
  local?: LocalAddress;
  size: number;
  tag: number;
}

function pack(items: readonly Item[]): { data: Uint8Array; offsets: Uint32Array; lengths: Uint32Array; addrs: Uint8Array } {
  const data = new Uint8Array(items.reduce((s, it) => s + it.size, 0));
  const offsets = new Uint32Array(items.length);
  const lengths = new Uint32Array(items.length);
  const addrs = new Uint8Array(items.length * ADDR_STRIDE);
  let at = 0;
  items.forEach((it, i) => {
    data.fill(it.tag, at, at + it.size);
    offsets[i] = at;
    lengths[i] = it.size;
    writeAddr(addrs, i, it.to.address, it.to.port, it.local);
    at += it.size;
  });
  return { data, offsets, lengths, addrs };
}

function withSockets(families: readonly ('dual' | 4 | 6)[], body: (s: UdpSocket[]) => Promise<void>): () => Promise<void> {
  return async () => {
    const sockets = families.map((family) => udpOpen({ port: 0, family }));
    try {
      await body(sockets);
    } finally {
      for (const s of sockets) closeFd(s.fd);
    }
  };
}

test('address records: the local side round-trips, is compared by sameAddr, and is cleared alone', () => {
  const addrs = new Uint8Array(3 * ADDR_STRIDE);
  writeAddr(addrs, 0, '198.18.0.1', 51820, { address: '198.18.0.3', ifindex: 0x01020304 });
  assert.deepEqual([...addrs.subarray(0, ADDR_STRIDE)], [
    4, 0, 0xca, 0x6c, 198, 18, 0, 1, ...new Array<number>(12).fill(0),
    4, 0, 0, 0, 4, 3, 2, 1, 198, 18, 0, 3, ...new Array<number>(12).fill(0),
  ]);
  assert.deepEqual(readAddr(addrs, 0), { address: '198.18.0.1', port: 51820, local: { address: '198.18.0.3', ifindex: 0x01020304 } });
  writeAddr(addrs, 1, 'fd7a:7d0::1', 1, { address: 'FD7A:7D0:0::2', ifindex: 0xffff_ffff });
  assert.deepEqual(readAddr(addrs, 1), { address: 'fd7a:7d0::1', port: 1, local: { address: 'fd7a:7d0::2', ifindex: 0xffff_ffff } });
  // A v4-mapped local address is family 4, as the remote one.
  writeAddr(addrs, 2, '::ffff:198.18.0.1', 51820, { address: '::ffff:198.18.0.3', ifindex: 0x01020304 });
  assert.equal(addrs[2 * ADDR_STRIDE + 20], 4);
  assert.equal(sameAddr(addrs, 0, addrs, 2), true);
  writeAddr(addrs, 2, '198.18.0.1', 51820, { address: '198.18.0.3', ifindex: 7 });
  assert.equal(sameAddr(addrs, 0, addrs, 2), false, 'another interface');
  writeAddr(addrs, 2, '198.18.0.1', 51820, { address: '198.18.0.2', ifindex: 0x01020304 });
  assert.equal(sameAddr(addrs, 0, addrs, 2), false, 'another local address');
  writeAddr(addrs, 2, '198.18.0.1', 51820);
  assert.equal(sameAddr(addrs, 0, addrs, 2), false, 'a local address against none');
  assert.equal(hasLocal(addrs, 2), false);
  assert.equal(hasLocal(addrs, 0), true);
  clearLocal(addrs, 0);
  assert.equal(hasLocal(addrs, 0), false);
  assert.equal(sameAddr(addrs, 0, addrs, 2), true, 'cleared: only the remote side is left');
  assert.deepEqual(readAddr(addrs, 0), { address: '198.18.0.1', port: 51820 });
  assert.throws(() => writeAddr(addrs, 0, '198.18.0.1', 1, { address: 'nope', ifindex: 0 }), TypeError);
  assert.throws(() => writeAddr(addrs, 0, '198.18.0.1', 1, { address: '198.18.0.3', ifindex: -1 }), RangeError);
  assert.throws(() => writeAddr(addrs, 0, '198.18.0.1', 1, { address: '198.18.0.3', ifindex: 2 ** 32 }), RangeError);
  assert.throws(() => readLocal(addrs, 3), RangeError);
});

test('udpRecv records the local address each datagram was sent to: IPv4, IPv6, and v4-mapped on a dual socket as family 4',
  withSockets([4, 6, 'dual', 'dual'], async ([v4, v6, dual, tx]) => {
    const items: Item[] = [
      { to: { address: '127.0.0.1', port: v4!.port }, size: 10, tag: 1 },
      { to: { address: '127.0.0.2', port: v4!.port }, size: 10, tag: 2 },
      { to: { address: '::1', port: v6!.port }, size: 10, tag: 3 },
      { to: { address: '127.0.0.2', port: dual!.port }, size: 10, tag: 4 },
      { to: { address: '::1', port: dual!.port }, size: 10, tag: 5 },
    ];
    const p = pack(items);
    assert.equal(udpSend(tx!.fd, p.data, p.offsets, p.lengths, p.addrs, items.length), items.length);
    const [at4, at6, atDual] = await Promise.all([receive(v4!.fd, 2), receive(v6!.fd, 1), receive(dual!.fd, 2)]);
    assert.deepEqual(at4!.map((g) => [g.payload[0], g.local]), [[1, { address: '127.0.0.1', ifindex: LO }], [2, { address: '127.0.0.2', ifindex: LO }]]);
    assert.deepEqual(at6!.map((g) => [g.payload[0], g.local]), [[3, { address: '::1', ifindex: LO }]]);
    assert.deepEqual(atDual!.map((g) => [g.payload[0], g.local]), [[4, { address: '127.0.0.2', ifindex: LO }], [5, { address: '::1', ifindex: LO }]]);
  }));

test('udpSend sends from the record\'s local address (IPv4 and dual sockets), and a reply to a received record goes back from where it came',
  withSockets([4, 'dual', 'dual', 4], async ([tx4, txDual, rx, server]) => {
    const to = { address: '127.0.0.1', port: rx!.port };
    for (const tx of [tx4!, txDual!]) {
      const items: Item[] = [
        { to, local: { address: '127.0.0.2', ifindex: 0 }, size: 20, tag: 1 },
        { to, size: 20, tag: 2 },
        { to, local: { address: '127.0.0.3', ifindex: LO }, size: 20, tag: 3 },
      ];
      const p = pack(items);
      const status = new Int32Array(items.length).fill(1);
      assert.equal(udpSend(tx.fd, p.data, p.offsets, p.lengths, p.addrs, items.length, status), items.length);
      assert.deepEqual([...status], [0, 0, 0]);
      const got = await receive(rx!.fd, 3);
      // Without a local side the routing table picks 127.0.0.1 for 127.0.0.1.
      assert.deepEqual(got.map((g) => [g.payload[0], g.address, g.port]), [[1, '127.0.0.2', tx.port], [2, '127.0.0.1', tx.port], [3, '127.0.0.3', tx.port]]);
    }
    // The server receives on 127.0.0.4 and answers with the record it received: from 127.0.0.4.
    const ask = pack([{ to: { address: '127.0.0.4', port: server!.port }, size: 5, tag: 9 }]);
    assert.equal(udpSend(rx!.fd, ask.data, ask.offsets, ask.lengths, ask.addrs, 1), 1);
    const data = new Uint8Array(2048);
    const offsets = new Uint32Array(1);
    const lengths = new Uint32Array(1);
    const addrs = new Uint8Array(ADDR_STRIDE);
    let n = 0;
    for (let tries = 0; tries < 300 && n === 0; tries++) {
      n = udpRecv(server!.fd, data, offsets, lengths, addrs, 1, 2048);
      if (n === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(n, 1);
    assert.equal(udpSend(server!.fd, data, offsets, lengths, addrs, 1), 1);
    const reply = await receive(rx!.fd, 1);
    assert.deepEqual(reply.map((g) => [g.address, g.port, g.payload[0]]), [['127.0.0.4', server!.port, 9]]);
  }));

test('udpSend with an IPv6 local address: sent from ::1; one this host does not have is refused (EINVAL; IPv4: EINVAL or ENETUNREACH)',
  withSockets([6, 'dual', 6, 'dual'], async ([tx6, txDual, rx6, rx4]) => {
    for (const tx of [tx6!, txDual!]) {
      const items: Item[] = [
        { to: { address: '::1', port: rx6!.port }, local: { address: '::1', ifindex: LO }, size: 30, tag: 1 },
        { to: { address: '::1', port: rx6!.port }, local: { address: GONE6, ifindex: LO }, size: 30, tag: 2 },
        { to: { address: '::1', port: rx6!.port }, size: 30, tag: 3 },
      ];
      const p = pack(items);
      const status = new Int32Array(items.length).fill(1);
      assert.equal(udpSend(tx.fd, p.data, p.offsets, p.lengths, p.addrs, items.length, status), items.length);
      assert.deepEqual([...status], [0, -E.EINVAL, 0]);
      const got = await receive(rx6!.fd, 2);
      assert.deepEqual(got.map((g) => [g.payload[0], g.address]), [[1, '::1'], [3, '::1']]);
    }
    const p = pack([{ to: { address: '127.0.0.1', port: rx4!.port }, local: { address: GONE4, ifindex: 0 }, size: 30, tag: 4 }]);
    const status = new Int32Array(1).fill(1);
    assert.equal(udpSend(txDual!.fd, p.data, p.offsets, p.lengths, p.addrs, 1, status), 1);
    // EINVAL on older kernels, ENETUNREACH since the IPv4 route lookup says so for a non-local source.
    assert.ok(status[0] === -E.EINVAL || status[0] === -E.ENETUNREACH, `status ${status[0]}`);
  }));

test('GSO: a run of equal datagrams to one peer is split where the local address changes, each part sent from its own',
  withSockets(['dual', 4], async ([tx, rx]) => {
    assert.ok(tx!.offloads.gso, 'this kernel has UDP_SEGMENT');
    const to = { address: '127.0.0.1', port: rx!.port };
    const items: Item[] = [];
    for (let i = 0; i < 12; i++) items.push({ to, local: { address: i < 5 ? '127.0.0.2' : i < 9 ? '127.0.0.3' : '127.0.0.2', ifindex: LO }, size: 100, tag: i });
    const p = pack(items);
    const stats = udpSendStats();
    const status = new Int32Array(items.length).fill(1);
    assert.equal(udpSend(tx!.fd, p.data, p.offsets, p.lengths, p.addrs, items.length, status, UDP_GSO_IPV4 | UDP_GSO_IPV6, stats), items.length);
    assert.deepEqual([...status], new Array<number>(12).fill(0));
    assert.deepEqual([...stats.subarray(0, 2)], [3, 12], 'three GSO messages: 5 + 4 + 3 datagrams');
    const got = await receive(rx!.fd, 12);
    assert.deepEqual(got.map((g) => [g.payload[0], g.address, g.payload.length]), items.map((it) => [it.tag, it.local!.address, 100]));
  }));

function port(socket: UdpSocket, gone: Uint8Array[], gso: boolean, counters = new OffloadCounters()): UdpPort {
  return new UdpPort({
    socket, settings: { ...ALL_OFFLOADS, 'udp-gso': gso }, counters, log: new Logger('test', 'silent'), slots: 64,
    onSourceGone: (addrs, i) => gone.push(addrs.slice(i * ADDR_STRIDE, (i + 1) * ADDR_STRIDE)),
  });
}

function batchOf(items: readonly Item[]): PacketBatch {
  const batch = new PacketBatch(64, 2048);
  batch.resetOffsets(0);
  items.forEach((it, i) => {
    batch.data.fill(it.tag, batch.offsets[i]!, batch.offsets[i]! + it.size);
    batch.lengths[i] = it.size;
    writeAddr(batch.addrs, i, it.to.address, it.to.port, it.local);
  });
  batch.count = items.length;
  return batch;
}

for (const gso of [false, true]) {
  test(`UdpPort: a datagram whose local address is gone is resent from the routing table's choice, reported once and counted (GSO ${gso ? 'on' : 'off'})`,
    withSockets(['dual', 4], async ([tx, rx]) => {
      const gone: Uint8Array[] = [];
      const counters = new OffloadCounters();
      const udp = port(tx!, gone, gso, counters);
      try {
        const to = { address: '127.0.0.1', port: rx!.port };
        const items: Item[] = [
          { to, local: { address: '127.0.0.2', ifindex: LO }, size: 200, tag: 0 },
          { to, local: { address: GONE4, ifindex: LO }, size: 200, tag: 1 },
          { to, local: { address: GONE4, ifindex: LO }, size: 200, tag: 2 },
          { to, local: { address: GONE4, ifindex: LO }, size: 200, tag: 3 },
          { to, local: { address: '127.0.0.3', ifindex: LO }, size: 200, tag: 4 },
          { to, size: 200, tag: 5 },
        ];
        const batch = batchOf(items);
        assert.equal(udp.send(batch), 0, 'nothing failed');
        const got = await receive(rx!.fd, items.length);
        assert.deepEqual(got.map((g) => [g.payload[0], g.address]).sort((a, b) => a[0]! < b[0]! ? -1 : 1),
          [[0, '127.0.0.2'], [1, '127.0.0.1'], [2, '127.0.0.1'], [3, '127.0.0.1'], [4, '127.0.0.3'], [5, '127.0.0.1']]);
        assert.equal(gone.length, 1, 'reported once per address and send');
        assert.deepEqual(readLocal(gone[0]!, 0), { address: GONE4, ifindex: LO });
        const fallbacks = counters.snapshot().fallbacks as Record<string, number>;
        assert.equal(fallbacks.sticky_source_cleared, 3);
        // The caller's batch keeps its records: only the resend copies lose the local side.
        assert.deepEqual(readLocal(batch.addrs, 1), { address: GONE4, ifindex: LO });
      } finally {
        udp.close();
      }
    }));
}

test('UdpPort: a datagram refused for another reason is not resent without its source', withSockets([4], async ([tx]) => {
  const gone: Uint8Array[] = [];
  const counters = new OffloadCounters();
  const udp = port(tx!, gone, false, counters);
  try {
    // An IPv6 record on an IPv4 socket: EAFNOSUPPORT, whatever its local side.
    const batch = batchOf([{ to: { address: '::1', port: 9 }, local: { address: '::1', ifindex: LO }, size: 10, tag: 0 }]);
    assert.equal(udp.send(batch), 1);
    assert.equal(gone.length, 0);
    assert.equal((counters.snapshot().fallbacks as Record<string, number>).sticky_source_cleared, undefined);
  } finally {
    udp.close();
  }
}));
