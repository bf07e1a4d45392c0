// ICMP "destination unreachable" as the kernel's WireGuard sends it, with tundra on
// the sending side (a; Debian's wireguard-go on b): a packet into the interface that
// no peer's allowed IPs cover, or whose peer has no endpoint, makes ping report the
// destination unreachable and a TCP connect fail with EHOSTUNREACH instead of timing
// out; a burst gets no more errors than the kernel's rate limit allows. With 0, 1
// and 2 queues, offloads on and off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fetchStats } from '../../src/cli/stats.js';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { ICMP_MSGS_BURST, ICMP_MSGS_PER_SEC } from '../../src/stages/unreachable.js';
import { networkTestsUnavailable, waitFor } from '../helpers/netns.js';
import { Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'nstat']);

/** Routed into the interface, covered by no peer's allowed IPs. */
const NO_PEER = { v4: '100.96.9.9', v6: 'fd7a:7d0:9::9' } as const;
/** Covered by a peer that has no endpoint. */
const NO_ENDPOINT = { v4: '100.96.8.8', v6: 'fd7a:7d0:8::8' } as const;
/** The UDP burst: below the TUN queue's 500 packets, so the kernel drops none of it before tundra reads it. */
const BURST = 400;

/** What ping prints for the errors tundra sends (iputils). */
const UNREACHABLE = {
  4: (from: string) => new RegExp(`From ${from.replace(/\./g, '\\.')} icmp_seq=1 Destination Host Unreachable`),
  6: (from: string) => new RegExp(`From ${from} icmp_seq=1 Destination unreachable: Address unreachable`),
} as const;

/** Connects over TCP; prints the error code (EHOSTUNREACH), CONNECTED, or TIMEOUT after 30 s (a bound for a hang). */
const TCP_CONNECT = `
const s = require('node:net').connect({ host: process.argv[1], port: 80 });
const t = setTimeout(() => { console.log('TIMEOUT'); process.exit(0); }, 30000);
s.on('connect', () => { console.log('CONNECTED'); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });`;

/** Sends N small UDP datagrams as fast as it can; prints the wall-clock ms before the first send. */
const UDP_BURST = `
const [address, n] = [process.argv[1], Number(process.argv[2])];
const s = require('node:dgram').createSocket(address.includes(':') ? 'udp6' : 'udp4');
const payload = Buffer.alloc(32);
let left = n;
const start = Date.now();
for (let i = 0; i < n; i++) s.send(payload, 9, address, (err) => {
  if (err) { console.error(err.message); process.exit(1); }
  if (--left === 0) { console.log(JSON.stringify({ start })); s.close(); }
});`;

interface Config {
  queues: number;
  offload: 'all' | 'none';
  /** Cases 2–4 too (case 1 runs everywhere). */
  all: boolean;
}

const CONFIGS: Config[] = [
  { queues: 0, offload: 'all', all: true },
  { queues: 1, offload: 'all', all: true },
  { queues: 2, offload: 'all', all: true },
  { queues: 0, offload: 'none', all: false },
  { queues: 1, offload: 'none', all: false },
  { queues: 2, offload: 'none', all: false },
];

