// Bad input never takes tundra down: random and malformed datagrams on its UDP
// port, a replayed transport message, and garbage on its UAPI socket. Afterwards
// the daemon runs, the tunnel passes traffic and the drop counters name the reasons.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable, waitFor } from '../helpers/netns.js';
import { Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping']);
const GARBAGE = fileURLToPath(new URL('../helpers/udp-garbage.js', import.meta.url));
const THIRD_TUNNEL_ADDRESS = '100.96.0.3';

describe('garbage in', { skip, timeout: 90_000 }, () => {
  let tunnel: Tunnel;
  const thirdKey = generatePrivateKey();

  before(async () => {
    tunnel = new Tunnel('gb', { a: 'tundra', b: 'tundra' });
    await tunnel.start();
    tunnel.wg('b', ['set', tunnel.ifName.b, 'peer', encodeKey(publicKeyOf(thirdKey)), 'allowed-ips', `${THIRD_TUNNEL_ADDRESS}/32`]);
  });
  after(() => tunnel?.destroy());

  async function dropCounters(): Promise<Record<string, number>> {
    const daemon = tunnel.daemons.b;
    const seen = tunnel.output.b().length;
    daemon.kill('SIGUSR1');
    let line: string | undefined;
    await waitFor('the drop counters', () => {
      line = tunnel.output.b().slice(seen).split('\n').find((l) => l.startsWith('{"interface"'));
      return line !== undefined;
    });
    return (JSON.parse(line!) as { drops: Record<string, number> }).drops;
  }

  test('random, truncated and replayed datagrams are dropped by reason; the tunnel keeps working', async () => {
    const config = {
      target: { address: tunnel.underlay('b'), port: 51821 },
      privateKey: encodeKey(thirdKey),
      peerPublicKey: encodeKey(publicKeyOf(tunnel.keys.b)),
      localTunnelAddress: THIRD_TUNNEL_ADDRESS,
      peerTunnelAddress: '100.96.0.2',
      randomDatagrams: 3000,
      replays: 10,
    };
    const child = spawn('ip', ['netns', 'exec', tunnel.ns('a'), process.execPath, GARBAGE, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, out);
    const report = JSON.parse(out.trim().split('\n').pop()!) as { echoReplies: number; replaysSent: number };
    assert.equal(report.echoReplies, 1, 'a third peer can still handshake and ping through b');
    assert.equal(report.replaysSent, 10);

    assert.equal(tunnel.daemons.b.exitCode, null, 'the daemon is still running');
    assert.equal(tunnel.ping('a', 4), 3);
    assert.equal(tunnel.ping('b', 6), 3);

    const drops = await dropCounters();
    for (const reason of ['too_short', 'wrong_size', 'unknown_type', 'reserved_not_zero', 'bad_mac1', 'unknown_index']) {
      assert.ok((drops[reason] ?? 0) > 0, `counted ${reason}: ${JSON.stringify(drops)}`);
    }
    assert.equal(drops.replay, 10, `every replay is counted: ${JSON.stringify(drops)}`);
  });

  test('garbage on the UAPI socket gets an error or a closed connection, never a crash', async () => {
    const path = `/var/run/wireguard/${tunnel.ifName.b}.sock`;
    const requests = [
      randomBytes(4096),
      Buffer.from('set=1\nprivate_key=zz\n\n'),
      Buffer.from('set=1\nlisten_port=99999\n\n'),
      Buffer.from('set=1\npublic_key=00\n\n'),
      Buffer.from('get=1\n'),
      Buffer.from('frobnicate=1\n\n'),
      Buffer.from(`set=1\n${'x'.repeat(2 << 20)}`),
      Buffer.from('\0\0\0\n\n'),
    ];
    for (const request of requests) {
      await new Promise<void>((resolve) => {
        const socket = connect(path);
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.on('data', () => {});
        socket.end(request);
        setTimeout(() => socket.destroy(), 2000).unref();
      });
    }
    assert.equal(tunnel.daemons.b.exitCode, null, 'the daemon is still running');
    assert.match(tunnel.wg('b', ['show', tunnel.ifName.b]), /listening port: 51821/);
    assert.equal(tunnel.ping('b', 4), 3);
  });
});
