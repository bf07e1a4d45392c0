// tundra as an exit node: a client sends everything (0.0.0.0/0 and ::/0) through the
// tunnel, and the exit node masquerades it with nftables to its upstream, with the set-up
// the README's "Exit node" section shows (`tundra up`, forwarding on,
// examples/exit-node/tdr-exit.nft). The client is tundra under wg-quick (its policy
// routing keeps the tunnel's own datagrams outside it) in one test, and Debian's
// wireguard-go with plain `ip route` (a host route for the endpoint, then 0/1 and 128/1)
// in the other.
//   client (a) —198.18.0.0/24— exit node (b) —198.18.2.0/24, fd7a:7d0:2::/64— upstream (c)
// Before the ruleset is loaded the upstream host is given a route back to the tunnel, so
// the test sees both what it sees without masquerade (the client's tunnel address, the
// upstream's own MSS) and with it (the exit node's address, the MSS clamped to the tunnel).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { tcpTransfer, TUNDRA_MAIN } from '../helpers/tunnel.js';
import {
  assertForwardedSuperPackets, download, ping, setForwarding, synAckMss, ThreeHosts, tundraUp, wireguardGoByHand, writeWgConfig,
} from '../helpers/three-hosts.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wg-quick', 'wireguard-go', 'ping', 'sysctl', 'nft', 'tcpdump']);
const RULESET = fileURLToPath(new URL('../../../examples/exit-node/tdr-exit.nft', import.meta.url));
const BYTES = 2 << 20;
const EXIT = { v4: '100.96.0.1', v6: 'fd7a:7d0::1' };
const CLIENT = { v4: '100.96.0.2', v6: 'fd7a:7d0::2' };
/** What TCP may send in one segment over a 1500-byte link and over the 1420-byte tunnel (IPv4). */
const MSS_UPSTREAM = 1460;
const MSS_TUNNEL = 1380;

