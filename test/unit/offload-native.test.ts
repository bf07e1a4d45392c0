// The native offloads (native/offload.cc, tun.cc's tunReadVnet) on their own: argument
// checks, every split drop code, known segments of a TCPv4 super-packet, a two-packet TCP
// coalesce and its round trip through split, and tunReadVnet against a real TUN in a
// namespace. (The byte-for-byte comparison with the TypeScript twin is offload-native-vs-twin.test.ts.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COALESCE_STAT_NAMES, COALESCE_TCP, COALESCE_TRUSTED, COALESCE_UDP } from '../../src/offload/coalesce.js';
import { histogramNames } from '../../src/offload/histogram.js';
import { nativeFunction } from '../../src/native/addon.js';
import { COALESCE_MAX_PACKETS, OFFLOAD_STAT_NAMES, nativeCoalesce, nativeSplit } from '../../src/offload/native.js';
import { SPLIT_DROP_NAMES } from '../../src/offload/split.js';
import {
  VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_GSO_UDP, VNET_GSO_UDP_L4, VNET_HDR_LEN,
} from '../../src/offload/vnet-header.js';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_USO4, TUN_F_USO6, TUN_READ_SCRATCH_SIZE, tunReadVnet } from '../../src/tun/tun.js';
import { networkTestsUnavailable, run } from '../helpers/netns.js';
import { prng } from '../helpers/prng.js';

// ---- packet building (independent of src/offload) ---------------------------------------

function onesSum(b: Uint8Array, start = 0, end = b.length, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}
const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
const le16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, (v >>> 16) & 0xffff);
  put16(b, at + 2, v & 0xffff);
}

function pseudo(p: Uint8Array, l4len: number): number {
  const v4 = p[0]! >> 4 === 4;
  const proto = v4 ? p[9]! : p[6]!;
  let s = v4 ? onesSum(p, 12, 20) : onesSum(p, 8, 40);
  s += proto + (l4len & 0xffff) + (v4 ? 0 : Math.floor(l4len / 0x10000));
  return s;
}

/** IPv4 header checksum and L4 checksum valid. */
function checksumsValid(p: Uint8Array): boolean {
  const v4 = p[0]! >> 4 === 4;
  const iphlen = v4 ? (p[0]! & 15) * 4 : 40;
  if (v4 && onesSum(p, 0, iphlen) !== 0xffff) return false;
  return onesSum(p, iphlen, p.length, pseudo(p, p.length - iphlen)) === 0xffff;
}

interface Tcp4 {
  id?: number;
  seq: number;
  ack?: number;
  flags: number;
  payload: Uint8Array;
  options?: Uint8Array;
  tos?: number;
}
const SRC4 = [198, 18, 0, 1];
const DST4 = [100, 96, 0, 2];

/** A valid IPv4 TCP packet (DF set, TTL 64), checksums filled in. */
function tcp4(t: Tcp4): Uint8Array {
  const opt = t.options ?? new Uint8Array(0);
  const thl = 20 + opt.length;
  const p = new Uint8Array(20 + thl + t.payload.length);
  p[0] = 0x45;
  p[1] = t.tos ?? 0;
  put16(p, 2, p.length);
  put16(p, 4, t.id ?? 0x1234);
  p[6] = 0x40;
  p[8] = 64;
  p[9] = 6;
  p.set(SRC4, 12);
  p.set(DST4, 16);
  put16(p, 10, 0xffff - onesSum(p, 0, 20));
  put16(p, 20, 40000);
  put16(p, 22, 443);
  put32(p, 24, t.seq);
  put32(p, 28, t.ack ?? 0x01020304);
  p[32] = (thl / 4) << 4;
  p[33] = t.flags;
  put16(p, 34, 0xfff0);
  p.set(opt, 40);
  p.set(t.payload, 20 + thl);
  put16(p, 36, 0xffff - onesSum(p, 20, p.length, pseudo(p, p.length - 20)));
  return p;
}

