// Sticky source addresses, in namespaces: a router (tundra, side a) with two underlay
// addresses on its uplink, 198.18.0.1/24 (the primary: the routing table's choice for
// replies) and 198.18.0.3/24, and fd7a:7d0:ff::1/64 and ::3/64; a client (side b,
// wireguard-go, then tundra) whose endpoint is the SECOND address. The handshake
// completes, TCP crosses byte for byte both ways, and a capture on the client's uplink
// shows that every datagram from the router's port came from the address the client
// sends to (before sticky sources, replies came from the primary). Then the second
// address is removed mid-run: the router forgets it at once (an rtnetlink event),
// replies move to the primary and traffic recovers. Last,
// the client moves to the router's second IPv6 address (IPv6 last: switching back
// and forth races with the datagrams in flight, which roam the client back).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { UdpCapture } from '../helpers/udp-capture.js';
import { Tunnel, type Implementation } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'tcpdump']);
const ROUTER_PORT = 51820; // the Tunnel helper's port of side a
const BYTES = 8 * 1024 * 1024;
const V4 = { primary: '198.18.0.1', second: '198.18.0.3' };
const V6 = { primary: 'fd7a:7d0:ff::1', second: 'fd7a:7d0:ff::3', client: 'fd7a:7d0:ff::2' };

/** The interface that holds `address` in namespace `ns`. */
function deviceOf(tunnel: Tunnel, ns: string, address: string): string {
  const line = tunnel.hosts.exec(ns, 'ip', ['-o', 'address', 'show']).split('\n').find((l) => l.includes(` ${address}/`));
  assert.ok(line !== undefined, `${address} is in ${ns}`);
  return line.split(/\s+/)[1]!;
}

/** A capture of the datagrams from the router's port arriving at the client. */
async function captureReplies(tunnel: Tunnel, dev: string): Promise<{ stop(): Promise<Map<string, number>> }> {
  const capture = await UdpCapture.start(tunnel.hosts, tunnel.ns('b'), dev, ['-Q', 'in', 'udp', 'and', 'src', 'port', String(ROUTER_PORT)]);
  return {
    /** Stops it and counts the datagrams by source address. */
    async stop(): Promise<Map<string, number>> {
      const sources = new Map<string, number>();
      for (const d of await capture.stop()) if (d.sourcePort === ROUTER_PORT) sources.set(d.source, (sources.get(d.source) ?? 0) + 1);
      return sources;
    },
  };
}

/** The router's data path settings: the default with both clients, the others with wireguard-go. */
const VARIANTS: { tag: string; client: Implementation; name: string; env: NodeJS.ProcessEnv }[] = [
  { tag: 'stw', client: 'wireguard-go', name: 'queues 1', env: {} },
  { tag: 'stt', client: 'tundra', name: 'queues 1', env: {} },
  { tag: 'st0', client: 'wireguard-go', name: 'queues 0', env: { TUNDRA_QUEUES: '0' } },
  { tag: 'st2', client: 'wireguard-go', name: 'queues 2, offloads off', env: { TUNDRA_QUEUES: '2', TUNDRA_OFFLOAD: 'none' } },
];

