// Roaming as the kernel's WireGuard and wireguard-go do it: the endpoint learned from
// an authenticated packet is in force for the very next packet sent to the peer. A
// tundra side a and a Debian wireguard-go side b; b moves (a new listen port, then
// from IPv4 to IPv6 and back, then a new port over IPv6) and pings a once after each
// move. tcpdump on b's uplink sees both directions in order: after b's first datagram
// from its new address, every datagram from a must go to that address. Before the
// fix, a queue worker replied to the old address until the main thread had read the
// roam (seen as replies to the old port). With --queues 0, 1 and 2, offloads on and off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { UdpCapture, type Datagram } from '../helpers/udp-capture.js';
import { Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'tcpdump']);
const A_PORT = 51820; // the Tunnel helper's port of side a
const V6 = { a: 'fd7a:7d0:ee::1', b: 'fd7a:7d0:ee::2' };
/** b's listen ports, one per move (its first is the helper's 51821). */
const PORTS = [9997, 9998, 9997, 9998];

/**
 * After b's first datagram from `newB`, the datagrams a sent that went anywhere else
 * (none when a roams at once); and whether b's datagram and a reply were seen at all.
 */
function repliesAfterMove(datagrams: Datagram[], a: string, newB: string): { seen: boolean; stray: string[] } {
  const at = (address: string, port: number): string => `${address}.${port}`;
  const first = datagrams.findIndex((d) => at(d.source, d.sourcePort) === newB);
  if (first < 0) return { seen: false, stray: [] };
  const fromA = datagrams.slice(first + 1).filter((d) => at(d.source, d.sourcePort) === a);
  return { seen: fromA.length > 0, stray: fromA.map((d) => at(d.destination, d.destinationPort)).filter((to) => to !== newB) };
}

const VARIANTS: { name: string; env: NodeJS.ProcessEnv }[] = [
  { name: 'queues 0', env: { TUNDRA_QUEUES: '0' } },
  { name: 'queues 1', env: { TUNDRA_QUEUES: '1' } },
  { name: 'queues 2', env: { TUNDRA_QUEUES: '2' } },
  { name: 'queues 0, offloads off', env: { TUNDRA_QUEUES: '0', TUNDRA_OFFLOAD: 'none' } },
  { name: 'queues 1, offloads off', env: { TUNDRA_QUEUES: '1', TUNDRA_OFFLOAD: 'none' } },
  { name: 'queues 2, offloads off', env: { TUNDRA_QUEUES: '2', TUNDRA_OFFLOAD: 'none' } },
];

VARIANTS.forEach((variant, k) => {
  describe(`roaming (${variant.name}): a tundra side answers a moved wireguard-go peer at its new address at once`, { skip, timeout: 120_000 }, () => {
    let tunnel: Tunnel;
    let bDev: string;
    let aKey: string;
    let port = 51821;

    /** b's endpoint for a. */
    function bEndpoint(endpoint: string): void {
      tunnel.wg('b', ['set', tunnel.ifName.b, 'peer', aKey, 'endpoint', endpoint]);
    }

    /** b moves to `nextPort` (and sends to `aAddress`), pings a once; the datagrams a sent to anywhere else after. */
    async function move(nextPort: number, aAddress: string, bAddress: string): Promise<void> {
      const capture = await UdpCapture.start(tunnel.hosts, tunnel.ns('b'), bDev, ['udp', 'and', 'port', String(A_PORT)]);
      tunnel.wg('b', ['set', tunnel.ifName.b, 'listen-port', String(nextPort)]);
      port = nextPort;
      bEndpoint(aAddress.includes(':') ? `[${aAddress}]:${A_PORT}` : `${aAddress}:${A_PORT}`);
      const replies = tunnel.ping('b', 4, 1);
      const [a, b] = [`${aAddress}.${A_PORT}`, `${bAddress}.${nextPort}`];
      const datagrams = await capture.stop((seen) => repliesAfterMove(seen, a, b).seen);
      const { seen, stray } = repliesAfterMove(datagrams, a, b);
      assert.equal(replies, 1, 'the ping after the move is answered');
      assert.ok(seen, `the capture saw b's datagram from ${bAddress}.${nextPort} and a's reply: ${JSON.stringify(datagrams)}`);
      assert.deepEqual(stray, [], `a sent to the old address after hearing from the new one: ${JSON.stringify(datagrams)}`);
      const endpoint = tunnel.wg('a', ['show', tunnel.ifName.a, 'endpoints']);
      const shown = bAddress.includes(':') ? `[${bAddress}]:${nextPort}` : `${bAddress}:${nextPort}`;
      assert.ok(endpoint.includes(`\t${shown}\n`), `wg show endpoints on a: ${endpoint}`);
    }

    before(async () => {
      tunnel = new Tunnel(`ro${k}`, { a: 'tundra', b: 'wireguard-go', endpoints: { a: false, b: true }, env: { a: variant.env } });
      const [aNs, bNs] = [tunnel.ns('a'), tunnel.ns('b')];
      const devOf = (ns: string, address: string): string =>
        tunnel.hosts.exec(ns, 'ip', ['-o', 'address', 'show']).split('\n').find((l) => l.includes(` ${address}/`))!.split(/\s+/)[1]!;
      const aDev = devOf(aNs, tunnel.underlay('a'));
      bDev = devOf(bNs, tunnel.underlay('b'));
      tunnel.hosts.exec(aNs, 'ip', ['-6', 'address', 'add', `${V6.a}/64`, 'dev', aDev, 'nodad']);
      tunnel.hosts.exec(bNs, 'ip', ['-6', 'address', 'add', `${V6.b}/64`, 'dev', bDev, 'nodad']);
      await tunnel.start();
      aKey = encodeKey(publicKeyOf(tunnel.keys.a));
      assert.equal(tunnel.ping('b', 4, 1), 1, 'the tunnel is up');
    });
    after(() => tunnel?.destroy());

    test('IPv4: b changes its port; a\'s first reply goes to the new port', async () => {
      for (const next of PORTS.slice(0, 2)) await move(next, tunnel.underlay('a'), tunnel.underlay('b'));
    });

    test('IPv4 → IPv6 outer transport and back', async () => {
      await move(PORTS[2]!, V6.a, V6.b);
      await move(PORTS[3]!, tunnel.underlay('a'), tunnel.underlay('b'));
    });

    test('IPv6: b changes its port; a\'s first reply goes to the new port', async () => {
      await move(port === PORTS[0] ? PORTS[1]! : PORTS[0]!, V6.a, V6.b);
      await move(port === PORTS[0] ? PORTS[1]! : PORTS[0]!, V6.a, V6.b);
    });
  });
});
