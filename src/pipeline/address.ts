// The address record that travels with every datagram in a batch (`batch.addrs`): the
// peer's address and port, and the local address the datagram came in on (replies
// leave from it). The native UDP calls read and write these records in place
// (native/udp.cc checks the stride at load: see conn/udp.ts); the functions below are
// the TypeScript side's view of them.
import { formatAddress, parseAddress } from '../routing/prefix.js';
import { PrefixError } from '../errors.js';

/**
 * Bytes per address record. Record i is `addrs[i*44, i*44+44)`. The remote side:
 * byte 0 = family (4 or 6; 0 = none), byte 1 = the outer IP header's ECN field (0–3:
 * udpRecv fills it with the datagram's, udpSend sends with it; not part of the
 * address: sameAddr ignores it), bytes 2–3 = port big-endian,
 * bytes 4–19 = address (IPv4 in bytes 4–7, the rest zero). IPv4-mapped IPv6 addresses
 * (what a dual-stack socket sees from IPv4 peers) are always recorded as family 4.
 *
 * The local side (the sticky source address): byte 20 = family (4 or 6; 0 = none, the
 * routing table picks the source), bytes 21–23 = 0, bytes 24–27 = interface index
 * little-endian, bytes 28–43 = address (IPv4 in bytes 28–31). udpRecv fills it with the
 * address each datagram was sent to (IP_PKTINFO's ipi_spec_dst, IPV6_PKTINFO's address;
 * v4-mapped as family 4) and the interface it came in on; udpSend sends from it.
 */
export const ADDR_STRIDE = 44;
export const ADDR_FAMILY = 0;
export const ADDR_ECN = 1;
export const ADDR_PORT = 2;
export const ADDR_BYTES = 4;
export const ADDR_LOCAL_FAMILY = 20;
export const ADDR_LOCAL_IFINDEX = 24;
export const ADDR_LOCAL_BYTES = 28;

/** The local side of an address record: where a datagram came in, and replies leave from. */
export interface LocalAddress {
  /** An IP literal (v4 or v6, no brackets). */
  readonly address: string;
  /** The interface it came in on (0: unknown); sent back only for an IPv6 link-local address. */
  readonly ifindex: number;
}

// Control path: these allocate; the batch calls do not.

/**
 * Writes `address`:`port` as record `i` of `addrs`, with `local` as its local side (none
 * when absent). `address` (and `local.address`) is an IPv4 dotted quad or an IPv6
 * address without brackets or zone; an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is
 * written as family 4. Throws a TypeError for anything else and a RangeError for a bad
 * port, a bad ifindex or a record outside `addrs`.
 */
export function writeAddr(addrs: Uint8Array, i: number, address: string, port: number, local?: LocalAddress): void {
  const base = recordBase(addrs, i, 'writeAddr');
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`writeAddr: port ${port} is not in [0, 65535]`);
  const bytes = addressBytes(address);
  let localBytes: Uint8Array | undefined;
  if (local !== undefined) {
    if (!Number.isInteger(local.ifindex) || local.ifindex < 0 || local.ifindex > 0xffff_ffff) {
      throw new RangeError(`writeAddr: ifindex ${local.ifindex} is not a u32`);
    }
    localBytes = addressBytes(local.address);
  }
  addrs.fill(0, base, base + ADDR_STRIDE);
  addrs[base + ADDR_FAMILY] = bytes.length === 4 ? 4 : 6;
  addrs[base + ADDR_PORT] = port >>> 8;
  addrs[base + ADDR_PORT + 1] = port & 0xff;
  addrs.set(bytes, base + ADDR_BYTES);
  if (localBytes !== undefined) {
    addrs[base + ADDR_LOCAL_FAMILY] = localBytes.length === 4 ? 4 : 6;
    for (let k = 0; k < 4; k++) addrs[base + ADDR_LOCAL_IFINDEX + k] = (local!.ifindex >>> (8 * k)) & 0xff;
    addrs.set(localBytes, base + ADDR_LOCAL_BYTES);
  }
}

/**
 * Reads record `i`: `{ address, port }` with IPv4 as a dotted quad and IPv6 in its
 * canonical text form (RFC 5952), no brackets, and `local` when the record has a local
 * side (of family 4 or 6). Throws a RangeError for a record outside `addrs` or of a
 * family other than 4 or 6.
 * Bounds: recordBase checks the record lies inside addrs.
 */
export function readAddr(addrs: Uint8Array, i: number): { address: string; port: number; local?: LocalAddress } {
  const base = recordBase(addrs, i, 'readAddr');
  const family = addrs[base + ADDR_FAMILY];
  const port = (addrs[base + ADDR_PORT]! << 8) | addrs[base + ADDR_PORT + 1]!;
  if (family !== 4 && family !== 6) throw new RangeError(`readAddr: record ${i} has no address (family ${family})`);
  const bytes = addrs.subarray(base + ADDR_BYTES, base + ADDR_BYTES + (family === 4 ? 4 : 16));
  const remote = { address: formatAddress(family, bytes), port };
  const local = readLocal(addrs, i);
  return local === undefined ? remote : { ...remote, local };
}

