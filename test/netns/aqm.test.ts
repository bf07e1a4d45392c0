// The receive queue's AQM on real bulk flows (src/dataplane/codel.ts). Three tunnels of
// two tundra daemons each, alike but for b's AQM: on with queues 1, on inline, and off.
// b opens with @noble's JavaScript AEAD, many times slower than a's native sealing, so a
// TCP flow from a (reno: loss-based and ECN-capable, where the machine's default may be
// BBR, which heeds neither signal) stands in b's socket queue on any machine. The AQM
// runs with a LAN's numbers (target 1 ms, interval 10 ms) so that it acts within a
// transfer of a few seconds. Each flow goes through all three, and:
// - an ECN-capable flow is CE-marked (nftables in b counts CE on the inner packets b's
//   TUN hands the host) and a Not-ECT one loses datagrams before they are opened,
//   counted as queue_delay and resent by TCP; with the AQM off, neither;
// - the queue the flow stands in is cut back: the mean time its batches waited in the
//   socket is under half of what it is with the AQM off, in the same run;
// - every transfer is byte-exact.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel, type Side } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping', 'nft', 'nstat']);
const TABLE = 'tdr_aqm';
const BYTES = 64 << 20;
const SLOW_OPENER = { TUNDRA_CRYPTO: 'noble' };
const LAN_AQM = { TUNDRA_AQM_TARGET: '1', TUNDRA_AQM_INTERVAL: '10' };

interface Variant {
  readonly name: string;
  readonly b: NodeJS.ProcessEnv;
  readonly on: boolean;
}
const VARIANTS: readonly Variant[] = [
  { name: 'off', b: { ...SLOW_OPENER, TUNDRA_AQM_TARGET: '0' }, on: false },
  { name: 'on, queues 1', b: { ...SLOW_OPENER, ...LAN_AQM, TUNDRA_QUEUES: '1' }, on: true },
  { name: 'on, inline', b: { ...SLOW_OPENER, ...LAN_AQM, TUNDRA_QUEUES: '0' }, on: true },
];

/** What a flow did to b's queue, from b's counters and nftables. */
interface FlowResult {
  marked: number;
  dropped: number;
  meanSojournMs: number;
  innerCe: number;
  innerEct: number;
  retransmitted: number;
}

