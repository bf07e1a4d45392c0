// Builders for the offload tests: IPv4 (with or without options) and IPv6 TCP/UDP packets with
// correct (or deliberately wrong) checksums, super-packets behind a virtio_net_hdr as the kernel
// hands them to a TUN, batch layouts with guard bytes, and a seeded generator of interleaved
// flows of MTU-sized segments.
//
// Checksums here are computed with a separate, naive RFC 1071 routine (not the twins' in
// reference/offload/), so the tests do not only check the code against itself.

import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_HDR_LEN,
  type VnetHeader,
} from '../../src/offload/vnet-header.js';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export const ECN_NOT_ECT = 0;
export const ECN_ECT1 = 1;
export const ECN_ECT0 = 2;
export const ECN_CE = 3;

export type Rand = () => number;
export const randInt = (rand: Rand, n: number): number => Math.floor(rand() * n);
export const chance = (rand: Rand, p: number): boolean => rand() < p;
export function pick<T>(rand: Rand, items: readonly T[]): T {
  return items[randInt(rand, items.length)]!;
}
export function randomBytes(rand: Rand, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = randInt(rand, 256);
  return b;
}

// ---- addresses --------------------------------------------------------------------------------

export function ipv4(text: string): Uint8Array {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad IPv4 ${text}`);
  return Uint8Array.from(parts);
}

export function ipv6(text: string): Uint8Array {
  const [left, right] = text.includes('::') ? text.split('::') : [text, undefined];
  const words = (s: string | undefined): number[] => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const l = words(left);
  const r = words(right);
  const all = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  if (all.length !== 8) throw new Error(`bad IPv6 ${text}`);
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

// ---- checksums (naive, independent of reference/offload/checksum.ts) --------------------------

/** The 16-bit one's-complement sum (folded, not complemented) of the byte list. */
export function onesSum(bytes: ArrayLike<number>, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) {
    sum += (bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}
const add16 = (a: number, b: number): number => {
  const s = a + b;
  return (s & 0xffff) + (s >>> 16);
};

/** Folded pseudo-header sum of a bare packet, L4 length = packet length - IP header length. */
export function pseudoSum(packet: Uint8Array, l4Length?: number): number {
  const v4 = packet[0]! >> 4 === 4;
  const iphlen = v4 ? (packet[0]! & 15) * 4 : 40;
  const len = l4Length ?? packet.length - iphlen;
  const proto = v4 ? packet[9]! : packet[6]!;
  let s = v4 ? onesSum(packet, 12, 20) : onesSum(packet, 8, 40);
  s = add16(s, proto);
  s = add16(s, len >>> 16);
  s = add16(s, len & 0xffff);
  return s;
}

/** True if the IPv4 header (if any) and the TCP/UDP checksum of a bare packet are valid. */
export function checksumsValid(packet: Uint8Array): boolean {
  const v4 = packet[0]! >> 4 === 4;
  const iphlen = v4 ? (packet[0]! & 15) * 4 : 40;
  if (v4 && onesSum(packet, 0, iphlen) !== 0xffff) return false;
  return add16(pseudoSum(packet), onesSum(packet, iphlen)) === 0xffff;
}

// ---- packets ----------------------------------------------------------------------------------

export interface IpFields {
  family: 4 | 6;
  src: Uint8Array;
  dst: Uint8Array;
  /** v4 ToS / v6 traffic class, ECN in the low 2 bits. */
  tos?: number;
  /** v4 TTL / v6 hop limit (default 64). */
  ttl?: number;
  /** v4 only. */
  id?: number;
  df?: boolean;
  mf?: boolean;
  fragOffset?: number;
  /** v4 options (a multiple of 4 bytes, at most 40). */
  ipOptions?: Uint8Array;
  /** v6 only, 20 bits. */
  flowLabel?: number;
  /** Overrides the protocol / next header byte. */
  protocol?: number;
}

export interface TcpFields {
  proto: 'tcp';
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  urgent?: number;
  /** TCP options (a multiple of 4 bytes, at most 40). */
  options?: Uint8Array;
}

export interface UdpFields {
  proto: 'udp';
  sport: number;
  dport: number;
}

export type L4Fields = TcpFields | UdpFields;

export interface ChecksumMode {
  /** Corrupt the IPv4 header checksum. */
  badIp?: boolean;
  /** Corrupt the TCP/UDP checksum. */
  badL4?: boolean;
  /** UDP checksum 0 (none). */
  zeroUdp?: boolean;
}

export const ipHeaderLength = (ip: IpFields): number => (ip.family === 4 ? 20 + (ip.ipOptions?.length ?? 0) : 40);
export const l4HeaderLength = (l4: L4Fields): number => (l4.proto === 'tcp' ? 20 + (l4.options?.length ?? 0) : 8);

function setU16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
function setU32(b: Uint8Array, at: number, v: number): void {
  setU16(b, at, (v >>> 16) & 0xffff);
  setU16(b, at + 2, v & 0xffff);
}

/** Writes the IP + L4 headers and payload without any checksums (fields 0). */
function layout(ip: IpFields, l4: L4Fields, payload: Uint8Array): Uint8Array {
  const iphlen = ipHeaderLength(ip);
  const l4hlen = l4HeaderLength(l4);
  const len = iphlen + l4hlen + payload.length;
  const p = new Uint8Array(len);
  const protocol = ip.protocol ?? (l4.proto === 'tcp' ? 6 : 17);
  if (ip.family === 4) {
    p[0] = 0x40 | (iphlen / 4);
    p[1] = ip.tos ?? 0;
    setU16(p, 2, len & 0xffff);
    setU16(p, 4, ip.id ?? 0);
    setU16(p, 6, (ip.df ? 0x4000 : 0) | (ip.mf ? 0x2000 : 0) | ((ip.fragOffset ?? 0) & 0x1fff));
    p[8] = ip.ttl ?? 64;
    p[9] = protocol;
    p.set(ip.src, 12);
    p.set(ip.dst, 16);
    if (ip.ipOptions) p.set(ip.ipOptions, 20);
  } else {
    const tc = ip.tos ?? 0;
    const fl = ip.flowLabel ?? 0;
    setU32(p, 0, ((6 << 28) | (tc << 20) | (fl & 0xfffff)) >>> 0);
    setU16(p, 4, (len - 40) & 0xffff);
    p[6] = protocol;
    p[7] = ip.ttl ?? 64;
    p.set(ip.src, 8);
    p.set(ip.dst, 24);
  }
  const t = iphlen;
  setU16(p, t, l4.sport);
  setU16(p, t + 2, l4.dport);
  if (l4.proto === 'tcp') {
    setU32(p, t + 4, l4.seq >>> 0);
    setU32(p, t + 8, l4.ack >>> 0);
    p[t + 12] = (l4hlen / 4) << 4;
    p[t + 13] = l4.flags;
    setU16(p, t + 14, l4.window ?? 0xffff);
    setU16(p, t + 18, l4.urgent ?? 0);
    if (l4.options) p.set(l4.options, t + 20);
  } else {
    setU16(p, t + 4, (len - iphlen) & 0xffff);
  }
  p.set(payload, iphlen + l4hlen);
  return p;
}

const l4CsumAt = (p: Uint8Array): number => {
  const v4 = p[0]! >> 4 === 4;
  const iphlen = v4 ? (p[0]! & 15) * 4 : 40;
  const proto = v4 ? p[9]! : p[6]!;
  return iphlen + (proto === 6 ? 16 : 6);
};

function ipv4HeaderChecksum(p: Uint8Array, bad: boolean): void {
  const iphlen = (p[0]! & 15) * 4;
  setU16(p, 10, 0);
  let c = ~onesSum(p, 0, iphlen) & 0xffff;
  if (bad) c ^= 0x0100;
  setU16(p, 10, c);
}

/** A bare IP packet with valid checksums (unless `mode` asks for bad ones). */
export function buildPacket(ip: IpFields, l4: L4Fields, payload: Uint8Array, mode: ChecksumMode = {}): Uint8Array {
  const p = layout(ip, l4, payload);
  const iphlen = ipHeaderLength(ip);
  const at = l4CsumAt(p);
  if (l4.proto === 'udp' && mode.zeroUdp) {
    setU16(p, at, 0);
  } else {
    let c = ~add16(pseudoSum(p), onesSum(p, iphlen)) & 0xffff;
    if (c === 0 && l4.proto === 'udp') c = 0xffff;
    if (mode.badL4) c = c === 0x1234 ? 0x4321 : 0x1234 ^ (c & 0x0f0f) ^ 0x0101;
    setU16(p, at, c);
  }
  if (ip.family === 4) ipv4HeaderChecksum(p, mode.badIp ?? false);
  return p;
}

/** The header's fields (the type only: the bytes are laid out here, independently of the twin). */
export type VnetFields = VnetHeader;

export function vnetBytes(h: VnetFields): Uint8Array {
  const b = new Uint8Array(VNET_HDR_LEN);
  b[0] = h.flags;
  b[1] = h.gsoType;
  const le = (at: number, v: number): void => {
    b[at] = v & 0xff;
    b[at + 1] = (v >>> 8) & 0xff;
  };
  le(2, h.hdrLen);
  le(4, h.gsoSize);
  le(6, h.csumStart);
  le(8, h.csumOffset);
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A GSO super-packet as the kernel writes it to a TUN: vnet header (NEEDS_CSUM, TCPV4/TCPV6/UDP_L4,
 * hdr_len, gso_size, csum_start = IP header length, csum_offset 16/6), then one IP packet with the
 * full lengths, a valid IPv4 header checksum and the (non-complemented) pseudo-header sum in the
 * L4 checksum field. `vnet` overrides header fields.
 */
export function superPacket(
  ip: IpFields,
  l4: L4Fields,
  payload: Uint8Array,
  gsoSize: number,
  vnet: Partial<VnetFields> = {},
): Uint8Array {
  const p = layout(ip, l4, payload);
  const iphlen = ipHeaderLength(ip);
  setU16(p, l4CsumAt(p), pseudoSum(p));
  if (ip.family === 4) ipv4HeaderChecksum(p, false);
  const tcp = l4.proto === 'tcp';
  const h: VnetFields = {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: tcp ? (ip.family === 4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6) : VNET_GSO_UDP_L4,
    hdrLen: iphlen + l4HeaderLength(l4),
    gsoSize,
    csumStart: iphlen,
    csumOffset: tcp ? 16 : 6,
    ...vnet,
  };
  return concat(vnetBytes(h), p);
}

/** gso_type NONE with NEEDS_CSUM: the L4 field holds the pseudo-header sum, as for a locally sent packet. */
export function partialChecksumPacket(ip: IpFields, l4: L4Fields, payload: Uint8Array): Uint8Array {
  const p = layout(ip, l4, payload);
  const iphlen = ipHeaderLength(ip);
  setU16(p, l4CsumAt(p), pseudoSum(p));
  if (ip.family === 4) ipv4HeaderChecksum(p, false);
  return concat(
    vnetBytes({
      flags: VNET_F_NEEDS_CSUM,
      gsoType: VNET_GSO_NONE,
      hdrLen: 0,
      gsoSize: 0,
      csumStart: iphlen,
      csumOffset: l4.proto === 'tcp' ? 16 : 6,
    }),
    p,
  );
}

// ---- batches ----------------------------------------------------------------------------------

export interface Batch {
  data: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  count: number;
  capacity: number;
  /** Start of slot i (offsets[i] - 10 at layout time) and its end (offsets[i] + capacity). */
  slotStart: number[];
  slotEnd: number[];
}

export const GUARD = 0xa5;

/**
 * Lays `packets` out for coalescePackets: slot i = 10 header bytes + `capacity` bytes, random
 * 0..gap-byte gaps of GUARD bytes between (and around) the slots, the unused slot bytes GUARD too.
 */
export function layoutBatch(packets: readonly Uint8Array[], capacity: number, rand?: Rand, gap = 7): Batch {
  const slotStart: number[] = [];
  const slotEnd: number[] = [];
  let at = rand ? randInt(rand, gap + 1) : 0;
  for (let i = 0; i < packets.length; i++) {
    slotStart.push(at);
    slotEnd.push(at + VNET_HDR_LEN + capacity);
    at += VNET_HDR_LEN + capacity + (rand ? randInt(rand, gap + 1) : 0);
  }
  const data = new Uint8Array(at + (rand ? randInt(rand, gap + 1) : 0)).fill(GUARD);
  const offsets = new Uint32Array(packets.length);
  const lengths = new Uint32Array(packets.length);
  packets.forEach((p, i) => {
    offsets[i] = slotStart[i]! + VNET_HDR_LEN;
    lengths[i] = p.length;
    data.set(p, offsets[i]!);
  });
  return { data, offsets, lengths, count: packets.length, capacity, slotStart, slotEnd };
}

export function copyBatch(b: Batch): Batch {
  return { ...b, data: b.data.slice(), offsets: b.offsets.slice(), lengths: b.lengths.slice() };
}

/** The index of the first byte outside every slot [slotStart[i], slotEnd[i]) that is not GUARD any more, or -1. */
export function firstGuardViolation(data: Uint8Array, slotStart: readonly number[], slotEnd: readonly number[]): number {
  const slots = slotStart.map((s, i) => [s, slotEnd[i]!] as const).sort((a, b) => a[0] - b[0]);
  let at = 0;
  const check = (from: number, to: number): number => {
    for (let i = from; i < to; i++) if (data[i] !== GUARD) return i;
    return -1;
  };
  for (const [s, e] of slots) {
    const bad = check(at, s);
    if (bad >= 0) return bad;
    at = Math.max(at, e);
  }
  return check(at, data.length);
}

// ---- flows ------------------------------------------------------------------------------------

export interface TrafficOptions {
  /** How many packets. */
  packets: number;
  /** How many flows at once (default 1..5). */
  flows?: number;
  tcp?: boolean;
  udp?: boolean;
  /** Probability that a flow is IPv6 (default 0.5). */
  v6?: number;
  /** Probability that a segment is shorter than the MSS (default 0.05). */
  odd?: number;
  /** Probability of PSH on a segment (default 0.05). */
  psh?: number;
  /** Probability of some other flag (FIN, URG, RST, ECE, CWR, SYN) (default 0.02). */
  oddFlags?: number;
  /** Probability of a CE mark / ECN change on a packet (default 0.02). */
  ecn?: number;
  /** Probability of a bad IP or L4 checksum (default 0.02). */
  badChecksum?: number;
  /** Probability of swapping a packet with the one before (default 0.03). */
  reorder?: number;
  /** Probability of a flow with IPv4 options (default 0.05). */
  ipOptions?: number;
  /** Probability that a TCP flow's window/timestamp change between segments (default 0: round trips stay exact). */
  varyHeaders?: number;
  /** MTUs to draw from (default mostly 1500/1420, sometimes 576, 1280, 9000). */
  mtus?: readonly number[];
}

interface Flow {
  ip: IpFields;
  l4: L4Fields;
  mss: number;
  tsVal: number;
  timestamps: boolean;
}

const DEFAULT_MTUS = [1500, 1500, 1500, 1420, 1420, 1280, 576, 9000];

function newFlow(rand: Rand, o: TrafficOptions): Flow {
  const family: 4 | 6 = chance(rand, o.v6 ?? 0.5) ? 6 : 4;
  const kinds: ('tcp' | 'udp')[] = [];
  if (o.tcp ?? true) kinds.push('tcp');
  if (o.udp ?? true) kinds.push('udp');
  const proto = pick(rand, kinds);
  const addrLen = family === 4 ? 4 : 16;
  const ip: IpFields = {
    family,
    src: randomBytes(rand, addrLen),
    dst: randomBytes(rand, addrLen),
    tos: chance(rand, 0.3) ? pick(rand, [ECN_ECT0, ECN_ECT1, 0xb8 | ECN_ECT0]) : 0,
    ttl: pick(rand, [64, 63, 255, 1, 128]),
    id: randInt(rand, 0x10000),
    df: family === 4 && chance(rand, 0.8),
    flowLabel: family === 6 && chance(rand, 0.5) ? randInt(rand, 0x100000) : 0,
  };
  if (family === 4 && chance(rand, o.ipOptions ?? 0.05)) ip.ipOptions = Uint8Array.from([1, 1, 1, 0]); // NOP NOP NOP EOL
  const mtu = pick(rand, o.mtus ?? DEFAULT_MTUS);
  const timestamps = proto === 'tcp' && chance(rand, 0.5);
  const l4: L4Fields =
    proto === 'tcp'
      ? {
          proto,
          sport: randInt(rand, 0x10000),
          dport: randInt(rand, 0x10000),
          seq: randInt(rand, 2 ** 32),
          ack: randInt(rand, 2 ** 32),
          flags: TCP_ACK,
          window: randInt(rand, 0x10000),
        }
      : { proto, sport: randInt(rand, 0x10000), dport: randInt(rand, 0x10000) };
  const tsVal = randInt(rand, 2 ** 32);
  const flow: Flow = { ip, l4, mss: 0, tsVal, timestamps };
  if (l4.proto === 'tcp' && timestamps) l4.options = timestampOption(tsVal, 12345);
  flow.mss = mtu - ipHeaderLength(ip) - l4HeaderLength(l4);
  return flow;
}

/** NOP NOP TS(10): 12 bytes. */
export function timestampOption(tsVal: number, tsEcr: number): Uint8Array {
  const o = new Uint8Array(12);
  o[0] = 1;
  o[1] = 1;
  o[2] = 8;
  o[3] = 10;
  setU32(o, 4, tsVal >>> 0);
  setU32(o, 8, tsEcr >>> 0);
  return o;
}

/**
 * A random sequence of MTU-sized segments of several interleaved flows (TCP and UDP, v4 and v6),
 * as a sender's stack would hand them to a TUN: mostly full segments in order, with odd lengths,
 * PSH and other flags, ECN marks, bad checksums and reordering as `o` asks. Payload bytes are random.
 */
export function generateTraffic(rand: Rand, o: TrafficOptions): Uint8Array[] {
  const flows: Flow[] = [];
  const flowCount = o.flows ?? 1 + randInt(rand, 5);
  for (let i = 0; i < flowCount; i++) flows.push(newFlow(rand, o));
  const out: Uint8Array[] = [];
  let current = 0;
  for (let n = 0; n < o.packets; n++) {
    if (chance(rand, 0.3)) current = randInt(rand, flows.length);
    const flow = flows[current]!;
    let size = flow.mss;
    if (chance(rand, o.odd ?? 0.05)) size = 1 + randInt(rand, Math.max(1, flow.mss));
    const ip: IpFields = { ...flow.ip };
    if (chance(rand, o.ecn ?? 0.02)) ip.tos = ((ip.tos ?? 0) & ~3) | pick(rand, [ECN_CE, ECN_NOT_ECT, ECN_ECT1]);
    if (ip.family === 4) flow.ip.id = ((flow.ip.id ?? 0) + 1) & 0xffff;
    let l4: L4Fields = flow.l4;
    if (l4.proto === 'tcp') {
      let flags = TCP_ACK;
      if (chance(rand, o.psh ?? 0.05)) flags |= TCP_PSH;
      if (chance(rand, o.oddFlags ?? 0.02)) flags |= pick(rand, [TCP_FIN, TCP_URG, TCP_RST, TCP_ECE, TCP_CWR, TCP_SYN]);
      if (chance(rand, 0.01)) flags &= ~TCP_ACK;
      const tcp: TcpFields = { ...l4, flags };
      if (flags & TCP_URG) tcp.urgent = randInt(rand, size + 1);
      if (chance(rand, o.varyHeaders ?? 0)) {
        if (flow.timestamps) {
          flow.tsVal = (flow.tsVal + 1) >>> 0;
          (flow.l4 as TcpFields).options = timestampOption(flow.tsVal, 12345);
        }
        (flow.l4 as TcpFields).window = randInt(rand, 0x10000);
        tcp.options = (flow.l4 as TcpFields).options;
        tcp.window = (flow.l4 as TcpFields).window;
      }
      if (chance(rand, 0.01)) (flow.l4 as TcpFields).ack = ((flow.l4 as TcpFields).ack + 1000) >>> 0;
      (flow.l4 as TcpFields).seq = (tcp.seq + size) >>> 0;
      l4 = tcp;
    }
    const mode: ChecksumMode = {};
    if (chance(rand, o.badChecksum ?? 0.02)) {
      if (ip.family === 4 && chance(rand, 0.3)) mode.badIp = true;
      else mode.badL4 = true;
    }
    if (l4.proto === 'udp' && ip.family === 4 && chance(rand, 0.01)) mode.zeroUdp = true;
    out.push(buildPacket(ip, l4, randomBytes(rand, size), mode));
  }
  const reorder = o.reorder ?? 0.03;
  for (let i = 1; i < out.length; i++) {
    if (chance(rand, reorder)) [out[i - 1], out[i]] = [out[i]!, out[i - 1]!];
  }
  return out;
}

/** A random well-formed super-packet (TCP v4/v6 or UDP) for split tests, with its parts. */
export interface RandomSuper {
  input: Uint8Array;
  ip: IpFields;
  l4: L4Fields;
  payload: Uint8Array;
  gsoSize: number;
}

/**
 * A random well-formed super-packet of at most `maxLength` IP bytes and at most `maxSegments`
 * segments: random addresses, ToS/TTL/ID/flow label, IPv4 options and TCP options sometimes,
 * any TCP flags, common MSS values or any gso_size.
 */
export function randomSuperPacket(rand: Rand, maxLength = 65535, maxSegments = 128): RandomSuper {
  const family: 4 | 6 = chance(rand, 0.5) ? 4 : 6;
  const udp = chance(rand, 0.3);
  const addrLen = family === 4 ? 4 : 16;
  const ip: IpFields = {
    family,
    src: randomBytes(rand, addrLen),
    dst: randomBytes(rand, addrLen),
    tos: randInt(rand, 256),
    ttl: randInt(rand, 256),
    id: randInt(rand, 0x10000),
    df: chance(rand, 0.7),
    flowLabel: randInt(rand, 0x100000),
  };
  if (family === 4 && chance(rand, 0.2)) ip.ipOptions = randomBytes(rand, 4 * (1 + randInt(rand, 10)));
  const l4: L4Fields = udp
    ? { proto: 'udp', sport: randInt(rand, 0x10000), dport: randInt(rand, 0x10000) }
    : {
        proto: 'tcp',
        sport: randInt(rand, 0x10000),
        dport: randInt(rand, 0x10000),
        seq: randInt(rand, 2 ** 32),
        ack: randInt(rand, 2 ** 32),
        flags: randInt(rand, 256),
        window: randInt(rand, 0x10000),
        urgent: randInt(rand, 0x10000),
      };
  if (l4.proto === 'tcp' && chance(rand, 0.5)) l4.options = randomBytes(rand, 4 * (1 + randInt(rand, 10)));
  const hdr = ipHeaderLength(ip) + l4HeaderLength(l4);
  const room = maxLength - hdr;
  const payloadLength = Math.max(1, chance(rand, 0.3) ? room - randInt(rand, 64) : 1 + randInt(rand, room));
  const minGso = Math.ceil(payloadLength / maxSegments);
  const gsoSize = Math.max(
    minGso,
    chance(rand, 0.6)
      ? Math.min(payloadLength, pick(rand, [1380, 1448, 1460, 1232, 536, 8948]))
      : 1 + randInt(rand, payloadLength),
  );
  const payload = randomBytes(rand, payloadLength);
  return { input: superPacket(ip, l4, payload, gsoSize), ip, l4, payload, gsoSize };
}
