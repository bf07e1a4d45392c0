// UDP GSO (UDP_SEGMENT) and GRO (UDP_GRO) on loopback, where both work (127.0.0.1
// and ::1 in the root namespace), and the kernel's refusals of a GSO message in two
// namespaces tdr-… joined by a veth (MTU 1280; TX checksum offload off), made and
// removed here. Every byte, length, order and source address is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { ADDR_STRIDE, readAddr, writeAddr } from '../../src/pipeline/address.js';
import { rxqDropsSince, UDP_RECV_RXQ_OVERFLOW_RAW, UDP_RECV_STAT_NAMES, UDP_SEND_STAT_NAMES, udpRecvStats, udpSendStats } from '../../src/offload/udp-stats.js';
import { UDP_GRO_STATE_WORDS, UDP_GSO_IPV4, UDP_GSO_IPV6, udpGroBuffers, udpGroStashed, udpOpen, udpRecv, udpSend, type UdpGroBuffers, type UdpSocket } from '../../src/conn/udp.js';
import { closeFd } from '../../src/io/fd.js';
import { histogramNames } from '../../src/offload/histogram.js';
import { FdWatcher } from '../../src/io/watch.js';
import { networkTestsUnavailable, run, TwoHosts } from '../helpers/netns.js';
import { prng } from '../helpers/prng.js';

const E = constants.errno;
const UDP_URL = new URL('../../src/conn/udp.js', import.meta.url).href;
const ADDRESS_URL = new URL('../../src/pipeline/address.js', import.meta.url).href;
const UDP_STATS_URL = new URL('../../src/offload/udp-stats.js', import.meta.url).href;

interface Dest {
  address: string;
  port: number;
}

/** One datagram to send: `size` seeded bytes to `to`. */
interface Item {
  to: Dest;
  size: number;
  seed: number;
}

function payload(seed: number, size: number): Uint8Array {
  const rnd = prng(seed);
  const p = new Uint8Array(size);
  for (let k = 0; k < size; k++) p[k] = Math.floor(rnd() * 256);
  return p;
}

/** `n` items of `size` bytes to `to`; seeds continue from `seed`. */
function items(to: Dest, n: number, size: number, seed: number): Item[] {
  return Array.from({ length: n }, (_, i) => ({ to, size, seed: seed + i }));
}

/**
 * Packs items into a send arena, each in its own place with gaps in between (GSO
 * scatters from the slots: they need not be contiguous), in a Buffer subarray.
 */
function pack(list: Item[]): { data: Uint8Array; offsets: Uint32Array; lengths: Uint32Array; addrs: Uint8Array } {
  const total = list.reduce((s, it) => s + it.size + 5, 0);
  const data = Buffer.alloc(total + 8).subarray(8);
  const offsets = new Uint32Array(list.length);
  const lengths = new Uint32Array(list.length);
  const addrs = new Uint8Array(list.length * ADDR_STRIDE);
  let at = 0;
  list.forEach((it, i) => {
    data.set(payload(it.seed, it.size), at);
    offsets[i] = at;
    lengths[i] = it.size;
    writeAddr(addrs, i, it.to.address, it.to.port);
    at += it.size + 5;
  });
  return { data, offsets, lengths, addrs };
}

function arena(slots: number, slotSize: number): { data: Uint8Array; offsets: Uint32Array; lengths: Uint32Array; addrs: Uint8Array } {
  // A SharedArrayBuffer view at a non-zero byteOffset, as workers would use.
  const data = new Uint8Array(new SharedArrayBuffer(16 + slots * slotSize), 16, slots * slotSize);
  const offsets = new Uint32Array(slots);
  for (let i = 0; i < slots; i++) offsets[i] = i * slotSize;
  return { data, offsets, lengths: new Uint32Array(slots), addrs: new Uint8Array(slots * ADDR_STRIDE) };
}

interface Received {
  payload: Uint8Array;
  address: string;
  port: number;
}

interface CollectOptions {
  batch?: number;
  capacity?: number;
  gro?: UdpGroBuffers;
  stats?: Float64Array;
  timeoutMs?: number;
  /** Every udpRecv return value, in order. */
  calls?: number[];
}

/**
 * Receives until `expected` datagrams arrived (or the timeout passed), driven by an
 * FdWatcher; after a call that filled every slot it calls again (a GRO stash does not
 * make the fd readable).
 */