/** A valid IPv6 UDP packet (hop limit 64). */
function udp6(payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(48 + payload.length);
  p[0] = 0x60;
  put16(p, 4, 8 + payload.length);
  p[6] = 17;
  p[7] = 64;
  p.set([0xfd, 0x7a, 0x07, 0xd0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
  p.set([0xfd, 0x7a, 0x07, 0xd0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 24);
  put16(p, 40, 5353);
  put16(p, 42, 5354);
  put16(p, 44, 8 + payload.length);
  p.set(payload, 48);
  let c = 0xffff - onesSum(p, 40, p.length, pseudo(p, p.length - 40));
  if (c === 0) c = 0xffff;
  put16(p, 46, c);
  return p;
}

interface Vnet {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}
function vnet(h: Vnet, packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(VNET_HDR_LEN + packet.length);
  out[0] = h.flags ?? 0;
  out[1] = h.gsoType ?? 0;
  const le = (at: number, v: number): void => {
    out[at] = v & 0xff;
    out[at + 1] = v >>> 8;
  };
  le(2, h.hdrLen ?? 0);
  le(4, h.gsoSize ?? 0);
  le(6, h.csumStart ?? 0);
  le(8, h.csumOffset ?? 0);
  out.set(packet, VNET_HDR_LEN);
  return out;
}

const bytes = (n: number, seed: number): Uint8Array => {
  const r = prng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
};

/** Slots for split: `n` slots of `capacity` bytes with a 3-byte gap, all 0xa5. */
function slots(n: number, capacity: number): { data: Uint8Array; offsets: Uint32Array; lengths: Uint32Array } {
  const stride = capacity + 3;
  return {
    data: new Uint8Array(n * stride + 5).fill(0xa5),
    offsets: Uint32Array.from({ length: n }, (_, i) => 5 + i * stride),
    lengths: new Uint32Array(n).fill(0xdead),
  };
}
const segment = (s: ReturnType<typeof slots>, j: number): Uint8Array =>
  s.data.subarray(s.offsets[j]!, s.offsets[j]! + s.lengths[j]!);

/** A coalesce batch: each packet behind 10 header bytes in a slot of `capacity`, guard-filled. */
function batch(packets: Uint8Array[], capacity: number): { data: Uint8Array; offsets: Uint32Array; lengths: Uint32Array } {
  const stride = VNET_HDR_LEN + capacity + 1;
  const data = new Uint8Array(packets.length * stride + 1).fill(0xa5);
  const offsets = new Uint32Array(packets.length);
  const lengths = new Uint32Array(packets.length);
  packets.forEach((p, i) => {
    offsets[i] = 1 + i * stride + VNET_HDR_LEN;
    lengths[i] = p.length;
    data.set(p, offsets[i]!);
  });
  return { data, offsets, lengths };
}

// ---- constants ------------------------------------------------------------------------------

test('constants and stat names', () => {
  assert.equal(VNET_HDR_LEN, 10);
  assert.deepEqual([VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP, VNET_GSO_TCPV6, VNET_GSO_UDP_L4, VNET_GSO_ECN], [0, 1, 3, 4, 5, 0x80]);
  assert.equal(TUN_READ_SCRATCH_SIZE, 10 + 65535 + 1);
  assert.deepEqual(SPLIT_DROP_NAMES, [
    'vnet_header_truncated', 'bad_gso_type', 'gso_ip_mismatch', 'truncated_header',
    'bad_csum_start', 'bad_gso_size', 'too_many_segments', 'packet_too_large',
  ]);
  assert.deepEqual(OFFLOAD_STAT_NAMES, [
    'tun_packets_read', 'tun_super_packets', 'tun_segments', 'tun_checksums_completed',
    ...SPLIT_DROP_NAMES.map((n) => `drop_${n}`),
    ...histogramNames('tun_read_segments'),
  ]);
  assert.deepEqual(COALESCE_STAT_NAMES, ['coalesced_items', 'coalesced_packets', 'bad_checksum', ...histogramNames('tun_write_segments')]);
  assert.equal(COALESCE_MAX_PACKETS, 1024);
});

test('checksum loop, the one in use and both its builds (portable, AVX2), matches a plain RFC 1071 sum at every length and alignment', () => {
  // The folded one's-complement sum of `bytes` (not complemented), 0..0xffff, big-endian:
  // the loop split and coalesce run, exported for this test only; `variant` picks a build
  // (undefined: 'avx2' on a CPU without it).
  const nativeChecksum = nativeFunction<(bytes: Uint8Array, variant?: 'portable' | 'avx2') => number | undefined>('offloadChecksum');
  const hasAvx2 = /\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  assert.equal(nativeChecksum(new Uint8Array(4), 'avx2') !== undefined, hasAvx2, 'the AVX2 build is offered exactly when /proc/cpuinfo has avx2');
  const buf = bytes(70_000, 7);
  for (const variant of [undefined, 'portable', ...(hasAvx2 ? ['avx2'] as const : [])] as const) {
    for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 33, 63, 64, 65, 127, 128, 129, 1448, 1449, 65535, 65536]) {
      for (const at of [0, 1, 2, 3]) {
        assert.equal(nativeChecksum(buf.subarray(at, at + n), variant), onesSum(buf, at, at + n), `${variant ?? 'in use'}: n=${n} at=${at}`);
      }
    }
    assert.equal(nativeChecksum(new Uint8Array(100), variant), 0);
    assert.equal(nativeChecksum(new Uint8Array(100).fill(0xff), variant), 0xffff);
  }
  assert.throws(() => nativeChecksum(new Uint8Array(4), 'sse9' as 'avx2'), TypeError);
});

// ---- argument checks ----------------------------------------------------------------------

describe('argument checks throw before anything is touched', () => {
  const input = vnet({}, tcp4({ seq: 1, flags: 0x10, payload: bytes(100, 1) }));

  test('offloadSplit', () => {
    const s = slots(4, 2000);
    const before = s.data.slice();
    const same = (): void => {
      assert.deepEqual(s.data, before);
      assert.deepEqual([...s.lengths], [0xdead, 0xdead, 0xdead, 0xdead]);
    };
    const call = (...a: unknown[]): number => (nativeSplit as (...x: unknown[]) => number)(...a);
    assert.throws(() => call(Array.from(input), s.data, s.offsets, s.lengths, 4, 2000), TypeError);
    assert.throws(() => call(input, s.data.buffer, s.offsets, s.lengths, 4, 2000), TypeError);
    assert.throws(() => call(input, s.data, new Int32Array(4), s.lengths, 4, 2000), TypeError);
    assert.throws(() => call(input, s.data, s.offsets, new Float64Array(4), 4, 2000), TypeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths, '4', 2000), TypeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths, 4, undefined), TypeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths, 0, 2000), RangeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths, 5, 2000), RangeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths.subarray(0, 2), 3, 2000), RangeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths, 1.5, 2000), RangeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths, 4, -1), RangeError);
    assert.throws(() => call(input, s.data, s.offsets, s.lengths, 4, 2004), RangeError, 'last slot past data');
    same();
    assert.equal(nativeSplit(input, s.data, s.offsets, s.lengths, 4, 2000), 1);
  });

  test('offloadCoalesce', () => {
    const p = tcp4({ seq: 1, flags: 0x10, payload: bytes(100, 1) });
    const b = batch([p, p], 200);
    const snapshot = (): unknown => [b.data.slice(), b.offsets.slice(), b.lengths.slice()];
    const before = snapshot();
    const call = (...a: unknown[]): number => (nativeCoalesce as (...x: unknown[]) => number)(...a);
    assert.throws(() => call('x', b.offsets, b.lengths, 2, 200, 1), TypeError);
    assert.throws(() => call(b.data, Array.from(b.offsets), b.lengths, 2, 200, 1), TypeError);
    assert.throws(() => call(b.data, b.offsets, b.lengths, 2, 200, 1, new Float32Array(3)), TypeError);
    assert.throws(() => call(b.data, b.offsets, b.lengths, 2, 200, null), TypeError);
    assert.throws(() => call(b.data, b.offsets, b.lengths, 3, 200, 1), RangeError);
    assert.throws(() => call(b.data, b.offsets, b.lengths, COALESCE_MAX_PACKETS + 1, 200, 1), RangeError);
    assert.throws(() => call(b.data, b.offsets, b.lengths, 2, 200, 8), RangeError, 'an unknown flag');
    assert.throws(() => call(b.data, b.offsets, b.lengths, 2, 200, 1, new Float64Array(2)), RangeError);
    assert.throws(() => call(b.data, b.offsets, b.lengths, 2, 10_000, 1), RangeError, 'slot past data');
    const lengths = b.lengths.slice();
    lengths[1] = 100_000;
    assert.throws(() => call(b.data, b.offsets, lengths, 2, 200, 1), RangeError, 'packet past data');
    const offsets = b.offsets.slice();
    offsets[1] = 9;
    assert.throws(() => call(b.data, offsets, b.lengths, 2, 200, 1), RangeError, 'no header room');
    assert.deepEqual(snapshot(), before);
  });

  test('tunReadVnet checks everything before reading', () => {
    const s = slots(4, 2000);
    const scratch = new Uint8Array(TUN_READ_SCRATCH_SIZE);
    const state = new Uint32Array(1);
    const call = (...a: unknown[]): number => (tunReadVnet as (...x: unknown[]) => number)(...a);
    // fd 0 is never read: every call is rejected first.
    assert.throws(() => call(0, scratch.subarray(1), state, s.data, s.offsets, s.lengths, 4, 2000), RangeError);
    assert.throws(() => call(0, scratch, new Uint32Array(0), s.data, s.offsets, s.lengths, 4, 2000), RangeError);
    assert.throws(() => call(0, scratch, Uint32Array.of(TUN_READ_SCRATCH_SIZE), s.data, s.offsets, s.lengths, 4, 2000), RangeError);
    assert.throws(() => call(0, scratch, state, s.data, s.offsets, s.lengths, 5, 2000), RangeError);
    assert.throws(() => call(0, scratch, state, s.data, s.offsets, s.lengths, 4, 2004), RangeError);
    assert.throws(() => call(0, scratch, state, s.data, s.offsets, s.lengths, 4, 2000, new Float64Array(OFFLOAD_STAT_NAMES.length - 1)), RangeError);
    assert.throws(() => call(0, scratch, new Int32Array(1), s.data, s.offsets, s.lengths, 4, 2000), TypeError);
    assert.throws(() => call(-1, scratch, state, s.data, s.offsets, s.lengths, 4, 2000), RangeError);
  });
});

