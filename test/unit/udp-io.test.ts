// UDP batch I/O and FdWatcher on loopback (127.0.0.1 and ::1 in the root namespace:
// plain UDP, no interfaces made). Every byte and every source address is checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { constants } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ADDR_ECN, ADDR_STRIDE, readAddr, sameAddr, writeAddr } from '../../src/pipeline/address.js';
import { udpOpen, udpRecv, udpSend, udpSetFwmark, type UdpSocket } from '../../src/conn/udp.js';
import { closeFd } from '../../src/io/fd.js';
import { tunRead, tunWrite } from '../../src/tun/tun.js';
import { FdWatcher } from '../../src/io/watch.js';
import { prng } from '../helpers/prng.js';
import { waitFor } from '../helpers/wait.js';

const E = constants.errno;
const UDP_URL = new URL('../../src/conn/udp.js', import.meta.url).href;
const ADDRESS_URL = new URL('../../src/pipeline/address.js', import.meta.url).href;
const WATCH_URL = new URL('../../src/io/watch.js', import.meta.url).href;
const FD_URL = new URL('../../src/io/fd.js', import.meta.url).href;


/** A batch arena; shared + offset exercise SharedArrayBuffer views at a non-zero byteOffset. */
function arena(slots: number, slotSize: number, shared: boolean): { data: Uint8Array; offsets: Uint32Array; lengths: Uint32Array; addrs: Uint8Array } {
  const lead = 24;
  const bytes = lead + slots * slotSize;
  const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  const data = new Uint8Array(buffer, lead, slots * slotSize);
  const offsets = new Uint32Array(slots);
  for (let i = 0; i < slots; i++) offsets[i] = i * slotSize;
  return { data, offsets, lengths: new Uint32Array(slots), addrs: new Uint8Array(slots * ADDR_STRIDE) };
}

function open(family: 'dual' | 4 | 6, bindAddress?: string): UdpSocket {
  return udpOpen({ port: 0, family, ...(bindAddress === undefined ? {} : { bindAddress }) });
}

interface Received {
  payload: Uint8Array;
  address: string;
  family: number;
  port: number;
  ecn: number;
}

/**
 * Receives until `expected` datagrams arrived (or `timeoutMs` passed), in batches of
 * `batch` slots, each wakeup driven by an FdWatcher.
 */
function collect(fd: number, expected: number, capacity: number, batch = 32, timeoutMs = 5000): Promise<Received[]> {
  const a = arena(batch, capacity, true);
  const got: Received[] = [];
  return new Promise((resolve, reject) => {
    const watcher = new FdWatcher(fd, (readable) => {
      try {
        assert.equal(readable, true);
        for (let round = 0; round < 100; round++) {
          const n = udpRecv(fd, a.data, a.offsets, a.lengths, a.addrs, batch, capacity);
          for (let i = 0; i < n; i++) {
            const { address, port } = readAddr(a.addrs, i);
            got.push({
              payload: a.data.slice(a.offsets[i]!, a.offsets[i]! + a.lengths[i]!),
              address,
              port,
              family: a.addrs[i * ADDR_STRIDE]!,
              ecn: a.addrs[i * ADDR_STRIDE + ADDR_ECN]!,
            });
          }
          if (n < batch) break;
        }
        if (got.length >= expected) finish();
      } catch (err) {
        finish(err);
      }
    });
    const timer = setTimeout(() => finish(), timeoutMs);
    function finish(err?: unknown): void {
      clearTimeout(timer);
      watcher.close();
      if (err !== undefined) reject(err);
      else resolve(got);
    }
    watcher.watch(true, false);
  });
}

function payloadFor(i: number, size: number): Uint8Array {
  const rnd = prng(1000 + i);
  const p = new Uint8Array(size);
  for (let k = 0; k < size; k++) p[k] = Math.floor(rnd() * 256);
  return p;
}

/** Packs payloads into one send arena (a Buffer subarray: another kind of view). */
function packSend(payloads: Uint8Array[], to: { address: string; port: number }[]): { data: Uint8Array; offsets: Uint32Array; lengths: Uint32Array; addrs: Uint8Array } {
  const total = payloads.reduce((s, p) => s + p.length + 3, 0);
  const data = Buffer.alloc(total + 16).subarray(16);
  const offsets = new Uint32Array(payloads.length);
  const lengths = new Uint32Array(payloads.length);
  const addrs = new Uint8Array(payloads.length * ADDR_STRIDE);
  let at = 0;
  payloads.forEach((p, i) => {
    data.set(p, at);
    offsets[i] = at;
    lengths[i] = p.length;
    writeAddr(addrs, i, to[i % to.length]!.address, to[i % to.length]!.port);
    at += p.length + 3; // gaps: packets need not be contiguous
  });
  return { data, offsets, lengths, addrs };
}

