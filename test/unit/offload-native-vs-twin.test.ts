// The native offloads (offloadSplit / offloadCoalesce in native/offload.cc) against the
// TypeScript twin (reference/offload/{split,coalesce}.ts), the oracle: the same inputs must give the same
// return values, the same bytes in every slot, the same lengths and offsets and the same stats,
// and nothing may be written outside the slots (guard bytes around every slot). Seeded and
// bounded; a failure prints the case's bytes (or its seed and index when they are large).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeCoalesce, nativeSplit } from '../../src/offload/native.js';
import { COALESCE_STAT_NAMES, COALESCE_TCP, COALESCE_TRUSTED, COALESCE_UDP } from '../../src/offload/coalesce.js';
import { splitPacket, splitDropName } from '../../reference/offload/split.js';
import { coalescePackets } from '../../reference/offload/coalesce.js';
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP,
  VNET_GSO_UDP_L4,
  VNET_HDR_LEN,
} from '../../src/offload/vnet-header.js';
import {
  type Rand,
  GUARD,
  buildPacket,
  chance,
  concat,
  firstGuardViolation,
  generateTraffic,
  ipv4,
  layoutBatch,
  partialChecksumPacket,
  pick,
  randInt,
  randomBytes,
  randomSuperPacket,
  superPacket,
} from '../helpers/offload-packets.js';
import { prng } from '../helpers/prng.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const show = (b: Uint8Array, limit = 1200): string =>
  b.length <= limit ? hex(b) : `${hex(b.subarray(0, limit / 2))}… (${b.length} bytes)`;
const codeName = (r: number): string => (r < 0 ? `${r} ${splitDropName(r)}` : String(r));

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

// ---- split ------------------------------------------------------------------------------------

interface SplitSetup {
  data: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  starts: number[];
  ends: number[];
}

/** maxSegments slots of `capacity` bytes, with 0..7 GUARD bytes between and around them. */
function splitSlots(rand: Rand, maxSegments: number, capacity: number): SplitSetup {
  const starts: number[] = [];
  let at = randInt(rand, 8);
  for (let j = 0; j < maxSegments; j++) {
    starts.push(at);
    at += capacity + randInt(rand, 8);
  }
  const data = new Uint8Array(at + randInt(rand, 8)).fill(GUARD);
  // Slot contents start as random garbage (the same for both sides).
  for (const s of starts) data.set(randomBytes(rand, Math.min(capacity, 64)), s);
  const lengths = new Uint32Array(maxSegments).fill(0xdeadbeef);
  return { data, offsets: Uint32Array.from(starts), lengths, starts, ends: starts.map((s) => s + capacity) };
}

/** Runs both on the same input; asserts equal results. Returns the twin's result. */
function compareSplit(rand: Rand, input: Uint8Array, maxSegments: number, capacity: number, label: string): number {
  const twin = splitSlots(rand, maxSegments, capacity);
  const nat: SplitSetup = { ...twin, data: twin.data.slice(), offsets: twin.offsets.slice(), lengths: twin.lengths.slice() };
  const inputCopy = input.slice();
  const rt = splitPacket(input, twin.data, twin.offsets, twin.lengths, maxSegments, capacity);
  const rn = nativeSplit(inputCopy, nat.data, nat.offsets, nat.lengths, maxSegments, capacity);
  const what = (): string =>
    `${label}: maxSegments ${maxSegments} capacity ${capacity}\n input ${show(input)}\n twin ${codeName(rt)} native ${codeName(rn)}`;
  assert.equal(rn, rt, what());
  assert.equal(hex(inputCopy), hex(input), `${what()}\n native changed its input`);
  assert.equal(firstGuardViolation(nat.data, nat.starts, nat.ends), -1, `${what()}\n native wrote outside the slots`);
  assert.equal(firstGuardViolation(twin.data, twin.starts, twin.ends), -1, `${what()}\n twin wrote outside the slots`);
  assert.deepEqual(nat.offsets, twin.offsets, `${what()}\n offsets changed`);
  if (rt > 0) {
    assert.deepEqual(Array.from(nat.lengths), Array.from(twin.lengths), `${what()}\n lengths differ`);
    const d = firstDifference(nat.data, twin.data);
    if (d >= 0) {
      const j = twin.starts.findLastIndex((s) => s <= d);
      const seg = (b: Uint8Array): Uint8Array => b.subarray(twin.starts[j]!, twin.starts[j]! + twin.lengths[j]!);
      assert.fail(`${what()}\n first different byte: slot ${j} + ${d - twin.starts[j]!}\n twin   ${show(seg(twin.data))}\n native ${show(seg(nat.data))}`);
    }
  }
  return rt;
}