/**
 * The local side of record `i`, if it has one (family 4 or 6). A RangeError for a record outside `addrs`.
 * Bounds: recordBase checks the record lies inside addrs.
 */
export function readLocal(addrs: Uint8Array, i: number): LocalAddress | undefined {
  const base = recordBase(addrs, i, 'readLocal');
  const family = addrs[base + ADDR_LOCAL_FAMILY];
  if (family !== 4 && family !== 6) return undefined;
  const at = base + ADDR_LOCAL_BYTES;
  let ifindex = 0;
  for (let k = 3; k >= 0; k--) ifindex = ifindex * 256 + addrs[base + ADDR_LOCAL_IFINDEX + k]!;
  return { address: formatAddress(family, addrs.subarray(at, at + (family === 4 ? 4 : 16))), ifindex };
}

/** Removes the local side of record `i` (it will be sent from the routing table's choice). Allocation-free. */
export function clearLocal(addrs: Uint8Array, i: number): void {
  const base = recordBase(addrs, i, 'clearLocal');
  addrs.fill(0, base + ADDR_LOCAL_FAMILY, base + ADDR_STRIDE);
}

/** Whether record `i` has a local side. Allocation-free. */
export function hasLocal(addrs: Uint8Array, i: number): boolean {
  return addrs[recordBase(addrs, i, 'hasLocal') + ADDR_LOCAL_FAMILY] !== 0;
}

/**
 * Whether record `i` of `addrs` and record `j` of `other` hold the same remote family,
 * port and address and the same local side (none in both, or the same family, address
 * and interface): a datagram from a peer's endpoint to the address it used before.
 * Allocation-free, for per-packet endpoint checks. Throws a RangeError for a record
 * outside its array.
 */
export function sameAddr(addrs: Uint8Array, i: number, other: Uint8Array, j: number): boolean {
  const a = recordBase(addrs, i, 'sameAddr');
  const b = recordBase(other, j, 'sameAddr');
  const family = addrs[a];
  if (family !== other[b] || addrs[a + 2] !== other[b + 2] || addrs[a + 3] !== other[b + 3]) return false;
  const n = family === 4 ? 4 : 16;
  for (let k = ADDR_BYTES; k < ADDR_BYTES + n; k++) if (addrs[a + k] !== other[b + k]) return false;
  const local = addrs[a + ADDR_LOCAL_FAMILY];
  if (local !== other[b + ADDR_LOCAL_FAMILY]) return false;
  if (local === 0) return true;
  const end = ADDR_LOCAL_BYTES + (local === 4 ? 4 : 16);
  for (let k = ADDR_LOCAL_IFINDEX; k < end; k++) if (addrs[a + k] !== other[b + k]) return false;
  return true;
}

/** Whether the local sides of the two records hold the same family and address (interfaces aside). Allocation-free. */
export function sameLocalAddress(addrs: Uint8Array, i: number, other: Uint8Array, j: number): boolean {
  const a = recordBase(addrs, i, 'sameLocalAddress');
  const b = recordBase(other, j, 'sameLocalAddress');
  const family = addrs[a + ADDR_LOCAL_FAMILY];
  if (family !== other[b + ADDR_LOCAL_FAMILY]) return false;
  const end = ADDR_LOCAL_BYTES + (family === 4 ? 4 : family === 6 ? 16 : 0);
  for (let k = ADDR_LOCAL_BYTES; k < end; k++) if (addrs[a + k] !== other[b + k]) return false;
  return true;
}

function addressBytes(address: string): Uint8Array {
  let parsed: ReturnType<typeof parseAddress>;
  try {
    parsed = parseAddress(address);
  } catch (err) {
    if (err instanceof PrefixError) throw new TypeError(`writeAddr: "${address}" is not an IP address`);
    throw err;
  }
  return parsed.family === 6 && isV4Mapped(parsed.address) ? parsed.address.subarray(12) : parsed.address;
}

function recordBase(addrs: Uint8Array, i: number, fn: string): number {
  if (!Number.isInteger(i) || i < 0 || (i + 1) * ADDR_STRIDE > addrs.length) {
    throw new RangeError(`${fn}: record ${i} is outside addrs (${Math.floor(addrs.length / ADDR_STRIDE)} records)`);
  }
  return i * ADDR_STRIDE;
}

function isV4Mapped(a: Uint8Array): boolean {
  for (let k = 0; k < 10; k++) if (a[k] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