/** Sends every packet, in chunks of `chunk` per udpSend, waiting for them to arrive before the next. */
async function sendAndCollect(tx: UdpSocket, rx: UdpSocket, payloads: Uint8Array[], to: { address: string; port: number }, chunk: number, capacity: number): Promise<Received[]> {
  const all: Received[] = [];
  for (let from = 0; from < payloads.length; from += chunk) {
    const part = payloads.slice(from, from + chunk);
    const s = packSend(part, [to]);
    const status = new Int32Array(part.length).fill(-1);
    const arriving = collect(rx.fd, part.length, capacity);
    const sent = udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, part.length, status);
    assert.equal(sent, part.length);
    assert.deepEqual([...status], new Array(part.length).fill(0));
    const got = await arriving;
    assert.equal(got.length, part.length, `received ${got.length} of ${part.length} datagrams`);
    all.push(...got);
  }
  return all;
}

// Without CAP_NET_ADMIN the receive buffer is clamped to rmem_max, which may not hold
// 200 datagrams with 64 KiB ones among them: send fewer at a time there.
const CHUNK = process.getuid?.() === 0 ? 200 : 20;

function sizes(max: number): number[] {
  const rnd = prng(7);
  const out: number[] = [];
  for (let i = 0; i < 200; i++) {
    const special = [0, 1, 1420, max][i % 50];
    out.push(special ?? Math.floor(rnd() * (i % 7 === 0 ? 9000 : 1500)));
  }
  return out;
}