function collect(fd: number, expected: number, o: CollectOptions = {}): Promise<Received[]> {
  const batch = o.batch ?? 32;
  const capacity = o.capacity ?? 2048;
  const a = arena(batch, capacity);
  const options = { ...(o.gro ? { gro: o.gro } : {}), ...(o.stats ? { stats: o.stats } : {}) };
  const got: Received[] = [];
  return new Promise((resolve, reject) => {
    const watcher = new FdWatcher(fd, () => {
      try {
        for (let round = 0; round < 10_000; round++) {
          const n = udpRecv(fd, a.data, a.offsets, a.lengths, a.addrs, batch, capacity, options);
          o.calls?.push(n);
          for (let i = 0; i < n; i++) {
            got.push({ payload: a.data.slice(a.offsets[i]!, a.offsets[i]! + a.lengths[i]!), ...readAddr(a.addrs, i) });
          }
          if (n < batch) break;
        }
        if (got.length >= expected) finish();
      } catch (err) {
        finish(err);
      }
    });
    const timer = setTimeout(() => finish(), o.timeoutMs ?? 5000);
    function finish(err?: unknown): void {
      clearTimeout(timer);
      watcher.close();
      if (err !== undefined) reject(err);
      else resolve(got);
    }
    watcher.watch(true, false);
  });
}

/** Every received datagram is the expected item: bytes, order and source. */
function assertReceived(got: Received[], want: Item[], from: Dest, what: string): void {
  assert.equal(got.length, want.length, `${what}: received ${got.length} of ${want.length}`);
  got.forEach((r, i) => {
    assert.equal(r.payload.length, want[i]!.size, `${what}: datagram ${i} length`);
    assert.ok(Buffer.from(r.payload).equals(payload(want[i]!.seed, want[i]!.size)), `${what}: datagram ${i} bytes`);
    assert.deepEqual({ address: r.address, port: r.port }, from, `${what}: datagram ${i} source`);
  });
}

function open(family: 'dual' | 4 | 6, bindAddress?: string, gro = false): UdpSocket {
  return udpOpen({ port: 0, family, gro, ...(bindAddress === undefined ? {} : { bindAddress }) });
}

const dest = (s: UdpSocket, address: string): Dest => ({ address, port: s.port });

test('udpOpen probes the offloads: GSO always here, GRO only when asked for', () => {
  const plain = open(4, '127.0.0.1');
  const gro = open('dual', undefined, true);
  const v6 = open(6, '::1', true);
  try {
    // Linux 6.x: UDP_SEGMENT is readable, UDP_GRO reads back as 1.
    assert.deepEqual(plain.offloads, { gso: true, gro: false });
    assert.deepEqual(gro.offloads, { gso: true, gro: true });
    assert.deepEqual(v6.offloads, { gso: true, gro: true });
    assert.throws(() => udpOpen({ port: 0, family: 4, gro: 1 as unknown as boolean }), TypeError);
    assert.deepEqual([...UDP_SEND_STAT_NAMES], ['gso_sends', 'gso_datagrams', ...histogramNames('udp_send_segments')]);
    assert.deepEqual([...UDP_RECV_STAT_NAMES], [
      'gro_receives', 'gro_datagrams', 'ctrunc_drops', 'rxq_overflow_raw', 'sojourn_newest_ns', 'sojourn_oldest_ns', ...histogramNames('udp_recv_segments'),
    ]);
    assert.deepEqual([...udpRecvStats()], [0, 0, 0, -1, -1, -1, ...new Array(UDP_RECV_STAT_NAMES.length - 6).fill(0)]);
  } finally {
    for (const s of [plain, gro, v6]) closeFd(s.fd);
  }
});

