// IP header reading (ipPacketLength) and ICMP errors (unanswerable, writeUnreachable)
// on any packet: their answers depend only on the packet's own bytes, and an error
// written is a whole IP packet with right checksums that stays inside its room.
import { ipPacketLength } from '../../src/protocol/ip-packet.js';
import { NoAnswer, UNREACHABLE_MAX_BYTES, unanswerable, writeUnreachable } from '../../src/protocol/icmp.js';
import { require, type TsTarget } from './target.js';

/** The folded RFC 1071 sum of bytes [from, to), plus initial. */
function sum(b: Uint8Array, from: number, to: number, initial = 0): number {
  let s = initial;
  for (let i = from; i < to; i++) s += (i - from) % 2 === 0 ? b[i]! << 8 : b[i]!;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function checkError(out: Uint8Array, at: number, n: number): void {
  require(n > 0 && n <= UNREACHABLE_MAX_BYTES, 'error length');
  require(ipPacketLength(out, at, n) === n, 'the error is one IP packet of its length');
  if (out[at]! >> 4 === 4) {
    require(sum(out, at, at + 20) === 0xffff, 'IPv4 header checksum');
    require(sum(out, at + 20, at + n) === 0xffff, 'ICMP checksum');
  } else {
    const pseudo = sum(out, at + 8, at + 40) + (n - 40) + 58;
    require(sum(out, at + 40, at + n, pseudo) === 0xffff, 'ICMPv6 checksum');
  }
}

const CANARY = 0xa5;

export const ip: TsTarget = {
  name: 'ip',
  dictionary: ['\x45\x00', '\x60\x00\x00\x00', '\x3a', '\x2c', '\x00\x00\x00\x00', '\xff\xff\xff\xff'],
  run(input) {
    // Two bytes of framing: padding before the packet and after it, garbage.
    const before = input.length > 0 ? input[0]! % 16 : 0;
    const after = input.length > 1 ? input[1]! % 16 : 0;
    const packet = input.subarray(2);
    const framed = new Uint8Array(before + packet.length + after).fill(0x5a);
    framed.set(packet, before);
    const length = ipPacketLength(packet, 0, packet.length);
    require(length === -1 || (length >= 20 && length <= packet.length), 'ipPacketLength in range');
    require(ipPacketLength(framed, before, packet.length) === length, 'ipPacketLength reads only its bytes');
    const why = unanswerable(packet, 0, packet.length);
    require(Object.values(NoAnswer).includes(why), 'unanswerable gives a NoAnswer');
    require(unanswerable(framed, before, packet.length) === why, 'unanswerable reads only its bytes');
    const out = new Uint8Array(UNREACHABLE_MAX_BYTES + 32).fill(CANARY);
    const n = writeUnreachable(framed, before, packet.length, out, 16);
    require((n === 0) === (why !== NoAnswer.None), 'writeUnreachable answers what unanswerable allows');
    if (n === 0) return;
    checkError(out, 16, n);
    require(out.subarray(0, 16).every((v) => v === CANARY) && out.subarray(16 + n).every((v) => v === CANARY), 'writes only its error');
  },
};