describe('the receive queue\'s AQM on a bulk TCP flow', { skip, timeout: 300_000 }, () => {
  const tunnels: Tunnel[] = [];

  /** Counter `name` of b's table: packets. */
  const counted = (tunnel: Tunnel, name: string): number => tunnel.nftPackets('b', TABLE, name);

  function sysctl(tunnel: Tunnel, side: Side, key: string, value: string): void {
    tunnel.hosts.exec(tunnel.ns(side), 'sh', ['-c', `echo ${value} > /proc/sys/net/ipv4/${key}`]);
  }

  async function snapshot(tunnel: Tunnel): Promise<FlowResult & { sojournBatches: number; sojournSeconds: number }> {
    const c = await tunnel.counters('b');
    const sum = (name: string): number => c.queues.reduce((n, q) => n + (q[name] ?? 0), 0);
    return {
      marked: sum('aqm_ce_marked'), dropped: c.drops.queue_delay ?? 0, meanSojournMs: 0,
      sojournBatches: sum('socket_sojourn_batches'), sojournSeconds: sum('socket_sojourn_seconds_sum'),
      innerCe: counted(tunnel, 'inner_ce'), innerEct: counted(tunnel, 'inner_ect'), retransmitted: tunnel.nstat('a', ['TcpRetransSegs']).TcpRetransSegs!,
    };
  }

  /** One byte-exact transfer from a to b; what it did. */
  async function flow(tunnel: Tunnel): Promise<FlowResult> {
    const before = await snapshot(tunnel);
    const { sent, received } = await tunnel.transfer('a', BYTES);
    assert.equal(received.bytes, BYTES);
    assert.equal(received.sha256, sent.sha256, 'byte-exact');
    const now = await snapshot(tunnel);
    const batches = now.sojournBatches - before.sojournBatches;
    assert.ok(batches > 0, 'the socket sojourn was measured');
    return {
      marked: now.marked - before.marked, dropped: now.dropped - before.dropped,
      meanSojournMs: ((now.sojournSeconds - before.sojournSeconds) / batches) * 1000,
      innerCe: now.innerCe - before.innerCe, innerEct: now.innerEct - before.innerEct, retransmitted: now.retransmitted - before.retransmitted,
    };
  }

  /** The flow through each tunnel in turn. */
  async function flows(t: { diagnostic(message: string): void }): Promise<FlowResult[]> {
    const results: FlowResult[] = [];
    for (const [k, tunnel] of tunnels.entries()) {
      const r = await flow(tunnel);
      t.diagnostic(`${VARIANTS[k]!.name}: ${JSON.stringify({ ...r, meanSojournMs: Number(r.meanSojournMs.toFixed(2)) })}`);
      results.push(r);
    }
    return results;
  }

  before(async () => {
    for (const [k, variant] of VARIANTS.entries()) {
      const tunnel = new Tunnel(`aqm${k}`, { a: 'tundra', b: 'tundra', env: { b: variant.b } });
      tunnels.push(tunnel);
      await tunnel.start();
      assert.ok(tunnel.pingUntilReply('a'), `the tunnel works (${variant.name})`);
      sysctl(tunnel, 'a', 'tcp_congestion_control', 'reno');
      const tun = tunnel.ifName.b;
      tunnel.hosts.exec(tunnel.ns('b'), 'nft', ['-f', '-'], `
        table inet ${TABLE} {
          counter inner_ce {}
          counter inner_ect {}
          chain inner {
            type filter hook input priority filter; policy accept;
            iifname "${tun}" tcp dport 5201 ip ecn ce counter name inner_ce
            iifname "${tun}" tcp dport 5201 ip ecn ect0 counter name inner_ect
          }
        }`);
    }
  });
  after(() => {
    for (const tunnel of tunnels) tunnel.destroy();
  });

  test('an ECN-capable flow: CE-marked on its inner packets, never dropped for it, and its queue cut back', async (t) => {
    for (const tunnel of tunnels) for (const side of ['a', 'b'] as const) sysctl(tunnel, side, 'tcp_ecn', '1');
    const [off, ...on] = await flows(t);
    assert.ok(off!.innerEct > 0, 'the flow is ECN-capable');
    assert.deepEqual([off!.marked, off!.innerCe], [0, 0], 'no marks with the AQM off');
    for (const [k, r] of on.entries()) {
      const name = VARIANTS[k + 1]!.name;
      assert.ok(r.marked > 0, `${name}: tundra marked ${r.marked} datagrams CE`);
      assert.ok(r.innerCe > 0, `${name}: ${r.innerCe} inner packets arrived with CE`);
      assert.ok(r.meanSojournMs < off!.meanSojournMs / 2, `${name}: batches waited ${r.meanSojournMs} ms on average, against ${off!.meanSojournMs} ms with the AQM off`);
    }
  });

  test('a Not-ECT flow: datagrams dropped before opening (queue_delay) and resent by TCP, and its queue cut back', async (t) => {
    for (const tunnel of tunnels) sysctl(tunnel, 'a', 'tcp_ecn', '0');
    const [off, ...on] = await flows(t);
    assert.equal(off!.dropped, 0, 'no drops with the AQM off');
    for (const [k, r] of on.entries()) {
      const name = VARIANTS[k + 1]!.name;
      assert.ok(r.dropped > 0, `${name}: tundra dropped ${r.dropped} datagrams for queue delay`);
      assert.ok(r.retransmitted > 0, `${name}: the sender resent ${r.retransmitted} segments`);
      assert.equal(r.marked, 0, `${name}: a Not-ECT flow is never marked`);
      assert.ok(r.meanSojournMs < off!.meanSojournMs / 2, `${name}: batches waited ${r.meanSojournMs} ms on average, against ${off!.meanSojournMs} ms with the AQM off`);
    }
  });
});