// ---- split ---------------------------------------------------------------------------------

describe('split', () => {
  const payload = bytes(3500, 2);
  // TCPv4 with a timestamp-sized option block, FIN|PSH|CWR|ACK on the super-packet.
  const options = Uint8Array.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
  const superTcp = tcp4({ id: 0xfffe, seq: 0xfffffc00, flags: 0x80 | 0x10 | 0x08 | 0x01, payload, options });
  const gso = (p: Uint8Array, h: Vnet = {}): Uint8Array =>
    vnet({ flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 9999, gsoSize: 1000, csumStart: 20, csumOffset: 16, ...h }, p);

  test('a TCPv4 super-packet becomes its known segments', () => {
    const s = slots(8, 1100);
    const n = nativeSplit(gso(superTcp), s.data, s.offsets, s.lengths, 8, 1100);
    assert.equal(n, 4);
    assert.deepEqual([...s.lengths.subarray(0, 4)], [1052, 1052, 1052, 552]);
    for (let j = 0; j < 4; j++) {
      const seg = segment(s, j);
      assert.ok(checksumsValid(seg), `segment ${j} checksums`);
      assert.equal(u16(seg, 2), seg.length, 'total length');
      assert.equal(u16(seg, 4), (0xfffe + j) & 0xffff, 'IP ID');
      assert.equal(u32(seg, 24), (0xfffffc00 + j * 1000) >>> 0, 'seq');
      const want = 0x10 | (j === 0 ? 0x80 : 0) | (j === 3 ? 0x09 : 0);
      assert.equal(seg[33], want, `flags of ${j}`);
      assert.deepEqual(seg.subarray(40, 52), options);
      assert.deepEqual(seg.subarray(52), payload.subarray(j * 1000, Math.min(3500, (j + 1) * 1000)));
      // Everything else of the headers is as it was.
      assert.deepEqual(seg.subarray(6, 10), superTcp.subarray(6, 10));
      assert.deepEqual(seg.subarray(28, 33), superTcp.subarray(28, 33));
      assert.deepEqual(seg.subarray(34, 36), superTcp.subarray(34, 36));
    }
    // Nothing written outside the segments.
    for (let j = 0; j < 8; j++) {
      const end = j < 4 ? s.offsets[j]! + s.lengths[j]! : s.offsets[j]!;
      const next = j + 1 < 8 ? s.offsets[j + 1]! : s.data.length;
      assert.ok(s.data.subarray(end, next).every((v) => v === 0xa5), `guard after slot ${j}`);
    }
    assert.ok(s.data.subarray(0, 5).every((v) => v === 0xa5));
  });

  test('a UDPv6 super-packet (UDP_L4) gets lengths and checksums per segment', () => {
    const pl = bytes(2500, 3);
    const s = slots(3, 1500);
    const n = nativeSplit(vnet({ gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, csumStart: 40, csumOffset: 6 }, udp6(pl)), s.data, s.offsets, s.lengths, 3, 1500);
    assert.equal(n, 3);
    for (let j = 0; j < 3; j++) {
      const seg = segment(s, j);
      const part = pl.subarray(j * 1200, Math.min(2500, (j + 1) * 1200));
      assert.equal(seg.length, 48 + part.length);
      assert.equal(u16(seg, 4), 8 + part.length, 'payload length');
      assert.equal(u16(seg, 44), 8 + part.length, 'UDP length');
      assert.ok(checksumsValid(seg));
      assert.deepEqual(seg.subarray(48), part);
    }
  });

  test('NONE copies the packet; with NEEDS_CSUM it completes the checksum', () => {
    const p = tcp4({ seq: 5, flags: 0x18, payload: bytes(333, 4) });
    const s = slots(1, 1000);
    assert.equal(nativeSplit(vnet({}, p), s.data, s.offsets, s.lengths, 1, 1000), 1);
    assert.deepEqual(segment(s, 0), p);
    // The kernel's CHECKSUM_PARTIAL form: the field holds the folded pseudo-header sum.
    const partial = p.slice();
    put16(partial, 36, onesSum(new Uint8Array(0), 0, 0, pseudo(p, p.length - 20)));
    assert.equal(nativeSplit(vnet({ flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 16 }, partial), s.data, s.offsets, s.lengths, 1, 1000), 1);
    assert.deepEqual(segment(s, 0), p);
    // Not parsed: any bytes, even a lone one.
    assert.equal(nativeSplit(vnet({}, Uint8Array.of(0xee)), s.data, s.offsets, s.lengths, 1, 1000), 1);
    assert.deepEqual([...segment(s, 0)], [0xee]);
  });

  test('each drop code', () => {
    const s = slots(8, 4000);
    const split = (input: Uint8Array, max = 8, cap = 4000): number => nativeSplit(input, s.data, s.offsets, s.lengths, max, cap);
    const v6tcp = new Uint8Array(60 + 100);
    v6tcp[0] = 0x60;
    v6tcp[6] = 6;
    v6tcp[52] = 0x50;
    const cases: [string, Uint8Array, number?, number?][] = [
      ['vnet_header_truncated', new Uint8Array(9)],
      ['vnet_header_truncated', vnet({}, new Uint8Array(0))],
      ['bad_gso_type', gso(superTcp, { gsoType: VNET_GSO_UDP })],
      ['bad_gso_type', gso(superTcp, { gsoType: VNET_GSO_TCPV4 | VNET_GSO_ECN })],
      ['bad_gso_type', gso(Uint8Array.of(1), { gsoType: 2 })],
      ['gso_ip_mismatch', gso(superTcp, { gsoType: VNET_GSO_TCPV6 })],
      ['gso_ip_mismatch', gso(superTcp, { gsoType: VNET_GSO_UDP_L4 })],
      ['gso_ip_mismatch', gso(v6tcp)],
      ['gso_ip_mismatch', gso(Uint8Array.of(0x55, 0, 0))],
      ['gso_ip_mismatch', gso(Uint8Array.of(0x45, 0, 0, 0, 0))], // no protocol byte at all
      ['truncated_header', gso(superTcp.subarray(0, 19))],
      ['truncated_header', gso(Uint8Array.from([0x44, ...superTcp.subarray(1, 60)]))],
      ['truncated_header', gso(superTcp.subarray(0, 51))],
      ['truncated_header', gso(Uint8Array.from([...superTcp.subarray(0, 32), 0x40, ...superTcp.subarray(33)]))],
      ['bad_csum_start', gso(superTcp, { csumStart: 21 })],
      ['bad_csum_start', vnet({ flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 100 }, new Uint8Array(121))],
      ['bad_gso_size', gso(superTcp, { gsoSize: 0 })],
      ['bad_gso_size', gso(superTcp, { gsoSize: 3501 })],
      ['bad_gso_size', gso(superTcp.subarray(0, 52))],
      ['too_many_segments', gso(superTcp), 3],
      ['too_many_segments', gso(superTcp, { gsoSize: 1 }), 8, 100],
      ['packet_too_large', gso(superTcp), 8, 1051],
      ['packet_too_large', vnet({}, superTcp), 8, superTcp.length - 1],
    ];
    for (const [name, input, max, cap] of cases) {
      assert.equal(split(input, max, cap), -((SPLIT_DROP_NAMES as readonly string[]).indexOf(name) + 1), name);
    }
    assert.ok(s.data.every((v) => v === 0xa5), 'a dropped packet writes nothing');
    assert.ok(s.lengths.every((v) => v === 0xdead));
    // The boundaries of the last two pass.
    assert.equal(split(gso(superTcp), 4, 1052), 4);
    assert.equal(split(vnet({}, superTcp), 1, superTcp.length), 1);
  });

  test('never reads or writes outside its buffers, whatever the header says', () => {
    const rnd = prng(99);
    const s = slots(16, 700);
    const base = gso(superTcp.subarray(0, 1500), { gsoSize: 400 });
    for (let i = 0; i < 3000; i++) {
      const input = base.slice(0, 1 + Math.floor(rnd() * base.length));
      for (let k = 0; k < 4; k++) input[Math.floor(rnd() * Math.min(input.length, 70))] = Math.floor(rnd() * 256);
      const n = nativeSplit(input, s.data, s.offsets, s.lengths, 1 + Math.floor(rnd() * 16), 700);
      assert.ok(n >= -8 && n !== 0 && n <= 16);
      for (let j = 0; j < 16; j++) {
        const next = j + 1 < 16 ? s.offsets[j + 1]! : s.data.length;
        assert.ok(s.data.subarray(s.offsets[j]! + 700, next).every((v) => v === 0xa5));
      }
    }
  });
});

