// tundra as a subnet router: a client reaches a LAN host behind it, with the set-up the
// README's "Subnet router" section shows (`tundra up` with a wg-quick style file,
// forwarding on, the client's AllowedIPs covering the LAN, the MSS clamp). The client is Debian's
// wireguard-go in one test and tundra in the other.
//   client (a) —198.18.0.0/24— router (b) —198.18.1.0/24, fd7a:7d0:1::/64— LAN host (c)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { tcpTransfer } from '../helpers/tunnel.js';
import { assertForwardedSuperPackets, ping, setForwarding, synAckMss, ThreeHosts, tundraUp, wireguardGoByHand, writeWgConfig } from '../helpers/three-hosts.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wg-quick', 'wireguard-go', 'ping', 'sysctl', 'nft', 'tcpdump']);
const BYTES = 2 << 20;
const ROUTER = { v4: '100.96.0.1', v6: 'fd7a:7d0::1' };
const CLIENT = { v4: '100.96.0.2', v6: 'fd7a:7d0::2' };

// One suite per client, each well under its minute also on a busy machine.
for (const [client, tag] of [['wireguard-go', 'sg'], ['tundra', 'st']] as const) {
  describe(`subnet router: a ${client} client reaches a LAN host behind tundra`, { skip, timeout: 180_000 }, () => {
    test(`client ${client}: ping and byte-exact TCP both ways to and from the LAN, IPv4 and IPv6; nothing without forwarding`, async () => {
      const hosts = new ThreeHosts(tag, 1);
      const dir = mkdtempSync(join(tmpdir(), 'tundra-subnet-router-'));
      const routerIf = `tdr${tag}${process.pid % 100000}r`;
      const clientIf = `tdr${tag}${process.pid % 100000}c`;
      const routerKey = generatePrivateKey();
      const clientKey = generatePrivateKey();
      try {
        // The LAN host reaches the tunnel's addresses through the router (its gateway).
        hosts.exec(hosts.c, 'ip', ['route', 'add', '100.96.0.0/24', 'via', hosts.farB.v4]);
        hosts.exec(hosts.c, 'ip', ['-6', 'route', 'add', 'fd7a:7d0::/64', 'via', hosts.farB.v6]);

        const routerConf = join(dir, `${routerIf}.conf`);
        writeWgConfig(routerConf, [
          ['Interface', [`PrivateKey = ${encodeKey(routerKey)}`, 'ListenPort = 51820', `Address = ${ROUTER.v4}/24, ${ROUTER.v6}/64`]],
          ['Peer', [`PublicKey = ${encodeKey(publicKeyOf(clientKey))}`, `AllowedIPs = ${CLIENT.v4}/32, ${CLIENT.v6}/128`]],
        ]);
        setForwarding(hosts, hosts.b, false);
        const router = await tundraUp(hosts, hosts.b, routerConf, routerIf, [`${CLIENT.v4}/32`, `${CLIENT.v6}/128`]);

        const clientAllowed = [`${ROUTER.v4}/32`, `${ROUTER.v6}/128`, hosts.farNet.v4, hosts.farNet.v6];
        const clientConf = join(dir, `${clientIf}.conf`);
        writeWgConfig(clientConf, [
          ['Interface', [`PrivateKey = ${encodeKey(clientKey)}`, `Address = ${CLIENT.v4}/32, ${CLIENT.v6}/128`]],
          ['Peer', [
            `PublicKey = ${encodeKey(publicKeyOf(routerKey))}`, `Endpoint = ${hosts.underlayB}:51820`,
            `AllowedIPs = ${clientAllowed.join(', ')}`,
          ]],
        ]);
        if (client === 'tundra') await tundraUp(hosts, hosts.a, clientConf, clientIf, clientAllowed);
        else await wireguardGoByHand(hosts, hosts.a, clientIf, clientConf, [`${CLIENT.v4}/32`, `${CLIENT.v6}/128`], clientAllowed);

        // The tunnel itself (the first ping may wait for the handshake).
        assert.ok(ping(hosts, hosts.a, ROUTER.v4) > 0, `the router's tunnel address answers: ${router.output()}`);
        assert.equal(ping(hosts, hosts.a, ROUTER.v6), 3);
        // Without forwarding the router takes the packets but the LAN stays out of reach.
        assert.equal(ping(hosts, hosts.a, hosts.farC.v4, 1), 0, 'no forwarding, no IPv4 LAN');
        assert.equal(ping(hosts, hosts.a, hosts.farC.v6, 1), 0, 'no forwarding, no IPv6 LAN');

        setForwarding(hosts, hosts.b, true);
        assert.equal(ping(hosts, hosts.a, hosts.farC.v4), 3, 'client pings the LAN host (IPv4)');
        assert.equal(ping(hosts, hosts.a, hosts.farC.v6), 3, 'client pings the LAN host (IPv6)');
        assert.equal(ping(hosts, hosts.c, CLIENT.v4), 3, 'LAN host pings the client (IPv4)');
        assert.equal(ping(hosts, hosts.c, CLIENT.v6), 3, 'LAN host pings the client (IPv6)');

        // The README's MSS clamp: the LAN host (MTU 1500) offers 1460, the client is told 1380.
        hosts.exec(hosts.b, 'nft', ['add', 'table', 'inet', 'tdr_clamp']);
        hosts.exec(hosts.b, 'nft', ['add', 'chain', 'inet', 'tdr_clamp', 'forward', '{ type filter hook forward priority mangle; }']);
        hosts.exec(hosts.b, 'nft', ['add', 'rule', 'inet', 'tdr_clamp', 'forward', ...'tcp flags syn / syn,rst tcp option maxseg size set rt mtu'.split(' ')]);

        for (const family of ['v4', 'v6'] as const) {
          let up!: Awaited<ReturnType<typeof tcpTransfer>>;
          const send = async (): Promise<void> => {
            up = await tcpTransfer(hosts, hosts.a, hosts.c, hosts.farC[family], 5201, BYTES);
          };
          if (family === 'v4') assert.equal(await synAckMss(hosts.a, clientIf, send), 1380, 'the clamp: the tunnel\'s MSS');
          else await send();
          assert.equal(up.received.bytes, BYTES, `client -> LAN (${family}): all bytes`);
          assert.equal(up.received.sha256, up.sent.sha256, `client -> LAN (${family}): the same bytes`);
          const down = await tcpTransfer(hosts, hosts.c, hosts.a, CLIENT[family], 5201, BYTES);
          assert.equal(down.received.bytes, BYTES, `LAN -> client (${family}): all bytes`);
          assert.equal(down.received.sha256, down.sent.sha256, `LAN -> client (${family}): the same bytes`);
        }
        await assertForwardedSuperPackets(router, hosts);
      } finally {
        hosts.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
