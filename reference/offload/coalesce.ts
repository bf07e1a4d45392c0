// The write side of the TUN offloads in plain TypeScript: a batch of IP packets about to be
// written to a TUN with IFF_VNET_HDR becomes a list of items — runs of consecutive TCP segments
// (or same-size UDP datagrams) of one flow merged into one GSO super-packet, everything else on
// its own — each behind a 10-byte virtio_net_hdr. README.md, "COALESCE", to the letter.
//
// This is the oracle the native offloadCoalesce (native/offload.cc) is tested against byte for
// byte; it favours clarity over speed (it builds objects and string keys per packet), and only
// the tests and bench/micro load it: the device coalesces with the native code.

import { fold, writeIpv4HeaderChecksum } from '../../src/offload/checksum.js';
import {
  COALESCE_STAT_BAD_CHECKSUM,
  COALESCE_STAT_HISTOGRAM,
  COALESCE_STAT_ITEMS,
  COALESCE_STAT_NAMES,
  COALESCE_STAT_PACKETS,
  COALESCE_TCP,
  COALESCE_TRUSTED,
  COALESCE_UDP,
} from '../../src/offload/coalesce.js';
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_HDR_LEN,
} from '../../src/offload/vnet-header.js';
import { IPPROTO_TCP, IPPROTO_UDP, packetChecksumsValid, pseudoHeaderSum } from './checksum.js';
import { observe } from './histogram.js';
import { clearVnetHeader, writeVnetHeader } from './vnet-header.js';
import { setU16be, u16be, u32be } from './bytes.js';

/** Largest IPv4 total length (and the cap on a merged packet of either family). */
const MAX_IP_LENGTH = 65535;
/** Most datagrams in one UDP GSO item. */
const UDP_MAX_SEGMENTS = 64;

const TCP_ACK = 0x10;
const TCP_PSH = 0x08;

/** A packet of the batch as seen by coalescing. */
interface Packet {
  index: number;
  offset: number;
  length: number;
  v4: boolean;
  /** 0: not a candidate (its own item, never merged). */
  proto: number;
  iphlen: number;
  l4hlen: number;
  payload: number;
  /** TCP only. */
  seq: number;
  psh: boolean;
}

interface Item {
  head: Packet;
  /** In sequence order, head first. */
  members: Packet[];
  /** gso_size: the head's payload length. */
  gsoSize: number;
  /** Payload bytes of all members. */
  total: number;
  /** TCP: sequence number of the head. */
  seq: number;
  psh: boolean;
  verified: boolean;
  knownBad: boolean;
}

/**
 * Coalesces packets i < count, packet i at data[offsets[i], offsets[i] + lengths[i]).
 *
 * Every packet's slot is data[offsets[i] - 10, offsets[i] + capacity): 10 bytes of room for the
 * vnet header in front, and room to grow to `capacity` bytes. The items are written back into
 * offsets[k] / lengths[k], k < the return value, in the order they were created; offsets[k] points
 * at the item's vnet header and lengths[k] counts it. A merged item lives in its head packet's slot
 * (head headers, then every member's payload in sequence order) behind a NEEDS_CSUM + GSO header,
 * with the pseudo-header sum in its L4 checksum field; any other packet is untouched behind an
 * all-zero header. `flags`: COALESCE_TCP | COALESCE_UDP (0: nothing merges), and
 * COALESCE_TRUSTED: no packet is verified (every one counts as valid). `stats`, if given,
 * is incremented at COALESCE_STAT_*.
 *
 * Throws a RangeError before touching anything if count exceeds offsets/lengths, some
 * offsets[i] < 10, a packet or its capacity reaches past `data`, or stats has fewer than COALESCE_STAT_NAMES.length entries.
 */
