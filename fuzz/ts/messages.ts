// WireGuard message decoders: classifyMessage at any offset and length, the four
// decoders, and for what decodes, the encoders giving the same bytes back.
import {
  classifyMessage, decodeCookieReply, decodeInitiation, decodeResponse, decodeTransportHeader,
  encodeCookieReply, encodeInitiation, encodeResponse,
} from '../../src/protocol/messages.js';
import { require, type TsTarget } from './target.js';

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

export const messages: TsTarget = {
  name: 'messages',
  dictionary: ['\x01\x00\x00\x00', '\x02\x00\x00\x00', '\x03\x00\x00\x00', '\x04\x00\x00\x00'],
  run(input) {
    // The first byte picks an offset into the rest, so classify sees a message inside a larger buffer.
    const offset = input.length > 0 ? input[0]! % 8 : 0;
    const buf = input.subarray(1);
    const length = Math.max(0, buf.length - offset);
    const type = classifyMessage(buf, offset, length);
    const exact = buf.slice(offset);
    const alone = classifyMessage(exact, 0, exact.length);
    require(JSON.stringify(type) === JSON.stringify(alone), 'classifyMessage reads only its bytes');
    const decoded = [decodeInitiation(exact), decodeResponse(exact), decodeCookieReply(exact), decodeTransportHeader(exact)];
    decoded.forEach((d, i) => require(('drop' in d) === (type !== i + 1), `decoder ${i + 1} agrees with classifyMessage`));
    const [init, resp, cookie] = decoded;
    if (!('drop' in init!)) require(same(encodeInitiation(init as never), exact), 'initiation round trip');
    if (!('drop' in resp!)) require(same(encodeResponse(resp as never), exact), 'response round trip');
    if (!('drop' in cookie!)) require(same(encodeCookieReply(cookie as never), exact), 'cookie reply round trip');
  },
};