test('200 datagrams of varied sizes over IPv4 loopback, v4 source on a dual-stack socket reported as family 4', async () => {
  const rx = open('dual');
  const tx = open(4, '127.0.0.1');
  try {
    assert.equal(rx.family, 'dual');
    assert.equal(tx.family, 4);
    assert.ok(rx.port > 0 && tx.port > 0 && rx.port !== tx.port);
    const payloads = sizes(65507).map((n, i) => payloadFor(i, n));
    const got = await sendAndCollect(tx, rx, payloads, { address: '127.0.0.1', port: rx.port }, CHUNK, 65536);
    assert.equal(got.length, 200);
    got.forEach((r, i) => {
      assert.equal(r.family, 4);
      assert.equal(r.address, '127.0.0.1');
      assert.equal(r.port, tx.port);
      assert.equal(r.payload.length, payloads[i]!.length, `datagram ${i} length`);
      assert.ok(Buffer.from(r.payload).equals(payloads[i]!), `datagram ${i} bytes`);
    });
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

test('200 datagrams over IPv6 loopback: family 6, canonical ::1', async () => {
  const rx = open('dual');
  const tx = open(6, '::1');
  try {
    assert.equal(tx.family, 6);
    const payloads = sizes(65527).map((n, i) => payloadFor(i + 500, n));
    const got = await sendAndCollect(tx, rx, payloads, { address: '::1', port: rx.port }, CHUNK, 65536);
    assert.equal(got.length, 200);
    got.forEach((r, i) => {
      assert.equal(r.family, 6);
      assert.equal(r.address, '::1');
      assert.equal(r.port, tx.port);
      assert.ok(Buffer.from(r.payload).equals(payloads[i]!), `datagram ${i} bytes`);
    });
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

test('a dual-stack socket sends IPv4 records (v4-mapped) to an IPv4-only socket', async () => {
  const rx = open(4, '127.0.0.1');
  const tx = open('dual');
  try {
    const got = await sendAndCollect(tx, rx, [payloadFor(1, 10), payloadFor(2, 1420)], { address: '127.0.0.1', port: rx.port }, 2, 2048);
    assert.deepEqual(got.map((r) => [r.family, r.address, r.port, r.payload.length]), [[4, '127.0.0.1', tx.port, 10], [4, '127.0.0.1', tx.port, 1420]]);
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

test('the outer ECN field: what a record asks for is sent (IP_TOS / IPV6_TCLASS) and reported on receive, also v4-mapped and in GSO runs', async () => {
  const ECNS = [0, 1, 2, 3, 3, 2, 2, 1, 0, 0];
  for (const [rxFamily, txFamily, address] of [['dual', 4, '127.0.0.1'], ['dual', 6, '::1'], [4, 'dual', '127.0.0.1'], [6, 6, '::1']] as const) {
    const rx = open(rxFamily, rxFamily === 'dual' ? undefined : address);
    const tx = open(txFamily, txFamily === 'dual' ? undefined : address);
    try {
      // Same-size datagrams: with GSO allowed, runs of one ECN value go as one message each.
      const payloads = ECNS.map((_, i) => payloadFor(i + 900, 300));
      const s = packSend(payloads, [{ address, port: rx.port }]);
      ECNS.forEach((ecn, i) => { s.addrs[i * ADDR_STRIDE + ADDR_ECN] = ecn; });
      const arriving = collect(rx.fd, ECNS.length, 2048);
      const status = new Int32Array(ECNS.length).fill(-1);
      assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, ECNS.length, status, tx.offloads.gso ? 3 : 0), ECNS.length);
      const got = await arriving;
      assert.deepEqual(got.map((r) => r.ecn), ECNS, `${txFamily} → ${rxFamily} ${address}`);
      got.forEach((r, i) => assert.ok(Buffer.from(r.payload).equals(payloads[i]!), `datagram ${i} bytes`));
    } finally {
      closeFd(rx.fd);
      closeFd(tx.fd);
    }
  }
});

test('udpRecv returns 0 when nothing is waiting (EAGAIN)', () => {
  const s = open('dual');
  try {
    const a = arena(4, 2048, false);
    assert.equal(udpRecv(s.fd, a.data, a.offsets, a.lengths, a.addrs, 4, 2048), 0);
    assert.equal(udpRecv(s.fd, a.data, a.offsets, a.lengths, a.addrs, 0, 2048), 0);
  } finally {
    closeFd(s.fd);
  }
});

test('a datagram longer than the capacity is counted with length 0 and the rest arrive intact', async () => {
  const rx = open(4, '127.0.0.1');
  const tx = open(4, '127.0.0.1');
  try {
    const payloads = [payloadFor(1, 100), payloadFor(2, 3000), payloadFor(3, 1500), payloadFor(4, 1501), payloadFor(5, 50)];
    const s = packSend(payloads, [{ address: '127.0.0.1', port: rx.port }]);
    assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, payloads.length), payloads.length);
    const got = await collect(rx.fd, payloads.length, 1500);
    assert.deepEqual(got.map((r) => r.payload.length), [100, 0, 1500, 0, 50]);
    assert.ok(Buffer.from(got[0]!.payload).equals(payloads[0]!));
    assert.ok(Buffer.from(got[2]!.payload).equals(payloads[2]!));
    assert.ok(Buffer.from(got[4]!.payload).equals(payloads[4]!));
    for (const r of got) assert.deepEqual([r.address, r.port], ['127.0.0.1', tx.port]); // source filled in even when dropped
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

test('sending to a closed port (ICMP port unreachable) never makes udpRecv throw', async () => {
  const closed = open(4, '127.0.0.1');
  const closedPort = closed.port;
  closeFd(closed.fd);
  const tx = open('dual');
  const rx = open(4, '127.0.0.1');
  try {
    const s = packSend([payloadFor(1, 20), payloadFor(2, 20)], [{ address: '127.0.0.1', port: closedPort }]);
    const a = arena(4, 2048, false);
    for (let round = 0; round < 3; round++) {
      assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, 2), 2);
      await new Promise((r) => setTimeout(r, 20)); // let the ICMP errors come back
      assert.equal(udpRecv(tx.fd, a.data, a.offsets, a.lengths, a.addrs, 4, 2048), 0);
    }
    // The socket still works both ways afterwards.
    const got = await sendAndCollect(tx, rx, [payloadFor(3, 33)], { address: '127.0.0.1', port: rx.port }, 1, 2048);
    assert.equal(got[0]!.payload.length, 33);
  } finally {
    closeFd(tx.fd);
    closeFd(rx.fd);
  }
});

test('a datagram the kernel refuses gets status -errno and the rest of the batch still goes', async () => {
  const tx = open(4, '127.0.0.1');
  const rx = open(4, '127.0.0.1');
  try {
    const to = { address: '127.0.0.1', port: rx.port };
    const payloads = [payloadFor(1, 10), payloadFor(2, 11), payloadFor(3, 12), payloadFor(4, 13), payloadFor(5, 65508), payloadFor(6, 14), payloadFor(7, 15)];
    const s = packSend(payloads, [to]);
    writeAddr(s.addrs, 1, '::1', rx.port); // IPv6 on an IPv4 socket
    s.addrs.fill(0, 3 * ADDR_STRIDE, 4 * ADDR_STRIDE); // family 0: no address
    writeAddr(s.addrs, 5, '127.0.0.1', 0); // port 0
    const status = new Int32Array(payloads.length).fill(12345);
    assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, payloads.length, status), payloads.length);
    assert.deepEqual([...status], [0, -E.EAFNOSUPPORT!, 0, -E.EDESTADDRREQ!, -E.EMSGSIZE!, -E.EINVAL!, 0]);
    const got = await collect(rx.fd, 3, 2048);
    assert.deepEqual(got.map((r) => r.payload.length), [10, 12, 15]);

    // The same without a status array: consumed all the same.
    assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, payloads.length), payloads.length);
    assert.equal((await collect(rx.fd, 3, 2048)).length, 3);

    // IPv4 to an IPv6-only socket: ENETUNREACH from the kernel, per datagram.
    const v6 = open(6);
    try {
      const t = packSend([payloadFor(8, 5), payloadFor(9, 6)], [to, { address: '::1', port: rx.port }]);
      const st = new Int32Array(2);
      assert.equal(udpSend(v6.fd, t.data, t.offsets, t.lengths, t.addrs, 2, st), 2);
      assert.deepEqual([...st], [-E.ENETUNREACH!, 0]);
    } finally {
      closeFd(v6.fd);
    }
  } finally {
    closeFd(tx.fd);
    closeFd(rx.fd);
  }
});

test('malformed calls throw TypeError or RangeError before any system call', async () => {
  const rx = open(4, '127.0.0.1');
  const tx = open(4, '127.0.0.1');
  try {
    const a = arena(4, 2048, true);
    const { data, offsets, lengths, addrs } = a;
    // A datagram is waiting: a rejected udpRecv must not take it.
    const s = packSend([payloadFor(1, 64)], [{ address: '127.0.0.1', port: rx.port }]);
    assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, 1), 1);
    await new Promise((r) => setTimeout(r, 20));

    const recv = (...args: unknown[]): number => (udpRecv as (...a: unknown[]) => number)(...args);
    const send = (...args: unknown[]): number => (udpSend as (...a: unknown[]) => number)(...args);
    // Types.
    assert.throws(() => recv('3', data, offsets, lengths, addrs, 4, 2048), TypeError);
    assert.throws(() => recv(undefined, data, offsets, lengths, addrs, 4, 2048), TypeError);
    assert.throws(() => recv({ fd: rx.fd }, data, offsets, lengths, addrs, 4, 2048), TypeError);
    assert.throws(() => recv(rx.fd, new Uint16Array(8), offsets, lengths, addrs, 4, 2048), TypeError);
    assert.throws(() => recv(rx.fd, data.buffer, offsets, lengths, addrs, 4, 2048), TypeError);
    assert.throws(() => recv(rx.fd, data, new Int32Array(4), lengths, addrs, 4, 2048), TypeError);
    assert.throws(() => recv(rx.fd, data, offsets, [0, 0, 0, 0], addrs, 4, 2048), TypeError);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, new Uint32Array(20), 4, 2048), TypeError);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs, '4', 2048), TypeError);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs, 4), TypeError);
    assert.throws(() => recv(), TypeError);
    assert.throws(() => send(tx.fd, data, offsets, lengths, addrs, 1, new Uint32Array(4)), TypeError);
    // Ranges.
    assert.throws(() => recv(-1, data, offsets, lengths, addrs, 4, 2048), RangeError);
    assert.throws(() => recv(1.5, data, offsets, lengths, addrs, 4, 2048), RangeError);
    assert.throws(() => recv(2 ** 31, data, offsets, lengths, addrs, 4, 2048), RangeError);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs, 5, 2048), RangeError); // count > arrays
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs.subarray(0, 3 * ADDR_STRIDE), 4, 2048), RangeError);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs, -1, 2048), RangeError);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs, NaN, 2048), RangeError);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs, 4, 2049), /slot 3: offset \+ capacity = 8193 exceeds data.length 8192/);
    assert.throws(() => recv(rx.fd, data, offsets, lengths, addrs, 4, 2 ** 32), RangeError);
    const far = Uint32Array.from([0, 0, 0xffff_ffff, 0]);
    assert.throws(() => recv(rx.fd, data, far, lengths, addrs, 4, 2048), RangeError);
    assert.throws(() => send(tx.fd, data, far, Uint32Array.from([1, 1, 1, 1]), addrs, 4), RangeError);
    assert.throws(() => send(tx.fd, data, offsets, Uint32Array.from([1, 1, 1, 2049]), addrs, 4), /packet 3: offset \+ length = 8193/);
    assert.throws(() => send(tx.fd, data, offsets, lengths, addrs, 4, new Int32Array(3)), RangeError);
    assert.throws(() => send(tx.fd, data, offsets, lengths.subarray(0, 2), addrs, 3), RangeError);

    // Nothing was consumed by the rejected calls: the datagram is still there.
    assert.equal(recv(rx.fd, data, offsets, lengths, addrs, 4, 2048), 1);
    assert.equal(lengths[0], 64);

    // A closed fd, or one that is no socket: an Error with a code, never a crash.
    const closed = open(4, '127.0.0.1');
    closeFd(closed.fd);
    assert.throws(() => recv(closed.fd, data, offsets, lengths, addrs, 4, 2048), { code: 'EBADF' });
    assert.throws(() => send(closed.fd, data, offsets, lengths, addrs, 1), { code: 'EBADF' });
    const file = openSync('/dev/null', 'r');
    try {
      assert.throws(() => recv(file, data, offsets, lengths, addrs, 4, 2048), { code: 'ENOTSOCK' });
      assert.throws(() => send(file, data, offsets, lengths, addrs, 1), { code: 'ENOTSOCK' });
    } finally {
      closeSync(file);
    }

    // TUN batch calls check their arguments the same way (no TUN needed for that).
    const tr = (...args: unknown[]): number => (tunRead as (...a: unknown[]) => number)(...args);
    const tw = (...args: unknown[]): number => (tunWrite as (...a: unknown[]) => number)(...args);
    assert.throws(() => tr('x', data, offsets, lengths, 4, 2048), TypeError);
    assert.throws(() => tr(rx.fd, new Int8Array(8), offsets, lengths, 4, 2048), TypeError);
    assert.throws(() => tr(rx.fd, data, offsets, lengths, 5, 2048), RangeError);
    assert.throws(() => tr(rx.fd, data, offsets, lengths, 4, 4096), RangeError);
    assert.throws(() => tw(rx.fd, data, offsets, Uint32Array.from([0, 0, 0, 4000]), 4), RangeError);
    assert.throws(() => tw(rx.fd, data, offsets, lengths, 4, new Int32Array(2)), RangeError);
    assert.throws(() => tw(rx.fd, data, offsets, lengths, 4, new Uint8Array(16)), TypeError);
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

