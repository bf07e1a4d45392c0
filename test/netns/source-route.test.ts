// Sticky source addresses follow the routing table the kernel's way: a tundra side a and
// a Debian wireguard-go side b joined by two links, the tunnel's own (198.18.0.0/24)
// and a second one (198.18.4.1/24 on a, .2 on b), where b drops what comes in with a
// source that it would not route back out of that link (strict rp_filter, as many
// hosts and firewalls do). b talks to a at 198.18.0.1, so a's replies leave from
// 198.18.0.1. Then a gets a more specific route to b over the second link, with its
// own `src 198.18.4.1`: the kernel's WireGuard (and wireguard-go, on the route change)
// sends from 198.18.4.1 then, since the route no longer leaves through the interface
// b's packets come in on; b hears a there and roams to it. Before, tundra kept the old
// source on the new path, and b, dropping it, stopped hearing a. The route removed,
// replies go back to the first link. With --queues 0, 1 and 2, offloads on and off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { networkTestsUnavailable, run, waitFor } from '../helpers/netns.js';
import { Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
const SECOND = { a: '198.18.4.1', b: '198.18.4.2' };

const VARIANTS: { name: string; env: NodeJS.ProcessEnv }[] = [
  { name: 'queues 0', env: { TUNDRA_QUEUES: '0' } },
  { name: 'queues 1', env: { TUNDRA_QUEUES: '1' } },
  { name: 'queues 2, offloads off', env: { TUNDRA_QUEUES: '2', TUNDRA_OFFLOAD: 'none' } },
];

VARIANTS.forEach((variant, k) => {
  describe(`sticky sources follow a better route with another src (${variant.name})`, { skip, timeout: 90_000 }, () => {
    let tunnel: Tunnel;
    let linkA: string;

    /** Where b sends to a now (wg show endpoints on b). */
    const bSendsTo = (): string => tunnel.wg('b', ['show', tunnel.ifName.b, 'endpoints']).split('\t')[1]!.trim();

    before(async () => {
      tunnel = new Tunnel(`sr${k}`, { a: 'tundra', b: 'wireguard-go', endpoints: { a: false, b: true }, env: { a: variant.env } });
      const [aNs, bNs] = [tunnel.ns('a'), tunnel.ns('b')];
      linkA = `${tunnel.ifName.a.slice(0, 13)}l2`;
      const linkB = `${tunnel.ifName.b.slice(0, 13)}l2`;
      run('ip', ['-n', aNs, 'link', 'add', linkA, 'type', 'veth', 'peer', 'name', linkB, 'netns', bNs]);
      tunnel.hosts.exec(aNs, 'ip', ['address', 'add', `${SECOND.a}/24`, 'dev', linkA]);
      tunnel.hosts.exec(bNs, 'ip', ['address', 'add', `${SECOND.b}/24`, 'dev', linkB]);
      tunnel.hosts.exec(aNs, 'ip', ['link', 'set', linkA, 'up']);
      tunnel.hosts.exec(bNs, 'ip', ['link', 'set', linkB, 'up']);
      // Strict reverse-path filtering on b's second link (the effective value is the larger of all and the link's).
      tunnel.hosts.exec(bNs, 'sysctl', ['-qw', `net.ipv4.conf.${linkB}.rp_filter=1`]);
      await tunnel.start();
      assert.equal(tunnel.ping('b', 4, 1), 1, 'the tunnel is up over the first link');
      assert.equal(bSendsTo(), `${tunnel.underlay('a')}:51820`);
    });
    after(() => tunnel?.destroy());

    test('a more specific route over the second link with src 198.18.4.1: a replies from it, b roams there, pings cross', async () => {
      tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['route', 'add', `${tunnel.underlay('b')}/32`, 'via', SECOND.b, 'dev', linkA, 'src', SECOND.a]);
      await waitFor('tundra to leave 198.18.0.1 for the routing table\'s choice', () =>
        tunnel.output.a().includes(`replies leave from the routing table's choice, not ${tunnel.underlay('a')}`));
      assert.equal(tunnel.ping('b', 4, 3), 3, 'b hears a\'s replies (from 198.18.4.1: b drops any from 198.18.0.1 there)');
      assert.equal(bSendsTo(), `${SECOND.a}:51820`, 'b roamed to the address a replies from');
      assert.equal(tunnel.ping('a', 4, 3), 3, 'and a reaches b');
    });

    test('the route removed: replies go back out of the first link, from its address', async () => {
      tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['route', 'del', `${tunnel.underlay('b')}/32`]);
      await waitFor('tundra to leave 198.18.4.1 for the routing table\'s choice', () =>
        tunnel.output.a().includes(`replies leave from the routing table's choice, not ${SECOND.a}`));
      assert.equal(tunnel.ping('b', 4, 3), 3);
      assert.equal(bSendsTo(), `${tunnel.underlay('a')}:51820`, 'b roamed back');
      assert.equal(tunnel.ping('a', 4, 3), 3);
    });
  });
});