test('native split == twin: well-formed super-packets and NONE packets', (t) => {
  const rand = prng(0xa11ce);
  const started = performance.now();
  let cases = 0;
  const codes = new Map<number, number>();
  // At least 500 cases however slow the machine (no timing assertion: the suite passes on a busy machine), up to 3000 while
  // 8 s allow.
  while (cases < 500 || (cases < 3000 && performance.now() - started < 8000)) {
    cases++;
    const kind = randInt(rand, 10);
    let input: Uint8Array;
    let segments = 1;
    let longest: number;
    if (kind < 7) {
      const s = randomSuperPacket(rand, randInt(rand, 4) === 0 ? 65535 : 200 + randInt(rand, 12000), 128);
      input = s.input;
      segments = Math.ceil(s.payload.length / s.gsoSize);
      longest = input.length - 10 - s.payload.length + s.gsoSize;
    } else {
      const s = randomSuperPacket(rand, 100 + randInt(rand, 2000));
      input = kind === 7 ? partialChecksumPacket(s.ip, s.l4, s.payload) : concat(new Uint8Array(10), buildPacket(s.ip, s.l4, s.payload));
      longest = input.length - 10;
    }
    // Mostly enough slots and room, sometimes one slot or one byte short, sometimes far more room.
    const maxSegments = Math.max(1, segments + (chance(rand, 0.1) ? -1 : randInt(rand, 3)));
    const capacity = chance(rand, 0.1) ? longest - 1 : longest + (chance(rand, 0.5) ? 0 : randInt(rand, 3000));
    const r = compareSplit(rand, input, maxSegments, capacity, `case ${cases}`);
    codes.set(r > 0 ? 1 : r, (codes.get(r > 0 ? 1 : r) ?? 0) + 1);
  }
  t.diagnostic(`${cases} cases, results ${JSON.stringify([...codes].sort((a, b) => a[0] - b[0]))}`);
  assert.ok((codes.get(1) ?? 0) > cases / 3, `too few successes: ${JSON.stringify([...codes])}`);
});

/** A small super-packet with 1..3 things wrong with it. */
function malformedSplitInput(rand: Rand): Uint8Array {
  if (chance(rand, 0.05)) return randomBytes(rand, randInt(rand, 80)); // anything at all
  const base = randomSuperPacket(rand, 60 + randInt(rand, 3000), 32);
  const input = base.input;
  const iphlen = base.ip.family === 4 ? 20 + (base.ip.ipOptions?.length ?? 0) : 40;
  const mutations = 1 + randInt(rand, 3);
  let out = input;
  const le16 = (at: number, v: number): void => {
    out[at] = v & 0xff;
    out[at + 1] = (v >>> 8) & 0xff;
  };
  for (let m = 0; m < mutations; m++) {
    const plen = out.length - 10;
    switch (randInt(rand, 16)) {
      case 0: // gso_size: 0, 1, just around the payload, huge
        le16(4, pick(rand, [0, 1, plen, plen - iphlen, plen + 1, 0xffff, randInt(rand, 0x10000)]));
        break;
      case 1: // hdr_len: never used, any value
        le16(2, randInt(rand, 0x10000));
        break;
      case 2: // csum_start around the IP header length or past the end
        le16(6, pick(rand, [0, iphlen - 1, iphlen + 1, iphlen + 4, plen, plen + 1, 0xffff, randInt(rand, 0x10000)]));
        break;
      case 3:
        le16(8, pick(rand, [0, 6, 16, plen, 0xfffe, randInt(rand, 0x10000)]));
        break;
      case 4: // gso_type: unknown, UFO, ECN bit, the other family / protocol, NONE
        out[1] = pick(rand, [VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_GSO_UDP, VNET_GSO_UDP_L4, 2, 6, 7, VNET_GSO_ECN | VNET_GSO_TCPV4, VNET_GSO_ECN | VNET_GSO_TCPV6, randInt(rand, 256)]);
        break;
      case 5:
        out[0] = pick(rand, [0, VNET_F_NEEDS_CSUM, 2, 3, randInt(rand, 256)]);
        break;
      case 6: // IP version nibble
        out[10] = (randInt(rand, 16) << 4) | (out[10]! & 15);
        break;
      case 7: // IHL
        out[10] = (out[10]! & 0xf0) | randInt(rand, 16);
        break;
      case 8: // protocol / next header
        out[10 + (out[10]! >> 4 === 4 ? 9 : 6)] = pick(rand, [6, 17, 0, 1, 41, 58, randInt(rand, 256)]);
        break;
      case 9: // truncate anywhere, often inside the headers
        out = out.slice(0, chance(rand, 0.7) ? randInt(rand, 10 + iphlen + 64) : randInt(rand, out.length + 1));
        break;
      case 10: // TCP data offset (or the UDP byte there)
        if (out.length > 10 + iphlen + 12) out[10 + iphlen + 12] = randInt(rand, 256);
        break;
      case 11: // IPv4 total length / IPv6 payload length: not used by split
        if (out.length > 16) {
          out[12] = randInt(rand, 256);
          out[15] = randInt(rand, 256);
        }
        break;
      case 12: // a random byte anywhere
        if (out.length > 0) out[randInt(rand, out.length)] = randInt(rand, 256);
        break;
      case 13: // grow by garbage
        out = concat(out, randomBytes(rand, randInt(rand, 100)));
        break;
      case 14: // gso_size so small that there are many segments
        le16(4, 1 + randInt(rand, 8));
        break;
      default: // NONE + NEEDS_CSUM with a random checksum position
        out[0] = VNET_F_NEEDS_CSUM;
        out[1] = VNET_GSO_NONE;
        le16(6, randInt(rand, plen + 4));
        le16(8, randInt(rand, 40));
        break;
    }
  }
  return out;
}