test('udpOpen: errors carry codes; options are checked', () => {
  const a = open(4, '127.0.0.1');
  try {
    assert.throws(() => udpOpen({ port: a.port, family: 4, bindAddress: '127.0.0.1' }), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EADDRINUSE');
      assert.equal(err.errno, -E.EADDRINUSE!);
      assert.match(err.message, /cannot open UDP socket on \[127\.0\.0\.1\]:\d+ \(bind\): Address already in use \(EADDRINUSE\)/);
      return true;
    });
    assert.throws(() => udpOpen({ port: 0, family: 4, bindAddress: '198.18.255.254' }), { code: 'EADDRNOTAVAIL' });
    assert.throws(() => udpOpen({ port: 0, family: 5 as 4 }), RangeError);
    assert.throws(() => udpOpen({ port: 70000, family: 4 }), RangeError);
    assert.throws(() => udpOpen({ port: -1, family: 4 }), RangeError);
    assert.throws(() => udpOpen({ port: 0, family: 4, bindAddress: 'localhost' }), TypeError);
    assert.throws(() => udpOpen({ port: 0, family: 4, bindAddress: '::1' }), RangeError);
    assert.throws(() => udpOpen({ port: 0, family: 6, bindAddress: '127.0.0.1' }), RangeError);
    assert.throws(() => udpOpen({ port: 0, family: 4, receiveBuffer: -5 }), RangeError);
    assert.throws(() => udpOpen(null as unknown as { port: number; family: 4 }), TypeError);
    // Custom buffer sizes and an explicit v4 bind on a dual socket.
    const b = udpOpen({ port: 0, family: 'dual', bindAddress: '127.0.0.1', receiveBuffer: 1 << 20, sendBuffer: 0 });
    closeFd(b.fd);
    assert.throws(() => udpSetFwmark(-1, 1), RangeError);
    if (process.getuid?.() === 0) {
      udpSetFwmark(a.fd, 0x51820);
      udpSetFwmark(a.fd, 0);
      const c = udpOpen({ port: 0, family: 'dual', fwmark: 7 });
      closeFd(c.fd);
    }
  } finally {
    closeFd(a.fd);
  }
  assert.throws(() => closeFd(a.fd), { code: 'EBADF' });
});