// ---- coalesce ------------------------------------------------------------------------------

describe('coalesce', () => {
  const p1 = tcp4({ id: 7, seq: 1000, flags: 0x10, payload: bytes(1200, 5) });
  const p2 = tcp4({ id: 8, seq: 2200, flags: 0x18, payload: bytes(1200, 6) });

  test('two TCP segments merge into one GSO item', () => {
    const b = batch([p1, p2], 4000);
    const stats = new Float64Array(COALESCE_STAT_NAMES.length);
    const items = nativeCoalesce(b.data, b.offsets, b.lengths, 2, 4000, COALESCE_TCP, stats);
    assert.equal(items, 1);
    assert.deepEqual([...stats.subarray(0, 3)], [1, 2, 0]);
    assert.deepEqual([...stats.subarray(3)], [0, 1, 0, 0, 0, 0, 0, 0, 2], 'one item of two packets');
    const item = b.data.subarray(b.offsets[0]!, b.offsets[0]! + b.lengths[0]!);
    assert.equal(b.offsets[0], 1, 'the item starts at the head packet\'s header room');
    assert.equal(item.length, 10 + 40 + 2400);
    assert.deepEqual([item[0], item[1], le16(item, 2), le16(item, 4), le16(item, 6), le16(item, 8)], [VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 40, 1200, 20, 16]);
    const pkt = item.subarray(10);
    assert.equal(u16(pkt, 2), 2440);
    assert.equal(u16(pkt, 4), 7, 'the head\'s ID');
    assert.equal(onesSum(pkt, 0, 20), 0xffff, 'IPv4 header checksum');
    assert.equal(u32(pkt, 24), 1000);
    assert.equal(pkt[33], 0x18, 'PSH of the appended segment');
    assert.equal(u16(pkt, 36), onesSum(new Uint8Array(0), 0, 0, pseudo(pkt, 2420)), 'pseudo-header sum only');
    assert.deepEqual(pkt.subarray(40, 1240), p1.subarray(40));
    assert.deepEqual(pkt.subarray(1240), p2.subarray(40));
  });

  test('the item splits back into the original packets', () => {
    const b = batch([p1, p2], 4000);
    assert.equal(nativeCoalesce(b.data, b.offsets, b.lengths, 2, 4000, COALESCE_TCP | COALESCE_UDP), 1);
    const s = slots(2, 1500);
    const item = b.data.subarray(b.offsets[0]!, b.offsets[0]! + b.lengths[0]!);
    assert.equal(nativeSplit(item, s.data, s.offsets, s.lengths, 2, 1500), 2);
    assert.deepEqual(segment(s, 0), p1);
    assert.deepEqual(segment(s, 1), p2);
  });

  test('prepend: the later packet of the batch becomes the head', () => {
    const b = batch([p2, p1], 4000);
    assert.equal(nativeCoalesce(b.data, b.offsets, b.lengths, 2, 4000, COALESCE_TCP), 1);
    const headAt = batch([p2, p1], 4000).offsets[1]!;
    assert.equal(b.offsets[0], headAt - 10, "the item is in p1's slot");
    const pkt = b.data.subarray(b.offsets[0]! + 10, b.offsets[0]! + b.lengths[0]!);
    assert.equal(pkt.length, 2440);
    assert.equal(u32(pkt, 24), 1000, 'head seq');
    assert.equal(pkt[33], 0x18);
    assert.deepEqual(pkt.subarray(40, 1240), p1.subarray(40));
  });

  test('flags 0, bad checksums and non-candidates stay as they are behind a zero header', () => {
    const bad = p2.slice();
    bad[100]! ^= 1;
    const syn = tcp4({ seq: 2200, flags: 0x02, payload: bytes(10, 8) });
    for (const [flags, packets, wantItems, wantStats] of [
      [0, [p1, p2], 2, [0, 0, 0]],
      [COALESCE_UDP, [p1, p2], 2, [0, 0, 0]],
      [COALESCE_TCP, [p1, bad], 2, [0, 0, 1]],
      [COALESCE_TCP, [p1, syn], 2, [0, 0, 0]],
    ] as const) {
      const b = batch([...packets], 4000);
      const original = b.data.slice();
      const offsets = b.offsets.slice();
      const stats = new Float64Array(COALESCE_STAT_NAMES.length);
      assert.equal(nativeCoalesce(b.data, b.offsets, b.lengths, packets.length, 4000, flags, stats), wantItems);
      assert.deepEqual([...stats.subarray(0, 3)], wantStats);
      for (let i = 0; i < packets.length; i++) {
        assert.equal(b.offsets[i], offsets[i]! - 10);
        assert.equal(b.lengths[i], packets[i]!.length + 10);
        assert.ok(b.data.subarray(b.offsets[i]!, offsets[i]).every((v) => v === 0), 'zero header');
      }
      for (let i = 0; i < b.data.length; i++) {
        if (offsets.some((o) => i >= o - 10 && i < o)) continue;
        if (b.data[i] !== original[i]) assert.fail(`byte ${i} changed`);
      }
    }
  });

  test('trusted: a packet with a bad checksum merges like any other, nothing is summed or counted', () => {
    const bad = p2.slice();
    bad[100]! ^= 1;
    const b = batch([p1, bad], 4000);
    const stats = new Float64Array(COALESCE_STAT_NAMES.length);
    assert.equal(nativeCoalesce(b.data, b.offsets, b.lengths, 2, 4000, COALESCE_TCP | COALESCE_TRUSTED, stats), 1);
    assert.deepEqual([...stats.subarray(0, 3)], [1, 2, 0], 'one item of two packets, no bad checksum');
    const pkt = b.data.subarray(b.offsets[0]! + 10, b.offsets[0]! + b.lengths[0]!);
    assert.deepEqual(pkt.subarray(40 + p1.length - 40), bad.subarray(40), 'the payload as it came');
    assert.throws(() => nativeCoalesce(b.data, b.offsets, b.lengths, 2, 4000, 8), RangeError);
  });

  test('capacity bounds the merged packet', () => {
    const b = batch([p1, p2], 2439);
    assert.equal(nativeCoalesce(b.data, b.offsets, b.lengths, 2, 2439, COALESCE_TCP), 2);
    const c = batch([p1, p2], 2440);
    assert.equal(nativeCoalesce(c.data, c.offsets, c.lengths, 2, 2440, COALESCE_TCP), 1);
  });
});

