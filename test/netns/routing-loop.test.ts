// Routing loops, detected as the kernel's WireGuard detects them: a tundra side a
// whose peer's endpoint gets routed into a's own interface (the peer's allowed IPs
// cover its endpoint, and a route sends the endpoint into the tunnel). Each datagram
// a seals then comes back out of the TUN to be sealed again; wireguard-go and tundra
// before this sent hundreds of megabytes a second round that loop. Now the datagram
// that comes back is dropped (`routing_loop`): the bytes the kernel hands a's TUN
// while 3 pings try to cross stay a few packets' worth. Over IPv4 and IPv6 outer
// transports; once the route goes, the tunnel works again. --queues 0, 1 and 2.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { OVERLAY, Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
const V6 = { a: 'fd7a:7d0:ee::1', b: 'fd7a:7d0:ee::2' };
/**
 * The TUN's packets while 3 pings (and a handshake's retries) meet the loop: each
 * sealed datagram comes back once and is dropped. 100 leaves room for any retries and
 * stray traffic; the loop itself would be thousands in the same time.
 */
const MAX_TUN_PACKETS = 100;

const VARIANTS: { name: string; env: NodeJS.ProcessEnv }[] = [
  { name: 'queues 0', env: { TUNDRA_QUEUES: '0' } },
  { name: 'queues 1', env: { TUNDRA_QUEUES: '1' } },
  { name: 'queues 2, offloads off', env: { TUNDRA_QUEUES: '2', TUNDRA_OFFLOAD: 'none' } },
];

VARIANTS.forEach((variant, k) => {
  describe(`routing loop (${variant.name}): the peer's endpoint routed into the tunnel`, { skip, timeout: 90_000 }, () => {
    let tunnel: Tunnel;
    let aKey: string;
    let bKey: string;

    /** Packets the kernel handed a's TUN so far (what tundra read from it). */
    function tunPackets(): number {
      const [link] = JSON.parse(tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['-s', '-j', 'link', 'show', 'dev', tunnel.ifName.a])) as [{ stats64: { tx: { packets: number } } }];
      return link.stats64.tx.packets;
    }

    /** Both sides send to the other over `family`, then a's endpoint for b (`prefix`) is routed into a's tunnel. */
    async function loop(family: 4 | 6, prefix: string): Promise<void> {
      const a = tunnel.ns('a');
      const allowed = `${OVERLAY.b.v4}/32,${OVERLAY.b.v6}/128`;
      const at = (side: 'a' | 'b', port: number): string => (family === 4 ? `${tunnel.underlay(side)}:${port}` : `[${V6[side]}]:${port}`);
      // b too, or its datagrams from the other family would roam a back there.
      tunnel.wg('b', ['set', tunnel.ifName.b, 'peer', aKey, 'endpoint', at('a', 51820)]);
      tunnel.wg('a', ['set', tunnel.ifName.a, 'peer', bKey, 'endpoint', at('b', 51821), 'allowed-ips', `${allowed},${prefix}`]);
      assert.equal(tunnel.ping('a', 4, 1), 1, 'the tunnel works before the loop');
      const before = tunPackets();
      const loopsBefore = (await tunnel.counters('a')).drops.routing_loop ?? 0;
      tunnel.hosts.exec(a, 'ip', ['route', 'add', prefix, 'dev', tunnel.ifName.a]);
      try {
        assert.equal(tunnel.ping('a', 4, 3), 0, 'nothing crosses while the endpoint is routed into the tunnel');
        // Let whatever is still going round come out of the TUN before counting.
        await new Promise((r) => setTimeout(r, 500));
        const looped = tunPackets() - before;
        const drops = (await tunnel.counters('a')).drops.routing_loop ?? 0;
        assert.ok(looped <= MAX_TUN_PACKETS, `the TUN handed tundra ${looped} packets in the loop (at most ${MAX_TUN_PACKETS})`);
        assert.ok(drops > loopsBefore, `the datagrams that came back were dropped as routing_loop: ${drops}`);
      } finally {
        tunnel.hosts.exec(a, 'ip', ['route', 'del', prefix, 'dev', tunnel.ifName.a]);
      }
      tunnel.wg('a', ['set', tunnel.ifName.a, 'peer', bKey, 'allowed-ips', allowed]);
      assert.ok(tunnel.ping('a', 4, 5) >= 3, 'the route gone, the tunnel works again');
    }

    before(async () => {
      tunnel = new Tunnel(`rl${k}`, { a: 'tundra', b: 'wireguard-go', env: { a: variant.env } });
      const devOf = (ns: string, address: string): string =>
        tunnel.hosts.exec(ns, 'ip', ['-o', 'address', 'show']).split('\n').find((l) => l.includes(` ${address}/`))!.split(/\s+/)[1]!;
      tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['-6', 'address', 'add', `${V6.a}/64`, 'dev', devOf(tunnel.ns('a'), tunnel.underlay('a')), 'nodad']);
      tunnel.hosts.exec(tunnel.ns('b'), 'ip', ['-6', 'address', 'add', `${V6.b}/64`, 'dev', devOf(tunnel.ns('b'), tunnel.underlay('b')), 'nodad']);
      await tunnel.start();
      aKey = encodeKey(publicKeyOf(tunnel.keys.a));
      bKey = encodeKey(publicKeyOf(tunnel.keys.b));
    });
    after(() => tunnel?.destroy());

    test('IPv4 outer transport: the datagrams that come back are dropped, the loop carries next to nothing', async () => {
      await loop(4, `${tunnel.underlay('b')}/32`);
    });

    test('IPv6 outer transport likewise', async () => {
      await loop(6, `${V6.b}/128`);
    });
  });
});