test('GSO send on loopback: runs become one message each, a receiver without GRO gets every datagram in order', async () => {
  const tx = open(4, '127.0.0.1');
  const rxA = open(4, '127.0.0.1');
  const rxB = open(4, '127.0.0.1');
  try {
    const a = dest(rxA, '127.0.0.1');
    const b = dest(rxB, '127.0.0.1');
    // 185 datagrams: more than one sendmmsg call's 128, with a run reaching across.
    const list: Item[] = [
      ...items(a, 40, 1200, 1), { to: a, size: 500, seed: 41 }, // 41 in one message: a short tail ends a run
      ...items(b, 3, 1200, 50), // another peer: a new run
      { to: a, size: 700, seed: 60 }, // alone: the next is longer
      ...items(a, 70, 1000, 100), // 64 + 6: at most 64 segments per message
      ...items(b, 60, 1400, 200), // 46 + 14: 46 * 1400 = 64400 <= 65507 < 47 * 1400; crosses the 128 boundary
      ...items(a, 5, 300, 300), { to: b, size: 300, seed: 305 }, // 5, then 1 plain to another peer
      ...items(a, 2, 100, 400), { to: a, size: 0, seed: 402 }, { to: a, size: 0, seed: 403 }, // an empty tail goes alone
    ];
    assert.equal(list.length, 185);
    const s = pack(list);
    const status = new Int32Array(list.length).fill(7);
    const stats = udpSendStats();
    const arrivingA = collect(rxA.fd, list.filter((it) => it.to === a).length);
    const arrivingB = collect(rxB.fd, list.filter((it) => it.to === b).length);
    assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, list.length, status, UDP_GSO_IPV4, stats), list.length);
    assert.deepEqual([...status], new Array(list.length).fill(0));
    // Messages with UDP_SEGMENT: 41, 3, 64, 6, 46, 14, 5, 2; the rest one datagram each.
    assert.deepEqual([...stats.subarray(0, 2)], [8, 181]);
    assert.deepEqual([...stats.subarray(2)], [list.length - 181, 1, 1, 2, 1, 0, 3, 0, list.length], 'datagrams per message');
    const from = dest(tx, '127.0.0.1');
    assertReceived(await arrivingA, list.filter((it) => it.to === a), from, 'peer A');
    assertReceived(await arrivingB, list.filter((it) => it.to === b), from, 'peer B');

    // gso 0 (and IPv6-only GSO for IPv4 peers) is the plain path: same datagrams, no GSO.
    for (const gso of [0, UDP_GSO_IPV6]) {
      const again = collect(rxA.fd, list.filter((it) => it.to === a).length);
      const againB = collect(rxB.fd, list.filter((it) => it.to === b).length);
      assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, list.length, status, gso, stats), list.length);
      assert.deepEqual([...stats.subarray(0, 2)], [8, 181]);
      assertReceived(await again, list.filter((it) => it.to === a), from, `peer A, gso ${gso}`);
      assertReceived(await againB, list.filter((it) => it.to === b), from, `peer B, gso ${gso}`);
    }
  } finally {
    for (const x of [tx, rxA, rxB]) closeFd(x.fd);
  }
});

test('GSO per family on a dual-stack socket: IPv6 and v4-mapped IPv4 peers', async () => {
  const tx = open('dual');
  const rx6 = open(6, '::1');
  const rx4 = open(4, '127.0.0.1');
  try {
    const to6 = dest(rx6, '::1');
    const to4 = dest(rx4, '127.0.0.1');
    // The largest IPv6 run: 65527 bytes = 64 segments of 1023 + a 55-byte tail... capped
    // at 64 datagrams, so 63 * 1023 + 55 = 64504.
    const list = [...items(to6, 63, 1023, 1), { to: to6, size: 55, seed: 64 }, ...items(to4, 20, 1300, 100)];
    const s = pack(list);
    for (const [gso, expected] of [[UDP_GSO_IPV4 | UDP_GSO_IPV6, [2, 84]], [UDP_GSO_IPV4, [1, 20]], [UDP_GSO_IPV6, [1, 64]]] as const) {
      const stats = udpSendStats();
      const got6 = collect(rx6.fd, 64);
      const got4 = collect(rx4.fd, 20);
      assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, list.length, undefined, gso, stats), list.length);
      assert.deepEqual([...stats.subarray(0, 2)], expected, `gso ${gso}`);
      assertReceived(await got6, list.slice(0, 64), { address: '::1', port: tx.port }, `IPv6, gso ${gso}`);
      assertReceived(await got4, list.slice(64), { address: '127.0.0.1', port: tx.port }, `IPv4, gso ${gso}`);
    }
  } finally {
    for (const x of [tx, rx6, rx4]) closeFd(x.fd);
  }
});

