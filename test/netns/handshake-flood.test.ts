// A handshake flood at b, from a stranger on a's side of the underlay (a second address
// in a's namespace): initiations with a valid MAC1, the way anyone who knows b's public
// key can send them (bench/flood/sender.ts). While it runs:
//   - b's queues cut the flood where they read it (cookie_rate_limited) and b stays
//     answerable: `wg show` answers, nothing urgent is pushed out of the control channel;
//   - a, which forgets b and must handshake again, gets through (with a cookie, as b is
//     under load) and pings cross;
//   - a second stranger that answers its cookie and then sends 300 initiations with a
//     valid MAC2 at once gets 5 of them in, plus 20 a second: the per-source rate limit
//     with real datagrams.
// The flood is paced to 40,000/s: more Diffie-Hellman than a core can do (b must go
// under load on any machine: one that keeps up is not under load, and cuts nothing),
// and far less than a queue reads, so b's socket does not overflow and what is counted
// is what b decided. The unpaced flood and the figures (wg show times, handshake times,
// memory) are bench/flood's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable } from '../helpers/netns.js';
import { jsonOf, OVERLAY, Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping']);
const SENDER = fileURLToPath(new URL('../../bench/flood/sender.js', import.meta.url));
const FLOOD_SOURCE = '198.18.0.3';
const COOKIE_SOURCE = '198.18.0.4';
const B_PORT = 51821; // the Tunnel helper's port of side b
const BURST = 300;
const FLOOD_RATE = 40_000;

for (const { name, env } of [
  { name: 'queues 1', env: { TUNDRA_QUEUES: '1' } },
  { name: 'queues 0 (inline)', env: { TUNDRA_QUEUES: '0' } },
]) {
  describe(`a handshake flood at tundra (${name})`, { skip, timeout: 180_000 }, () => {
    let tunnel: Tunnel;
    let bKey: string;
    const drops = async (): Promise<Record<string, number>> => (await tunnel.counters('b')).drops;

    before(async () => {
      tunnel = new Tunnel('hf', { a: 'tundra', b: 'tundra', env: { a: env, b: env } });
      await tunnel.start();
      assert.equal(tunnel.ping('a', 4), 3, 'the tunnel works before the flood');
      const ns = tunnel.ns('a');
      for (const address of [FLOOD_SOURCE, COOKIE_SOURCE]) tunnel.hosts.exec(ns, 'ip', ['addr', 'add', `${address}/24`, 'dev', tunnel.hosts.vethA]);
      bKey = encodeKey(publicKeyOf(tunnel.keys.b));
      tunnel.hosts.spawn(ns, process.execPath, [
        SENDER, '--from', FLOOD_SOURCE, '--to', `${tunnel.underlay('b')}:${B_PORT}`, '--public-key', bKey, '--rate', String(FLOOD_RATE), '--seconds', '170',
      ]);
    });
    after(() => tunnel?.destroy());

    test('b cuts the flood where it reads it, and stays answerable', async () => {
      let seen: Record<string, number> = {};
      for (let i = 0; i < 300 && !(seen.cookie_rate_limited! > 0); i++) {
        seen = await drops();
        if (!(seen.cookie_rate_limited! > 0)) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(seen.cookie_rate_limited! > 0, `the flood was cut per source: ${JSON.stringify(seen)}`);
      assert.match(tunnel.wg('b', ['show', tunnel.ifName.b]), /latest handshake/, '`wg show` answers during the flood');
      assert.equal(seen.control_ring_full ?? 0, 0, 'nothing urgent was pushed out of the control channel');
    });

    test('a peer that forgot b handshakes again through the flood, and pings cross', async () => {
      const a = tunnel.ifName.a;
      const allowed = `${OVERLAY.b.v4}/32,${OVERLAY.b.v6}/128`;
      tunnel.wg('a', ['set', a, 'peer', bKey, 'remove']);
      tunnel.wg('a', ['set', a, 'peer', bKey, 'endpoint', `${tunnel.underlay('b')}:${B_PORT}`, 'allowed-ips', allowed]);
      assert.ok(tunnel.pingUntilReply('a'), 'a ping crossed after the new handshake');
      assert.equal(tunnel.ping('a', 6), 3);
    });

    test('a source with a valid cookie gets 5 initiations in at once, then 20 a second', async () => {
      const before = (await drops()).rate_limited ?? 0;
      const sender = tunnel.hosts.spawn(tunnel.ns('a'), process.execPath, [
        SENDER, '--from', COOKIE_SOURCE, '--to', `${tunnel.underlay('b')}:${B_PORT}`, '--public-key', bKey,
        '--unpaced', '--count', String(BURST), '--with-cookie', '--seconds', '60',
      ]);
      const result = await jsonOf<{ sent: number; seconds: number }>(sender, captureOutput(sender));
      assert.equal(result.sent, BURST);
      let limited = 0;
      for (let i = 0; i < 50; i++) {
        limited = ((await drops()).rate_limited ?? 0) - before;
        if (limited >= BURST - 5 - 20 * 5) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // The burst leaves in well under a second; 5 s of tokens is room for a slow reader, not a speed.
      assert.ok(limited >= BURST - 5 - 20 * 5, `${limited} of ${BURST} were rate limited`);
      assert.ok(limited <= BURST - 5, 'the burst of 5 got in');
    });
  });
}
