// IP addresses and prefixes as bytes: parsing and canonical text (RFC 5952 for IPv6).
import { PrefixError } from '../errors.js';

export type AddressFamily = 4 | 6;

/** A network prefix. The host bits of `address` (after the first `bits` bits) are zero. */
export interface Prefix {
  family: AddressFamily;
  /** 4 bytes for IPv4, 16 for IPv6, network byte order. */
  address: Uint8Array;
  bits: number;
}

/**
 * An address with a prefix length where the host bits are kept, as an interface
 * address is written (10.0.0.1/24 is the host 10.0.0.1 on the network 10.0.0.0/24).
 */
export interface InterfaceAddress {
  family: AddressFamily;
  address: Uint8Array;
  bits: number;
}

export function addressLength(family: AddressFamily): 4 | 16 {
  return family === 4 ? 4 : 16;
}

export function maxBits(family: AddressFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** Parses a bare IPv4 or IPv6 address (no prefix length, no zone). */
export function parseAddress(text: string): { family: AddressFamily; address: Uint8Array } {
  if (text.includes(':')) return { family: 6, address: parseIPv6(text) };
  return { family: 4, address: parseIPv4(text) };
}

/** Parses `address/bits` or a bare address (a host: /32 or /128), keeping host bits. */
export function parseInterfaceAddress(text: string): InterfaceAddress {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const { family, address } = parseAddress(addressText);
  const max = maxBits(family);
  if (slash < 0) return { family, address, bits: max };
  const bitsText = text.slice(slash + 1);
  if (!/^[0-9]+$/.test(bitsText)) {
    throw new PrefixError(text, `prefix length "${bitsText}" is not a number`);
  }
  const bits = Number(bitsText);
  if (bits > max) throw new PrefixError(text, `prefix length ${bits} is out of range 0..${max}`);
  return { family, address, bits };
}

/** Parses a prefix; like `wg`, host bits set in the address are accepted and cleared. */
export function parsePrefix(text: string): Prefix {
  const p = parseInterfaceAddress(text);
  // The address is a fresh array of our own: clear its host bits in place.
  clearHostBits(p.address, p.bits);
  return p;
}

/** The prefix (network) containing an address: a copy with the host bits cleared. */
export function maskPrefix(p: { family: AddressFamily; address: Uint8Array; bits: number }): Prefix {
  const address = new Uint8Array(p.address);
  clearHostBits(address, p.bits);
  return { family: p.family, address, bits: p.bits };
}

function clearHostBits(address: Uint8Array, bits: number): void {
  const whole = bits >>> 3;
  const partial = address[whole];
  if (partial !== undefined) {
    address[whole] = partial & (0xff00 >>> (bits & 7));
    address.fill(0, whole + 1);
  }
}

export function formatPrefix(p: Prefix | InterfaceAddress): string {
  return `${formatAddress(p.family, p.address)}/${p.bits}`;
}

export function formatAddress(family: AddressFamily, address: Uint8Array): string {
  if (address.length !== addressLength(family)) {
    throw new RangeError(`an IPv${family} address has ${addressLength(family)} bytes, not ${address.length}`);
  }
  return family === 4 ? address.join('.') : formatIPv6(address);
}

function parseIPv4(text: string): Uint8Array {
  return quickIPv4(text) ?? checkedIPv4(text);
}

/**
 * The common case in one pass over the characters: four octets of 1–3 digits, no
 * leading zero, at most 255. Anything else is left to checkedIPv4, which says what is wrong.
 */
function quickIPv4(text: string): Uint8Array | undefined {
  const bytes = new Uint8Array(4);
  let octet = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && value === 0) return undefined;
      value = value * 10 + (c - 0x30);
      if (++digits > 3) return undefined;
    } else if (c === 0x2e && digits > 0 && value <= 255 && octet < 4) {
      bytes[octet++] = value;
      value = 0;
      digits = 0;
    } else {
      return undefined;
    }
  }
  return octet === 4 ? bytes : undefined;
}

function checkedIPv4(text: string): Uint8Array {
  const parts = text.split('.');
  if (parts.length !== 4) throw new PrefixError(text, 'not an IPv4 address: it needs four dotted decimal numbers');
  const bytes = new Uint8Array(4);
  parts.forEach((part, i) => {
    if (!/^[0-9]{1,3}$/.test(part)) throw new PrefixError(text, `"${part}" is not a decimal octet`);
    // inet_pton rejects leading zeros too: some parsers would read them as octal.
    if (part.length > 1 && part[0] === '0') throw new PrefixError(text, `octet "${part}" has a leading zero`);
    const value = Number(part);
    if (value > 255) throw new PrefixError(text, `octet ${value} is greater than 255`);
    bytes[i] = value;
  });
  return bytes;
}

function parseIPv6(text: string): Uint8Array {
  if (text.includes('%')) throw new PrefixError(text, 'a zone is not allowed here');
  const halves = text.split('::');
  if (halves.length > 2) throw new PrefixError(text, '"::" may appear only once');
  const [before = '', after] = halves;
  const compressed = after !== undefined;
  const head = parseGroups(text, before, !compressed);
  const tail = compressed ? parseGroups(text, after, true) : [];
  const count = head.length + tail.length;
  if (compressed ? count > 7 : count !== 8) {
    throw new PrefixError(text, `not an IPv6 address: ${count} groups${compressed ? ' besides "::"' : ''}`);
  }
  const groups = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >>> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** Parses colon-separated hex groups; the last may be dotted IPv4 (two groups) when `endsAddress`. */
function parseGroups(text: string, part: string, endsAddress: boolean): number[] {
  if (part === '') return [];
  const fields = part.split(':');
  const groups: number[] = [];
  fields.forEach((field, i) => {
    if (field.includes('.') && endsAddress && i === fields.length - 1) {
      const v4 = new DataView(parseIPv4(field).buffer);
      groups.push(v4.getUint16(0), v4.getUint16(2));
    } else if (/^[0-9a-fA-F]{1,4}$/.test(field)) {
      groups.push(parseInt(field, 16));
    } else {
      throw new PrefixError(text, `"${field}" is not an IPv6 group of 1 to 4 hex digits`);
    }
  });
  return groups;
}

function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < 16; i += 2) groups.push(view.getUint16(i));
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted form.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes.subarray(12).join('.')}`;
  }
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
