// The example allow-list filter (examples/filter), loaded through the user-stage host as
// tundra loads it: crafted IPv4/IPv6 TCP/UDP/ICMP packets, fragments, extension headers and
// malformed ones against rules; exactly the expected ones pass, in order, and the drops are
// counted by reason. Then the config errors, each naming the file, the JSON path and what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserStages } from '../../src/stages/user-host.js';
import { buildPacket, concat, ipv4, ipv6, TCP_ACK, type IpFields, type L4Fields } from '../helpers/offload-packets.js';
import { icmpEcho } from '../helpers/packets.js';

const FILTER = fileURLToPath(new URL('../../examples/filter/filter.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tundra-filter-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function rulesFile(content: unknown): string {
  const path = join(dir, `rules-${files++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const payload = new Uint8Array(40).fill(0x5a);
const tcp = (dport: number, sport = 40000): L4Fields => ({ proto: 'tcp', sport, dport, seq: 1, ack: 1, flags: TCP_ACK });
const udp = (dport: number, sport = 40000): L4Fields => ({ proto: 'udp', sport, dport });
const v4 = (src: string, dst: string, extra: Partial<IpFields> = {}): IpFields => ({ family: 4, src: ipv4(src), dst: ipv4(dst), ...extra });
const v6 = (src: string, dst: string): IpFields => ({ family: 6, src: ipv6(src), dst: ipv6(dst) });

/** Inserts IPv6 extension headers (each given with its own next-header byte first) after the fixed header. */
function withExtensions(packet: Uint8Array, firstNext: number, headers: Uint8Array[]): Uint8Array {
  const out = concat(packet.subarray(0, 40), ...headers, packet.subarray(40));
  out[6] = firstNext;
  const plen = out.length - 40;
  out[4] = plen >> 8;
  out[5] = plen & 0xff;
  return out;
}
/** An 8-byte Hop-by-Hop / Destination Options header (PadN filling it). */
const optionsHeader = (next: number): Uint8Array => Uint8Array.of(next, 0, 1, 4, 0, 0, 0, 0);
/** A Fragment header: offset in 8-byte units, M flag. */
const fragmentHeader = (next: number, offset: number, more: boolean): Uint8Array =>
  Uint8Array.of(next, 0, (offset << 3) >> 8, ((offset << 3) & 0xf8) | (more ? 1 : 0), 0, 0, 0, 42);

function icmp6(src: string, dst: string): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p[5] = 8;
  p[6] = 58;
  p[7] = 64;
  p.set(ipv6(src), 8);
  p.set(ipv6(dst), 24);
  p[40] = 128; // echo request (the filter does not check ICMP checksums)
  return p;
}

function patch(packet: Uint8Array, at: number, ...bytes: number[]): Uint8Array {
  const p = packet.slice();
  p.set(bytes, at);
  return p;
}

type Verdict = 'pass' | 'no_rule_matched' | 'malformed' | 'fragment';

const RULES = {
  outbound: [
    { dst: ['100.96.0.0/24', 'fd7a:7d0::/64'], protocol: 'tcp', dstPorts: '22,8000-8100' },
    { protocol: 'icmp' },
    { protocol: 'icmpv6', src: ['fd7a:7d0:0:1::/64'] },
    { src: ['100.96.1.5/32'], protocol: 'udp', srcPorts: 53 },
    { src: ['fd7a:7d0:0:5::/64'], dst: ['fd7a:7d0:0:6::1'], protocol: 17 },
  ],
  inbound: [{ protocol: 17 }],
};

const A = '100.96.0.1';
const B = '100.96.0.7';
const A6 = 'fd7a:7d0::1';
const B6 = 'fd7a:7d0::9';
const tcp4 = (dport: number, dst = B, extra: Partial<IpFields> = {}) => buildPacket(v4(A, dst, extra), tcp(dport), payload);
const tcp6 = (dport: number, dst = B6) => buildPacket(v6(A6, dst), tcp(dport), payload);

const OUTBOUND: [string, Uint8Array, Verdict][] = [
  ['v4 tcp to port 22', tcp4(22), 'pass'],
  ['v4 tcp to port 8000 (range start)', tcp4(8000), 'pass'],
  ['v4 tcp to port 8100 (range end)', tcp4(8100), 'pass'],
  ['v4 tcp to port 8101', tcp4(8101), 'no_rule_matched'],
  ['v4 tcp to port 21', tcp4(21), 'no_rule_matched'],
  ['v4 tcp outside the dst prefix', tcp4(22, '100.96.1.7'), 'no_rule_matched'],
  ['v4 udp to port 22 (wrong protocol)', buildPacket(v4(A, B), udp(22), payload), 'no_rule_matched'],
  ['v4 tcp with IP options, port 22', tcp4(22, B, { ipOptions: Uint8Array.of(1, 1, 1, 0) }), 'pass'],
  ['v6 tcp to port 8050', tcp6(8050), 'pass'],
  ['v6 tcp outside the /64', tcp6(22, 'fd7a:7d0:0:2::9'), 'no_rule_matched'],
  ['v4 icmp echo', icmpEcho(8, A, '100.96.9.9', 1, 1, payload), 'pass'],
  ['v6 icmpv6 from the allowed /64', icmp6('fd7a:7d0:0:1::3', B6), 'pass'],
  ['v6 icmpv6 from elsewhere', icmp6('fd7a:7d0:0:3::3', B6), 'no_rule_matched'],
  ['v4 udp from 100.96.1.5:53', buildPacket(v4('100.96.1.5', B), udp(5000, 53), payload), 'pass'],
  ['v4 udp from 100.96.1.5:54', buildPacket(v4('100.96.1.5', B), udp(5000, 54), payload), 'no_rule_matched'],
  ['v4 udp from 100.96.1.6:53', buildPacket(v4('100.96.1.6', B), udp(5000, 53), payload), 'no_rule_matched'],
  ['v6 udp, rule with v6 src and a host dst', buildPacket(v6('fd7a:7d0:0:5::77', 'fd7a:7d0:0:6::1'), udp(9), payload), 'pass'],
  ['v6 udp to another host', buildPacket(v6('fd7a:7d0:0:5::77', 'fd7a:7d0:0:6::2'), udp(9), payload), 'no_rule_matched'],
  ['v6 hop-by-hop + tcp to port 22', withExtensions(tcp6(22), 0, [optionsHeader(6)]), 'pass'],
  ['v6 hop-by-hop + dest-opts + tcp to port 23', withExtensions(tcp6(23), 0, [optionsHeader(60), optionsHeader(6)]), 'no_rule_matched'],
  ['v6 first fragment (M=1) + tcp to port 22', withExtensions(tcp6(22), 44, [fragmentHeader(6, 0, true)]), 'pass'],
  ['v6 non-first fragment of tcp to a ported rule', withExtensions(tcp6(22), 44, [fragmentHeader(6, 100, false)]), 'fragment'],
  // After a non-first Fragment header comes the middle of the payload: not walked as a header.
  ['v6 non-first fragment, next header 60', withExtensions(tcp6(22), 44, [fragmentHeader(60, 100, false), Uint8Array.of(6, 255)]), 'no_rule_matched'],
  ['v4 first fragment (MF) tcp to port 22', tcp4(22, B, { mf: true }), 'pass'],
  ['v4 non-first fragment of tcp', tcp4(22, B, { fragOffset: 185 }), 'fragment'],
  ['v4 non-first fragment of udp from 100.96.1.5', buildPacket(v4('100.96.1.5', B, { fragOffset: 3 }), udp(5000, 53), payload), 'fragment'],
  ['v4 non-first fragment of udp from elsewhere', buildPacket(v4('100.96.1.6', B, { fragOffset: 3 }), udp(5000, 53), payload), 'no_rule_matched'],
  ['v4 non-first fragment of icmp (rule without ports)', patch(icmpEcho(8, A, B, 1, 1, payload), 6, 0x00, 0x10), 'pass'],
  ['empty', new Uint8Array(0), 'malformed'],
  ['v4, 10 bytes', tcp4(22).subarray(0, 10), 'malformed'],
  ['version 7', patch(tcp4(22), 0, 0x75), 'malformed'],
  ['v4 header length 16', patch(tcp4(22), 0, 0x44), 'malformed'],
  ['v4 total length past the packet', patch(tcp4(22), 2, 0x01, 0x00), 'malformed'],
  ['v4 tcp with 3 bytes of L4 header', patch(tcp4(22).subarray(0, 23), 2, 0, 23), 'malformed'],
  ['v6, 39 bytes', tcp6(22).subarray(0, 39), 'malformed'],
  ['v6 payload length past the packet', patch(tcp6(22), 4, 0x10, 0x00), 'malformed'],
  ['v6 hop-by-hop longer than the packet', patch(withExtensions(tcp6(22), 0, [optionsHeader(6)]), 41, 200), 'malformed'],
  ['v6 nine extension headers', withExtensions(tcp6(22), 60, Array.from({ length: 9 }, (_, k) => optionsHeader(k === 8 ? 6 : 60))), 'malformed'],
];

const INBOUND: [string, Uint8Array, Verdict][] = [
  ['v4 udp', buildPacket(v4(B, A), udp(53), payload), 'pass'],
  ['v6 udp', buildPacket(v6(B6, A6), udp(53), payload), 'pass'],
  ['v4 tcp', tcp4(22), 'no_rule_matched'],
  ['v6 icmpv6', icmp6(B6, A6), 'no_rule_matched'],
  ['v4 udp truncated', buildPacket(v4(B, A), udp(53), payload).subarray(0, 12), 'malformed'],
];

/** A batch with the packets at scattered offsets; peers[i] = i. */
function batchOf(packets: readonly Uint8Array[]) {
  const data = new Uint8Array(packets.length * 256 + 64);
  const offsets = new Uint32Array(packets.length);
  const lengths = new Uint32Array(packets.length);
  const peers = new Int32Array(packets.length);
  packets.forEach((p, i) => {
    offsets[i] = 256 * i + (i % 4) * 3;
    lengths[i] = p.length;
    peers[i] = i;
    data.set(p, offsets[i]!);
  });
  return { data, offsets, lengths, peers };
}

function check(stages: UserStages, direction: 'outbound' | 'inbound', cases: [string, Uint8Array, Verdict][]) {
  const b = batchOf(cases.map((c) => c[1]));
  const n = stages.run(direction, b.data, b.offsets, b.lengths, b.peers, cases.length);
  const got = Array.from(b.peers.subarray(0, n), (i) => cases[i]![0]);
  const want = cases.filter((c) => c[2] === 'pass').map((c) => c[0]);
  assert.deepEqual(got, want, `${direction}: the packets that pass`);
  for (let j = 0; j < n; j++) {
    const original = cases[b.peers[j]!]![1];
    assert.deepEqual(b.data.subarray(b.offsets[j]!, b.offsets[j]! + b.lengths[j]!), original, 'a passing packet is left as it was');
  }
  return n;
}

test('filter: exactly the packets the rules allow pass, each drop counted by its reason', async () => {
  const stages = await UserStages.load([{ module: FILTER, config: rulesFile(RULES) }], 'main');
  assert.equal(stages.has('outbound'), true);
  assert.equal(stages.has('inbound'), true);
  const passOut = check(stages, 'outbound', OUTBOUND);
  const passIn = check(stages, 'inbound', INBOUND);
  // Each verdict one at a time too, so a packet is not judged by its neighbours.
  for (const c of OUTBOUND) check(stages, 'outbound', [c]);
  const count = (cases: typeof OUTBOUND, v: Verdict) => cases.filter((c) => c[2] === v).length;
  const reasons = ['no_rule_matched', 'malformed', 'fragment'] as const;
  assert.deepEqual(stages.snapshot(), {
    drops: Object.fromEntries([
      ...reasons.map((r) => [`stage_filter_${r}`, 2 * count(OUTBOUND, r) + count(INBOUND, r)]),
      ['stage_filter_error', 0],
    ]),
    counters: { stage_filter_passed: 2 * passOut + passIn },
  });
  assert.ok(count(OUTBOUND, 'fragment') >= 3 && count(OUTBOUND, 'malformed') >= 8 && passOut >= 10);
  stages.close();
});

test('filter: a direction left out is not filtered (the stage does not run on it); [] drops everything', async () => {
  const stages = await UserStages.load([{ module: FILTER, config: rulesFile({ inbound: [] }) }], 'main');
  assert.equal(stages.has('outbound'), false);
  assert.equal(stages.has('inbound'), true);
  const b = batchOf(INBOUND.map((c) => c[1]));
  assert.equal(stages.run('inbound', b.data, b.offsets, b.lengths, b.peers, INBOUND.length), 0);
  assert.equal(stages.run('outbound', b.data, b.offsets, b.lengths, b.peers, INBOUND.length), INBOUND.length);
  const drops = stages.snapshot().drops;
  assert.equal(drops.stage_filter_no_rule_matched, 4);
  assert.equal(drops.stage_filter_malformed, 1);
  stages.close();
});

test('filter: config errors name the file, the JSON path and what is wrong', async () => {
  const bad = async (content: unknown, pattern: RegExp, path = rulesFile(content)) => {
    await assert.rejects(
      UserStages.load([{ module: FILTER, config: path }], 'main'),
      (err: unknown) => err instanceof Error && err.message.includes(`filter rules ${path}: `) && pattern.test(err.message),
      `${JSON.stringify(content)} should fail with ${pattern}`,
    );
  };
  await bad('{"outbound": [', /not valid JSON/);
  await bad([], /\(top level\): expected an object/);
  await bad({ outbund: [] }, /: outbund: unknown key; the top level has only "outbound" and "inbound"/);
  await bad({ outbound: {} }, /: outbound: expected an array of rules/);
  await bad({ inbound: [{}, 'tcp'] }, /: inbound\[1\]: expected a rule object/);
  await bad({ outbound: [{}, { dstPort: '22' }] }, /: outbound\[1\]\.dstPort: unknown key; a rule has src, dst, protocol, srcPorts, dstPorts/);
  await bad({ outbound: [{ protocol: 'tcpp' }] }, /: outbound\[0\]\.protocol: "tcpp" is not "tcp", "udp", "icmp", "icmpv6" or a protocol number/);
  await bad({ outbound: [{ protocol: 256 }] }, /: outbound\[0\]\.protocol: 256 is not/);
  await bad({ outbound: [{}, {}, { protocol: 'tcp', dstPorts: '22,70000' }] }, /: outbound\[2\]\.dstPorts: "70000": ports are 0\.\.65535/);
  await bad({ outbound: [{ protocol: 'udp', srcPorts: '10-5' }] }, /: outbound\[0\]\.srcPorts: "10-5": the range is backwards/);
  await bad({ outbound: [{ protocol: 'udp', srcPorts: '22,,23' }] }, /: outbound\[0\]\.srcPorts: "" is not a port or a range LOW-HIGH \(in "22,,23"\)/);
  await bad({ outbound: [{ protocol: 'udp', srcPorts: ['22'] }] }, /: outbound\[0\]\.srcPorts: expected a string of ports/);
  await bad({ outbound: [{ dstPorts: '22' }] }, /: outbound\[0\]\.dstPorts: ports need "protocol": "tcp" or "udp"/);
  await bad({ outbound: [{ protocol: 'icmp', dstPorts: '22' }] }, /: outbound\[0\]\.dstPorts: ports need "protocol"/);
  await bad({ inbound: [{ src: ['10.0.0.300/8'] }] }, /: inbound\[0\]\.src\[0\]: "10\.0\.0\.300\/8" is not a prefix: "10\.0\.0\.300": octet 300 is greater than 255/);
  await bad({ inbound: [{ dst: ['10.0.0.0/8', 'fd00::/129'] }] }, /: inbound\[0\]\.dst\[1\]: "fd00::\/129" is not a prefix: "fd00::\/129": prefix length 129 is out of range/);
  await bad({ inbound: [{ dst: [] }] }, /: inbound\[0\]\.dst: an empty list matches nothing; leave the key out/);
  await bad({ inbound: [{ dst: '10.0.0.0/8' }] }, /: inbound\[0\]\.dst: expected an array of prefixes/);
  await bad({ inbound: [{ dst: [7] }] }, /: inbound\[0\]\.dst\[0\]: 7 is not a prefix string/);
  await bad({ inbound: [{ src: ['10.0.0.0/8'], dst: ['fd00::/8'] }] }, /: inbound\[0\]: src has only IPv4 prefixes and dst only IPv6: the rule can never match/);
  await bad(undefined, /cannot read it: ENOENT/, join(dir, 'no-such-rules.json'));
  await assert.rejects(UserStages.load([{ module: FILTER, config: undefined }], 'main'), /filter\.js: createStage failed: the filter needs the path of its JSON rules file/);
});
