// SO_REUSEPORT socket groups (openUdpGroup, udpOpen's reusePort) on 127.0.0.1 in the
// root namespace, ephemeral ports only: the port is refused to anything else, the
// kernel spreads datagrams over the group by 4-tuple, and a socket of the group can be
// replaced (a worker restart) while the others stay open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { closeFd } from '../../src/io/fd.js';
import { ADDR_STRIDE, readAddr, writeAddr } from '../../src/pipeline/address.js';
import { openUdpGroup, udpOpen, udpRecv, udpSend, type UdpSocket } from '../../src/conn/udp.js';

const HOST = '127.0.0.1';
const SOURCES = 32; // 2 sockets: all 32 flows on one socket by chance is 2^-31
const PER_SOURCE = 4;
const SLOT = 64;
const BATCH = 64;

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function inUse(port: number): RegExp {
  return new RegExp(`^cannot open UDP socket on (\\[${HOST.replace(/\./g, '\\.')}\\]|port ):?${port} \\(bind\\): Address already in use \\(EADDRINUSE\\)$`);
}

/** From each of `sources`, PER_SOURCE datagrams to HOST:port, each naming its source index and sequence number. */
function sendFrom(sources: UdpSocket[], port: number, round: number): void {
  const data = new Uint8Array(PER_SOURCE * SLOT);
  const offsets = Uint32Array.from({ length: PER_SOURCE }, (_, i) => i * SLOT);
  const lengths = new Uint32Array(PER_SOURCE).fill(8);
  const addrs = new Uint8Array(PER_SOURCE * ADDR_STRIDE);
  for (let i = 0; i < PER_SOURCE; i++) writeAddr(addrs, i, HOST, port);
  sources.forEach((s, k) => {
    for (let i = 0; i < PER_SOURCE; i++) {
      new DataView(data.buffer, i * SLOT, 8).setUint32(0, k);
      new DataView(data.buffer, i * SLOT, 8).setUint32(4, round * 1000 + i);
    }
    assert.equal(udpSend(s.fd, data, offsets, lengths, addrs, PER_SOURCE), PER_SOURCE);
  });
}

interface Got {
  /** Per receiving socket: source port -> sequence numbers, in arrival order. */
  bySocket: Map<number, number[]>[];
  total: number;
}

/**
 * Reads every socket of `group` until `expected` datagrams arrived, then 100 ms more
 * (a surplus or duplicate would show), at most 5 s in all. Checks each datagram's
 * source port against the source index it names.
 */
async function drain(group: UdpSocket[], sources: UdpSocket[], expected: number): Promise<Got> {
  const data = new Uint8Array(BATCH * SLOT);
  const offsets = Uint32Array.from({ length: BATCH }, (_, i) => i * SLOT);
  const lengths = new Uint32Array(BATCH);
  const addrs = new Uint8Array(BATCH * ADDR_STRIDE);
  const got: Got = { bySocket: group.map(() => new Map()), total: 0 };
  const deadline = Date.now() + 10_000; // for a hang: a busy machine delivers later
  let quietUntil = Infinity;
  while (Date.now() < Math.min(deadline, quietUntil)) {
    group.forEach((s, j) => {
      for (let round = 0; round < 100; round++) {
        const n = udpRecv(s.fd, data, offsets, lengths, addrs, BATCH, SLOT);
        for (let i = 0; i < n; i++) {
          assert.equal(lengths[i], 8);
          const view = new DataView(data.buffer, offsets[i]!, 8);
          const from = readAddr(addrs, i);
          assert.equal(from.address, HOST);
          assert.equal(from.port, sources[view.getUint32(0)]!.port, 'the datagram names the socket it came from');
          const seqs = got.bySocket[j]!.get(from.port) ?? [];
          seqs.push(view.getUint32(4));
          got.bySocket[j]!.set(from.port, seqs);
          got.total++;
        }
        if (n < BATCH) break;
      }
    });
    if (got.total >= expected && quietUntil === Infinity) quietUntil = Date.now() + 100;
    await new Promise((r) => setTimeout(r, 5));
  }
  return got;
}

/** Every source's datagrams reached exactly one socket of the group, in order, none lost or doubled. */
function assertSpread(got: Got, sources: UdpSocket[], round: number): number[] {
  assert.equal(got.total, sources.length * PER_SOURCE);
  const want = Array.from({ length: PER_SOURCE }, (_, i) => round * 1000 + i);
  for (const s of sources) {
    const holders = got.bySocket.filter((m) => m.has(s.port));
    assert.equal(holders.length, 1, `source port ${s.port}: one flow, one socket`);
    assert.deepEqual(holders[0]!.get(s.port), want);
  }
  return got.bySocket.map((m) => [...m.values()].reduce((n, seqs) => n + seqs.length, 0));
}

function openSources(): UdpSocket[] {
  return Array.from({ length: SOURCES }, () => udpOpen({ port: 0, family: 4, bindAddress: HOST }));
}

