// ECN across the tunnel (RFC 6040, as the kernel's WireGuard): two tundra daemons, and
// nftables in b to see and to mark the outer datagrams on b's underlay and to count the
// inner packets b's TUN hands the host. The outer header carries the inner ECN field
// (CE as ECT(0)); a CE mark made on the path reaches the inner ECT packet; a Not-ECT
// packet that met one is dropped and counted (ecn_ce_not_ect). IPv4 and IPv6 inner
// packets; queues 1 with offloads, and the inline mode without.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { OVERLAY, Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping', 'nft']);
const TABLE = 'tdr_ecn';
const PINGS = 5;

const VARIANTS: { name: string; env: NodeJS.ProcessEnv }[] = [
  { name: 'queues 1', env: { TUNDRA_QUEUES: '1' } },
  { name: 'queues 0, offloads off', env: { TUNDRA_QUEUES: '0', TUNDRA_OFFLOAD: 'none' } },
];

VARIANTS.forEach((variant, k) => {
  describe(`ECN through the tunnel (${variant.name})`, { skip, timeout: 180_000 }, () => {
    let tunnel: Tunnel;

    /** Counter `name` of b's table: packets. */
    const counted = (name: string): number => tunnel.nftPackets('b', TABLE, name);

    /** Pings b from a with the IPv4 ToS / IPv6 traffic class `tos`; the replies. */
    function ping(family: 4 | 6, tos: number): number {
      let out: string;
      try {
        out = tunnel.hosts.exec(tunnel.ns('a'), 'ping', [`-${family}`, '-Q', String(tos), '-c', String(PINGS), '-i', '0.2', '-W', '10', OVERLAY.b[family === 4 ? 'v4' : 'v6']]);
      } catch (err) {
        out = (err as Error).message;
      }
      return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
    }

    /** Rules in b: count what arrives on the underlay by outer ECN, optionally mark it CE, count the inner packets by ECN. */
    function rules(markCe: boolean): void {
      const tun = tunnel.ifName.b;
      tunnel.hosts.exec(tunnel.ns('b'), 'nft', ['-f', '-'], `
        table inet ${TABLE}
        delete table inet ${TABLE}
        table inet ${TABLE} {
          counter outer_ect0 {}
          counter outer_not_ect {}
          counter inner_ce {}
          counter inner_ect0 {}
          counter inner_not_ect {}
          chain underlay {
            type filter hook prerouting priority raw; policy accept;
            udp dport 51821 ip ecn ect0 counter name outer_ect0
            udp dport 51821 ip ecn not-ect counter name outer_not_ect
            ${markCe ? 'udp dport 51821 ip ecn set ce' : ''}
          }
          chain inner {
            type filter hook input priority filter; policy accept;
            iifname "${tun}" meta nfproto ipv4 ip ecn ce counter name inner_ce
            iifname "${tun}" meta nfproto ipv6 ip6 ecn ce counter name inner_ce
            iifname "${tun}" meta nfproto ipv4 ip ecn ect0 counter name inner_ect0
            iifname "${tun}" meta nfproto ipv6 ip6 ecn ect0 counter name inner_ect0
            iifname "${tun}" meta nfproto ipv4 ip ecn not-ect icmp type echo-request counter name inner_not_ect
            iifname "${tun}" meta nfproto ipv6 ip6 ecn not-ect icmpv6 type echo-request counter name inner_not_ect
          }
        }`);
    }

    before(async () => {
      tunnel = new Tunnel(`ecn${k}`, { a: 'tundra', b: 'tundra', env: { a: variant.env, b: variant.env } });
      await tunnel.start();
      assert.ok(tunnel.pingUntilReply('a'), 'the tunnel works');
    });
    after(() => tunnel?.destroy());

    for (const family of [4, 6] as const) {
      test(`IPv${family}: the outer header carries ECT(0), and CE as ECT(0) while the inner packet keeps its CE`, () => {
        rules(false);
        assert.equal(ping(family, 0x02), PINGS, 'ECT(0) pings cross');
        assert.ok(counted('outer_ect0') >= PINGS, `outer ECT(0): ${counted('outer_ect0')}`);
        assert.ok(counted('inner_ect0') >= PINGS, `inner ECT(0) delivered: ${counted('inner_ect0')}`);
        assert.equal(counted('inner_ce'), 0, 'no mark was made, none arrived');
        rules(false);
        assert.equal(ping(family, 0x03), PINGS, 'CE pings cross');
        assert.ok(counted('outer_ect0') >= PINGS, `a CE packet goes out in ECT(0): ${counted('outer_ect0')}`);
        assert.ok(counted('inner_ce') >= PINGS, `and arrives with its CE: ${counted('inner_ce')}`);
      });

      test(`IPv${family}: a CE mark made on the way is set on ECT packets; Not-ECT packets that met one are dropped and counted`, async () => {
        rules(true);
        assert.equal(ping(family, 0x02), PINGS, 'marked ECT(0) pings still cross');
        assert.ok(counted('inner_ce') >= PINGS, `delivered CE-marked: ${counted('inner_ce')}`);
        assert.equal(counted('inner_ect0'), 0, 'none arrived unmarked');
        const dropsBefore = (await tunnel.counters('b')).drops.ecn_ce_not_ect ?? 0;
        assert.equal(ping(family, 0x00), 0, 'Not-ECT pings that met a CE mark do not arrive');
        assert.ok(counted('outer_not_ect') >= PINGS, `they did reach b: ${counted('outer_not_ect')}`);
        assert.equal(counted('inner_not_ect'), 0);
        const drops = (await tunnel.counters('b')).drops.ecn_ce_not_ect ?? 0;
        assert.ok(drops - dropsBefore >= PINGS, `counted as ecn_ce_not_ect: ${drops - dropsBefore}`);
        rules(false);
        assert.equal(ping(family, 0x00), PINGS, 'without the mark they cross again');
        assert.ok(counted('outer_not_ect') >= PINGS && counted('inner_not_ect') >= PINGS, 'Not-ECT outside and in');
      });
    }
  });
});
