// Each setting of the data path carries a tunnel to a real peer: tundra with it on one
// side, Debian's wireguard-go on the other, pings and small TCP transfers both ways,
// byte for byte. The crypto backends (--crypto / TUNDRA_CRYPTO) and the inline mode
// (--queues 0: the data path on the main thread); the default queue worker and the
// pool are carried by every other network test and by queues.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CRYPTO_BACKENDS } from '../../src/crypto/backends.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
/** Small: the noble backend seals ~50 MB/s. */
const BYTES = 4 * 1024 * 1024;

const SETTINGS: { label: string; env: NodeJS.ProcessEnv; check?: (tunnel: Tunnel) => Promise<void> }[] = [
  ...CRYPTO_BACKENDS.map((backend) => ({ label: `--crypto=${backend}`, env: { TUNDRA_CRYPTO: backend } })),
  {
    label: '--queues 0 (the inline mode)',
    env: { TUNDRA_QUEUES: '0' },
    async check(tunnel) {
      assert.match(tunnel.output.a(), /Data path: inline/);
      assert.deepEqual((await tunnel.counters('a')).queues.map((q) => q.restarts), [undefined], 'one queue, on the main thread');
    },
  },
];

for (const [i, { label, env, check }] of SETTINGS.entries()) {
  describe(`${label}: tundra ↔ wireguard-go`, { skip, timeout: 120_000 }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(`set${i}`, { a: 'tundra', b: 'wireguard-go', env: { a: env } });
      await tunnel.start();
    });
    after(() => tunnel?.destroy());

    test('pings and TCP both ways arrive byte for byte', async () => {
      assert.equal(tunnel.ping('a', 4), 3);
      for (const from of ['a', 'b'] as const) {
        const { sent, received } = await tunnel.transfer(from, BYTES);
        assert.equal(received.bytes, BYTES, `from ${from}: bytes`);
        assert.equal(received.sha256, sent.sha256, `from ${from}: SHA-256`);
      }
      const { drops } = await tunnel.counters('a');
      assert.equal(drops.decrypt_failed ?? 0, 0, 'nothing failed to open');
      await check?.(tunnel);
    });
  });
}
