// Builds and checks small IPv4 packets for tests, and fills batches with them.
import { HEADROOM, PacketBatch, SLOT_SIZE } from '../../src/pipeline/batch.js';

/** RFC 1071 Internet checksum of buf[start, end). */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length): number {
  let sum = 0;
  for (let i = start; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if ((end - start) % 2 === 1) sum += buf[end - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

/** An IPv4 ICMP echo request (type 8) or reply (type 0) with valid checksums. */
export function icmpEcho(type: 0 | 8, src: string, dst: string, id: number, seq: number, payload: Uint8Array): Uint8Array {
  const packet = new Uint8Array(20 + 8 + payload.length);
  const v = new DataView(packet.buffer);
  packet[0] = 0x45;
  v.setUint16(2, packet.length);
  v.setUint16(4, id);
  packet[8] = 64;
  packet[9] = 1;
  packet.set(ipv4Bytes(src), 12);
  packet.set(ipv4Bytes(dst), 16);
  v.setUint16(10, internetChecksum(packet, 0, 20));
  packet[20] = type;
  v.setUint16(24, id);
  v.setUint16(26, seq);
  packet.set(payload, 28);
  v.setUint16(22, internetChecksum(packet, 20));
  return packet;
}

export interface ParsedEcho {
  type: number;
  src: string;
  dst: string;
  id: number;
  seq: number;
  payload: Uint8Array;
  checksumsValid: boolean;
}

export function parseIcmpEcho(packet: Uint8Array): ParsedEcho | undefined {
  if (packet.length < 28 || packet[0] !== 0x45 || packet[9] !== 1) return undefined;
  const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  return {
    type: packet[20]!,
    src: Array.from(packet.subarray(12, 16)).join('.'),
    dst: Array.from(packet.subarray(16, 20)).join('.'),
    id: v.getUint16(24),
    seq: v.getUint16(26),
    payload: packet.subarray(28),
    checksumsValid: internetChecksum(packet, 0, 20) === 0 && internetChecksum(packet, 20) === 0,
  };
}

/** Fills a batch of `slots` the way tunRead does: one plaintext packet per slot, after the headroom. */
export function tunBatch(packets: Uint8Array[], slots = 128): PacketBatch {
  const batch = new PacketBatch(slots, SLOT_SIZE);
  batch.resetOffsets(HEADROOM);
  packets.forEach((p, i) => {
    batch.data.set(p, batch.offsets[i]!);
    batch.lengths[i] = p.length;
  });
  batch.count = packets.length;
  return batch;
}
