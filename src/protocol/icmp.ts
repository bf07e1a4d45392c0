// ICMP and ICMPv6 "destination unreachable" for packets read from the TUN that no
// peer can take, as the kernel's WireGuard answers them (wg_xmit in
// drivers/net/wireguard/device.c): no peer's allowed IPs cover the destination, or
// its peer has no endpoint → ICMP_DEST_UNREACH/ICMP_HOST_UNREACH (IPv4) or
// ICMPV6_DEST_UNREACH/ICMPV6_ADDR_UNREACH (IPv6), so ping and TCP fail at once
// instead of timing out.
//
// The error follows RFC 792 / RFC 4443: it quotes the offending packet from its IP
// header on, as much as fits in 576 bytes (IPv4, as the kernel's icmp_send; at least
// the header and 8 bytes) or in the minimum IPv6 MTU, 1280 bytes (RFC 4443 2.4(c)).
// None answers (RFC 1122 3.2.2, RFC 4443 2.4(e), the kernel's icmp_send and
// icmp6_send): an ICMP error (or an ICMP message whose type cannot be read), a
// non-first fragment, a packet to a multicast or broadcast address, or one from an
// address that names no single host (unspecified, multicast, broadcast, loopback).
//
// The source address: the kernel sends its error from an address of its own, but an
// error written into the TUN with a local source address is dropped by the kernel
// as a martian. So the error comes from the unreachable destination of the packet
// it answers: the host learns which destination failed (ping prints "From
// <destination>"), and the reverse route to that source is this interface, so
// reverse-path filtering passes it.
//
// Nothing here allocates: the error is written into the caller's buffer.
import { fold, pseudoHeaderSum6, sumBytes, writeIpv4HeaderChecksum } from '../offload/checksum.js';

export const ICMP_DEST_UNREACH = 3;
export const ICMP_HOST_UNREACH = 1;
export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_ADDR_UNREACH = 3;
const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
/** An IPv4 error is at most this long (the kernel's icmp_send: 576, RFC 1812 4.3.2.3). */
export const ICMP4_ERROR_MAX = 576;
/** An ICMPv6 error is at most the minimum IPv6 MTU (RFC 4443 2.4(c)). */
export const ICMP6_ERROR_MAX = 1280;
/** The longest error writeUnreachable writes. */
export const UNREACHABLE_MAX_BYTES = ICMP6_ERROR_MAX;
/** IPv4 header (no options) + ICMP header. */
const V4_HEADERS = 20 + 8;
/** IPv6 header + ICMPv6 header. */
const V6_HEADERS = 40 + 8;
/** The kernel's defaults: ip_default_ttl and the IPv6 hop limit. */
const HOP_LIMIT = 64;
/** The kernel's TOS of ICMP errors: IPTOS_PREC_INTERNETCONTROL. */
const TOS_INTERNETCONTROL = 0xc0;
/** ICMP types above this are unknown (NR_ICMP_TYPES) and never answered. */
const NR_ICMP_TYPES = 18;
/** Extension headers looked through for a fragment offset or an ICMPv6 type. */
const MAX_EXTENSION_HEADERS = 8;

/** Why a packet gets no error (0: it gets one). */
export const NoAnswer = {
  None: 0,
  /** Not an IPv4 or IPv6 packet with a whole header. */
  NotIp: 1,
  /** Not the first fragment of a datagram. */
  Fragment: 2,
  /** An ICMP error, or an ICMP message whose type is unknown or cut off. */
  IcmpError: 3,
  /** To a multicast or broadcast address. */
  NotUnicast: 4,
  /** From an address that names no single host. */
  SourceNotAHost: 5,
} as const;
export type NoAnswerReason = (typeof NoAnswer)[keyof typeof NoAnswer];

/**
 * Whether the packet at packet[offset, offset+length) may be answered with an error: NoAnswer.None, or why not.
 * Bounds: length ≥ 1, offset ≥ 0 and offset + length ≤ packet.length, checked first; unanswerable4/6 rely on it.
 */
export function unanswerable(packet: Uint8Array, offset: number, length: number): NoAnswerReason {
  if (length < 1 || offset < 0 || offset + length > packet.length) return NoAnswer.NotIp;
  const version = packet[offset]! >> 4;
  if (version === 4) return unanswerable4(packet, offset, length);
  if (version === 6) return unanswerable6(packet, offset, length);
  return NoAnswer.NotIp;
}