test('openUdpGroup(count 2) on an ephemeral port: two sockets on one port; anything else on it is refused with EADDRINUSE', () => {
  const group = openUdpGroup({ port: 0, family: 4, bindAddress: HOST, count: 2 });
  try {
    assert.equal(group.length, 2);
    assert.ok(group[0]!.port > 0);
    assert.equal(group[1]!.port, group[0]!.port);
    assert.notEqual(group[0]!.fd, group[1]!.fd);
    const port = group[0]!.port;
    const before = openFds();
    // A second tundra (another group), on the same address or on the wildcard.
    assert.throws(() => openUdpGroup({ port, family: 4, bindAddress: HOST, count: 2 }), { code: 'EADDRINUSE', message: inUse(port) });
    assert.throws(() => openUdpGroup({ port, family: 4, count: 2 }), { code: 'EADDRINUSE', message: inUse(port) });
    assert.throws(() => openUdpGroup({ port, family: 'dual', count: 3 }), { code: 'EADDRINUSE', message: inUse(port) });
    // A plain socket, as today's.
    assert.throws(() => udpOpen({ port, family: 4, bindAddress: HOST }), { code: 'EADDRINUSE', message: inUse(port) });
    assert.equal(openFds(), before, 'the refused probes left no fd open');
    // What the probe is for: a socket with SO_REUSEPORT of the same user WOULD join
    // the group silently.
    const joiner = udpOpen({ port, family: 4, bindAddress: HOST, reusePort: true });
    assert.equal(joiner.port, port);
    closeFd(joiner.fd);
  } finally {
    for (const s of group) closeFd(s.fd);
  }
});

test('openUdpGroup refuses a port a plain socket holds, and count 1 is a plain socket (no SO_REUSEPORT)', () => {
  const plain = udpOpen({ port: 0, family: 4, bindAddress: HOST });
  try {
    const before = openFds();
    assert.throws(() => openUdpGroup({ port: plain.port, family: 4, bindAddress: HOST, count: 2 }), { code: 'EADDRINUSE', message: inUse(plain.port) });
    assert.equal(openFds(), before);
  } finally {
    closeFd(plain.fd);
  }
  const [one, ...rest] = openUdpGroup({ port: 0, family: 4, bindAddress: HOST, count: 1 });
  try {
    assert.equal(rest.length, 0);
    // Without SO_REUSEPORT on it, even a reusePort socket cannot join.
    assert.throws(() => udpOpen({ port: one!.port, family: 4, bindAddress: HOST, reusePort: true }), { code: 'EADDRINUSE' });
  } finally {
    closeFd(one!.fd);
  }
  for (const count of [0, -1, 1.5, NaN]) {
    assert.throws(() => openUdpGroup({ port: 0, family: 4, bindAddress: HOST, count }), RangeError);
  }
  assert.throws(() => udpOpen({ port: 0, family: 4, reusePort: 'yes' as unknown as boolean }), { name: 'TypeError', message: 'udpOpen: reusePort must be a boolean' });
});

test('a group of 2 spreads 32 flows over both sockets, each flow whole and in order on one socket', async () => {
  const group = openUdpGroup({ port: 0, family: 4, bindAddress: HOST, count: 2 });
  const sources = openSources();
  try {
    sendFrom(sources, group[0]!.port, 0);
    const perSocket = assertSpread(await drain(group, sources, SOURCES * PER_SOURCE), sources, 0);
    assert.ok(perSocket.every((n) => n > 0), `both sockets got datagrams: ${perSocket.join(' + ')}`);
  } finally {
    for (const s of [...group, ...sources]) closeFd(s.fd);
  }
});

test('a group socket closed and reopened with reusePort joins the group again; the other stays open throughout', async () => {
  const group = openUdpGroup({ port: 0, family: 4, bindAddress: HOST, count: 2 });
  const port = group[0]!.port;
  const sources = openSources();
  const open = [...group];
  try {
    // A worker dies: its socket goes; the survivor takes every flow meanwhile.
    closeFd(group[1]!.fd);
    open.splice(1, 1);
    sendFrom(sources, port, 1);
    assert.deepEqual(assertSpread(await drain([group[0]!], sources, SOURCES * PER_SOURCE), sources, 1), [SOURCES * PER_SOURCE]);
    // Its replacement joins the same group (the port is not refused to it), and the
    // flows spread over both again.
    const again = udpOpen({ port, family: 4, bindAddress: HOST, reusePort: true });
    open.push(again);
    assert.equal(again.port, port);
    sendFrom(sources, port, 2);
    const perSocket = assertSpread(await drain([group[0]!, again], sources, SOURCES * PER_SOURCE), sources, 2);
    assert.ok(perSocket.every((n) => n > 0), `both sockets got datagrams: ${perSocket.join(' + ')}`);
    // Still refused to anything without SO_REUSEPORT.
    assert.throws(() => openUdpGroup({ port, family: 4, bindAddress: HOST, count: 2 }), { code: 'EADDRINUSE' });
  } finally {
    for (const s of [...open, ...sources]) closeFd(s.fd);
  }
});
