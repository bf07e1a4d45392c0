// ICMP "destination unreachable" for packets no peer can take (src/protocol/icmp.ts):
// the errors' checksums (against an independent RFC 1071 sum), how much of the packet
// they quote, the packets they never answer, the rate limit, and the outbound stage
// answering unroutable packets and peers without an endpoint instead of staging them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sealBatch } from '../../src/crypto/native-aead.js';
import { generatePrivateKey } from '../../src/crypto/keys.js';
import { HEADROOM } from '../../src/pipeline/batch.js';
import { ICMP_MSGS_BURST, UnreachableReplies } from '../../src/stages/unreachable.js';
import { Drop } from '../../src/protocol/drop-reasons.js';
import { Engine } from '../../src/protocol/engine.js';
import {
  ICMP4_ERROR_MAX, ICMP6_ERROR_MAX, NoAnswer, TokenBucket, unanswerable, UNREACHABLE_MAX_BYTES, writeUnreachable,
} from '../../src/protocol/icmp.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import { EngineControl, outboundContextOf } from '../../src/stages/engine-control.js';
import { OutboundStage } from '../../src/stages/outbound.js';
import { ipv4, ipv6, onesSum } from '../helpers/offload-packets.js';
import { B } from '../helpers/engines.js';
import { tunBatch } from '../helpers/packets.js';

/** An IPv4 packet of `length` bytes (protocol `proto`, the first payload bytes `head`), header checksum set. */
function v4(src: string, dst: string, length: number, proto = 17, head: number[] = [], fragment = 0): Uint8Array {
  const p = new Uint8Array(length);
  p[0] = 0x45;
  p[2] = length >> 8;
  p[3] = length & 0xff;
  p[6] = fragment >> 8;
  p[7] = fragment & 0xff;
  p[8] = 64;
  p[9] = proto;
  p.set(ipv4(src), 12);
  p.set(ipv4(dst), 16);
  for (let i = 20; i < length; i++) p[i] = i & 0xff;
  p.set(head, 20);
  const c = ~onesSum(p, 0, 20) & 0xffff;
  p[10] = c >> 8;
  p[11] = c & 0xff;
  return p;
}

/** An IPv6 packet of `length` bytes whose next header is `next`, then `body` (extension headers, a transport header). */
function v6(src: string, dst: string, length: number, next = 17, body: number[] = []): Uint8Array {
  const p = new Uint8Array(length);
  p[0] = 0x60;
  p[4] = (length - 40) >> 8;
  p[5] = (length - 40) & 0xff;
  p[6] = next;
  p[7] = 64;
  p.set(ipv6(src), 8);
  p.set(ipv6(dst), 24);
  for (let i = 40; i < length; i++) p[i] = i & 0xff;
  p.set(body, 40);
  return p;
}

function errorFor(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(UNREACHABLE_MAX_BYTES + 8);
  const n = writeUnreachable(packet, 0, packet.length, out, 8);
  return out.slice(8, 8 + n);
}

/** The ICMPv6 checksum check over the pseudo-header (src, dst, length, next header 58), independent of src/offload. */
function icmp6ChecksumValid(e: Uint8Array): boolean {
  const length = e.length - 40;
  const pseudo = [...e.subarray(8, 40), 0, 0, length >> 8, length & 0xff, 0, 0, 0, 58];
  const sum = onesSum(pseudo) + onesSum(e, 40);
  return ((sum & 0xffff) + (sum >>> 16)) === 0xffff;
}

test('IPv4: host unreachable from the unreachable destination back to the sender, checksums valid, the packet quoted whole', () => {
  const packet = v4('100.96.0.1', '100.96.9.9', 84, 1, [8, 0]); // an echo request
  const e = errorFor(packet);
  assert.equal(e.length, 20 + 8 + 84);
  assert.equal(e[0], 0x45);
  assert.equal((e[2]! << 8) | e[3]!, e.length, 'total length');
  assert.equal(e[8], 64, 'TTL');
  assert.equal(e[9], 1, 'protocol ICMP');
  assert.deepEqual([...e.subarray(12, 16)], [100, 96, 9, 9], 'source: the unreachable destination');
  assert.deepEqual([...e.subarray(16, 20)], [100, 96, 0, 1], 'destination: the sender');
  assert.equal(onesSum(e, 0, 20), 0xffff, 'IPv4 header checksum');
  assert.equal(e[20], 3, 'type: destination unreachable');
  assert.equal(e[21], 1, 'code: host unreachable');
  assert.deepEqual([...e.subarray(24, 28)], [0, 0, 0, 0], 'unused');
  assert.equal(onesSum(e, 20), 0xffff, 'ICMP checksum');
  assert.deepEqual(e.subarray(28), packet, 'the whole packet quoted');
});

