// Stopping: SIGTERM, SIGINT, SIGHUP (with no file to reload), deleting the interface
// or the UAPI socket end `tundra -f IF`, the background daemon and `tundra up`
// cleanly — exit 0 within a bound (so every queue and crypto worker thread ended), no
// ERROR line, the link and the UAPI socket gone — with the data path busy just before,
// in the inline mode, with queue workers and with a crypto pool.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, TwoHosts, waitFor } from '../helpers/netns.js';
import { STOP_BOUND_MS, SYSTEMD_UNIT, tcpTransfer, TUNDRA_MAIN } from '../helpers/tunnel.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'setpriv']);

describe('stopping tundra cleanly', { skip, timeout: 300_000 }, () => {
  let hosts: TwoHosts;
  let dir: string;
  const name = `tdrl${process.pid % 100000}`;
  const peerName = `tdrm${process.pid % 100000}`;
  const socket = `/var/run/wireguard/${name}.sock`;
  const key = generatePrivateKey();
  const peerKey = generatePrivateKey();

  before(async () => {
    hosts = new TwoHosts('lc');
    dir = mkdtempSync(join(tmpdir(), 'tundra-lifecycle-'));
    writeFileSync(join(dir, 'a.key'), encodeKey(key), { mode: 0o600 });
    writeFileSync(join(dir, 'b.key'), encodeKey(peerKey), { mode: 0o600 });
    await startWireguardGo(hosts, hosts.b, 'wireguard-go', peerName);
    hosts.exec(hosts.b, 'wg', ['set', peerName, 'private-key', join(dir, 'b.key'), 'listen-port', '51821',
      'peer', encodeKey(publicKeyOf(key)), 'allowed-ips', '100.96.0.1/32']);
    hosts.exec(hosts.b, 'ip', ['address', 'add', '100.96.0.2/24', 'dev', peerName]);
    hosts.exec(hosts.b, 'ip', ['link', 'set', 'up', 'dev', peerName]);
  });

  after(() => {
    hosts?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const linkExists = (): boolean => {
    try {
      hosts.exec(hosts.a, 'ip', ['link', 'show', name]);
      return true;
    } catch {
      return false;
    }
  };

  /** Waits for the UAPI socket, configures the peer and moves data through the tunnel (byte-exact). */
  async function configureAndUse(daemon: () => string): Promise<void> {
    await waitFor(`tundra to serve ${name}`, () => {
      try {
        hosts.exec(hosts.a, 'wg', ['show', name]);
        return true;
      } catch {
        return false;
      }
    }).catch((err: Error) => { throw new Error(`${err.message}: ${daemon()}`); });
    hosts.exec(hosts.a, 'wg', ['set', name, 'private-key', join(dir, 'a.key'),
      'peer', encodeKey(publicKeyOf(peerKey)), 'allowed-ips', '100.96.0.2/32', 'endpoint', `${hosts.underlayB}:51821`]);
    hosts.exec(hosts.a, 'ip', ['address', 'add', '100.96.0.1/24', 'dev', name]);
    hosts.exec(hosts.a, 'ip', ['link', 'set', 'up', 'dev', name]);
    assert.match(hosts.exec(hosts.a, 'ping', ['-c', '2', '-i', '0.2', '-W', '10', '100.96.0.2']), /2 received/);
    // Big enough for full batches, which the crypto pool (--workers) takes.
    const { sent, received } = await tcpTransfer(hosts, hosts.b, hosts.a, '100.96.0.1', 5201, 2 * 1024 * 1024);
    assert.equal(received.sha256, sent.sha256);
  }

  function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const start = Date.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not exited ${STOP_BOUND_MS} ms after being told to stop`)), STOP_BOUND_MS);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, ms: Date.now() - start });
      });
    });
  }

  function assertGone(output: string): void {
    assert.doesNotMatch(output, /ERROR/, output);
    assert.equal(linkExists(), false, 'the link is gone');
    assert.equal(existsSync(socket), false, 'the UAPI socket is gone');
  }

  const cases = [
    { flags: ['--queues', '0'], stop: 'SIGTERM' },
    { flags: ['--queues', '1'], stop: 'SIGINT' },
    { flags: ['--queues', '2', '--workers', '2'], stop: 'SIGTERM' },
    { flags: ['--queues', '0'], stop: 'ip link del' },
    { flags: ['--queues', '1'], stop: 'ip link del' },
    { flags: ['--queues', '2', '--workers', '2'], stop: 'ip link del' },
    { flags: ['--queues', '1'], stop: 'SIGHUP' },
    { flags: ['--queues', '1'], stop: 'rm socket' },
  ] as const;
  for (const { flags, stop } of cases) {
    test(`tundra -f ${flags.join(' ')}: ${stop} → exit 0, no ERROR, link and socket gone`, async () => {
      const daemon = hosts.spawn(hosts.a, process.execPath, [TUNDRA_MAIN, '-f', ...flags, name], { LOG_LEVEL: 'verbose' });
      const output = captureOutput(daemon);
      await configureAndUse(output);
      const exit = exited(daemon);
      if (stop === 'ip link del') hosts.exec(hosts.a, 'ip', ['link', 'del', name]);
      else if (stop === 'rm socket') rmSync(socket);
      else daemon.kill(stop);
      const { code, signal } = await exit;
      assert.equal(code, 0, `exit ${code ?? signal}: ${output()}`);
      const why = { 'ip link del': 'interface was removed', 'rm socket': 'UAPI socket was removed' } as Record<string, string>;
      assert.match(output(), new RegExp(`Shutting down: ${why[stop] ?? `received ${stop}`}`));
      assertGone(output());
    });
  }

  test('the background daemon: SIGTERM → it ends in time, no ERROR, link and socket gone', async () => {
    const parent = hosts.spawn(hosts.a, process.execPath, [TUNDRA_MAIN, '--queues', '1', name], { LOG_LEVEL: 'verbose' });
    // The daemon keeps this pipe as its stdout (LOG_LEVEL asks for logs), so its lines arrive here too.
    const output = captureOutput(parent);
    const status = await new Promise<number | null>((resolve) => parent.once('exit', (c) => resolve(c)));
    assert.equal(status, 0, output());
    await configureAndUse(output);
    const pid = daemonPid(name);
    assert.ok(pid !== undefined, 'the background daemon runs');
    process.kill(pid, 'SIGTERM');
    // Not our child (the parent detached it): its exit status is not ours to read, but its end is.
    await waitFor('the background daemon to end', () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), STOP_BOUND_MS);
    assert.match(output(), /Shutting down: received SIGTERM/);
    assertGone(output());
  });

  test('tundra up: SIGINT → exit 0, no ERROR, link, socket and routes gone', async () => {
    const config = join(dir, `${name}.conf`);
    writeFileSync(config, [
      '[Interface]', `PrivateKey = ${encodeKey(key)}`, 'Address = 100.96.0.1/24', '',
      '[Peer]', `PublicKey = ${encodeKey(publicKeyOf(peerKey))}`, 'AllowedIPs = 100.96.0.2/32, 100.96.7.0/24', `Endpoint = ${hosts.underlayB}:51821`, '',
    ].join('\n'), { mode: 0o600 });
    const up = hosts.spawn(hosts.a, process.execPath, [TUNDRA_MAIN, 'up', config], {
      LOG_LEVEL: 'verbose', TUNDRA_QUEUES: '2', TUNDRA_WORKERS: '2',
    });
    const output = captureOutput(up);
    await waitFor('tundra up to route the peer', () => {
      if (up.exitCode !== null) throw new Error(`tundra up exited: ${output()}`);
      try { return hosts.exec(hosts.a, 'ip', ['route', 'show', 'dev', name]).includes('100.96.7.0/24'); } catch { return false; }
    });
    assert.match(hosts.exec(hosts.a, 'ping', ['-c', '2', '-i', '0.2', '-W', '10', '100.96.0.2']), /2 received/);
    const exit = exited(up);
    up.kill('SIGINT');
    const { code, signal } = await exit;
    assert.equal(code, 0, `exit ${code ?? signal}: ${output()}`);
    assertGone(output());
    assert.doesNotMatch(hosts.exec(hosts.a, 'ip', ['-4', 'route', 'show']), /100\.96\.7\.0/);
  });

  test('tundra up with only the capabilities contrib/systemd/tundra@.service leaves it: up, reload, fwmark, stop', async () => {
    const caps = /^CapabilityBoundingSet=(.*)$/m.exec(readFileSync(SYSTEMD_UNIT, 'utf8'))![1]!.trim().split(/\s+/);
    const bounding = ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
    const config = join(dir, `${name}.conf`);
    writeFileSync(config, [
      '[Interface]', `PrivateKey = ${encodeKey(key)}`, 'Address = 100.96.0.1/24', 'FwMark = 0x5', '',
      '[Peer]', `PublicKey = ${encodeKey(publicKeyOf(peerKey))}`, 'AllowedIPs = 100.96.0.2/32', `Endpoint = ${hosts.underlayB}:51821`, '',
    ].join('\n'), { mode: 0o600 });
    const up = hosts.spawn(hosts.a, 'setpriv', ['--bounding-set', bounding, '--inh-caps', '-all', process.execPath, TUNDRA_MAIN, 'up', config], {
      LOG_LEVEL: 'verbose',
    });
    const output = captureOutput(up);
    await waitFor('tundra up to route the peer', () => {
      if (up.exitCode !== null) throw new Error(`tundra up exited: ${output()}`);
      try { return hosts.exec(hosts.a, 'ip', ['route', 'show', 'dev', name]).includes('100.96.0.2'); } catch { return false; }
    });
    assert.match(readFileSync(`/proc/${up.pid}/status`, 'utf8'), /^CapBnd:\s+0000000000001000$/m, 'CAP_NET_ADMIN alone');
    assert.match(hosts.exec(hosts.a, 'ping', ['-c', '2', '-i', '0.2', '-W', '10', '100.96.0.2']), /2 received/);
    assert.match(hosts.exec(hosts.a, 'wg', ['show', name, 'fwmark']), /0x5/);
    up.kill('SIGHUP');
    await waitFor('the reload', () => /Reloaded .*1 unchanged/.test(output()));
    const exit = exited(up);
    up.kill('SIGTERM');
    const { code, signal } = await exit;
    assert.equal(code, 0, `exit ${code ?? signal}: ${output()}`);
    assertGone(output());
  });
});

/** The pid of the background daemon of `name` (`main.js --foreground name`), a process this test started. */
function daemonPid(name: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string[];
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (cmdline.includes(TUNDRA_MAIN) && cmdline.includes('--foreground') && cmdline.at(-2) === name) return Number(entry);
  }
  return undefined;
}
