// `tundra up CONFIG` and SIGHUP: the changed file is applied as `wg syncconf` does,
// without a new handshake for the peer whose session is live, and without a gap in
// its traffic; routes follow the allowed IPs; a bad file changes nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, TwoHosts, waitFor } from '../helpers/netns.js';
import { tcpTransfer, TUNDRA_MAIN } from '../helpers/tunnel.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);

describe('tundra up: SIGHUP applies the changed file as wg syncconf does', { skip, timeout: 90_000 }, () => {
  let hosts: TwoHosts;
  let dir: string;
  let config: string;
  let up: ChildProcess;
  let output: () => string;
  const name = `tdrs${process.pid % 100000}`;
  const peerName = `tdrt${process.pid % 100000}`;
  const key = generatePrivateKey();
  const peerA = generatePrivateKey();
  const pubA = encodeKey(publicKeyOf(peerA));
  const pubB = encodeKey(publicKeyOf(generatePrivateKey()));
  const psk = encodeKey(generatePresharedKey());

  interface Peer { key: string; allowed: string; endpoint?: string; keepalive?: number; psk?: string }
  function writeConfig(peers: Peer[], address = '100.96.0.1/24'): void {
    const lines = ['[Interface]', `PrivateKey = ${encodeKey(key)}`, 'ListenPort = 51820', `Address = ${address}`, ''];
    for (const p of peers) {
      lines.push('[Peer]', `PublicKey = ${p.key}`, `AllowedIPs = ${p.allowed}`);
      if (p.endpoint !== undefined) lines.push(`Endpoint = ${p.endpoint}`);
      if (p.keepalive !== undefined) lines.push(`PersistentKeepalive = ${p.keepalive}`);
      if (p.psk !== undefined) lines.push(`PresharedKey = ${p.psk}`);
      lines.push('');
    }
    writeFileSync(config, lines.join('\n'), { mode: 0o600 });
  }
  const wg = (...args: string[]): string => hosts.exec(hosts.a, 'wg', args);
  const handshakeOf = (pub: string): number => {
    const line = wg('show', name, 'latest-handshakes').split('\n').find((l) => l.startsWith(pub));
    return Number(line?.split('\t')[1] ?? NaN);
  };
  const routes = (): string => hosts.exec(hosts.a, 'ip', ['-4', 'route', 'show', 'dev', name]);

  /** Sends SIGHUP and waits for the reload's log line (or error) after the output seen so far. */
  async function reload(expect: RegExp): Promise<string> {
    const before = output().length;
    up.kill('SIGHUP');
    let tail = '';
    await waitFor(`a log line matching ${expect}`, () => {
      if (up.exitCode !== null) throw new Error(`tundra up exited: ${output()}`);
      tail = output().slice(before);
      return expect.test(tail);
    });
    return tail;
  }

  before(async () => {
    hosts = new TwoHosts('sc');
    dir = mkdtempSync(join(tmpdir(), 'tundra-syncconf-'));
    config = join(dir, `${name}.conf`);
    await startWireguardGo(hosts, hosts.b, 'wireguard-go', peerName);
    writeFileSync(join(dir, 'peer.key'), encodeKey(peerA), { mode: 0o600 });
    writeFileSync(join(dir, 'psk'), psk, { mode: 0o600 });
    hosts.exec(hosts.b, 'wg', ['set', peerName, 'private-key', join(dir, 'peer.key'), 'listen-port', '51821',
      'peer', encodeKey(publicKeyOf(key)), 'preshared-key', join(dir, 'psk'), 'allowed-ips', '100.96.0.1/32']);
    hosts.exec(hosts.b, 'ip', ['address', 'add', '100.96.0.2/24', 'dev', peerName]);
    hosts.exec(hosts.b, 'ip', ['address', 'add', '100.96.5.1/24', 'dev', peerName]);
    hosts.exec(hosts.b, 'ip', ['link', 'set', 'up', 'dev', peerName]);

    writeConfig([{ key: pubA, allowed: '100.96.0.2/32', endpoint: `${hosts.underlayB}:51821`, psk }]);
    up = hosts.spawn(hosts.a, process.execPath, [TUNDRA_MAIN, 'up', config], { LOG_LEVEL: 'verbose' });
    output = captureOutput(up);
    await waitFor('tundra up to route the peer', () => {
      if (up.exitCode !== null) throw new Error(`tundra up exited: ${output()}`);
      try { return routes().includes('100.96.0.2'); } catch { return false; }
    });
  });

  after(() => {
    if (up?.exitCode === null) up.kill('SIGTERM');
    hosts?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('add a peer, change the live one: no new handshake, no lost ping, byte-exact after', async () => {
    assert.match(hosts.exec(hosts.a, 'ping', ['-c', '2', '-i', '0.2', '-W', '10', '100.96.0.2']), /2 received/);
    const handshake = handshakeOf(pubA);
    assert.ok(handshake > 0, `a handshake with A: ${wg('show', name)}`);
    // A new handshake now would show another second in latest-handshakes.
    await new Promise((r) => setTimeout(r, 1100));

    // Pings every 50 ms across the reload: none may be lost. -W waits for the last reply only,
    // and only as long as it has not come: room for a busy machine.
    const pings = 40;
    const ping = hosts.spawn(hosts.a, 'ping', ['-c', String(pings), '-i', '0.05', '-W', '10', '100.96.0.2']);
    const pingOut = captureOutput(ping);
    const pinged = new Promise<void>((resolve) => ping.once('exit', () => resolve()));
    await new Promise((r) => setTimeout(r, 500));
    writeConfig([
      { key: pubA, allowed: '100.96.0.2/32, 100.96.5.0/24', endpoint: `${hosts.underlayB}:51821`, keepalive: 25, psk },
      { key: pubB, allowed: '100.96.0.3/32' },
    ]);
    const line = await reload(/Reloaded .*: peers 1 added, 0 removed, 1 updated, 0 unchanged; routes 2 added, 0 removed/);
    assert.doesNotMatch(line, /ERROR/);
    await pinged;
    assert.match(pingOut(), new RegExp(`${pings} packets transmitted, ${pings} received`), pingOut());

    const show = wg('show', name);
    assert.match(show, new RegExp(`peer: ${pubB.replace(/[+/]/g, '\\$&')}`));
    assert.match(wg('show', name, 'persistent-keepalive'), new RegExp(`${pubA.replace(/[+/]/g, '\\$&')}\\t25`));
    assert.match(wg('show', name, 'allowed-ips'), /100\.96\.0\.2\/32 100\.96\.5\.0\/24/);
    assert.match(wg('show', name, 'preshared-keys'), new RegExp(psk.replace(/[+/]/g, '\\$&')), 'the PSK is still set');
    assert.match(routes(), /100\.96\.5\.0\/24/);
    assert.match(routes(), /100\.96\.0\.3 /);
    assert.equal(handshakeOf(pubA), handshake, 'no new handshake with A');

    // The same session carries data to the allowed IP just added.
    const { sent, received } = await tcpTransfer(hosts, hosts.a, hosts.b, '100.96.5.1', 5201, 4 * 1024 * 1024);
    assert.equal(received.bytes, sent.bytes);
    assert.equal(received.sha256, sent.sha256);
    assert.equal(handshakeOf(pubA), handshake, 'still no new handshake with A');
  });

  test('a bad file is reported with its line and key, and changes nothing', async () => {
    const dump = wg('show', name, 'allowed-ips');
    writeFileSync(config, `[Interface]\nPrivateKey = ${encodeKey(key)}\nListenPort = 51820\n\n[Peer]\nPublicKey = ${pubA}\nAllowedIPs = 100.96.0.2/33\n`, { mode: 0o600 });
    const line = await reload(/ERROR: .*reload: .*:7: AllowedIPs: .*nothing was changed/);
    assert.match(line, new RegExp(`${name}\\.conf`));
    assert.equal(wg('show', name, 'allowed-ips'), dump);
    assert.match(routes(), /100\.96\.5\.0\/24/);
  });

  test('remove a peer and an allowed IP; unchanged peer untouched; Address change needs a restart', async () => {
    const handshake = handshakeOf(pubA);
    writeConfig([{ key: pubA, allowed: '100.96.0.2/32', endpoint: `${hosts.underlayB}:51821`, keepalive: 25, psk }], '100.96.0.1/24, 100.96.0.9/24');
    const line = await reload(/Reloaded .*: peers 0 added, 1 removed, 1 updated, 0 unchanged; routes 0 added, 2 removed/);
    assert.match(line, /ERROR: .*Address changed .* but not applied: .*restart/);
    assert.doesNotMatch(wg('show', name, 'peers'), new RegExp(pubB.replace(/[+/]/g, '\\$&')));
    assert.equal(wg('show', name, 'allowed-ips').trim(), `${pubA}\t100.96.0.2/32`);
    assert.doesNotMatch(routes(), /100\.96\.5\.0\/24|100\.96\.0\.3 /);
    assert.doesNotMatch(hosts.exec(hosts.a, 'ip', ['-o', 'address', 'show', 'dev', name]), /100\.96\.0\.9/);

    // Unchanged file: nothing is sent for A.
    await reload(/Reloaded .*: peers 0 added, 0 removed, 0 updated, 1 unchanged; routes 0 added, 0 removed/);
    assert.match(hosts.exec(hosts.a, 'ping', ['-c', '2', '-i', '0.2', '-W', '10', '100.96.0.2']), /2 received/);
    assert.equal(handshakeOf(pubA), handshake, 'no new handshake with A');

    up.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => up.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, output());
    assert.doesNotMatch(output().replace(/ERROR: .*reload: .*\n/g, ''), /ERROR/, 'no ERROR line other than the reloads asked for');
  });
});
