// rtnetlink for the control plane (native/netlink.cc has the socket): the events
// that say routes or addresses changed, and route look-ups (`ip route get DST from
// SRC mark MARK`) — what the kernel's WireGuard asks before it sends from a sticky
// source address. The messages are built and read here; see rtnetlink(7).
import { constants } from 'node:os';
import { nativeFunction } from '../native/addon.js';
import { formatAddress, parseAddress } from '../routing/prefix.js';

export const RTMGRP_IPV4_IFADDR = 0x10;
export const RTMGRP_IPV4_ROUTE = 0x40;
export const RTMGRP_IPV6_IFADDR = 0x100;
export const RTMGRP_IPV6_ROUTE = 0x400;

const NLMSG_HDRLEN = 16;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTMSG_LEN = 12;
const IFADDRMSG_LEN = 8;
const RTA_DST = 1;
const RTA_SRC = 2;
const RTA_OIF = 4;
const RTA_MARK = 16;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const AF_INET = 2;
const AF_INET6 = 10;

export const netlinkOpen: (groups: number) => number = nativeFunction('netlinkOpen');
export const netlinkSend: (fd: number, data: Uint8Array) => void = nativeFunction('netlinkSend');
/** Bytes read into `buf`, 0 when nothing waits, -ENOBUFS when the kernel dropped messages. */
export const netlinkRecv: (fd: number, buf: Uint8Array) => number = nativeFunction('netlinkRecv');
export const NETLINK_OVERRUN = -constants.errno.ENOBUFS;

/** A route look-up: where a datagram to `destination` from `source` (if given) with `mark` would leave. */
export interface RouteQuery {
  destination: string;
  source?: string;
  mark: number;
}

/** Appends an RTM_GETROUTE request with sequence number `seq` to `out` at `at`; returns the end. */
export function writeRouteQuery(out: Uint8Array, at: number, seq: number, query: RouteQuery): number {
  const dst = addressBytes(query.destination);
  const src = query.source === undefined ? undefined : addressBytes(query.source);
  const attr = (n: number): number => 4 + n;
  const length = NLMSG_HDRLEN + RTMSG_LEN + attr(dst.length) + (src === undefined ? 0 : attr(src.length)) + attr(4);
  const view = new DataView(out.buffer, out.byteOffset + at, length);
  out.fill(0, at, at + length);
  view.setUint32(0, length, true);
  view.setUint16(4, RTM_GETROUTE, true);
  view.setUint16(6, NLM_F_REQUEST, true);
  view.setUint32(8, seq, true);
  // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
  view.setUint8(16, dst.length === 4 ? AF_INET : AF_INET6);
  view.setUint8(17, dst.length * 8);
  view.setUint8(18, src === undefined ? 0 : src.length * 8);
  let p = NLMSG_HDRLEN + RTMSG_LEN;
  const put = (type: number, bytes: Uint8Array): void => {
    view.setUint16(p, 4 + bytes.length, true);
    view.setUint16(p + 2, type, true);
    out.set(bytes, at + p + 4);
    p += 4 + bytes.length; // 4 and 16 are multiples of 4: no padding
  };
  put(RTA_DST, dst);
  if (src !== undefined) put(RTA_SRC, src);
  const mark = new Uint8Array(4);
  new DataView(mark.buffer).setUint32(0, query.mark >>> 0, true);
  put(RTA_MARK, mark);
  return at + length;
}

/** What the kernel said about one look-up, by its sequence number. */
export type RouteAnswer = { seq: number; oif: number } | { seq: number; errno: number };

/** What one read of a netlink socket held. */
export interface NetlinkMessages {
  /** Answers to route look-ups (RTM_NEWROUTE or an error, with the request's sequence number). */
  answers: RouteAnswer[];
  /** Route or address changes (events). */
  changed: boolean;
  /** Addresses removed from this host (RTM_DELADDR), as IP literals. */
  removed: string[];
}

/**
 * Reads the netlink messages in `buf[0, length)`, from a socket of look-ups (`answers`:
 * RTM_NEWROUTE is an answer) or of events (a route added). Malformed ones end the read
 * (the kernel sends none).
 */
export function readNetlinkMessages(buf: Uint8Array, length: number, from: 'answers' | 'events'): NetlinkMessages {
  const view = new DataView(buf.buffer, buf.byteOffset, length);
  const out: NetlinkMessages = { answers: [], changed: false, removed: [] };
  for (let at = 0; at + NLMSG_HDRLEN <= length;) {
    const size = view.getUint32(at, true);
    if (size < NLMSG_HDRLEN || at + size > length) break;
    const type = view.getUint16(at + 4, true);
    const seq = view.getUint32(at + 8, true);
    const body = at + NLMSG_HDRLEN;
    if (type === NLMSG_ERROR && size >= NLMSG_HDRLEN + 4) {
      out.answers.push({ seq, errno: -view.getInt32(body, true) });
    } else if (type === RTM_NEWROUTE || type === RTM_DELROUTE) {
      if (from === 'answers' && type === RTM_NEWROUTE) {
        let oif = 0;
        forEachAttribute(view, body + RTMSG_LEN, at + size, (attr, start, len) => {
          if (attr === RTA_OIF && len === 4) oif = view.getUint32(start, true);
        });
        out.answers.push({ seq, oif });
      } else {
        out.changed = true;
      }
    } else if (type === RTM_NEWADDR || type === RTM_DELADDR) {
      out.changed = true;
      if (type === RTM_DELADDR) {
        const family = view.getUint8(body);
        let address: string | undefined;
        forEachAttribute(view, body + IFADDRMSG_LEN, at + size, (attr, start, len) => {
          // IFA_LOCAL is the host's own address on point-to-point links; IFA_ADDRESS elsewhere.
          if ((attr === IFA_LOCAL || (attr === IFA_ADDRESS && address === undefined)) && (len === 4 || len === 16)) {
            address = formatBytes(family, new Uint8Array(view.buffer, view.byteOffset + start, len));
          }
        });
        if (address !== undefined) out.removed.push(address);
      }
    }
    at += (size + 3) & ~3;
  }
  return out;
}

function forEachAttribute(view: DataView, from: number, end: number, each: (type: number, start: number, length: number) => void): void {
  for (let p = from; p + 4 <= end;) {
    const len = view.getUint16(p, true);
    if (len < 4 || p + len > end) return;
    each(view.getUint16(p + 2, true) & 0x3fff, p + 4, len - 4);
    p += (len + 3) & ~3;
  }
}

function addressBytes(address: string): Uint8Array {
  return parseAddress(address).address;
}

function formatBytes(family: number, bytes: Uint8Array): string | undefined {
  if (family === AF_INET && bytes.length === 4) return formatAddress(4, bytes);
  if (family === AF_INET6 && bytes.length === 16) return formatAddress(6, bytes);
  return undefined;
}