test('native split == twin: fuzz of malformed vnet headers and packets', (t) => {
  const rand = prng(0xf022);
  const started = performance.now();
  let cases = 0;
  const codes = new Map<number, number>();
  // At least 2000 cases however slow the machine (no timing assertion: the suite passes on a busy machine), up to 20000 while
  // 8 s allow.
  while (cases < 2000 || (cases < 20000 && performance.now() - started < 8000)) {
    cases++;
    const input = malformedSplitInput(rand);
    const maxSegments = chance(rand, 0.5) ? 1 + randInt(rand, 4) : 1 + randInt(rand, 64);
    const capacity = chance(rand, 0.3) ? randInt(rand, 200) : pick(rand, [maxSegments <= 4 ? 65535 : 9000, 1500, randInt(rand, 4000)]);
    const r = compareSplit(rand, input, maxSegments, capacity, `fuzz case ${cases}`);
    codes.set(r > 0 ? 1 : r, (codes.get(r > 0 ? 1 : r) ?? 0) + 1);
  }
  t.diagnostic(`${cases} cases, results ${JSON.stringify([...codes].sort((a, b) => a[0] - b[0]))}`);
  for (const code of [1, -1, -2, -3, -4, -5, -6, -7, -8]) {
    assert.ok((codes.get(code) ?? 0) > 0, `the fuzz never produced ${code}: ${JSON.stringify([...codes])}`);
  }
});

test('native split == twin: edge cases', () => {
  const rand = prng(0xed9e);
  const p = superPacket({ family: 4, src: ipv4('1.2.3.4'), dst: ipv4('5.6.7.8'), id: 1 },
    { proto: 'tcp', sport: 1, dport: 2, seq: 3, ack: 4, flags: 0x18 }, randomBytes(rand, 3000), 1000);
  for (let len = 0; len <= 80; len++) {
    for (const maxSegments of [1, 3]) compareSplit(rand, p.subarray(0, len), maxSegments, 2000, `prefix ${len}`);
  }
  compareSplit(rand, p, 3, 1040, 'exact capacity');
  compareSplit(rand, p, 3, 1039, 'one byte short');
  compareSplit(rand, p, 2, 2000, 'one slot short');
  compareSplit(rand, superPacket({ family: 6, src: new Uint8Array(16), dst: new Uint8Array(16) }, { proto: 'udp', sport: 0, dport: 0 }, new Uint8Array(65535 - 48), 1), 64, 100, 'too many: 65487 segments');
  compareSplit(rand, superPacket({ family: 6, src: new Uint8Array(16), dst: new Uint8Array(16) }, { proto: 'udp', sport: 0, dport: 0 }, new Uint8Array(65535 - 48), 1024), 64, 1072, 'v6 UDP 64 segments');
});