test('address records: writeAddr/readAddr round trips, canonical IPv6, sameAddr', () => {
  const addrs = new Uint8Array(4 * ADDR_STRIDE);
  const cases: [string, number, string, number][] = [
    ['198.18.0.1', 51820, '198.18.0.1', 4],
    ['0.0.0.0', 0, '0.0.0.0', 4],
    ['255.255.255.255', 65535, '255.255.255.255', 4],
    ['::1', 1, '::1', 6],
    ['::', 2, '::', 6],
    ['FD7A:07D0:0000:0000:0000:0000:0000:0001', 3, 'fd7a:7d0::1', 6],
    ['2001:db8:0:0:1:0:0:1', 4, '2001:db8::1:0:0:1', 6],
    ['2001:db8::0:1', 5, '2001:db8::1', 6],
    ['2001:db8:1:2:3:4:5:6', 6, '2001:db8:1:2:3:4:5:6', 6],
    ['2001:db8:0:1:1:1:1:1', 7, '2001:db8:0:1:1:1:1:1', 6],
    ['1::', 8, '1::', 6],
    ['::ffff:198.18.0.2', 9, '198.18.0.2', 4],
    ['::ffff:c612:3', 10, '198.18.0.3', 4],
    ['64:ff9b::192.0.2.1', 11, '64:ff9b::c000:201', 6],
  ];
  for (const [input, port, canonical, family] of cases) {
    writeAddr(addrs, 2, input, port);
    assert.equal(addrs[2 * ADDR_STRIDE], family, input);
    assert.deepEqual(readAddr(addrs, 2), { address: canonical, port }, input);
  }
  writeAddr(addrs, 0, '198.18.0.1', 51820);
  const noLocal = new Array<number>(24).fill(0);
  assert.deepEqual([...addrs.subarray(0, ADDR_STRIDE)], [4, 0, 0xca, 0x6c, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...noLocal]);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', 'fe80::1%eth0', '[::1]', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '12345::', 'localhost']) {
    assert.throws(() => writeAddr(addrs, 0, bad, 1), TypeError, bad);
  }
  assert.throws(() => writeAddr(addrs, 0, '::1', 65536), RangeError);
  assert.throws(() => writeAddr(addrs, 4, '::1', 1), RangeError);
  assert.throws(() => readAddr(addrs, -1), RangeError);
  addrs.fill(0, 3 * ADDR_STRIDE);
  assert.throws(() => readAddr(addrs, 3), RangeError);

  const other = new Uint8Array(2 * ADDR_STRIDE);
  writeAddr(addrs, 0, '198.18.0.1', 51820);
  writeAddr(other, 1, '::ffff:198.18.0.1', 51820);
  assert.equal(sameAddr(addrs, 0, other, 1), true);
  writeAddr(other, 1, '198.18.0.1', 51821);
  assert.equal(sameAddr(addrs, 0, other, 1), false);
  writeAddr(addrs, 1, 'fd7a:7d0::1', 51820);
  writeAddr(other, 0, 'fd7a:7d0::2', 51820);
  assert.equal(sameAddr(addrs, 1, other, 0), false);
  writeAddr(other, 0, 'fd7a:7d0:0::1', 51820);
  assert.equal(sameAddr(addrs, 1, other, 0), true);
  assert.equal(sameAddr(addrs, 0, other, 0), false);
  assert.throws(() => sameAddr(addrs, 0, other, 2), RangeError);
});

