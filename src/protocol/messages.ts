// The four WireGuard message formats (whitepaper §5.4): strict decode and encode.
// Every message starts with a little-endian u32 whose low byte is the type and
// whose other three bytes are reserved and must be zero, as wireguard-go reads it.
import {
  MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE, MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE, MESSAGE_RESPONSE_SIZE, MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_MIN_SIZE, MAX_MESSAGE_SIZE, PADDING_MULTIPLE,
} from './constants.js';
import { Drop, type DropReason } from './drop-reasons.js';

export interface InitiationMessage {
  sender: number;
  ephemeral: Uint8Array;
  encryptedStatic: Uint8Array;
  encryptedTimestamp: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface ResponseMessage {
  sender: number;
  receiver: number;
  ephemeral: Uint8Array;
  encryptedNothing: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface CookieReplyMessage {
  receiver: number;
  nonce: Uint8Array;
  encryptedCookie: Uint8Array;
}

export interface TransportHeader {
  receiver: number;
  /** Low and high 32 bits of the 64-bit counter, so the data path needs no BigInt. */
  counterLo: number;
  counterHi: number;
}

/** Byte offsets of the MACs: mac1 covers everything before it, mac2 everything before mac2. */
export const INITIATION_MAC1_OFFSET = 116;
export const RESPONSE_MAC1_OFFSET = 60;

const SIZE_OF_TYPE: Record<number, number> = {
  [MESSAGE_INITIATION]: MESSAGE_INITIATION_SIZE,
  [MESSAGE_RESPONSE]: MESSAGE_RESPONSE_SIZE,
  [MESSAGE_COOKIE_REPLY]: MESSAGE_COOKIE_REPLY_SIZE,
};

/**
 * The type (1..4) of a datagram, or a drop reason when it is no valid WireGuard
 * message: wrong type, reserved bytes set, or a size the type does not allow.
 * Allocation-free; runs on every received datagram.
 * Bounds: buf[offset, offset + length) lies in buf (the batch contract, docs/design.md §3), length ≥ 4 checked first.
 */
export function classifyMessage(buf: Uint8Array, offset: number, length: number): number | { drop: DropReason } {
  if (length < 4) return TOO_SHORT;
  const type = buf[offset]!;
  if (buf[offset + 1] !== 0 || buf[offset + 2] !== 0 || buf[offset + 3] !== 0) return RESERVED;
  if (type === MESSAGE_TRANSPORT) {
    if (length < MESSAGE_TRANSPORT_MIN_SIZE) return TOO_SHORT;
    if (length > MAX_MESSAGE_SIZE) return WRONG_SIZE;
    return type;
  }
  const size = SIZE_OF_TYPE[type];
  if (size === undefined) return UNKNOWN_TYPE;
  return length === size ? type : length < size ? TOO_SHORT : WRONG_SIZE;
}

const TOO_SHORT = { drop: Drop.TooShort } as const;
const WRONG_SIZE = { drop: Drop.WrongSize } as const;
const RESERVED = { drop: Drop.ReservedNotZero } as const;
const UNKNOWN_TYPE = { drop: Drop.UnknownType } as const;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function expect(buf: Uint8Array, type: number): DropReason | undefined {
  const result = classifyMessage(buf, 0, buf.length);
  if (typeof result !== 'number') return result.drop;
  return result === type ? undefined : Drop.UnknownType;
}

/** Decodes an initiation; the fields are views into `buf`. */
export function decodeInitiation(buf: Uint8Array): InitiationMessage | { drop: DropReason } {
  const bad = expect(buf, MESSAGE_INITIATION);
  if (bad !== undefined) return { drop: bad };
  return {
    sender: view(buf).getUint32(4, true),
    ephemeral: buf.subarray(8, 40),
    encryptedStatic: buf.subarray(40, 88),
    encryptedTimestamp: buf.subarray(88, 116),
    mac1: buf.subarray(116, 132),
    mac2: buf.subarray(132, 148),
  };
}

export function decodeResponse(buf: Uint8Array): ResponseMessage | { drop: DropReason } {
  const bad = expect(buf, MESSAGE_RESPONSE);
  if (bad !== undefined) return { drop: bad };
  const v = view(buf);
  return {
    sender: v.getUint32(4, true),
    receiver: v.getUint32(8, true),
    ephemeral: buf.subarray(12, 44),
    encryptedNothing: buf.subarray(44, 60),
    mac1: buf.subarray(60, 76),
    mac2: buf.subarray(76, 92),
  };
}

export function decodeCookieReply(buf: Uint8Array): CookieReplyMessage | { drop: DropReason } {
  const bad = expect(buf, MESSAGE_COOKIE_REPLY);
  if (bad !== undefined) return { drop: bad };
  return {
    receiver: view(buf).getUint32(4, true),
    nonce: buf.subarray(8, 32),
    encryptedCookie: buf.subarray(32, 64),
  };
}

export function decodeTransportHeader(buf: Uint8Array): TransportHeader | { drop: DropReason } {
  const bad = expect(buf, MESSAGE_TRANSPORT);
  if (bad !== undefined) return { drop: bad };
  const v = view(buf);
  return { receiver: v.getUint32(4, true), counterLo: v.getUint32(8, true), counterHi: v.getUint32(12, true) };
}

export function encodeInitiation(m: InitiationMessage): Uint8Array {
  const buf = new Uint8Array(MESSAGE_INITIATION_SIZE);
  const v = view(buf);
  v.setUint32(0, MESSAGE_INITIATION, true);
  v.setUint32(4, m.sender, true);
  buf.set(m.ephemeral, 8);
  buf.set(m.encryptedStatic, 40);
  buf.set(m.encryptedTimestamp, 88);
  buf.set(m.mac1, 116);
  buf.set(m.mac2, 132);
  return buf;
}

export function encodeResponse(m: ResponseMessage): Uint8Array {
  const buf = new Uint8Array(MESSAGE_RESPONSE_SIZE);
  const v = view(buf);
  v.setUint32(0, MESSAGE_RESPONSE, true);
  v.setUint32(4, m.sender, true);
  v.setUint32(8, m.receiver, true);
  buf.set(m.ephemeral, 12);
  buf.set(m.encryptedNothing, 44);
  buf.set(m.mac1, 60);
  buf.set(m.mac2, 76);
  return buf;
}

export function encodeCookieReply(m: CookieReplyMessage): Uint8Array {
  const buf = new Uint8Array(MESSAGE_COOKIE_REPLY_SIZE);
  const v = view(buf);
  v.setUint32(0, MESSAGE_COOKIE_REPLY, true);
  v.setUint32(4, m.receiver, true);
  buf.set(m.nonce, 8);
  buf.set(m.encryptedCookie, 32);
  return buf;
}

/** Writes a transport header at buf[offset..offset+16); byte by byte, so nothing is allocated per packet. */
export function writeTransportHeader(buf: Uint8Array, offset: number, receiver: number, counterLo: number, counterHi: number): void {
  buf[offset] = MESSAGE_TRANSPORT;
  buf[offset + 1] = 0;
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  writeU32LE(buf, offset + 4, receiver);
  writeU32LE(buf, offset + 8, counterLo);
  writeU32LE(buf, offset + 12, counterHi);
}

function writeU32LE(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value & 0xff;
  buf[offset + 1] = (value >>> 8) & 0xff;
  buf[offset + 2] = (value >>> 16) & 0xff;
  buf[offset + 3] = value >>> 24;
}

/** wireguard-go's calculatePaddingSize: pad to a multiple of 16, but not past the MTU. */
export function paddingSize(length: number, mtu: number): number {
  let last = length;
  if (last > mtu) last %= mtu;
  const padded = Math.min(Math.ceil(last / PADDING_MULTIPLE) * PADDING_MULTIPLE, mtu);
  return Math.max(0, padded - last);
}