test('IPv4: the error is at most 576 bytes; a header and 8 bytes are always quoted', () => {
  const big = v4('100.96.0.1', '100.96.9.9', 1400, 6);
  const e = errorFor(big);
  assert.equal(e.length, ICMP4_ERROR_MAX);
  assert.deepEqual(e.subarray(28), big.subarray(0, ICMP4_ERROR_MAX - 28));
  assert.equal(onesSum(e, 20), 0xffff);
  assert.equal(onesSum(e, 0, 20), 0xffff);
  const odd = v4('100.96.0.1', '100.96.9.9', 20 + 8 + 3);
  const f = errorFor(odd);
  assert.equal(f.length, 28 + odd.length);
  assert.equal(onesSum(f, 20), 0xffff, 'an odd length sums its last byte as a high byte');
  const short = v4('100.96.0.1', '100.96.9.9', 20 + 8);
  assert.deepEqual(errorFor(short).subarray(28), short);
});

test('IPv6: address unreachable, checksum over the pseudo-header, quoted up to 1280 bytes in all', () => {
  const packet = v6('fd7a:7d0::1', 'fd7a:7d0:9::9', 104, 58, [128, 0]); // an echo request
  const e = errorFor(packet);
  assert.equal(e.length, 40 + 8 + 104);
  assert.equal(e[0]! >> 4, 6);
  assert.equal((e[4]! << 8) | e[5]!, e.length - 40, 'payload length');
  assert.equal(e[6], 58, 'next header ICMPv6');
  assert.equal(e[7], 64, 'hop limit');
  assert.deepEqual(e.subarray(8, 24), ipv6('fd7a:7d0:9::9'), 'source: the unreachable destination');
  assert.deepEqual(e.subarray(24, 40), ipv6('fd7a:7d0::1'), 'destination: the sender');
  assert.equal(e[40], 1, 'type: destination unreachable');
  assert.equal(e[41], 3, 'code: address unreachable');
  assert.ok(icmp6ChecksumValid(e), 'ICMPv6 checksum');
  assert.deepEqual(e.subarray(48), packet);

  const big = v6('fd7a:7d0::1', 'fd7a:7d0:9::9', 1500, 6);
  const f = errorFor(big);
  assert.equal(f.length, ICMP6_ERROR_MAX);
  assert.deepEqual(f.subarray(48), big.subarray(0, ICMP6_ERROR_MAX - 48));
  assert.ok(icmp6ChecksumValid(f));
  const odd = v6('fd7a:7d0::1', 'fd7a:7d0:9::9', 61);
  assert.ok(icmp6ChecksumValid(errorFor(odd)));
});

test('IPv4: no error for ICMP errors, later fragments, multicast or broadcast, or a source that is no single host', () => {
  const why = (p: Uint8Array): number => unanswerable(p, 0, p.length);
  const from = '100.96.0.1';
  const to = '100.96.9.9';
  for (const type of [3, 4, 5, 11, 12, 19, 255]) assert.equal(why(v4(from, to, 56, 1, [type, 0])), NoAnswer.IcmpError, `ICMP type ${type}`);
  for (const type of [0, 8, 13, 17]) assert.equal(why(v4(from, to, 56, 1, [type, 0])), NoAnswer.None, `ICMP type ${type} is answered`);
  assert.equal(why(v4(from, to, 20, 1)), NoAnswer.IcmpError, 'an ICMP message without its type');
  assert.equal(why(v4(from, to, 60, 17, [], 185)), NoAnswer.Fragment, 'offset 185 × 8');
  assert.equal(why(v4(from, to, 60, 17, [], 0x2000 | 185)), NoAnswer.Fragment, 'a middle fragment');
  assert.equal(why(v4(from, to, 60, 17, [], 0x2000)), NoAnswer.None, 'the first fragment (more fragments set) is answered');
  assert.equal(why(v4(from, to, 60, 1, [3, 1], 0x0001)), NoAnswer.Fragment, 'a later fragment of an ICMP message');
  for (const dst of ['224.0.0.1', '239.255.255.250', '255.255.255.255', '0.0.0.0']) assert.equal(why(v4(from, dst, 40)), NoAnswer.NotUnicast, dst);
  for (const src of ['0.0.0.0', '127.0.0.1', '224.0.0.5', '240.0.0.1', '255.255.255.255']) assert.equal(why(v4(src, to, 40)), NoAnswer.SourceNotAHost, src);
  assert.equal(why(v4(from, to, 40).subarray(0, 19)), NoAnswer.NotIp, 'shorter than a header');
  const badIhl = v4(from, to, 40);
  badIhl[0] = 0x44;
  assert.equal(why(badIhl), NoAnswer.NotIp, 'IHL 4');
  const longIhl = v4(from, to, 40);
  longIhl[0] = 0x4f;
  assert.equal(why(longIhl), NoAnswer.NotIp, 'a header longer than the packet');
  assert.equal(why(Uint8Array.of(0x50, 0, 0, 0)), NoAnswer.NotIp, 'version 5');
  assert.equal(unanswerable(new Uint8Array(0), 0, 0), NoAnswer.NotIp);
  const out = new Uint8Array(UNREACHABLE_MAX_BYTES);
  const error = v4(from, to, 56, 1, [3, 1]);
  assert.equal(writeUnreachable(error, 0, error.length, out, 0), 0, 'nothing written for what is not answered');
  assert.ok(out.every((b) => b === 0));
});