// ---- FdWatcher ----

test('FdWatcher: close() twice and from inside the callback; watch() after close is a no-op', async () => {
  const rx = open(4, '127.0.0.1');
  const tx = open(4, '127.0.0.1');
  try {
    let calls = 0;
    const w = new FdWatcher(rx.fd, (readable, writable, error) => {
      calls++;
      assert.deepEqual([readable, writable, error], [true, false, false]);
      w.close();
      w.close();
      w.watch(true, true);
    });
    assert.equal(w.fd, rx.fd);
    assert.equal(w.closed, false);
    w.watch(true, false);
    const s = packSend([payloadFor(1, 8)], [{ address: '127.0.0.1', port: rx.port }]);
    udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, 1);
    await waitFor('the first call', () => calls > 0, 10_000, 2);
    // The datagram is still unread, yet no second call came: the watcher is closed. (A
    // short look, after event loop turns in which a watcher left open would be called
    // again: on a busy machine it may see less, never fail for it.)
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(calls, 1);
    assert.equal(w.closed, true);
    w.close();

    // Writable: a UDP socket is writable at once.
    const writable = await new Promise<boolean>((resolve) => {
      const v = new FdWatcher(tx.fd, (_r, wr) => {
        v.close();
        resolve(wr);
      });
      v.watch(false, true);
    });
    assert.equal(writable, true);

    // Stopping and restarting.
    let n = 0;
    const v = new FdWatcher(rx.fd, () => {
      n++;
      v.watch(false, false);
    });
    // The datagram above is still unread: each watch() makes one call, which stops it
    // again (the short looks after each, as above, may only miss an extra call).
    v.watch(true, false);
    await waitFor('the first call', () => n >= 1, 10_000, 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(n, 1);
    v.watch(true, false);
    await waitFor('the second call', () => n >= 2, 10_000, 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(n, 2);
    v.close();
  } finally {
    closeFd(rx.fd);
    closeFd(tx.fd);
  }
});

test('FdWatcher: bad arguments and fds that cannot be watched', () => {
  const s = open(4, '127.0.0.1');
  try {
    const W = FdWatcher as unknown as new (...a: unknown[]) => FdWatcher;
    assert.throws(() => new W('1', () => {}), TypeError);
    assert.throws(() => new W(-1, () => {}), RangeError);
    assert.throws(() => new W(s.fd, 'not a function'), TypeError);
    assert.throws(() => new W(s.fd), TypeError);
    const w = new FdWatcher(s.fd, () => {});
    assert.throws(() => new FdWatcher(s.fd, () => {}), { code: 'EEXIST' });
    assert.throws(() => (w.watch as (...a: unknown[]) => void)(1, 0), TypeError);
    w.close();
    const file = openSync(new URL(import.meta.url), 'r');
    try {
      assert.throws(() => new FdWatcher(file, () => {}), { code: 'EPERM' });
    } finally {
      closeSync(file);
    }
    const closed = open(4, '127.0.0.1');
    closeFd(closed.fd);
    assert.throws(() => new FdWatcher(closed.fd, () => {}), { code: 'EBADF' });
  } finally {
    closeFd(s.fd);
  }
});

test('closeFd stops a watcher of its fd, so libuv never meets a closed fd; watch() then throws EBADF', async () => {
  const s = open(4, '127.0.0.1');
  let calls = 0;
  const w = new FdWatcher(s.fd, () => calls++);
  w.watch(false, true);
  closeFd(s.fd);
  assert.throws(() => w.watch(true, false), { code: 'EBADF' });
  // The fd number is free again; a new socket may get it and be watched.
  const t = open(4, '127.0.0.1');
  const v = new FdWatcher(t.fd, () => {});
  v.watch(true, true);
  await new Promise((r) => setTimeout(r, 30));
  v.close();
  w.close();
  closeFd(t.fd);
  assert.equal(calls, 0);
});

/** Runs an ES module snippet in a fresh node process; returns its exit status and output. */
function runNode(source: string, args: string[] = []): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [...args, '--input-type=module', '-e', source], { encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('FdWatcher keeps the process alive while watching, unless unref()ed', () => {
  const script = (unref: boolean): string => `
    import { udpOpen } from ${JSON.stringify(UDP_URL)};
    import { FdWatcher } from ${JSON.stringify(WATCH_URL)};
    const s = udpOpen({ port: 0, family: 4, bindAddress: '127.0.0.1' });
    const w = new FdWatcher(s.fd, () => {});
    w.watch(true, false);
    ${unref ? 'w.unref(); w.unref(); w.ref(); w.unref();' : ''}
    setTimeout(() => { console.log('alive'); process.exit(0); }, 300).unref();
  `;
  const kept = runNode(script(false));
  assert.equal(kept.status, 0, kept.out);
  assert.match(kept.out, /alive/);
  const released = runNode(script(true));
  assert.equal(released.status, 0, released.out);
  assert.doesNotMatch(released.out, /alive/);
});

test('an exception thrown in the callback is an uncaught exception; nextTick and promise jobs run after the callback', () => {
  const r = runNode(`
    import { udpOpen, udpSend } from ${JSON.stringify(UDP_URL)};
    import { writeAddr } from ${JSON.stringify(ADDRESS_URL)};
    import { FdWatcher } from ${JSON.stringify(WATCH_URL)};
    const s = udpOpen({ port: 0, family: 4, bindAddress: '127.0.0.1' });
    const order = [];
    process.on('uncaughtException', (err) => {
      console.log('caught:' + err.message + ' order:' + order.join(','));
      w.close();
      process.exit(0);
    });
    const w = new FdWatcher(s.fd, () => {
      process.nextTick(() => order.push('tick'));
      Promise.resolve().then(() => order.push('promise'));
      order.push('callback');
      if (order.filter((x) => x === 'callback').length === 2) throw new Error('boom');
    });
    w.watch(false, true);
  `);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /caught:boom order:callback,tick,promise,callback/);
});

test('stopped watchers that are dropped are collected and closed', () => {
  const r = runNode(`
    import { udpOpen } from ${JSON.stringify(UDP_URL)};
    import { closeFd } from ${JSON.stringify(FD_URL)};
    import { FdWatcher } from ${JSON.stringify(WATCH_URL)};
    const fds = [];
    for (let i = 0; i < 50; i++) {
      const s = udpOpen({ port: 0, family: 4, bindAddress: '127.0.0.1' });
      fds.push(s.fd);
      const w = new FdWatcher(s.fd, () => { void w; });
      w.watch(true, true);
      w.watch(false, false);
    }
    for (let round = 0; round < 5; round++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    // Collected means closed: each fd can be watched again.
    for (const fd of fds) new FdWatcher(fd, () => {}).close();
    for (const fd of fds) closeFd(fd);
    console.log('ok');
  `, ['--expose-gc']);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /ok/);
});