export function coalescePackets(
  data: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  count: number,
  capacity: number,
  flags: number,
  stats?: Float64Array,
): number {
  if (count > offsets.length || count > lengths.length) throw new RangeError(`count ${count} exceeds offsets/lengths`);
  if (stats !== undefined && stats.length < COALESCE_STAT_NAMES.length) throw new RangeError(`stats needs ${COALESCE_STAT_NAMES.length} entries`);
  for (let i = 0; i < count; i++) {
    const o = offsets[i]!;
    if (o < VNET_HDR_LEN) throw new RangeError(`packet ${i}: no room for the vnet header`);
    if (o + lengths[i]! > data.length || o + capacity > data.length) {
      throw new RangeError(`packet ${i} reaches past data`);
    }
  }

  const items: Item[] = [];
  const tcpFlows = new Map<string, Item[]>();
  const udpLast = new Map<string, Item>();
  let badChecksums = 0;

  const newItem = (pkt: Packet, knownBad = false): Item => {
    const item: Item = {
      head: pkt,
      members: [pkt],
      gsoSize: pkt.payload,
      total: pkt.payload,
      seq: pkt.seq,
      psh: pkt.psh,
      verified: false,
      knownBad,
    };
    items.push(item);
    return item;
  };
  const valid = (pkt: Packet): boolean => (flags & COALESCE_TRUSTED) !== 0 || packetChecksumsValid(data, pkt.offset, pkt.length, pkt.proto);

  for (let i = 0; i < count; i++) {
    const pkt = parseCandidate(data, i, offsets[i]!, lengths[i]!, flags);

    if (pkt.proto === IPPROTO_TCP) {
      const key = flowKey(data, pkt, true);
      let flow = tcpFlows.get(key);
      if (flow === undefined) {
        flow = [];
        tcpFlows.set(key, flow);
      }
      let handled = false;
      for (let f = flow.length - 1; f >= 0; f--) {
        const item = flow[f]!;
        if (!ipHeadersCompatible(data, item.head, pkt) || !tcpOptionsEqual(data, item.head, pkt)) continue;
        let append: boolean;
        if (pkt.seq === (item.seq + item.total) >>> 0) {
          if (item.psh || item.total % item.gsoSize !== 0 || pkt.payload > item.gsoSize) continue;
          append = true;
        } else if ((pkt.seq + pkt.payload) >>> 0 === item.seq) {
          if (pkt.psh || pkt.payload < item.gsoSize || (pkt.payload > item.gsoSize && item.members.length > 1)) continue;
          append = false;
        } else {
          continue;
        }
        const merged = pkt.iphlen + pkt.l4hlen + item.total + pkt.payload;
        if (merged > MAX_IP_LENGTH || merged > capacity) continue;
        if (item.members.length === 1 && !item.verified) {
          if (!valid(item.head)) {
            badChecksums++;
            flow.splice(f, 1); // stays an item, written as is
            continue;
          }
          item.verified = true;
        }
        if (!valid(pkt)) {
          badChecksums++;
          newItem(pkt); // not in the flow list
          handled = true;
          break;
        }
        if (append) {
          item.members.push(pkt);
          item.total += pkt.payload;
          if (pkt.psh) item.psh = true;
        } else {
          item.members.unshift(pkt);
          item.head = pkt;
          item.gsoSize = pkt.payload;
          item.total += pkt.payload;
          item.seq = pkt.seq;
        }
        handled = true;
        break;
      }
      if (!handled) flow.push(newItem(pkt));
    } else if (pkt.proto === IPPROTO_UDP) {
      const key = flowKey(data, pkt, false);
      const item = udpLast.get(key);
      let knownBad = false;
      if (item !== undefined) {
        const merged = pkt.iphlen + 8 + item.total + pkt.payload;
        const can =
          ipHeadersCompatible(data, item.head, pkt) &&
          pkt.payload <= item.gsoSize &&
          item.total % item.gsoSize === 0 &&
          item.members.length < UDP_MAX_SEGMENTS &&
          merged <= MAX_IP_LENGTH &&
          merged <= capacity;
        if (can) {
          let itemOk = true;
          if (item.members.length === 1 && !item.verified) {
            if (item.knownBad) {
              itemOk = false;
            } else if (!valid(item.head)) {
              badChecksums++;
              itemOk = false;
            } else {
              item.verified = true;
            }
          }
          if (itemOk) {
            if (valid(pkt)) {
              item.members.push(pkt);
              item.total += pkt.payload;
              continue;
            }
            badChecksums++;
            knownBad = true;
          }
        }
      }
      udpLast.set(key, newItem(pkt, knownBad));
    } else {
      newItem(pkt);
    }
  }

  for (let k = 0; k < items.length; k++) {
    const item = items[k]!;
    const head = item.head;
    if (item.members.length > 1) finalize(data, item);
    else clearVnetHeader(data, head.offset - VNET_HDR_LEN);
    offsets[k] = head.offset - VNET_HDR_LEN;
    lengths[k] = VNET_HDR_LEN + (item.members.length > 1 ? head.iphlen + head.l4hlen + item.total : head.length);
  }

  if (stats !== undefined) {
    for (const item of items) {
      observe(stats, COALESCE_STAT_HISTOGRAM, item.members.length);
      if (item.members.length > 1) {
        stats[COALESCE_STAT_ITEMS]! += 1;
        stats[COALESCE_STAT_PACKETS]! += item.members.length;
      }
    }
    stats[COALESCE_STAT_BAD_CHECKSUM]! += badChecksums;
  }
  return items.length;
}