test('GRO receive on loopback: coalesced messages are cut back into slots, the stash carries them across calls', async () => {
  const rx = open(4, '127.0.0.1', true);
  const tx1 = open(4, '127.0.0.1');
  const tx2 = open('dual');
  try {
    assert.equal(rx.offloads.gro, true);
    const to = dest(rx, '127.0.0.1');
    // Four sends from two sources; each GSO run stays one message to a GRO socket.
    const sends: [UdpSocket, Item[]][] = [
      [tx1, [...items(to, 50, 1000, 1), { to, size: 10, seed: 51 }]], // 51 datagrams in one message
      [tx2, [{ to, size: 100, seed: 60 }, { to, size: 200, seed: 61 }, { to, size: 300, seed: 62 }]], // three plain
      [tx1, items(to, 64, 500, 100)],
      [tx2, items(to, 20, 1400, 200)],
    ];
    const want = sends.flatMap(([, l]) => l);
    const sources = sends.flatMap(([s, l]) => l.map(() => ({ address: '127.0.0.1', port: s.port })));
    for (const [s, l] of sends) {
      const p = pack(l);
      assert.equal(udpSend(s.fd, p.data, p.offsets, p.lengths, p.addrs, l.length, undefined, UDP_GSO_IPV4), l.length);
    }
    await new Promise((r) => setTimeout(r, 20)); // all queued, so the call pattern is fixed
    const gro = udpGroBuffers(4);
    const stats = udpRecvStats();
    const calls: number[] = [];
    // 16 slots per call: the 51- and 64-datagram messages are handed out over 4 calls each.
    const got = await collect(rx.fd, want.length, { batch: 16, gro, stats, calls });
    assert.equal(got.length, want.length);
    got.forEach((r, i) => {
      assert.equal(r.payload.length, want[i]!.size, `datagram ${i} length`);
      assert.ok(Buffer.from(r.payload).equals(payload(want[i]!.seed, want[i]!.size)), `datagram ${i} bytes`);
      assert.deepEqual({ address: r.address, port: r.port }, sources[i], `datagram ${i} source`);
    });
    assert.deepEqual([...stats.subarray(0, 4)], [3, 51 + 64 + 20, 0, -1]);
    // Datagrams per message: 51 and 64 (<= 64), 20 (<= 32), and 3 alone.
    assert.deepEqual([...stats.subarray(6)], [3, 0, 0, 0, 0, 1, 2, 0, 138]);
    // 138 datagrams: 8 full calls, then 10, then empty calls (the stash is gone).
    assert.deepEqual(calls.filter((n) => n > 0), [16, 16, 16, 16, 16, 16, 16, 16, 10]);
    assert.equal(udpGroStashed(gro), false);
    assert.deepEqual([...gro.state.subarray(0, 4)], [0, 0, 0, 0]); // the stash header: empty
  } finally {
    for (const x of [rx, tx1, tx2]) closeFd(x.fd);
  }
});

test('GRO receive one slot at a time, a datagram longer than the capacity, and the stash surviving an empty queue', async () => {
  const rx = open(6, '::1', true);
  const tx = open(6, '::1');
  try {
    const to = dest(rx, '::1');
    const list = [...items(to, 5, 1200, 1), { to, size: 50, seed: 6 }];
    const p = pack(list);
    assert.equal(udpSend(tx.fd, p.data, p.offsets, p.lengths, p.addrs, list.length, undefined, UDP_GSO_IPV6), list.length);
    await new Promise((r) => setTimeout(r, 20));
    const gro = udpGroBuffers(1);
    const stats = udpRecvStats();
    const a = arena(1, 1500);
    const got: number[] = [];
    for (let i = 0; i < 6; i++) {
      assert.equal(udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 1, 1000, { gro, stats }), 1);
      got.push(a.lengths[0]!);
      // The local side survives the stash too (lo is ifindex 1 in every namespace).
      assert.deepEqual(readAddr(a.addrs, 0), { address: '::1', port: tx.port, local: { address: '::1', ifindex: 1 } });
      assert.equal(udpGroStashed(gro), i < 5);
    }
    // Capacity 1000: the 1200-byte datagrams are dropped one by one (length 0), the tail fits.
    assert.deepEqual(got, [0, 0, 0, 0, 0, 50]);
    assert.ok(Buffer.from(a.data.subarray(0, 50)).equals(payload(6, 50)));
    assert.equal(udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 1, 1000, { gro, stats }), 0);
    assert.deepEqual([...stats.subarray(0, 4)], [1, 6, 0, -1]);
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

/**
 * Returns once at least `ms` of real time has passed (a timer alone may fire up to a
 * fraction of a millisecond early: libuv measures from its cached loop time).
 */
async function atLeast(ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) await new Promise((r) => setTimeout(r, 1));
}

test('the receive stats say how long the newest and the oldest datagram waited in the socket (SO_TIMESTAMPNS), with and without gro', async () => {
  const NEWEST = UDP_RECV_STAT_NAMES.indexOf('sojourn_newest_ns');
  const OLDEST = UDP_RECV_STAT_NAMES.indexOf('sojourn_oldest_ns');
  for (const withGro of [false, true]) {
    const rx = open(4, '127.0.0.1', withGro);
    const tx = open(4, '127.0.0.1');
    try {
      const to = dest(rx, '127.0.0.1');
      const early = pack(items(to, 3, 200, 1));
      assert.equal(udpSend(tx.fd, early.data, early.offsets, early.lengths, early.addrs, 3, undefined, UDP_GSO_IPV4), 3);
      await atLeast(40);
      const late = pack([{ to, size: 100, seed: 9 }]);
      assert.equal(udpSend(tx.fd, late.data, late.offsets, late.lengths, late.addrs, 1), 1);
      await atLeast(5);
      const stats = udpRecvStats();
      const opts = withGro ? { gro: udpGroBuffers(4) } : {};
      const a = arena(8, 2048);
      assert.equal(udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 8, 2048, { ...opts, stats }), 4);
      const [newest, oldest] = [stats[NEWEST]!, stats[OLDEST]!];
      // The early ones were queued at least 40 ms before the late one, which waited at least 5 ms.
      assert.ok(oldest >= 45e6, `the oldest waited ${oldest} ns`);
      assert.ok(newest >= 5e6 && oldest - newest >= 40e6, `the newest waited ${newest} ns, the oldest ${oldest} ns`);
      assert.equal(udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 8, 2048, { ...opts, stats }), 0);
      assert.deepEqual([stats[NEWEST], stats[OLDEST]], [-1, -1], 'a call that took nothing from the kernel reports no wait');
      if (withGro) {
        // Datagrams cut from the stash were timed when the kernel handed them over, not again.
        assert.equal(udpSend(tx.fd, early.data, early.offsets, early.lengths, early.addrs, 3, undefined, UDP_GSO_IPV4), 3);
        await atLeast(5);
        assert.equal(udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 1, 2048, { ...opts, stats }), 1);
        assert.ok(stats[NEWEST]! >= 5e6, 'timed when taken from the kernel');
        assert.equal(udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 1, 2048, { ...opts, stats }), 1);
        assert.deepEqual([stats[NEWEST], stats[OLDEST]], [-1, -1], 'cut from the stash');
      }
    } finally {
      for (const x of [rx, tx]) closeFd(x.fd);
    }
  }
});