// A worker that receives datagrams through an FdWatcher, then ends in one of several
// ways with the watcher still open.
const WORKER_SOURCE = `
  const { parentPort, workerData } = require('node:worker_threads');
  Promise.all([import(workerData.udp), import(workerData.watch)]).then(([udp, watch]) => {
    const s = udp.udpOpen({ port: 0, family: 4, bindAddress: '127.0.0.1' });
    const slots = 8, cap = 2048;
    const data = new Uint8Array(slots * cap), offsets = new Uint32Array(slots), lengths = new Uint32Array(slots);
    const addrs = new Uint8Array(slots * workerData.addrStride);
    for (let i = 0; i < slots; i++) offsets[i] = i * cap;
    let received = 0, bytes = 0;
    const w = new watch.FdWatcher(s.fd, () => {
      let n;
      while ((n = udp.udpRecv(s.fd, data, offsets, lengths, addrs, slots, cap)) > 0) {
        for (let i = 0; i < n; i++) {
          received++;
          for (let k = 0; k < lengths[i]; k++) if (data[offsets[i] + k] === (received & 0xff)) bytes++;
        }
      }
      if (received >= workerData.expect) {
        parentPort.postMessage({ received, bytes });
        if (workerData.end === 'throw') throw new Error('thrown in a worker callback');
        if (workerData.end === 'exit') process.exit(0);
        // 'terminate': stay, watching, until the parent terminates us.
      }
    });
    w.watch(true, false);
    parentPort.postMessage({ port: s.port });
  });
`;