/** Packet i with its candidate protocol (0 if it may not merge) and the fields merging uses. */
function parseCandidate(data: Uint8Array, index: number, o: number, len: number, flags: number): Packet {
  const pkt: Packet = {
    index, offset: o, length: len, v4: false, proto: 0, iphlen: 0, l4hlen: 0, payload: 0, seq: 0, psh: false,
  };
  if (len < 1) return pkt;
  const version = data[o]! >> 4;
  let proto: number;
  let iphlen: number;
  if (version === 4) {
    if (len < 20 || data[o]! !== 0x45) return pkt;
    if (u16be(data, o + 2) !== len) return pkt;
    if ((u16be(data, o + 6) & 0x3fff) !== 0) return pkt; // MF or a fragment offset
    proto = data[o + 9]!;
    iphlen = 20;
  } else if (version === 6) {
    if (len < 40 || u16be(data, o + 4) !== len - 40) return pkt;
    proto = data[o + 6]!;
    iphlen = 40;
  } else {
    return pkt;
  }
  const l4 = o + iphlen;

  if (proto === IPPROTO_TCP) {
    if ((flags & COALESCE_TCP) === 0) return pkt;
    if (len < (version === 4 ? 40 : 60)) return pkt;
    const l4hlen = (data[l4 + 12]! >> 4) * 4;
    if (l4hlen < 20 || l4hlen > 60 || l4hlen > len - iphlen) return pkt;
    const payload = len - iphlen - l4hlen;
    if (payload <= 0) return pkt;
    const tcpFlags = data[l4 + 13]!;
    if (tcpFlags !== TCP_ACK && tcpFlags !== (TCP_ACK | TCP_PSH)) return pkt;
    pkt.seq = u32be(data, l4 + 4);
    pkt.psh = tcpFlags === (TCP_ACK | TCP_PSH);
    pkt.l4hlen = l4hlen;
    pkt.payload = payload;
  } else if (proto === IPPROTO_UDP) {
    if ((flags & COALESCE_UDP) === 0) return pkt;
    if (len < (version === 4 ? 28 : 48)) return pkt;
    if (version === 4 && u16be(data, l4 + 6) === 0) return pkt; // no checksum
    if (u16be(data, l4 + 4) !== len - iphlen) return pkt;
    const payload = len - iphlen - 8;
    if (payload <= 0) return pkt;
    pkt.l4hlen = 8;
    pkt.payload = payload;
  } else {
    return pkt;
  }
  pkt.v4 = version === 4;
  pkt.proto = proto;
  pkt.iphlen = iphlen;
  return pkt;
}

/** Family, addresses, ports and (TCP) the ACK number, as a string. */
function flowKey(data: Uint8Array, pkt: Packet, withAck: boolean): string {
  const o = pkt.offset;
  const l4 = o + pkt.iphlen;
  const parts: number[] = [pkt.v4 ? 4 : 6];
  const [from, to] = pkt.v4 ? [o + 12, o + 20] : [o + 8, o + 40];
  for (let i = from; i < to; i++) parts.push(data[i]!);
  for (let i = l4; i < l4 + 4; i++) parts.push(data[i]!);
  if (withAck) for (let i = l4 + 8; i < l4 + 12; i++) parts.push(data[i]!);
  return parts.join(',');
}

/** v4: ToS, flags/fragment field and TTL equal; v6: version/traffic class/flow label and hop limit. */
function ipHeadersCompatible(data: Uint8Array, a: Packet, b: Packet): boolean {
  const same = (i: number): boolean => data[a.offset + i] === data[b.offset + i];
  if (a.v4 !== b.v4) return false;
  return a.v4 ? same(1) && same(6) && same(7) && same(8) : same(0) && same(1) && same(2) && same(3) && same(7);
}

/** Same TCP header length and byte-identical options. */
function tcpOptionsEqual(data: Uint8Array, a: Packet, b: Packet): boolean {
  if (a.l4hlen !== b.l4hlen) return false;
  const ao = a.offset + a.iphlen;
  const bo = b.offset + b.iphlen;
  for (let i = 20; i < a.l4hlen; i++) if (data[ao + i] !== data[bo + i]) return false;
  return true;
}

/** Writes a merged item into its head's slot, vnet header in front. */
function finalize(data: Uint8Array, item: Item): void {
  const head = item.head;
  const o = head.offset;
  const hdrLen = head.iphlen + head.l4hlen;
  let at = o + head.length;
  for (let m = 1; m < item.members.length; m++) {
    const member = item.members[m]!;
    data.copyWithin(at, member.offset + hdrLen, member.offset + member.length);
    at += member.payload;
  }

  const l4Length = head.l4hlen + item.total;
  const tcp = head.proto === IPPROTO_TCP;
  writeVnetHeader(data, o - VNET_HDR_LEN, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: tcp ? (head.v4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6) : VNET_GSO_UDP_L4,
    hdrLen,
    gsoSize: item.gsoSize,
    csumStart: head.iphlen,
    csumOffset: tcp ? 16 : 6,
  });
  if (head.v4) {
    setU16be(data, o + 2, head.iphlen + l4Length);
    writeIpv4HeaderChecksum(data, o);
  } else {
    setU16be(data, o + 4, l4Length);
  }
  const l4 = o + head.iphlen;
  if (tcp) {
    if (item.psh) data[l4 + 13]! |= TCP_PSH;
  } else {
    setU16be(data, l4 + 4, l4Length);
  }
  setU16be(data, l4 + (tcp ? 16 : 6), fold(pseudoHeaderSum(data, o, head.proto, l4Length)));
}