test('split argument errors: both throw RangeError', () => {
  const input = concat(new Uint8Array(10), Uint8Array.of(0x45, 0, 0));
  const cases: [string, number, number, number, number][] = [
    // name, data length, offsets/lengths length, maxSegments, capacity
    ['maxSegments 0 (an argument error on both sides)', 100, 1, 0, 10],
    ['maxSegments past offsets', 100, 1, 2, 10],
    ['slot past data', 100, 2, 2, 51],
  ];
  for (const [name, dataLength, slots, maxSegments, capacity] of cases) {
    const offsets = new Uint32Array(slots).map((_, j) => j * 50);
    const run = (f: typeof splitPacket): unknown => f(input, new Uint8Array(dataLength), offsets, new Uint32Array(slots), maxSegments, capacity);
    assert.throws(() => run(splitPacket), RangeError, `twin: ${name}`);
    assert.throws(() => run(nativeSplit), RangeError, `native: ${name}`);
  }
});

// ---- coalesce ---------------------------------------------------------------------------------

function compareCoalesce(rand: Rand, packets: Uint8Array[], capacity: number, flags: number, label: string): number {
  const twin = layoutBatch(packets, capacity, rand);
  // Random garbage in the free part of each slot and in the header room (the same for both).
  twin.slotStart.forEach((s, i) => {
    twin.data.set(randomBytes(rand, VNET_HDR_LEN), s);
    const free = s + VNET_HDR_LEN + packets[i]!.length;
    twin.data.set(randomBytes(rand, Math.min(64, twin.slotEnd[i]! - free)), free);
  });
  const nat = { ...twin, data: twin.data.slice(), offsets: twin.offsets.slice(), lengths: twin.lengths.slice() };
  const seedStats = Float64Array.from(COALESCE_STAT_NAMES, () => randInt(rand, 100));
  const twinStats = seedStats.slice();
  const natStats = seedStats.slice();
  const rt = coalescePackets(twin.data, twin.offsets, twin.lengths, twin.count, capacity, flags, twinStats);
  const rn = nativeCoalesce(nat.data, nat.offsets, nat.lengths, nat.count, capacity, flags, natStats);
  const what = (): string => {
    const shown = packets.length <= 8 ? packets.map((p, i) => `\n packet ${i}: ${show(p, 400)}`).join('') : ` (${packets.length} packets)`;
    return `${label}: flags ${flags} capacity ${capacity}${shown}\n twin ${rt} items, native ${rn}`;
  };
  assert.equal(rn, rt, what());
  assert.equal(firstGuardViolation(nat.data, nat.slotStart, nat.slotEnd), -1, `${what()}\n native wrote outside the slots`);
  assert.equal(firstGuardViolation(twin.data, twin.slotStart, twin.slotEnd), -1, `${what()}\n twin wrote outside the slots`);
  assert.deepEqual(Array.from(natStats), Array.from(twinStats), `${what()}\n stats differ`);
  assert.deepEqual(Array.from(nat.offsets.subarray(0, rt)), Array.from(twin.offsets.subarray(0, rt)), `${what()}\n offsets differ`);
  assert.deepEqual(Array.from(nat.lengths.subarray(0, rt)), Array.from(twin.lengths.subarray(0, rt)), `${what()}\n lengths differ`);
  assert.deepEqual(Array.from(nat.offsets.subarray(rt)), Array.from(twin.offsets.subarray(rt)), `${what()}\n offsets past the items differ`);
  assert.deepEqual(Array.from(nat.lengths.subarray(rt)), Array.from(twin.lengths.subarray(rt)), `${what()}\n lengths past the items differ`);
  const d = firstDifference(nat.data, twin.data);
  if (d >= 0) {
    const k = Array.from(twin.offsets.subarray(0, rt)).findIndex((o, kk) => o <= d && d < o + twin.lengths[kk]!);
    const item = (b: Uint8Array): Uint8Array => (k >= 0 ? b.subarray(twin.offsets[k]!, twin.offsets[k]! + twin.lengths[k]!) : b.subarray(d, d + 16));
    assert.fail(`${what()}\n first different byte at ${d}, item ${k}${k >= 0 ? ` + ${d - twin.offsets[k]!}` : ' (outside every item)'}\n twin   ${show(item(twin.data))}\n native ${show(item(nat.data))}`);
  }
  return rt;
}