// Bounds: p[o, o + length) lies in p (unanswerable); reads below o + 20 follow length ≥ 20, p[o + ihl] follows ihl < length.
function unanswerable4(p: Uint8Array, o: number, length: number): NoAnswerReason {
  if (length < 20) return NoAnswer.NotIp;
  const ihl = (p[o]! & 0x0f) * 4;
  if (ihl < 20 || ihl > length) return NoAnswer.NotIp;
  if ((((p[o + 6]! & 0x1f) << 8) | p[o + 7]!) !== 0) return NoAnswer.Fragment;
  const d0 = p[o + 16]!;
  // Multicast (224/4), limited broadcast, or 0.0.0.0 (this host: never routed here).
  if ((d0 & 0xf0) === 0xe0 || isAll4(p, o + 16, 0xff) || isAll4(p, o + 16, 0)) return NoAnswer.NotUnicast;
  const s0 = p[o + 12]!;
  // Unspecified, loopback (127/8), multicast (224/4) or class E and broadcast (240/4).
  if (isAll4(p, o + 12, 0) || s0 === 127 || s0 >= 0xe0) return NoAnswer.SourceNotAHost;
  if (p[o + 9] === IPPROTO_ICMP) {
    if (ihl >= length) return NoAnswer.IcmpError;
    const type = p[o + ihl]!;
    // Errors: unreachable, source quench, redirect, time exceeded, parameter problem.
    if (type > NR_ICMP_TYPES || type === 3 || type === 4 || type === 5 || type === 11 || type === 12) return NoAnswer.IcmpError;
  }
  return NoAnswer.None;
}

// Bounds: p[o, end) lies in p (unanswerable); reads below o + 40 follow length ≥ 40, each header read follows its at + n ≤ end check.
function unanswerable6(p: Uint8Array, o: number, length: number): NoAnswerReason {
  if (length < 40) return NoAnswer.NotIp;
  if (p[o + 24] === 0xff) return NoAnswer.NotUnicast;
  if (p[o + 8] === 0xff || isAll(p, o + 8, 16, 0)) return NoAnswer.SourceNotAHost;
  // Through the extension headers (as the kernel's ipv6_skip_exthdr), to a fragment offset or an ICMPv6 type.
  const end = o + length;
  let next = p[o + 6]!;
  let at = o + 40;
  for (let k = 0; k < MAX_EXTENSION_HEADERS; k++) {
    if (next === 0 || next === 43 || next === 60) { // hop-by-hop, routing, destination options
      if (at + 2 > end) return NoAnswer.None;
      next = p[at]!;
      at += (p[at + 1]! + 1) * 8;
    } else if (next === 44) { // fragment
      if (at + 8 > end) return NoAnswer.None;
      if ((((p[at + 2]! << 8) | p[at + 3]!) >> 3) !== 0) return NoAnswer.Fragment;
      next = p[at]!;
      at += 8;
    } else if (next === 51) { // authentication header
      if (at + 2 > end) return NoAnswer.None;
      next = p[at]!;
      at += (p[at + 1]! + 2) * 4;
    } else {
      break;
    }
  }
  // Informational messages have the high bit of their type set (RFC 4443 2.1).
  if (next === IPPROTO_ICMPV6 && (at >= end || (p[at]! & 0x80) === 0)) return NoAnswer.IcmpError;
  return NoAnswer.None;
}

function isAll4(p: Uint8Array, at: number, byte: number): boolean {
  return p[at] === byte && p[at + 1] === byte && p[at + 2] === byte && p[at + 3] === byte;
}

function isAll(p: Uint8Array, at: number, n: number, byte: number): boolean {
  for (let i = 0; i < n; i++) if (p[at + i] !== byte) return false;
  return true;
}

/**
 * Writes the "destination unreachable" error answering the packet at
 * packet[offset, offset+length) into out[at...] (room for UNREACHABLE_MAX_BYTES
 * needed) and returns its length, or 0 when the packet may not be answered
 * (see unanswerable()).
 * Bounds: unanswerable() checked offset + length ≤ packet.length with length ≥ 1.
 */