test('IPv6: no error for ICMPv6 errors (also behind extension headers), later fragments, multicast, or an unspecified or multicast source', () => {
  const why = (p: Uint8Array): number => unanswerable(p, 0, p.length);
  const from = 'fd7a:7d0::1';
  const to = 'fd7a:7d0:9::9';
  for (const type of [1, 2, 3, 4, 127]) assert.equal(why(v6(from, to, 64, 58, [type, 0])), NoAnswer.IcmpError, `ICMPv6 type ${type}`);
  for (const type of [128, 129, 135]) assert.equal(why(v6(from, to, 64, 58, [type, 0])), NoAnswer.None, `ICMPv6 type ${type} is answered`);
  assert.equal(why(v6(from, to, 40, 58)), NoAnswer.IcmpError, 'an ICMPv6 message without its type');
  // Hop-by-hop options (8 bytes), then an ICMPv6 error.
  assert.equal(why(v6(from, to, 64, 0, [58, 0, 1, 4, 0, 0, 0, 0, 1, 0])), NoAnswer.IcmpError, 'an error behind hop-by-hop options');
  assert.equal(why(v6(from, to, 64, 0, [58, 0, 1, 4, 0, 0, 0, 0, 128, 0])), NoAnswer.None, 'an echo request behind hop-by-hop options');
  // Destination options (16 bytes), then routing (8 bytes), then UDP.
  assert.equal(why(v6(from, to, 80, 60, [43, 1, ...new Array<number>(14).fill(0), 17, 0, 0, 0, 0, 0, 0, 0])), NoAnswer.None);
  // Fragment headers: offset 0 (more fragments) vs offset 100.
  assert.equal(why(v6(from, to, 64, 44, [17, 0, 0x00, 0x01, 0, 0, 0, 1])), NoAnswer.None, 'the first fragment');
  assert.equal(why(v6(from, to, 64, 44, [17, 0, 0x03, 0x20, 0, 0, 0, 1])), NoAnswer.Fragment, 'a later fragment');
  assert.equal(why(v6(from, to, 64, 44, [58, 0, 0, 1, 0, 0, 0, 1, 3, 0])), NoAnswer.IcmpError, 'the first fragment of an ICMPv6 error');
  for (const dst of ['ff02::1', 'ff02::16', 'ff05::2']) assert.equal(why(v6(from, dst, 48)), NoAnswer.NotUnicast, dst);
  for (const src of ['::', 'ff02::1']) assert.equal(why(v6(src, to, 48)), NoAnswer.SourceNotAHost, src);
  assert.equal(why(v6(from, to, 48).subarray(0, 39)), NoAnswer.NotIp, 'shorter than a header');
  assert.equal(why(v6(from, to, 48)), NoAnswer.None);
});

test('the token bucket: a burst of 50, then 1000 a second, never more than the burst, nothing for a clock that goes back', () => {
  const bucket = new TokenBucket(1000, 50);
  let granted = 0;
  for (let i = 0; i < 200; i++) if (bucket.take(1000)) granted++;
  assert.equal(granted, 50);
  assert.equal(bucket.take(1000.5), false, 'half a token');
  assert.equal(bucket.take(1001), true, 'one more after 1 ms');
  assert.equal(bucket.take(1001), false);
  assert.equal(bucket.take(900), false, 'the clock went back');
  granted = 0;
  for (let i = 0; i < 200; i++) if (bucket.take(60_000)) granted++;
  assert.equal(granted, 50, 'a long pause refills to the burst, not beyond');
  granted = 0;
  for (let t = 60_001; t <= 61_000; t++) if (bucket.take(t)) granted++;
  assert.equal(granted, 1000, '1000 in a second, one each ms');
});