test('a GRO socket read without the gro option: coalesced messages get length 0; gro on a plain socket works', async () => {
  const rxGro = open(4, '127.0.0.1', true);
  const rxPlain = open(4, '127.0.0.1');
  const tx = open(4, '127.0.0.1');
  try {
    const list = [...items(dest(rxGro, '127.0.0.1'), 4, 100, 1), { to: dest(rxGro, '127.0.0.1'), size: 100, seed: 9 }];
    const p = pack(list);
    assert.equal(udpSend(tx.fd, p.data, p.offsets, p.lengths, p.addrs, 5, undefined, UDP_GSO_IPV4), 5);
    const got = await collect(rxGro.fd, 1);
    assert.deepEqual(got.map((r) => r.payload.length), [0]); // 5 datagrams in one message, no slot for it

    const q = pack(items(dest(rxPlain, '127.0.0.1'), 10, 300, 20));
    assert.equal(udpSend(tx.fd, q.data, q.offsets, q.lengths, q.addrs, 10, undefined, UDP_GSO_IPV4), 10);
    const stats = udpRecvStats();
    const plain = await collect(rxPlain.fd, 10, { gro: udpGroBuffers(2), stats, batch: 4 });
    assertReceived(plain, items(dest(rxPlain, '127.0.0.1'), 10, 300, 20), dest(tx, '127.0.0.1'), 'plain socket, gro option');
    assert.deepEqual([...stats.subarray(0, 4)], [0, 0, 0, -1]); // the kernel split them: no GRO message
  } finally {
    for (const x of [rxGro, rxPlain, tx]) closeFd(x.fd);
  }
});

test('SO_RXQ_OVFL: the socket drop count shows in stats, with and without gro', async () => {
  for (const withGro of [false, true]) {
    // The smallest receive buffer the kernel allows holds a few datagrams only.
    const rx = udpOpen({ port: 0, family: 4, bindAddress: '127.0.0.1', receiveBuffer: 1, gro: withGro });
    const tx = open(4, '127.0.0.1');
    try {
      const to = dest(rx, '127.0.0.1');
      const flood = pack(items(to, 100, 1000, 1));
      assert.equal(udpSend(tx.fd, flood.data, flood.offsets, flood.lengths, flood.addrs, 100), 100);
      await new Promise((r) => setTimeout(r, 20));
      const stats = udpRecvStats();
      const opts = withGro ? { gro: udpGroBuffers(2) } : {};
      const a = arena(128, 2048);
      const first = udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 128, 2048, { ...opts, stats });
      assert.ok(first > 0 && first < 100, `${first} of 100 fit`);
      // Datagrams queued before the first drop carry no count; the next one does.
      const one = pack(items(to, 1, 10, 500));
      assert.equal(udpSend(tx.fd, one.data, one.offsets, one.lengths, one.addrs, 1), 1);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(udpRecv(rx.fd, a.data, a.offsets, a.lengths, a.addrs, 128, 2048, { ...opts, stats }), 1);
      assert.equal(stats[UDP_RECV_RXQ_OVERFLOW_RAW], 100 - first, `gro ${withGro}`);
      assert.equal(rxqDropsSince(-1, stats[UDP_RECV_RXQ_OVERFLOW_RAW]!), 100 - first);
      assert.deepEqual([stats[0], stats[1], stats[2]], [0, 0, 0]);
    } finally {
      closeFd(rx.fd);
      closeFd(tx.fd);
    }
  }
  assert.equal(rxqDropsSince(-1, -1), 0);
  assert.equal(rxqDropsSince(10, 15), 5);
  assert.equal(rxqDropsSince(0xffff_fffe, 3), 5); // the kernel's u32 wrapped
});