for (const config of CONFIGS) {
  const { queues, offload } = config;
  describe(`ICMP unreachable, ${queues} queues, offloads ${offload}`, { skip, timeout: 180_000 }, () => {
    let tunnel: Tunnel;
    let ns: string;
    let ifName: string;

    before(async () => {
      const env = { TUNDRA_QUEUES: String(queues), ...(offload === 'none' ? { TUNDRA_OFFLOAD: 'none' } : {}) };
      tunnel = new Tunnel(`un${queues}${offload[0]}`, { a: 'tundra', b: 'wireguard-go', env: { a: env } });
      await tunnel.start();
      ns = tunnel.ns('a');
      ifName = tunnel.ifName.a;
      // A peer with allowed IPs but no endpoint, and routes into the interface for both ranges.
      tunnel.wg('a', ['set', ifName, 'peer', encodeKey(publicKeyOf(generatePrivateKey())), 'allowed-ips', '100.96.8.0/24,fd7a:7d0:8::/64']);
      for (const prefix of ['100.96.9.0/24', '100.96.8.0/24', 'fd7a:7d0:9::/64', 'fd7a:7d0:8::/64']) {
        tunnel.hosts.exec(ns, 'ip', ['route', 'add', prefix, 'dev', ifName]);
      }
    });
    after(() => tunnel?.destroy());

    /** Runs a command in a's namespace, whatever its exit status; its standard output and error. */
    function runIn(cmd: string, args: string[]): string {
      const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
      return `${r.stdout}${r.stderr}`;
    }

    const ping = (family: 4 | 6, to: string): string => runIn('ping', [`-${family}`, '-c', '1', '-W', '30', to]);
    const connect = (to: string): string => runIn(process.execPath, ['-e', TCP_CONNECT, to]).trim();

    /** The kernel's ICMP counters in a's namespace. */
    function icmpCounters(): Record<string, number> {
      const names = ['IcmpInDestUnreachs', 'Icmp6InDestUnreachs', 'IcmpInCsumErrors', 'Icmp6InCsumErrors', 'IpExtInCsumErrors'];
      const out = tunnel.hosts.exec(ns, 'nstat', ['-azs', ...names]);
      return Object.fromEntries(names.map((n) => [n, Number(new RegExp(`^${n}\\s+(\\d+)`, 'm').exec(out)?.[1] ?? NaN)]));
    }

    /** tundra's ICMP counters, summed over its queues. */
    async function tundraIcmp(): Promise<{ sent: number; limited: number; drops: Record<string, number> }> {
      const stats = await fetchStats(ifName);
      const sum = (name: string): number => stats.queues.reduce((a, q) => a + (q[name] ?? 0), 0);
      return { sent: sum('icmp_unreachable_sent'), limited: sum('icmp_unreachable_rate_limited'), drops: stats.drops };
    }

    test('(1) ping to an address no peer covers: destination unreachable, over IPv4 and IPv6', () => {
      assert.equal(tunnel.ping('a', 4, 1), 1, 'the tunnel itself works');
      const was = icmpCounters();
      for (const family of [4, 6] as const) {
        const to = NO_PEER[family === 4 ? 'v4' : 'v6'];
        const out = ping(family, to);
        assert.match(out, UNREACHABLE[family](to), `ping -${family} ${to}:\n${out}`);
      }
      const now = icmpCounters();
      assert.equal(now.IcmpInDestUnreachs! - was.IcmpInDestUnreachs!, 1);
      assert.equal(now.Icmp6InDestUnreachs! - was.Icmp6InDestUnreachs!, 1);
    });

    if (config.all) {
      test('(2) a TCP connect to such an address fails with EHOSTUNREACH', () => {
        assert.equal(connect(NO_PEER.v4), 'EHOSTUNREACH');
        assert.equal(connect(NO_PEER.v6), 'EHOSTUNREACH');
      });

      test('(3) a peer with allowed IPs but no endpoint: unreachable too, counted as no_endpoint', async () => {
        for (const family of [4, 6] as const) {
          const to = NO_ENDPOINT[family === 4 ? 'v4' : 'v6'];
          const out = ping(family, to);
          assert.match(out, UNREACHABLE[family](to), `ping -${family} ${to}:\n${out}`);
        }
        assert.equal(connect(NO_ENDPOINT.v4), 'EHOSTUNREACH');
        const { drops } = await tundraIcmp();
        assert.ok((drops.no_endpoint ?? 0) >= 3, `drops: ${JSON.stringify(drops)}`);
      });

      test(`(4) a burst of ${BURST} datagrams gets no more errors than the rate limit allows`, async (t) => {
        const was = await tundraIcmp();
        const kernelBefore = icmpCounters();
        const out = runIn(process.execPath, ['-e', UDP_BURST, NO_PEER.v4, String(BURST)]);
        const line = out.split('\n').find((l) => l.startsWith('{'));
        assert.ok(line !== undefined, `the burst: ${out}`);
        const { start } = JSON.parse(line) as { start: number };
        // Every datagram is either answered or held back by the limit; wait (bounded, for a
        // hang: a busy machine takes longer) until tundra has seen them all.
        let now = was;
        let seen = Date.now();
        for (const giveUp = seen + 30_000; seen < giveUp;) {
          now = await tundraIcmp();
          seen = Date.now();
          if (now.sent + now.limited - was.sent - was.limited >= BURST) break;
          await new Promise((r) => setTimeout(r, 5));
        }
        const sent = now.sent - was.sent;
        const limited = now.limited - was.limited;
        assert.equal(sent + limited, BURST, `answered ${sent}, held back ${limited}`);
        // The bound, whatever the machine's speed: each queue's bucket holds at most the
        // burst (50) when the first datagram comes, and refills at 1000 a second only
        // while tundra works on the burst, which is within [start, seen] (measured on
        // this host's clock, +1 for the rounding of the two millisecond stamps). On a
        // fast machine that is ~100 per queue, far below the 400 sent; on a slow one the
        // bound grows with the time the burst took, so it never fails for slowness.
        const elapsedMs = seen - start + 1;
        const bound = Math.max(1, queues) * (ICMP_MSGS_BURST + Math.ceil((elapsedMs * ICMP_MSGS_PER_SEC) / 1000));
        t.diagnostic(`${sent} errors sent, ${limited} held back, bound ${bound} (${elapsedMs} ms)`);
        assert.ok(sent <= bound, `${sent} errors sent, at most ${bound} allowed (${elapsedMs} ms)`);
        assert.ok(sent >= 1);
        // The kernel took every error that was written, with valid checksums.
        await waitFor('the kernel to count the errors', () => icmpCounters().IcmpInDestUnreachs! - kernelBefore.IcmpInDestUnreachs! >= sent, 30_000);
        const kernel = icmpCounters();
        assert.equal(kernel.IcmpInDestUnreachs! - kernelBefore.IcmpInDestUnreachs!, sent);
        assert.equal(kernel.IcmpInCsumErrors, 0);
        assert.equal(kernel.Icmp6InCsumErrors, 0);
        assert.equal(kernel.IpExtInCsumErrors, 0);
      });
    }
  });
}