for (const { tag, client, name, env } of VARIANTS) {
  describe(`sticky source addresses: a tundra router with two addresses (${name}), a ${client} client`, { skip, timeout: 180_000 }, () => {
    let tunnel: Tunnel;
    let routerDev: string;
    let clientDev: string;
    let routerKey: string;

    /** The client's endpoint for the router is now `endpoint`. */
    function clientEndpoint(endpoint: string): void {
      tunnel.wg('b', ['set', tunnel.ifName.b, 'peer', routerKey, 'endpoint', endpoint]);
    }

    /** A transfer each way, byte for byte, captured: the sources the client saw. */
    async function transfersCaptured(family: 4 | 6): Promise<Map<string, number>> {
      const capture = await captureReplies(tunnel, clientDev);
      // The client speaks first: the router knows no endpoint until it does.
      assert.equal(tunnel.ping('b', family), 3, `ping -${family} from the client`);
      for (const from of ['a', 'b'] as const) {
        const { sent, received } = await tunnel.transfer(from, BYTES, family);
        assert.equal(received.bytes, BYTES, `TCP/IPv${family} from ${from}`);
        assert.equal(received.sha256, sent.sha256, `TCP/IPv${family} from ${from}`);
      }
      return capture.stop();
    }

    before(async () => {
      // Only the client knows an endpoint: the router learns the client's, and where it sends to.
      tunnel = new Tunnel(tag, { a: 'tundra', b: client, endpoints: { a: false, b: true }, env: { a: env } });
      const a = tunnel.ns('a');
      routerDev = deviceOf(tunnel, a, V4.primary);
      clientDev = deviceOf(tunnel, tunnel.ns('b'), tunnel.underlay('b'));
      tunnel.hosts.exec(a, 'ip', ['address', 'add', `${V4.second}/24`, 'dev', routerDev]);
      // The second IPv6 address first: the kernel then prefers the later, primary one as the source.
      tunnel.hosts.exec(a, 'ip', ['-6', 'address', 'add', `${V6.second}/64`, 'dev', routerDev, 'nodad']);
      tunnel.hosts.exec(a, 'ip', ['-6', 'address', 'add', `${V6.primary}/64`, 'dev', routerDev, 'nodad']);
      tunnel.hosts.exec(tunnel.ns('b'), 'ip', ['-6', 'address', 'add', `${V6.client}/64`, 'dev', clientDev, 'nodad']);
      await tunnel.start();
      routerKey = encodeKey(publicKeyOf(tunnel.keys.a));
      clientEndpoint(`${V4.second}:${ROUTER_PORT}`);
    });
    after(() => tunnel?.destroy());

    test('the routing table would answer from the primary address (what replies came from before)', () => {
      assert.match(tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['route', 'get', tunnel.underlay('b')]), new RegExp(`src ${V4.primary.replace(/\./g, '\\.')}\\b`));
      assert.match(tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['-6', 'route', 'get', V6.client]), new RegExp(`src ${V6.primary}\\b`));
    });

    test('IPv4: the handshake completes, TCP crosses both ways, and every reply comes from the second address', async () => {
      const sources = await transfersCaptured(4);
      assert.deepEqual([...sources.keys()], [V4.second], `sources seen by the client: ${JSON.stringify([...sources])}`);
      assert.ok(sources.get(V4.second)! > 100, 'the capture saw the transfers');
      const endpoint = tunnel.wg('a', ['show', tunnel.ifName.a, 'endpoints']);
      assert.match(endpoint, new RegExp(`\\t${tunnel.underlay('b').replace(/\./g, '\\.')}:\\d+\\n`), 'wg show endpoints: the remote only');
    });

    test('the second address goes away: replies move to the primary, the source is forgotten, traffic recovers', async () => {
      const capture = await captureReplies(tunnel, clientDev);
      tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['address', 'del', `${V4.second}/24`, 'dev', routerDev]);
      // The router speaks first (the client's datagrams to the gone address are lost):
      // its first reply fails from .3, goes from .1, and the client roams to .1.
      assert.ok(tunnel.ping('a', 4, 5) >= 3, 'ping from the router after the address went');
      const { sent, received } = await tunnel.transfer('b', BYTES, 4);
      assert.equal(received.bytes, BYTES);
      assert.equal(received.sha256, sent.sha256);
      const sources = await capture.stop();
      assert.deepEqual([...sources.keys()], [V4.primary], `sources seen by the client: ${JSON.stringify([...sources])}`);
      // The address's removal (rtnetlink) made the router forget it; a datagram sent from it
      // before the daemon read that would have failed and gone again (sticky_source_cleared).
      assert.match(tunnel.output.a(), new RegExp(`Address ${V4.second.replace(/\./g, '\\.')} was removed: 1 peer now replies from the routing table's choice`));
    });
    test('IPv6: the client moves to the router\'s second IPv6 address, and replies follow it there', async () => {
      // A datagram the router sealed for IPv4 before it heard the client on IPv6 roams
      // the client back (as WireGuard roams): move it until both ends stay on IPv6.
      const onV6 = (side: 'a' | 'b', address: string): boolean =>
        tunnel.wg(side, ['show', tunnel.ifName[side], 'endpoints']).includes(`\t[${address}]:`);
      for (let attempt = 0; attempt < 5; attempt++) {
        clientEndpoint(`[${V6.second}]:${ROUTER_PORT}`);
        tunnel.ping('b', 6, 1);
        await new Promise((r) => setTimeout(r, 500));
        if (onV6('a', V6.client) && onV6('b', V6.second)) break;
      }
      assert.ok(onV6('a', V6.client) && onV6('b', V6.second), 'both ends moved to IPv6');
      const sources = await transfersCaptured(6);
      // IPv4 datagrams the router sent before it heard the client on IPv6 may be there too.
      const v6 = [...sources.keys()].filter((a) => a.includes(':'));
      assert.deepEqual(v6, [V6.second], `sources seen by the client: ${JSON.stringify([...sources])}`);
      assert.ok(sources.get(V6.second)! > 100, 'the capture saw the transfers');
    });
  });
}
