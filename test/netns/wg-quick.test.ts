// wg-quick drives tundra exactly as it drives wireguard-go: WG_QUICK_USERSPACE_IMPLEMENTATION
// names the binary, which must detach once the interface and its UAPI socket are ready.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, run, TwoHosts, waitFor } from '../helpers/netns.js';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wg-quick', 'wireguard-go', 'ping']);

describe('wg-quick with tundra as the userspace implementation', { skip, timeout: 180_000 }, () => {
  let hosts: TwoHosts;
  let dir: string;
  const name = `tdrq${process.pid % 100000}`;
  const peerName = `tdrp${process.pid % 100000}`;
  const key = generatePrivateKey();
  const peerKey = generatePrivateKey();

  before(() => {
    hosts = new TwoHosts('wq');
    dir = mkdtempSync(join(tmpdir(), 'tundra-wgquick-'));
  });

  after(() => {
    // wg-quick down deletes the link; if a test failed before it, end the daemon ourselves.
    for (const [ns, link] of [[hosts.a, name], [hosts.b, peerName]] as const) {
      try { hosts.exec(ns, 'ip', ['link', 'del', link]); } catch { /* already gone */ }
    }
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

  test('tundra up CONFIG brings up keys, peers, addresses and routes, and SIGTERM takes them down', async () => {
    // The far side: wireguard-go in namespace b.
    const { child: wg } = await startWireguardGo(hosts, hosts.b, 'wireguard-go', peerName);
    writeFileSync(join(dir, 'peer.key'), encodeKey(peerKey), { mode: 0o600 });
    hosts.exec(hosts.b, 'wg', ['set', peerName, 'private-key', join(dir, 'peer.key'), 'listen-port', '51821',
      'peer', encodeKey(publicKeyOf(key)), 'allowed-ips', '100.96.0.1/32']);
    hosts.exec(hosts.b, 'ip', ['address', 'add', '100.96.0.2/24', 'dev', peerName]);
    hosts.exec(hosts.b, 'ip', ['link', 'set', 'up', 'dev', peerName]);

    const config = join(dir, `${name}.conf`);
    writeFileSync(config, [
      '[Interface]',
      `PrivateKey = ${encodeKey(key)}`,
      'Address = 100.96.0.1/32',
      'MTU = 1400',
      'DNS = 100.96.0.53',
      '',
      '[Peer]',
      `PublicKey = ${encodeKey(publicKeyOf(peerKey))}`,
      'AllowedIPs = 100.96.0.0/24',
      `Endpoint = ${hosts.underlayB}:51821`,
      '',
    ].join('\n'), { mode: 0o600 });
    const up = hosts.spawn(hosts.a, process.execPath, [TUNDRA_MAIN, 'up', config]);
    const output = captureOutput(up);
    await waitFor('tundra up', () => {
      if (up.exitCode !== null) throw new Error(`tundra up exited: ${output()}`);
      return /ignored \(wg-quick handles these\): DNS/.test(output());
    });
    assert.match(hosts.exec(hosts.a, 'ip', ['-o', 'address', 'show', 'dev', name]), /100\.96\.0\.1\/32/);
    assert.match(hosts.exec(hosts.a, 'ip', ['link', 'show', name]), /mtu 1400 .*state (UP|UNKNOWN)/);
    assert.match(hosts.exec(hosts.a, 'ip', ['route', 'show', 'dev', name]), /100\.96\.0\.0\/24/);
    assert.match(hosts.exec(hosts.a, 'ping', ['-c', '2', '-i', '0.2', '-W', '10', '100.96.0.2']), /2 received/);

    up.kill('SIGTERM');
    await new Promise((resolve) => up.once('exit', resolve));
    assert.throws(() => hosts.exec(hosts.a, 'ip', ['link', 'show', name]), 'the interface went with the process');
    wg.kill('SIGTERM');
  });
});