test('UnreachableReplies: errors into reserved slots, the rest counted as rate-limited, clear() empties it', () => {
  const replies = new UnreachableReplies();
  const packet = v4('100.96.0.1', '100.96.9.9', 84, 1, [8, 0]);
  const frame = new Uint8Array(200);
  frame.set(packet, 16);
  for (let i = 0; i < 120; i++) replies.answer(frame, 16, packet.length, 5000);
  replies.answer(frame, 0, 10, 5000); // not IP: neither answered nor counted
  const { batch } = replies;
  assert.equal(batch.count, ICMP_MSGS_BURST);
  assert.equal(replies.limited, 120 - ICMP_MSGS_BURST);
  for (let k = 0; k < batch.count; k++) {
    assert.ok(batch.offsets[k]! >= HEADROOM, 'room for a vnet header');
    const e = batch.data.subarray(batch.offsets[k]!, batch.offsets[k]! + batch.lengths[k]!);
    assert.equal(e.length, 28 + 84);
    assert.equal(onesSum(e, 20), 0xffff);
    assert.ok(batch.offsets[k]! + replies.capacity <= batch.data.length);
  }
  replies.clear();
  assert.equal(batch.count, 0);
  replies.answer(frame, 16, packet.length, 5001);
  assert.equal(batch.count, 1, 'one more token after 1 ms');
});

test('outbound: unroutable packets and packets for a peer without an endpoint are dropped and answered; with an endpoint they are staged', () => {
  const a = new Engine({ privateKey: generatePrivateKey() });
  const withEndpoint = a.addPeer(new Engine({ privateKey: generatePrivateKey() }).publicKey!, { endpoint: B });
  const noEndpoint = a.addPeer(new Engine({ privateKey: generatePrivateKey() }).publicKey!);
  a.allowedIPs.insert(parsePrefix('100.96.0.2/32'), withEndpoint);
  a.allowedIPs.insert(parsePrefix('100.96.8.0/24'), noEndpoint);
  a.allowedIPs.insert(parsePrefix('fd7a:7d0:8::/64'), noEndpoint);
  const echo = (dst: string): Uint8Array => v4('100.96.0.1', dst, 84, 1, [8, 0]);
  const batch = tunBatch([
    echo('100.96.0.2'), echo('100.96.9.9'), echo('100.96.8.8'),
    v6('fd7a:7d0::1', 'fd7a:7d0:9::9', 64, 58, [128, 0]), v6('fd7a:7d0::1', 'fd7a:7d0:8::8', 64, 58, [128, 0]),
    v6('fd7a:7d0::1', 'ff02::16', 64, 0, [58, 0, 1, 4, 0, 0, 0, 0, 143, 0]), // an MLD report: no answer
  ]);
  const ctx = outboundContextOf(a, sealBatch);
  const replies = new UnreachableReplies();
  ctx.unreachable = replies;
  assert.equal(new OutboundStage(128).run(batch, ctx, new EngineControl(a)), 0);
  assert.equal(a.drops.get(Drop.NoPeerForDestination), 3);
  assert.equal(a.drops.get(Drop.NoEndpoint), 2);
  assert.equal(withEndpoint.staged.length, 1, 'the peer with an endpoint has its packet staged behind a handshake');
  assert.equal(noEndpoint.staged.length, 0, 'the peer without one has nothing staged');
  assert.equal(a.outbox.length, 1, 'one handshake initiation, for the peer with an endpoint');
  const r = replies.batch;
  assert.equal(r.count, 4);
  const sources = Array.from({ length: r.count }, (_, k) => {
    const e = r.data.subarray(r.offsets[k]!, r.offsets[k]! + r.lengths[k]!);
    return e[0]! >> 4 === 4 ? e.subarray(12, 16).join('.') : Buffer.from(e.subarray(8, 24)).toString('hex');
  });
  assert.deepEqual(sources, ['100.96.9.9', Buffer.from(ipv6('fd7a:7d0:9::9')).toString('hex'), '100.96.8.8', Buffer.from(ipv6('fd7a:7d0:8::8')).toString('hex')],
    'the unroutable ones in route(), then the ones without an endpoint in number()');
});
