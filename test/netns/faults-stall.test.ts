// Faults that stall a running tundra (faults.test.ts has the others):
//   - the daemon stopped (SIGSTOP) for 10 s mid-transfer, then continued: the transfer
//     completes byte-exact, no handshake storm follows, and the tunnel goes on;
//   - a full device queue under its sends. A queue that drops (tbf with a short limit)
//     makes the kernel's send fail with ENOBUFS, which Linux reports to a UDP socket only
//     with IP_RECVERR: tundra's socket (as wireguard-go's) never sees it, the kernel counts
//     it (UdpSndbufErrors) and TCP inside the tunnel recovers the loss. A queue that holds
//     (tbf with a long limit) fills the socket's send buffer: sendmmsg says EAGAIN, which
//     tundra handles as it would ENOBUFS (the rest of the batch is dropped and counted as
//     udp_send_failed, not retried in a loop).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel, type Side } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping', 'tc', 'nstat']);
const METRICS = '127.0.0.1:9586';

describe('the daemon stopped (SIGSTOP) for 10 s during a transfer', { skip, timeout: 180_000 }, () => {
  let tunnel: Tunnel;
  const env = { TUNDRA_METRICS_LISTEN: METRICS };
  /** A side's handshake counters (tundra_handshake_*_total), from its /metrics. */
  const handshakes = (side: Side): Record<string, number> => {
    const text = tunnel.hosts.exec(tunnel.ns(side), process.execPath, ['-e',
      `fetch('http://${METRICS}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    return Object.fromEntries([...text.matchAll(/^tundra_handshake_(\w+)_total (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  };
  before(async () => {
    tunnel = new Tunnel('fstop', { a: 'tundra', b: 'tundra', env: { a: env, b: env } });
    await tunnel.start();
  });
  after(() => tunnel?.destroy());

  test('the transfer completes byte-exact, no handshake storm follows, and b goes on', async () => {
    assert.ok(tunnel.pingUntilReply('a'), 'the tunnel works');
    const before = { a: handshakes('a'), b: handshakes('b') };
    const b = tunnel.daemons.b.pid!;
    const bytes = 32 * 1024 * 1024;
    const transfer = tunnel.transfer('a', bytes);
    let atStop = 0;
    for (let i = 0; i < 200 && atStop < 1024 * 1024; i++) {
      await new Promise((r) => setTimeout(r, 50));
      atStop = tunnel.rxBytes('b');
    }
    process.kill(b, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      assert.ok(atStop < bytes, `the transfer was under way when b stopped (${atStop} bytes in)`);
      // a's pings meanwhile go unanswered; after SIGCONT b works off what queued in its socket.
      assert.equal(tunnel.ping('a', 4, 3), 0, 'b answers nothing while stopped');
      await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 10_000 - Date.now())));
    } finally {
      process.kill(b, 'SIGCONT');
    }
    const { sent, received } = await transfer;
    assert.equal(received.bytes, bytes);
    assert.equal(received.sha256, sent.sha256);
    assert.equal(tunnel.ping('a', 4), 3, 'pings cross after');
    const again = await tunnel.transfer('b', 4 * 1024 * 1024);
    assert.equal(again.received.sha256, again.sent.sha256, 'and a transfer the other way');
    assert.equal(tunnel.daemons.b.exitCode, null, 'b is running');
    // 10 s is less than a's 15 s without a reply before it handshakes again: at most one new
    // handshake (two initiations if b asks for a cookie first; none, as measured), not one
    // per packet or per timer that fell due while stopped.
    const after = { a: handshakes('a'), b: handshakes('b') };
    const grew = (side: Side, name: string): number => after[side][name]! - before[side][name]!;
    for (const side of ['a', 'b'] as const) {
      assert.ok(grew(side, 'initiations_sent') <= 2, `${side} sent ${grew(side, 'initiations_sent')} initiations`);
      assert.ok(grew(side, 'initiations_received') <= 2, `${side} received ${grew(side, 'initiations_received')} initiations`);
      assert.ok(grew(side, 'responses_sent') <= 2, `${side} sent ${grew(side, 'responses_sent')} responses`);
    }
  });
});

describe('a full device queue under b\'s sends (ENOBUFS, EAGAIN)', { skip, timeout: 180_000 }, () => {
  let tunnel: Tunnel;
  /** `tc qdisc VERB dev VETH …` on b's underlay veth. */
  const qdisc = (verb: string, ...args: string[]): string => tunnel.hosts.exec(tunnel.ns('b'), 'tc', ['qdisc', verb, 'dev', tunnel.hosts.vethB, ...args]);
  /** UDP datagrams whose send the kernel failed with ENOBUFS and did not report (nstat, since the namespace was made). */
  const hiddenEnobufs = (): number => {
    const out = tunnel.hosts.exec(tunnel.ns('b'), 'nstat', ['-azs', 'UdpSndbufErrors', 'Udp6SndbufErrors']);
    return [...out.matchAll(/^Udp6?SndbufErrors\s+(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  };
  const sendFailed = async (): Promise<number> => (await tunnel.counters('b')).drops.udp_send_failed ?? 0;
  before(async () => {
    tunnel = new Tunnel('fnobuf', { a: 'tundra', b: 'tundra' });
    await tunnel.start();
    assert.ok(tunnel.pingUntilReply('a'), 'the tunnel works');
  });
  after(() => tunnel?.destroy());

  test('a queue that drops: the kernel\'s ENOBUFS is lost traffic TCP recovers, byte-exact', async () => {
    qdisc('replace', 'root', 'tbf', 'rate', '20mbit', 'burst', '16kb', 'limit', '30000');
    const hidden = hiddenEnobufs();
    const { sent, received } = await tunnel.transfer('b', 4 * 1024 * 1024);
    assert.equal(received.bytes, sent.bytes);
    assert.equal(received.sha256, sent.sha256);
    const now = hiddenEnobufs();
    assert.ok(now > hidden, `sends failed with ENOBUFS (UdpSndbufErrors ${hidden} → ${now})`);
    assert.equal(tunnel.daemons.b.exitCode, null, 'b is running');
  });

  test('a queue that holds: a full send buffer is dropped and counted as udp_send_failed; nothing corrupt', async () => {
    qdisc('replace', 'root', 'tbf', 'rate', '10mbit', 'burst', '32kb', 'limit', '30000000');
    const failedBefore = await sendFailed();
    // 48 MB into a queue that holds them and drains 1.25 MB/s: the 14 MiB send buffer fills
    // unless sending takes 27 s (at 50 Mbit/s a busy machine's sender took long enough to
    // drain the queue as fast as it filled it, and nothing was refused).
    const report = await tunnel.udpTransfer('b', 40_000, 400);
    const failed = await sendFailed() - failedBefore;
    assert.ok(failed > 0, `sends were refused and counted: ${JSON.stringify(report)}`);
    assert.equal(report.corrupt, 0);
    assert.equal(report.duplicates, 0);
    assert.ok(report.lost >= failed, `each datagram counted as not sent is one the sink missed (${failed} failed, ${report.lost} lost)`);
    qdisc('del', 'root');
    assert.equal(tunnel.ping('a', 4), 3, 'with the queue gone, pings cross');
    const { sent, received } = await tunnel.transfer('b', 4 * 1024 * 1024);
    assert.equal(received.sha256, sent.sha256, 'and a transfer is byte-exact');
    assert.equal(tunnel.daemons.b.exitCode, null, 'b is running');
  });
});