test('a GSO message the kernel refuses fails all its datagrams (one status per message); the rest of the batch goes', async () => {
  const tx = open(4, '127.0.0.1');
  const rx = open(4, '127.0.0.1');
  const v6only = open(6);
  try {
    const to = dest(rx, '127.0.0.1');
    const list = [
      ...items(to, 3, 100, 1),
      ...items({ address: '::1', port: rx.port }, 4, 200, 10), // IPv6 on an IPv4 socket: EAFNOSUPPORT
      ...items(to, 2, 300, 20),
      ...items({ address: '0.0.0.0', port: 0 }, 3, 50, 30), // family 0 below: never coalesced
      ...items({ address: '127.0.0.1', port: 0 }, 5, 60, 40), // port 0: EINVAL
      ...items(to, 4, 400, 50),
    ];
    const s = pack(list);
    s.addrs.fill(0, 9 * ADDR_STRIDE, 12 * ADDR_STRIDE);
    const status = new Int32Array(list.length).fill(1);
    const stats = udpSendStats();
    const arriving = collect(rx.fd, 9);
    assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, list.length, status, UDP_GSO_IPV4 | UDP_GSO_IPV6, stats), list.length);
    assert.deepEqual([...status], [
      0, 0, 0,
      ...new Array(4).fill(-E.EAFNOSUPPORT!),
      0, 0,
      ...new Array(3).fill(-E.EDESTADDRREQ!),
      ...new Array(5).fill(-E.EINVAL!),
      0, 0, 0, 0,
    ]);
    assert.deepEqual([...stats.subarray(0, 2)], [3, 9]); // only the messages that went
    assertReceived(await arriving, [...list.slice(0, 3), ...list.slice(7, 9), ...list.slice(17)], dest(tx, '127.0.0.1'), 'the rest');

    // IPv4 peers on an IPv6-only socket: ENETUNREACH for the whole message.
    const t = pack([...items(to, 3, 100, 60), ...items({ address: '::1', port: rx.port }, 2, 100, 70)]);
    const st = new Int32Array(5);
    assert.equal(udpSend(v6only.fd, t.data, t.offsets, t.lengths, t.addrs, 5, st, UDP_GSO_IPV4 | UDP_GSO_IPV6), 5);
    assert.deepEqual([...st], [-E.ENETUNREACH!, -E.ENETUNREACH!, -E.ENETUNREACH!, 0, 0]);
  } finally {
    for (const x of [tx, rx, v6only]) closeFd(x.fd);
  }
});

