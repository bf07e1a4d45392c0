// tundra as a working WireGuard interface, against Debian's wireguard-go and
// against itself, in namespaces: pings over IPv4 and IPv6 both ways, 200 MB TCP
// transfers each way over each family whose SHA-256 matches at both ends,
// handshakes started from either side, roaming mid-transfer, and peer removal.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable, waitFor } from '../helpers/netns.js';
import { Tunnel, type Implementation } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
const TRANSFER_BYTES = 200 * 1024 * 1024;

for (const [a, b, tag] of [['tundra', 'wireguard-go', 'tw'], ['tundra', 'tundra', 'tt']] as [Implementation, Implementation, string][]) {
  describe(`${a} ↔ ${b}`, { skip, timeout: 240_000 }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(tag, { a, b });
      await tunnel.start();
    });
    after(() => tunnel?.destroy());

    test('ping over IPv4 and IPv6, both ways', () => {
      for (const from of ['a', 'b'] as const) {
        for (const family of [4, 6] as const) {
          assert.equal(tunnel.ping(from, family), 3, `ping -${family} from ${from}`);
        }
      }
    });

    for (const from of ['a', 'b'] as const) {
      for (const family of [4, 6] as const) {
        test(`200 MB over TCP/IPv${family} from ${from === 'a' ? a : b} arrives byte for byte`, async () => {
          const { sent, received } = await tunnel.transfer(from, TRANSFER_BYTES, family);
          assert.equal(received.bytes, TRANSFER_BYTES);
          assert.equal(received.sha256, sent.sha256);
        });
      }
    }

    test('after the MTU is raised to 8920, jumbo packets cross both ways', async () => {
      for (const side of ['a', 'b'] as const) tunnel.hosts.exec(tunnel.ns(side), 'ip', ['link', 'set', 'mtu', '8920', 'dev', tunnel.ifName[side]]);
      // tundra looks at its MTU once a second (padding follows it): wait until each tundra saw
      // it (bounded, for a hang), not a second that a busy machine may stretch. Packets of any
      // size fit its slots.
      await waitFor('tundra to see the new MTU', () => (['a', 'b'] as const).every((side) =>
        tunnel.options[side] !== 'tundra' || tunnel.output[side]().includes('MTU updated: 8920')), 30_000);
      for (const from of ['a', 'b'] as const) {
        const to = from === 'a' ? '100.96.0.2' : '100.96.0.1';
        const out = tunnel.hosts.exec(tunnel.ns(from), 'ping', ['-4', '-c', '2', '-i', '0.2', '-W', '10', '-M', 'do', '-s', '8892', to]);
        assert.match(out, /2 received/, `jumbo ping from ${from}`);
      }
      for (const side of ['a', 'b'] as const) tunnel.hosts.exec(tunnel.ns(side), 'ip', ['link', 'set', 'mtu', '1420', 'dev', tunnel.ifName[side]]);
    });

    test('wg show reports the handshake and traffic', () => {
      const dump = tunnel.wg('a', ['show', tunnel.ifName.a, 'dump']).trim().split('\n');
      const peer = dump[1]!.split('\t');
      assert.equal(peer[0], encodeKey(publicKeyOf(tunnel.keys.b)));
      assert.ok(Number(peer[4]) > 0, 'latest handshake is set');
      assert.ok(Number(peer[5]) > TRANSFER_BYTES && Number(peer[6]) > TRANSFER_BYTES, 'rx and tx count both transfers');
    });
  });
}

for (const initiator of ['a', 'b'] as const) {
  describe(`handshake initiated by ${initiator === 'a' ? 'tundra' : 'wireguard-go'}`, { skip, timeout: 180_000 }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(`h${initiator}`, { a: 'tundra', b: 'wireguard-go', endpoints: { a: initiator === 'a', b: initiator === 'b' } });
      await tunnel.start();
    });
    after(() => tunnel?.destroy());

    test('only the side that knows the endpoint can start; then both ways work', () => {
      assert.equal(tunnel.ping(initiator, 4), 3);
      assert.equal(tunnel.ping(initiator === 'a' ? 'b' : 'a', 6), 3);
    });
  });
}

describe('roaming and removal', { skip, timeout: 120_000 }, () => {
  let tunnel: Tunnel;
  before(async () => {
    tunnel = new Tunnel('rm', { a: 'tundra', b: 'tundra' });
    await tunnel.start();
  });
  after(() => tunnel?.destroy());

  test('moving one side\'s underlay address mid-transfer: the transfer completes', async () => {
    assert.equal(tunnel.ping('a', 4), 3);
    const { hosts } = tunnel;
    const veth = hosts.exec(hosts.b, 'ip', ['-o', 'link', 'show', 'type', 'veth']).split(':')[1]!.trim().split('@')[0]!;
    const { sent, received } = await tunnel.transfer('a', TRANSFER_BYTES, 4, () => {
      // Delete first: removing a primary address also removes its secondaries.
      setTimeout(() => {
        hosts.exec(hosts.b, 'ip', ['address', 'del', `${hosts.underlayB}/24`, 'dev', veth]);
        hosts.exec(hosts.b, 'ip', ['address', 'add', '198.18.0.3/24', 'dev', veth]);
      }, 300);
    });
    assert.equal(received.sha256, sent.sha256);
    const endpoint = tunnel.wg('a', ['show', tunnel.ifName.a, 'endpoints']);
    assert.match(endpoint, /\t198\.18\.0\.3:51821\n/, 'a follows b to its new address');
  });

  test('a peer removed with wg set … remove gets no more traffic', () => {
    const peerB = encodeKey(publicKeyOf(tunnel.keys.b));
    tunnel.wg('a', ['set', tunnel.ifName.a, 'peer', peerB, 'remove']);
    assert.equal(tunnel.wg('a', ['show', tunnel.ifName.a, 'peers']).trim(), '');
    const before = tunnel.rxBytes('b');
    assert.equal(tunnel.ping('a', 4, 2), 0);
    assert.equal(tunnel.ping('b', 4, 2), 0);
    assert.equal(tunnel.rxBytes('b'), before, 'b received nothing from a');
  });
});
