// Each crypto backend of the data path (--crypto / TUNDRA_CRYPTO) carries a tunnel to
// a real peer: tundra with the backend on one side, Debian's wireguard-go on the other,
// pings and small TCP transfers both ways, byte for byte.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CRYPTO_BACKENDS } from '../../src/crypto/backends.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
/** Small: the noble backend seals ~50 MB/s. */
const BYTES = 4 * 1024 * 1024;

for (const [i, backend] of CRYPTO_BACKENDS.entries()) {
  describe(`--crypto=${backend}: tundra ↔ wireguard-go`, { skip, timeout: 120_000 }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(`cr${i}`, { a: 'tundra', b: 'wireguard-go', env: { a: { TUNDRA_CRYPTO: backend } } });
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
    });
  });
}
