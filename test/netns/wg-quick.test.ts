// wg-quick drives tundra exactly as it drives wireguard-go: WG_QUICK_USERSPACE_IMPLEMENTATION
// names the binary, which must detach once the interface and its UAPI socket are ready.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable, run, TwoHosts, waitFor } from '../helpers/netns.js';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wg-quick', 'wireguard-go', 'ping']);

describe('wg-quick with tundra as the userspace implementation', { skip, timeout: 60_000 }, () => {
  let hosts: TwoHosts;
  let dir: string;
  const name = `tdrq${process.pid % 100000}`;
  const key = generatePrivateKey();
  const peerKey = generatePrivateKey();

  before(() => {
    hosts = new TwoHosts('wq');
    dir = mkdtempSync(join(tmpdir(), 'tundra-wgquick-'));
  });

  after(() => {
    // wg-quick down deletes the link; if a test failed before it, end the daemon ourselves.
    try { hosts.exec(hosts.a, 'ip', ['link', 'del', name]); } catch { /* already gone */ }
    hosts?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  function wgQuick(action: 'up' | 'down', config: string): string {
    return hosts.exec(hosts.a, 'env', [`WG_QUICK_USERSPACE_IMPLEMENTATION=${TUNDRA_MAIN}`, 'wg-quick', action, config]);
  }

  test('up, show, down', async () => {
    const config = join(dir, `${name}.conf`);
    writeFileSync(config, [
      '[Interface]',
      `PrivateKey = ${encodeKey(key)}`,
      'ListenPort = 51820',
      'Address = 100.96.0.1/24, fd7a:7d0::1/64',
      '',
      '[Peer]',
      `PublicKey = ${encodeKey(publicKeyOf(peerKey))}`,
      'AllowedIPs = 100.96.0.2/32, fd7a:7d0::2/128',
      `Endpoint = ${hosts.underlayB}:51821`,
      'PersistentKeepalive = 25',
      '',
    ].join('\n'), { mode: 0o600 });

    wgQuick('up', config);
    const show = hosts.exec(hosts.a, 'wg', ['show', name]);
    assert.match(show, new RegExp(`public key: ${encodeKey(publicKeyOf(key)).replace(/[+/]/g, '\\$&')}`));
    assert.match(show, /listening port: 51820/);
    assert.match(show, /persistent keepalive: every 25 seconds/);
    assert.match(show, /allowed ips: 100\.96\.0\.2\/32, fd7a:7d0::2\/128/);
    const addresses = hosts.exec(hosts.a, 'ip', ['-o', 'address', 'show', 'dev', name]);
    assert.match(addresses, /100\.96\.0\.1\/24/);
    assert.match(addresses, /fd7a:7d0::1\/64/);
    const routes = hosts.exec(hosts.a, 'ip', ['route', 'show', 'dev', name]);
    assert.match(routes, /100\.96\.0\.0\/24/);
    const stripped = hosts.exec(hosts.a, 'wg', ['showconf', name]);
    assert.match(stripped, /PersistentKeepalive = 25/);

    wgQuick('down', config);
    await waitFor('the daemon to exit after wg-quick down', () => {
      const pids = run('sh', ['-c', `pgrep -f -- '${TUNDRA_MAIN} --foreground ${name}$' || true`]).trim();
      return pids === '';
    });
    assert.throws(() => hosts.exec(hosts.a, 'ip', ['link', 'show', name]));
  });
});