// ---- tunReadVnet against a real TUN ----------------------------------------------------------

const skip = networkTestsUnavailable(['ip', 'python3']);

describe('tunReadVnet on a TUN in a namespace', { skip, timeout: 60_000 }, () => {
  const ns = `tdr-ofl${process.pid % 100000}`;
  let dir = '';

  before(() => {
    run('ip', ['netns', 'add', ns]);
    dir = mkdtempSync(join(tmpdir(), 'tdr-offload-'));
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  test('a small packet, then a USO super-packet kept pending for the next call', (t) => {
    const tunUrl = new URL('../../src/tun/tun.js', import.meta.url).href;
    const fdUrl = new URL('../../src/io/fd.js', import.meta.url).href;
    // The fixture runs inside the namespace: opens the TUN with a vnet header, sends one
    // plain UDP datagram and one UDP_SEGMENT (GSO) send of 5 x 1000 bytes through it,
    // then reads them back with tunReadVnet and prints what it got.
    const fixture = join(dir, 'fixture.mjs');
    writeFileSync(fixture, `
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { openTun, tunReadVnet, tunSetOffload, TUN_READ_SCRATCH_SIZE } from ${JSON.stringify(tunUrl)};
import { closeFd } from ${JSON.stringify(fdUrl)};
// No IPv6 here: no router solicitations or DAD probes on the TUN.
for (const c of ['all', 'default']) writeFileSync('/proc/sys/net/ipv6/conf/' + c + '/disable_ipv6', '1');
const tun = openTun('tdrofl0', { vnetHeader: true });
const uso = tunSetOffload(tun.fd, ${TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6});
if (uso !== 0 && tunSetOffload(tun.fd, ${TUN_F_CSUM | TUN_F_TSO4}) !== 0) throw new Error('TUNSETOFFLOAD failed');
execFileSync('ip', ['addr', 'add', '100.96.0.1/24', 'dev', tun.name]);
execFileSync('ip', ['link', 'set', 'dev', tun.name, 'up']);
execFileSync('python3', ['-c', [
  'import socket',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  's.sendto(b"x" * 100, ("100.96.0.2", 9999))',
  's.setsockopt(17, 103, 1000)',
  's.sendto(bytes(range(250)) * 20, ("100.96.0.2", 9999))',
].join('\\n')]);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); // let the packets land
const capacity = 1500, n = 8;
const data = new Uint8Array(n * capacity);
const offsets = Uint32Array.from({ length: n }, (_, i) => i * capacity);
const lengths = new Uint32Array(n);
const scratch = new Uint8Array(TUN_READ_SCRATCH_SIZE);
const state = new Uint32Array(1);
const stats = new Float64Array(${OFFLOAD_STAT_NAMES.length});
const calls = [];
for (const count of [4, 8, 8]) {
  const got = tunReadVnet(tun.fd, scratch, state, data, offsets, lengths, count, capacity, stats);
  const packets = [];
  for (let i = 0; i < got; i++) packets.push(Buffer.from(data.subarray(offsets[i], offsets[i] + lengths[i])).toString('hex'));
  calls.push({ got, pending: state[0], packets });
}
closeFd(tun.fd);
console.log(JSON.stringify({ uso, calls, stats: [...stats] }));
`);
    const out = run('ip', ['netns', 'exec', ns, process.execPath, fixture]);
    const r = JSON.parse(out.trim().split('\n').pop()!) as {
      uso: number;
      calls: { got: number; pending: number; packets: string[] }[];
      stats: number[];
    };
    const packets = (c: { packets: string[] }): Uint8Array[] => c.packets.map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
    const [first, second, third] = r.calls as [typeof r.calls[0], typeof r.calls[0], typeof r.calls[0]];
    const all = [...packets(first), ...packets(second), ...packets(third)];
    // Whatever the kernel did (USO or its own segmentation): 6 UDP packets, all valid.
    assert.equal(all.length, 6, JSON.stringify(r));
    for (const p of all) {
      assert.equal(p[0]! >> 4, 4);
      assert.equal(p[9], 17);
      assert.ok(checksumsValid(p), 'checksums valid');
    }
    assert.deepEqual(all.map((p) => p.length), [128, 1028, 1028, 1028, 1028, 1028]);
    const payload = Buffer.concat(all.slice(1).map((p) => p.subarray(28)));
    assert.deepEqual(payload, Buffer.from(Uint8Array.from({ length: 5000 }, (_, i) => i % 250)));
    const stat = (name: string): number => r.stats[OFFLOAD_STAT_NAMES.indexOf(name)]!;
    assert.equal(third.got, 0);
    t.diagnostic(r.uso === 0 ? 'USO on: split one super-packet' : `USO refused (errno ${r.uso}): the kernel segmented`);
    if (r.uso === 0) {
      // The super-packet needed 5 slots with only 3 left: pending until the next call.
      assert.equal(first.got, 1);
      assert.ok(first.pending > 5000);
      assert.equal(second.got, 5);
      assert.equal(second.pending, 0);
      assert.equal(stat('tun_packets_read'), 2);
      assert.equal(stat('tun_super_packets'), 1);
      assert.equal(stat('tun_segments'), 5);
    } else {
      assert.equal(stat('tun_packets_read'), 6);
    }
    assert.ok(stat('tun_checksums_completed') >= 1, 'TUN_F_CSUM: partial checksums completed');
    const drops = OFFLOAD_STAT_NAMES.filter((n) => n.startsWith('drop_')).map(stat);
    assert.equal(drops.reduce((a, b) => a + b, 0), 0, 'no drops');
    // Segments per read: with USO one single packet and one super-packet of 5 ("<= 8").
    const histogram = histogramNames('tun_read_segments').map(stat);
    assert.deepEqual(histogram, r.uso === 0 ? [1, 0, 0, 1, 0, 0, 0, 0, 6] : [6, 0, 0, 0, 0, 0, 0, 0, 6]);
  });
});