test('malformed offload arguments throw TypeError or RangeError before any system call', async () => {
  const rx = open(4, '127.0.0.1', true);
  const tx = open(4, '127.0.0.1');
  try {
    const p = pack(items(dest(rx, '127.0.0.1'), 1, 64, 1));
    assert.equal(udpSend(tx.fd, p.data, p.offsets, p.lengths, p.addrs, 1), 1);
    await new Promise((r) => setTimeout(r, 20));
    const a = arena(4, 2048);
    const { data, offsets, lengths, addrs } = a;
    const recv = (options: unknown): number => (udpRecv as (...args: unknown[]) => number)(rx.fd, data, offsets, lengths, addrs, 4, 2048, options);
    const send = (...rest: unknown[]): number => (udpSend as (...args: unknown[]) => number)(tx.fd, p.data, p.offsets, p.lengths, p.addrs, 1, undefined, ...rest);
    const gro = udpGroBuffers(2);
    assert.throws(() => recv(5), TypeError);
    assert.throws(() => recv({ stats: new Float32Array(4) }), TypeError);
    assert.throws(() => recv({ stats: new Float64Array(3) }), RangeError);
    assert.throws(() => recv({ gro: true }), TypeError);
    assert.throws(() => recv({ gro: { state: gro.state } }), TypeError);
    assert.throws(() => recv({ gro: { scratch: gro.scratch } }), TypeError);
    assert.throws(() => recv({ gro: { scratch: gro.scratch, state: new Int32Array(UDP_GRO_STATE_WORDS) } }), TypeError);
    assert.throws(() => recv({ gro: { scratch: gro.scratch, state: new Uint32Array(UDP_GRO_STATE_WORDS - 1) } }), RangeError);
    for (const bytes of [0, 65535, 65537, 65 * 65536]) {
      assert.throws(() => recv({ gro: { scratch: new Uint8Array(bytes), state: gro.state } }), RangeError, `scratch of ${bytes}`);
    }
    const corrupt = new Uint32Array(UDP_GRO_STATE_WORDS);
    corrupt[0] = 3; // three messages stashed in a scratch of two
    assert.throws(() => recv({ gro: { scratch: gro.scratch, state: corrupt } }), /options.gro.state is not a stash/);
    corrupt.set([1, 2, 0]); // next beyond the messages
    assert.throws(() => recv({ gro: { scratch: gro.scratch, state: corrupt } }), RangeError);
    assert.throws(() => recv({ get gro() { throw new Error('getter'); } }), /getter/);
    assert.throws(() => send(4), RangeError);
    assert.throws(() => send(-1), RangeError);
    assert.throws(() => send(1.5), RangeError);
    assert.throws(() => send('1'), TypeError);
    assert.throws(() => send(1, new Float64Array(1)), RangeError);
    assert.throws(() => send(1, new Uint32Array(2)), TypeError);
    assert.throws(() => send(1, [0, 0]), TypeError);
    // Nothing was consumed: the datagram is still there, and null options are none.
    assert.equal(recv(null), 1);
    assert.equal(lengths[0], 64);
    assert.throws(() => udpGroBuffers(0), RangeError);
    assert.throws(() => udpGroBuffers(65), RangeError);
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

// ---- refusals by the kernel, in namespaces ----

// Run inside namespace A: sends one batch with GSO, then resends what failed without
// it (the caller's fallback), and prints both status arrays as JSON.
const SENDER = `
  import { udpOpen, udpSend } from ${JSON.stringify(UDP_URL)};
  import { writeAddr, ADDR_STRIDE } from ${JSON.stringify(ADDRESS_URL)};
  import { udpSendStats } from ${JSON.stringify(UDP_STATS_URL)};
  const [to, port, spec] = [process.argv[1], Number(process.argv[2]), JSON.parse(process.argv[3])];
  const s = udpOpen({ port: 0, family: 4 });
  const sizes = spec.map(([size]) => size);
  const total = sizes.reduce((a, b) => a + b, 0);
  const data = new Uint8Array(total), offsets = new Uint32Array(sizes.length), lengths = new Uint32Array(sizes.length);
  const addrs = new Uint8Array(sizes.length * ADDR_STRIDE);
  let at = 0;
  spec.forEach(([size, tag], i) => {
    for (let k = 0; k < size; k++) data[at + k] = (tag + k) & 0xff;
    offsets[i] = at; lengths[i] = size; at += size;
    writeAddr(addrs, i, to, port);
  });
  const status = new Int32Array(sizes.length).fill(1);
  const stats = udpSendStats();
  const sent = udpSend(s.fd, data, offsets, lengths, addrs, sizes.length, status, 1, stats);
  const failed = [...status.keys()].filter((i) => status[i] !== 0);
  const r = { offsets: Uint32Array.from(failed.map((i) => offsets[i])), lengths: Uint32Array.from(failed.map((i) => lengths[i])) };
  const retry = new Int32Array(failed.length).fill(1);
  const resent = udpSend(s.fd, data, r.offsets, r.lengths, addrs, failed.length, retry);
  console.log(JSON.stringify({ sent, status: [...status], stats: [...stats], resent, retry: [...retry] }));
`;

// Run inside namespace B: receives `expect` datagrams (or gives up after 10 s) and
// prints [length, tag] for each (byte k is tag + k; -2 if any byte is wrong).
const RECEIVER = `
  import { udpOpen, udpRecv } from ${JSON.stringify(UDP_URL)};
  import { ADDR_STRIDE } from ${JSON.stringify(ADDRESS_URL)};
  import { FdWatcher } from ${JSON.stringify(new URL('../../src/io/watch.js', import.meta.url).href)};
  const [bind, expect] = [process.argv[1], Number(process.argv[2])];
  const s = udpOpen({ port: 0, family: 4, bindAddress: bind });
  const slots = 32, cap = 2048;
  const data = new Uint8Array(slots * cap), offsets = new Uint32Array(slots).map((_, i) => i * cap);
  const lengths = new Uint32Array(slots), addrs = new Uint8Array(slots * ADDR_STRIDE);
  const got = [];
  const done = () => { w.close(); console.log(JSON.stringify(got)); process.exit(0); };
  const w = new FdWatcher(s.fd, () => {
    let n;
    while ((n = udpRecv(s.fd, data, offsets, lengths, addrs, slots, cap)) > 0) {
      for (let i = 0; i < n; i++) {
        const len = lengths[i], p = data.subarray(offsets[i], offsets[i] + len);
        const tag = len === 0 ? -1 : p[0];
        got.push([len, p.every((b, k) => b === ((tag + k) & 0xff)) ? tag : -2]);
      }
    }
    if (got.length >= expect) done();
  });
  w.watch(true, false);
  setTimeout(done, 10_000).unref();
  console.log(JSON.stringify({ port: s.port }));
`;

test('in namespaces: a GSO message over an MTU 1280 veth (EINVAL/EMSGSIZE) and without TX checksum offload (EIO); the rest goes', { skip: networkTestsUnavailable(['ip', 'ethtool']) }, async () => {
  const hosts = new TwoHosts('uo');
  try {
    const vethOf = (ns: string): string => /^\d+:\s+([^@:\s]+)/.exec(hosts.exec(ns, 'ip', ['-o', 'link', 'show', 'type', 'veth']))![1]!;
    const [vethA, vethB] = [vethOf(hosts.a), vethOf(hosts.b)];
    hosts.exec(hosts.a, 'ip', ['link', 'set', vethA, 'mtu', '1280']);
    hosts.exec(hosts.b, 'ip', ['link', 'set', vethB, 'mtu', '1280']);
    hosts.exec(hosts.a, 'ping', ['-c', '1', '-W', '2', hosts.underlayB]); // resolve the neighbour first

    // [size, tag] per datagram. Sizes only grow between runs, so no datagram joins the
    // run before it as a short tail: 100 alone, 4 x 1000, 3 x 1400, 1450 alone.
    const phase1: [number, number][] = [[100, 1], [1000, 2], [1000, 3], [1000, 4], [1000, 5], [1400, 6], [1400, 7], [1400, 8], [1450, 9]];
    const phase2: [number, number][] = [[1000, 10], [1000, 11], [1000, 12], [1000, 13], [1200, 14]];
    const receiver = hosts.spawn(hosts.b, process.execPath, ['--input-type=module', '-e', RECEIVER, hosts.underlayB, String(phase1.length + phase2.length)]);
    const exited = new Promise<void>((resolve) => receiver.once('exit', () => resolve()));
    let out = '';
    receiver.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    const lines: string[] = [];
    const ready = new Promise<number>((resolve, reject) => {
      let buf = '';
      receiver.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (lines.length === 1) resolve((JSON.parse(lines[0]!) as { port: number }).port);
        }
      });
      receiver.once('exit', () => reject(new Error(`receiver exited early: ${out}`)));
    });
    const port = await ready;
    const send = (spec: [number, number][]): { sent: number; status: number[]; stats: number[]; resent: number; retry: number[] } =>
      JSON.parse(hosts.exec(hosts.a, process.execPath, ['--input-type=module', '-e', SENDER, hosts.underlayB, String(port), JSON.stringify(spec)]));

    // 1400 + 28 > 1280: the kernel refuses the GSO message; plain, it would be fragmented.
    const r1 = send(phase1);
    assert.equal(r1.sent, phase1.length);
    const tooBig = r1.status[5]!;
    assert.ok(tooBig === -E.EINVAL! || tooBig === -E.EMSGSIZE!, `status ${tooBig}`);
    assert.deepEqual(r1.status, [0, 0, 0, 0, 0, tooBig, tooBig, tooBig, 0]);
    assert.deepEqual(r1.stats.slice(0, 2), [1, 4]);
    assert.deepEqual([r1.resent, r1.retry], [3, [0, 0, 0]]);

    // No TX checksum offload on the way out: EIO for the GSO message only, before Linux
    // 6.11; since then (10154dbded6d, "udp: Allow GSO transmit from devices with no
    // checksum offload") the kernel checksums in software and the message goes.
    hosts.exec(hosts.a, 'ethtool', ['-K', vethA, 'tx-checksumming', 'off']);
    const r2 = send(phase2);
    const noCsum = r2.status[0]!;
    assert.ok(noCsum === -E.EIO! || noCsum === 0, `status ${noCsum}`);
    assert.deepEqual(r2.status, [noCsum, noCsum, noCsum, noCsum, 0]);
    const refused = noCsum !== 0;
    assert.deepEqual(r2.stats.slice(0, 2), refused ? [0, 0] : [1, 4]);
    assert.deepEqual([r2.resent, r2.retry], refused ? [4, [0, 0, 0, 0]] : [0, []]);

    await exited;
    const got = JSON.parse(lines[1] ?? '[]') as [number, number][];
    // In order of sending: what went at once, then the resent ones.
    const expected = [
      ...phase1.slice(0, 5), phase1[8]!, ...phase1.slice(5, 8),
      ...(refused ? [phase2[4]!, ...phase2.slice(0, 4)] : phase2),
    ];
    assert.deepEqual(got, expected, out);
  } finally {
    hosts.destroy();
  }
  // Nothing left behind.
  assert.doesNotMatch(run('ip', ['netns', 'list']), new RegExp(hosts.a));
});
