// A UAPI set is all or nothing also when SO_MARK is refused: tundra runs without
// CAP_NET_ADMIN and CAP_NET_RAW (setpriv drops them from its bounding set) on a
// persistent TUN made for it beforehand, as an unprivileged daemon would. A fwmark
// then fails with EPERM — alone, or after a listen-port change in the same request —
// and the port, the key and the peers stay as they were; wg gets the errno.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, TwoHosts, waitFor } from '../helpers/netns.js';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'setpriv', 'ss']);

describe('UAPI set: a refused fwmark changes nothing', { skip, timeout: 180_000 }, () => {
  let hosts: TwoHosts;
  let dir: string;
  const name = `tdrf${process.pid % 100000}`;
  const peer = encodeKey(publicKeyOf(generatePrivateKey()));

  before(() => {
    hosts = new TwoHosts('fm');
    dir = mkdtempSync(join(tmpdir(), 'tundra-fwmark-'));
    writeFileSync(join(dir, 'key'), encodeKey(generatePrivateKey()), { mode: 0o600 });
    // Owned by root (uid 0): the daemon may attach to it without CAP_NET_ADMIN; the MTU is set, so it need not.
    hosts.exec(hosts.a, 'ip', ['tuntap', 'add', 'dev', name, 'mode', 'tun', 'multi_queue', 'user', '0']);
    hosts.exec(hosts.a, 'ip', ['link', 'set', 'dev', name, 'mtu', '1420']);
  });

  after(() => {
    try { hosts.exec(hosts.a, 'ip', ['link', 'del', name]); } catch { /* gone with the namespace */ }
    hosts?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const wg = (...args: string[]): string => hosts.exec(hosts.a, 'wg', args);
  const listening = (): string => hosts.exec(hosts.a, 'ss', ['-Huanp']);

  for (const queues of ['0', '2']) {
    test(`--queues ${queues}: fwmark EPERM, alone and with a new listen port, leaves everything as it was`, async () => {
      const daemon: ChildProcess = hosts.spawn(hosts.a, 'setpriv', [
        '--inh-caps', '-all', '--ambient-caps', '-all', '--bounding-set', '-net_admin,-net_raw',
        process.execPath, TUNDRA_MAIN, '-f', '--queues', queues, name,
      ], { LOG_LEVEL: 'verbose' });
      const output = captureOutput(daemon);
      try {
        await waitFor(`tundra to serve ${name}`, () => {
          if (daemon.exitCode !== null) throw new Error(`tundra exited: ${output()}`);
          try { wg('show', name); return true; } catch { return false; }
        });
        const before = wg('show', name, 'dump');
        const port = before.split('\t')[2]!;
        assert.match(port, /^\d+$/);
        const sockets = listening();
        assert.equal(sockets.split('\n').filter((l) => l.includes(`:${port} `)).length, Math.max(1, Number(queues)), sockets);

        assert.throws(() => wg('set', name, 'fwmark', '7'), /Operation not permitted/);
        assert.equal(wg('show', name, 'dump'), before, 'a refused fwmark is not reported as set');

        assert.throws(() => wg('set', name, 'listen-port', '40000', 'fwmark', '7', 'private-key', join(dir, 'key'),
          'peer', peer, 'allowed-ips', '100.96.0.2/32'), /Operation not permitted/);
        assert.equal(wg('show', name, 'dump'), before, 'neither the port, the key nor the peer changed');
        assert.doesNotMatch(listening(), /:40000 /, 'no socket left on the new port');
        assert.equal(listening(), sockets, 'the old sockets still listen');

        // Without the mark, the same daemon may move the port: the refusal above was the mark's alone.
        wg('set', name, 'listen-port', '40001');
        assert.equal(wg('show', name, 'listen-port').trim(), '40001');
        await waitFor('the daemon to log the refused set', () => /set failed: .*Operation not permitted \(EPERM\)/.test(output()));
      } finally {
        daemon.kill('SIGTERM');
        await new Promise((resolve) => (daemon.exitCode === null ? daemon.once('exit', resolve) : resolve(undefined)));
      }
    });
  }
});