test('native coalesce == twin: interleaved flows', (t) => {
  const rand = prng(0xc0a1);
  const started = performance.now();
  let batches = 0;
  let packets = 0;
  // At least 200 batches however slow the machine (no timing assertion: the suite passes on a busy machine), up to 800 while
  // 8 s allow.
  while (batches < 200 || (batches < 800 && performance.now() - started < 8000)) {
    batches++;
    const count = 1 + randInt(rand, 128);
    packets += count;
    const batch = generateTraffic(rand, {
      packets: count,
      odd: pick(rand, [0, 0.05, 0.3]),
      reorder: pick(rand, [0, 0.03, 0.3]),
      badChecksum: pick(rand, [0, 0.02, 0.2]),
      varyHeaders: pick(rand, [0, 0.1]),
      mtus: chance(rand, 0.2) ? [576, 1280, 300] : undefined,
    });
    const longest = Math.max(...batch.map((p) => p.length));
    const capacity = chance(rand, 0.2) ? 65535 : longest + randInt(rand, 20000);
    const flags = pick(rand, [COALESCE_TCP | COALESCE_UDP, COALESCE_TCP | COALESCE_UDP, COALESCE_TCP, COALESCE_UDP, 0])
      | (chance(rand, 0.3) ? COALESCE_TRUSTED : 0);
    compareCoalesce(rand, batch, capacity, flags, `batch ${batches}`);
  }
  t.diagnostic(`${batches} batches, ${packets} packets`);
  assert.ok(packets > 10000);
});

/** A packet of a flow with something wrong: truncated, lengths off, headers changed, garbage. */
function mutatePacket(rand: Rand, p: Uint8Array): Uint8Array {
  let out: Uint8Array = p.slice();
  const v4 = out[0]! >> 4 === 4;
  const iphlen = v4 ? 20 : 40;
  switch (randInt(rand, 12)) {
    case 0:
      out = out.slice(0, randInt(rand, Math.min(out.length, 100)));
      break;
    case 1: // total / payload length
      out[v4 ? 3 : 5] = randInt(rand, 256);
      break;
    case 2:
      out[0] = randInt(rand, 256);
      break;
    case 3:
      out[v4 ? 9 : 6] = pick(rand, [6, 17, 0, randInt(rand, 256)]);
      break;
    case 4: // fragment bits
      if (v4) out[6] = pick(rand, [0x20, 0x01, 0x80, 0x40]);
      break;
    case 5: // TCP data offset / flags
      if (out.length > iphlen + 13) out[iphlen + pick(rand, [12, 13])] = randInt(rand, 256);
      break;
    case 6: // UDP length / checksum
      if (out.length > iphlen + 7) out[iphlen + pick(rand, [4, 5, 6, 7])] = pick(rand, [0, randInt(rand, 256)]);
      break;
    case 7:
      out = concat(out, randomBytes(rand, 1 + randInt(rand, 8)));
      break;
    case 8:
      out = randomBytes(rand, randInt(rand, 120));
      break;
    case 9: // a payload byte (bad checksum)
      if (out.length > 0) out[randInt(rand, out.length)]! ^= 1 << randInt(rand, 8);
      break;
    case 10: // TTL / ToS / hop limit
      out[v4 ? pick(rand, [1, 8]) : pick(rand, [1, 7])] = randInt(rand, 256);
      break;
    default: // a zero-length packet
      out = new Uint8Array(0);
      break;
  }
  return out;
}