export function writeUnreachable(packet: Uint8Array, offset: number, length: number, out: Uint8Array, at: number): number {
  if (unanswerable(packet, offset, length) !== NoAnswer.None) return 0;
  return packet[offset]! >> 4 === 4 ? write4(packet, offset, length, out, at) : write6(packet, offset, length, out, at);
}

function write4(p: Uint8Array, o: number, length: number, out: Uint8Array, at: number): number {
  const quote = Math.min(length, ICMP4_ERROR_MAX - V4_HEADERS);
  const total = V4_HEADERS + quote;
  out[at] = 0x45;
  out[at + 1] = TOS_INTERNETCONTROL;
  out[at + 2] = total >> 8;
  out[at + 3] = total & 0xff;
  out.fill(0, at + 4, at + 8); // identification, flags, fragment offset
  out[at + 8] = HOP_LIMIT;
  out[at + 9] = IPPROTO_ICMP;
  copy(p, o + 16, out, at + 12, 4); // from the unreachable destination
  copy(p, o + 12, out, at + 16, 4); // to the sender
  const icmp = at + 20;
  out[icmp] = ICMP_DEST_UNREACH;
  out[icmp + 1] = ICMP_HOST_UNREACH;
  out.fill(0, icmp + 2, icmp + 8); // checksum, unused
  copy(p, o, out, icmp + 8, quote);
  const c = ~fold(sumBytes(out, icmp, icmp + 8 + quote)) & 0xffff;
  out[icmp + 2] = c >> 8;
  out[icmp + 3] = c & 0xff;
  writeIpv4HeaderChecksum(out, at);
  return total;
}

function write6(p: Uint8Array, o: number, length: number, out: Uint8Array, at: number): number {
  const quote = Math.min(length, ICMP6_ERROR_MAX - V6_HEADERS);
  const payload = 8 + quote;
  out[at] = 0x60;
  out.fill(0, at + 1, at + 4); // traffic class, flow label
  out[at + 4] = payload >> 8;
  out[at + 5] = payload & 0xff;
  out[at + 6] = IPPROTO_ICMPV6;
  out[at + 7] = HOP_LIMIT;
  copy(p, o + 24, out, at + 8, 16); // from the unreachable destination
  copy(p, o + 8, out, at + 24, 16); // to the sender
  const icmp = at + 40;
  out[icmp] = ICMPV6_DEST_UNREACH;
  out[icmp + 1] = ICMPV6_ADDR_UNREACH;
  out.fill(0, icmp + 2, icmp + 8); // checksum, unused
  copy(p, o, out, icmp + 8, quote);
  const c = ~fold(sumBytes(out, icmp, icmp + payload, pseudoHeaderSum6(out, at, IPPROTO_ICMPV6, payload))) & 0xffff;
  out[icmp + 2] = c >> 8;
  out[icmp + 3] = c & 0xff;
  return V6_HEADERS + quote;
}

/**
 * Copies n bytes without making a view (subarray would allocate one per packet).
 * Bounds: the callers copy inside the packet unanswerable() checked: addresses below o + 20 (IPv4) or o + 40 (IPv6), quote ≤ length.
 */
function copy(from: Uint8Array, at: number, to: Uint8Array, into: number, n: number): void {
  for (let i = 0; i < n; i++) to[into + i] = from[at + i]!;
}

/**
 * The kernel's rate limit of ICMP errors (icmp_global_allow: net.ipv4.icmp_msgs_per_sec
 * = 1000, icmp_msgs_burst = 50, shared by IPv4 and IPv6) as a token bucket: `burst`
 * tokens at most, refilled at `perSecond`; each error takes one. The kernel's
 * per-destination limit does not apply: the errors go to a local address, which the
 * kernel never limits. Times are milliseconds of a monotonic clock.
 */
export class TokenBucket {
  private tokens: number;
  private stamp = -Infinity;

  constructor(readonly perSecond: number, readonly burst: number) {
    this.tokens = burst;
  }

  /** Takes a token at time `now` (ms); false when there is none. */
  take(now: number): boolean {
    const elapsed = now - this.stamp;
    // A clock that went back refills nothing.
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.stamp = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