// One suite per client, each well under its minute also on a busy machine.
for (const [client, tag] of [['tundra under wg-quick', 'eq'], ['wireguard-go with ip route', 'eg']] as const) {
  describe(`exit node: a ${client} client reaches the upstream through tundra and nftables masquerade`, { skip, timeout: 180_000 }, () => {
    test(`client ${client}: everything through the tunnel, masqueraded, MSS clamped, byte-exact TCP both ways, IPv4 and IPv6`, async () => {
      const hosts = new ThreeHosts(tag, 2);
      const dir = mkdtempSync(join(tmpdir(), 'tundra-exit-node-'));
      const exitIf = `tdr${tag}${process.pid % 100000}x`;
      const clientIf = `tdr${tag}${process.pid % 100000}c`;
      const exitKey = generatePrivateKey();
      const clientKey = generatePrivateKey();
      const clientConf = join(dir, `${clientIf}.conf`);
      const wgQuick = (action: 'up' | 'down'): string =>
        hosts.exec(hosts.a, 'env', [`WG_QUICK_USERSPACE_IMPLEMENTATION=${TUNDRA_MAIN}`, 'wg-quick', action, clientConf]);
      try {
        const exitConf = join(dir, `${exitIf}.conf`);
        writeWgConfig(exitConf, [
          ['Interface', [`PrivateKey = ${encodeKey(exitKey)}`, 'ListenPort = 51820', `Address = ${EXIT.v4}/24, ${EXIT.v6}/64`]],
          ['Peer', [`PublicKey = ${encodeKey(publicKeyOf(clientKey))}`, `AllowedIPs = ${CLIENT.v4}/32, ${CLIENT.v6}/128`]],
        ]);
        const exit = await tundraUp(hosts, hosts.b, exitConf, exitIf, [`${CLIENT.v4}/32`, `${CLIENT.v6}/128`]);
        setForwarding(hosts, hosts.b, true);

        writeWgConfig(clientConf, [
          ['Interface', [`PrivateKey = ${encodeKey(clientKey)}`, `Address = ${CLIENT.v4}/32, ${CLIENT.v6}/128`]],
          ['Peer', [`PublicKey = ${encodeKey(publicKeyOf(exitKey))}`, `Endpoint = ${hosts.underlayB}:51820`, 'AllowedIPs = 0.0.0.0/0, ::/0']],
        ]);
        if (client === 'tundra under wg-quick') {
          wgQuick('up');
        } else {
          // The endpoint keeps its route outside the tunnel; then two halves of each
          // family's address space, more specific than any default route, go in.
          hosts.exec(hosts.a, 'ip', ['route', 'add', `${hosts.underlayB}/32`, 'dev', hosts.linkA]);
          await wireguardGoByHand(hosts, hosts.a, clientIf, clientConf, [`${CLIENT.v4}/32`, `${CLIENT.v6}/128`],
            ['0.0.0.0/1', '128.0.0.0/1', '::/1', '8000::/1']);
        }
        assert.ok(ping(hosts, hosts.a, EXIT.v4) > 0, `the exit node's tunnel address answers: ${exit.output()}`);
        assert.equal(ping(hosts, hosts.a, EXIT.v6), 3);

        // Without the ruleset, and with a route back to the tunnel that the real
        // internet would not have: the upstream sees the client's own address.
        hosts.exec(hosts.c, 'ip', ['route', 'add', '100.96.0.0/24', 'via', hosts.farB.v4]);
        hosts.exec(hosts.c, 'ip', ['-6', 'route', 'add', 'fd7a:7d0::/64', 'via', hosts.farB.v6]);
        let plain!: Awaited<ReturnType<typeof download>>;
        const plainMss = await synAckMss(hosts.a, clientIf, async () => {
          plain = await download(hosts, hosts.a, hosts.c, hosts.farC.v4, 5301, 64 << 10);
        });
        assert.equal(plain.remote, CLIENT.v4, 'no masquerade: the client\'s address upstream');
        assert.equal(plainMss, MSS_UPSTREAM, 'no clamp: the upstream\'s own MSS');
        assert.equal((await download(hosts, hosts.a, hosts.c, hosts.farC.v6, 5301, 64 << 10)).remote, CLIENT.v6);
        hosts.exec(hosts.c, 'ip', ['route', 'del', '100.96.0.0/24']);
        hosts.exec(hosts.c, 'ip', ['-6', 'route', 'del', 'fd7a:7d0::/64']);
        assert.equal(ping(hosts, hosts.a, hosts.farC.v4, 1), 0, 'no masquerade, no route back: no IPv4 upstream');
        assert.equal(ping(hosts, hosts.a, hosts.farC.v6, 1), 0, 'no masquerade, no route back: no IPv6 upstream');

        hosts.exec(hosts.b, 'nft', ['-D', `WAN=${hosts.linkB}`, '-f', RULESET]);
        assert.equal(ping(hosts, hosts.a, hosts.farC.v4), 3, 'client pings upstream (IPv4)');
        assert.equal(ping(hosts, hosts.a, hosts.farC.v6), 3, 'client pings upstream (IPv6)');

        for (const family of ['v4', 'v6'] as const) {
          let down!: Awaited<ReturnType<typeof download>>;
          const fetch = async (): Promise<void> => {
            down = await download(hosts, hosts.a, hosts.c, hosts.farC[family], 5301, BYTES);
          };
          if (family === 'v4') assert.equal(await synAckMss(hosts.a, clientIf, fetch), MSS_TUNNEL, 'the clamp: the tunnel\'s MSS');
          else await fetch();
          assert.equal(down.remote, hosts.farB[family], `masquerade: the exit node's upstream address (${family})`);
          assert.equal(down.received.bytes, BYTES, `upstream -> client (${family}): all bytes`);
          assert.equal(down.received.sha256, down.sent.sha256, `upstream -> client (${family}): the same bytes`);
          const up = await tcpTransfer(hosts, hosts.a, hosts.c, hosts.farC[family], 5302, BYTES);
          assert.equal(up.received.bytes, BYTES, `client -> upstream (${family}): all bytes`);
          assert.equal(up.received.sha256, up.sent.sha256, `client -> upstream (${family}): the same bytes`);
        }
        await assertForwardedSuperPackets(exit, hosts);
        if (client === 'tundra under wg-quick') wgQuick('down');
      } finally {
        // wg-quick's daemon is not ours to signal: deleting its interface ends it.
        try { hosts.exec(hosts.a, 'ip', ['link', 'del', clientIf]); } catch { /* gone, or never made */ }
        hosts.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