test('native coalesce == twin: fuzz of malformed packets in flows', (t) => {
  const rand = prng(0xf0221);
  const started = performance.now();
  let batches = 0;
  // At least 1000 batches however slow the machine (no timing assertion: the suite passes on a busy machine), up to 3000 while
  // 8 s allow.
  while (batches < 1000 || (batches < 3000 && performance.now() - started < 8000)) {
    batches++;
    const count = 1 + randInt(rand, 40);
    const batch = generateTraffic(rand, { packets: count, flows: 1 + randInt(rand, 3), mtus: [300, 576, 1500], badChecksum: 0.1 })
      .map((p) => (chance(rand, 0.2) ? mutatePacket(rand, p) : p));
    // Duplicates: the same packet twice.
    if (chance(rand, 0.2) && batch.length > 1) batch.splice(randInt(rand, batch.length), 0, batch[randInt(rand, batch.length)]!.slice());
    const longest = Math.max(...batch.map((p) => p.length));
    const capacity = chance(rand, 0.3) ? longest + randInt(rand, 3000) : pick(rand, [65535, 9000]);
    compareCoalesce(rand, batch, Math.max(capacity, longest), randInt(rand, 4), `fuzz batch ${batches}`);
  }
  t.diagnostic(`${batches} batches`);
});

test('native coalesce == twin: the 64-segment and 65535-byte caps, no stats', () => {
  const rand = prng(0xcab);
  const ip = { family: 4 as const, src: ipv4('10.1.1.1'), dst: ipv4('10.2.2.2'), id: 5 };
  const udpBatch = Array.from({ length: 130 }, () => buildPacket(ip, { proto: 'udp', sport: 1, dport: 2 }, randomBytes(rand, 100)));
  compareCoalesce(rand, udpBatch, 65535, COALESCE_UDP, 'UDP 130 × 100');
  const tcpBatch = Array.from({ length: 50 }, (_, i) =>
    buildPacket(ip, { proto: 'tcp', sport: 1, dport: 2, seq: 0xfffff000 + i * 1460, ack: 9, flags: 0x10 }, randomBytes(rand, 1460)));
  compareCoalesce(rand, tcpBatch, 65535, COALESCE_TCP, 'TCP 50 × 1460');
  compareCoalesce(rand, tcpBatch, 40 + 3 * 1460, COALESCE_TCP, 'TCP capacity 3 segments');
  compareCoalesce(rand, tcpBatch, 40 + 3 * 1460 - 1, COALESCE_TCP, 'TCP capacity 3 segments - 1');
  // TCP has no segment cap of its own: 130 × 100 bytes is one item.
  const smallTcp = Array.from({ length: 130 }, (_, i) =>
    buildPacket(ip, { proto: 'tcp', sport: 1, dport: 2, seq: i * 100, ack: 9, flags: 0x10 }, randomBytes(rand, 100)));
  assert.equal(compareCoalesce(rand, smallTcp, 65535, COALESCE_TCP, 'TCP 130 × 100'), 1);
  // A batch of COALESCE_MAX_PACKETS (1024) packets of many flows.
  const full = generateTraffic(rand, { packets: 1024, flows: 20, mtus: [1500, 576] });
  compareCoalesce(rand, full, 9000, COALESCE_TCP | COALESCE_UDP, '1024 packets');
  // Without stats.
  const b1 = layoutBatch(tcpBatch, 65535);
  const b2 = { ...b1, data: b1.data.slice(), offsets: b1.offsets.slice(), lengths: b1.lengths.slice() };
  assert.equal(nativeCoalesce(b2.data, b2.offsets, b2.lengths, b2.count, 65535, COALESCE_TCP), coalescePackets(b1.data, b1.offsets, b1.lengths, b1.count, 65535, COALESCE_TCP));
  assert.deepEqual(b2.data, b1.data);
  assert.equal(nativeCoalesce(b2.data, b2.offsets, b2.lengths, 0, 65535, COALESCE_TCP), 0);
});

test('native coalesce throws RangeError on bad slots, like the twin', () => {
  const data = new Uint8Array(200);
  const bad: [string, Uint32Array, Uint32Array, number, number][] = [
    ['offset < 10', Uint32Array.of(9), Uint32Array.of(20), 1, 100],
    ['capacity past data', Uint32Array.of(10), Uint32Array.of(20), 1, 191],
    ['packet past data', Uint32Array.of(10), Uint32Array.of(191), 1, 100],
  ];
  for (const [name, offsets, lengths, count, capacity] of bad) {
    assert.throws(() => coalescePackets(data, offsets.slice(), lengths.slice(), count, capacity, 3), RangeError, `twin: ${name}`);
    assert.throws(() => nativeCoalesce(data, offsets.slice(), lengths.slice(), count, capacity, 3), RangeError, `native: ${name}`);
  }
});
