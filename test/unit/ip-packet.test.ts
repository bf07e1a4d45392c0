// The inner packet's ECN field (RFC 6040 tunnelling): read from IPv4 and IPv6 headers,
// the outer field made from it, and CE set on decapsulation with the IPv4 header
// checksum updated incrementally, checked against a full recomputation (the test
// helpers' own RFC 1071 routine) on random headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECN_CE, ECN_ECT0, ECN_ECT1, ECN_NOT_ECT, ipEcn, markCe, outerEcn } from '../../src/protocol/ip-packet.js';
import { buildPacket, checksumsValid, ipv4, ipv6, type IpFields } from '../helpers/offload-packets.js';
import { prng } from '../helpers/prng.js';

const V4 = { family: 4, src: ipv4('100.96.0.1'), dst: ipv4('100.96.0.2') } as const;
const V6 = { family: 6, src: ipv6('fd7a:7d0::1'), dst: ipv6('fd7a:7d0::2') } as const;
const udp = { proto: 'udp', sport: 4000, dport: 5000 } as const;

function packet(ip: IpFields): Uint8Array {
  return buildPacket(ip, udp, new Uint8Array(32).fill(7));
}

test('ipEcn reads the low two bits of the IPv4 ToS and of the IPv6 traffic class', () => {
  for (const ecn of [ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE]) {
    assert.equal(ipEcn(packet({ ...V4, tos: 0xb8 | ecn }), 0), ecn, `v4 ${ecn}`);
    assert.equal(ipEcn(packet({ ...V6, tos: 0xb8 | ecn, flowLabel: 0xfffff }), 0), ecn, `v6 ${ecn}`);
  }
});

test('outerEcn: the outer field copies the inner one, except that CE goes out as ECT(0)', () => {
  assert.deepEqual([ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE].map(outerEcn), [ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_ECT0]);
});

test('markCe sets CE on ECT packets (IPv4 checksum still valid, nothing else changed) and refuses Not-ECT ones', () => {
  const rand = prng(6040);
  for (let n = 0; n < 2000; n++) {
    const family = n % 2 === 0 ? V4 : V6;
    const tos = Math.floor(rand() * 256);
    const ip: IpFields = { ...family, tos, ttl: 1 + Math.floor(rand() * 255), id: Math.floor(rand() * 65536), flowLabel: Math.floor(rand() * 0x100000) };
    const before = packet(ip);
    const after = before.slice();
    const marked = markCe(after, 0);
    if ((tos & 3) === ECN_NOT_ECT) {
      assert.equal(marked, false);
      assert.deepEqual(after, before, 'a refused packet is left as it was');
      continue;
    }
    assert.equal(marked, true);
    assert.deepEqual(after, packet({ ...ip, tos: tos | ECN_CE }), `tos ${tos}: as if sent with CE (checksum included)`);
    assert.ok(checksumsValid(after));
  }
});

test('markCe works at an offset inside a larger buffer', () => {
  const inner = packet({ ...V4, tos: ECN_ECT0 });
  const buf = new Uint8Array(inner.length + 100).fill(0xee);
  buf.set(inner, 37);
  assert.ok(markCe(buf, 37));
  assert.deepEqual(buf.subarray(37, 37 + inner.length), packet({ ...V4, tos: ECN_CE }));
  assert.ok(buf.subarray(0, 37).every((b) => b === 0xee) && buf.subarray(37 + inner.length).every((b) => b === 0xee));
});