async function workerRun(end: 'exit' | 'terminate' | 'throw'): Promise<{ received: number; bytes: number; exitCode: number; error?: Error }> {
  const expect = 40;
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { udp: UDP_URL, watch: WATCH_URL, addrStride: ADDR_STRIDE, expect, end } });
  const tx = open(4, '127.0.0.1');
  let error: Error | undefined;
  worker.on('error', (err) => { error = err; });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const timer = setTimeout(() => void worker.terminate(), 10_000);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', (m: { port: number }) => resolve(m.port));
      worker.once('error', reject);
    });
    const done = new Promise<{ received: number; bytes: number }>((resolve) => worker.once('message', resolve));
    // Datagram i (1-based) is 100 bytes of the value i.
    const payloads = Array.from({ length: expect }, (_, i) => new Uint8Array(100).fill((i + 1) & 0xff));
    const s = packSend(payloads, [{ address: '127.0.0.1', port }]);
    assert.equal(udpSend(tx.fd, s.data, s.offsets, s.lengths, s.addrs, expect), expect);
    const result = await done;
    if (end === 'terminate') await worker.terminate();
    const exitCode = await exited;
    return { ...result, exitCode, ...(error === undefined ? {} : { error }) };
  } finally {
    clearTimeout(timer);
    closeFd(tx.fd);
  }
}

test('FdWatcher in a worker thread: receives, and the worker exits cleanly with the watcher open', async () => {
  const exit = await workerRun('exit');
  assert.deepEqual([exit.received, exit.bytes, exit.exitCode, exit.error], [40, 4000, 0, undefined]);
  const terminated = await workerRun('terminate');
  assert.deepEqual([terminated.received, terminated.bytes, terminated.exitCode, terminated.error], [40, 4000, 1, undefined]);
  const thrown = await workerRun('throw');
  assert.deepEqual([thrown.received, thrown.bytes, thrown.exitCode], [40, 4000, 1]);
  assert.match(String(thrown.error?.message), /thrown in a worker callback/);
});
