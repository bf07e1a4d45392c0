// Segmentation offloads end to end, in namespaces: byte-exact TCP transfers both ways
// and a UDP transfer with sequence checks, with every offload on, all off and each one
// off, against tundra, Debian's wireguard-go and (when given) upstream wireguard-go;
// checksums checked where the kernel would hide them (nstat after every transfer, and
// a run forwarded out of a veth without TX checksumming); the UDP GSO fallbacks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { OFFLOAD_NAMES, type OffloadName } from '../../src/offload/settings.js';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel, UPSTREAM_WIREGUARD_GO, type Implementation, type Side } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'nstat', 'ethtool']);
const FULL = 200 * 1024 * 1024;
const SMALL = 20 * 1024 * 1024;
/** Datagrams of the UDP transfer, at a rate every configuration carries without loss on an idle machine. */
const UDP_COUNT = 20_000;
const UDP_MBITS = 100;
/**
 * Debian's wireguard-go keeps the kernel's default socket receive buffer (212 KB, ~90 of
 * these datagrams: 9 ms at 100 Mbit/s), so a few milliseconds without CPU — the suite runs
 * two files at once on two cores — drop datagrams before it reads them. At this rate the
 * same buffer holds 60 ms (at 30 Mbit/s, 30 ms were seen to fall short once in seven
 * runs: 59 of 20,000 lost). A datagram may go missing only where a drop was counted.
 */
const UDP_MBITS_DEBIAN = 15;

type Counters = Awaited<ReturnType<Tunnel['counters']>>;

/** TCP both ways (and over IPv6 from a), UDP from a; everything byte-exact and no checksum error anywhere. */
async function exercise(tunnel: Tunnel, bytes: number, udpMbits = UDP_MBITS): Promise<void> {
  for (const [from, family] of [['a', 4], ['b', 4], ['a', 6]] as [Side, 4 | 6][]) {
    const { sent, received } = await tunnel.transfer(from, bytes, family);
    assert.equal(received.bytes, bytes, `TCP/IPv${family} from ${from}: bytes`);
    assert.equal(received.sha256, sent.sha256, `TCP/IPv${family} from ${from}: SHA-256`);
  }
  await udpExact(tunnel, udpMbits);
  for (const side of ['a', 'b'] as const) {
    assert.deepEqual(tunnel.checksumErrors(side), { tcp: 0, udp: 0 }, `no checksum errors in ${side}'s namespace`);
  }
}

/**
 * A UDP transfer from a: what arrives comes once, in order and intact, and a datagram goes
 * missing only where a drop was counted. Not "none lost": UDP may drop, and on a
 * busy machine a reader without CPU for some milliseconds (a's or b's daemon, the sink)
 * overflows its socket buffer, as the kernel counts; what the test catches is a datagram
 * lost without a trace (tundra losing one and counting nothing) or damaged. On an idle
 * machine nothing is dropped, so every datagram must arrive.
 */
async function udpExact(tunnel: Tunnel, mbits: number): Promise<void> {
  const before = await dropsOf(tunnel);
  const udp = await tunnel.udpTransfer('a', UDP_COUNT, mbits);
  const after = await dropsOf(tunnel);
  const dropped: Record<string, number> = {};
  for (const [k, n] of Object.entries(after)) if (n !== before[k]) dropped[k] = n - (before[k] ?? 0);
  const counted = Object.values(dropped).reduce((sum, n) => sum + n, 0);
  assert.deepEqual(
    { arrived: udp.received + udp.lost, reordered: udp.reordered, duplicates: udp.duplicates, corrupt: udp.corrupt },
    { arrived: UDP_COUNT, reordered: 0, duplicates: 0, corrupt: 0 },
    'UDP: what arrived came once, in order, intact',
  );
  assert.ok(udp.lost <= counted, `UDP: ${udp.lost} of ${UDP_COUNT} lost, ${counted} drops counted: ${JSON.stringify(dropped)}`);
}

/** Both sides' drop counters, in one record. */
async function dropsOf(tunnel: Tunnel): Promise<Record<string, number>> {
  const drops: Record<string, number> = {};
  for (const side of ['a', 'b'] as const) for (const [k, n] of Object.entries(await tunnel.drops(side))) drops[`${side} ${k}`] = n;
  return drops;
}

function features(tunnel: Tunnel, side: Side): Record<string, string> {
  const out = tunnel.hosts.exec(tunnel.ns(side), 'ethtool', ['-k', tunnel.ifName[side]]);
  return Object.fromEntries([...out.matchAll(/^\s*([a-z0-9-]+): (on|off)/gm)].map((m) => [m[1]!, m[2]!]));
}

function offloadEnv(value: string): { a: NodeJS.ProcessEnv; b: NodeJS.ProcessEnv } {
  return { a: { TUNDRA_OFFLOAD: value }, b: { TUNDRA_OFFLOAD: value } };
}

describe('offloads on (the default), tundra ↔ tundra', { skip, timeout: 300_000 }, () => {
  let tunnel: Tunnel;
  let counters: Record<Side, Counters>;
  before(async () => {
    tunnel = new Tunnel('on', { a: 'tundra', b: 'tundra' });
    await tunnel.start();
  });
  after(() => tunnel?.destroy());

  test('ethtool shows TSO, TSO6 and USO on', () => {
    const f = features(tunnel, 'a');
    assert.equal(f['tx-tcp-segmentation'], 'on');
    assert.equal(f['tx-tcp6-segmentation'], 'on');
    assert.equal(f['tx-udp-segmentation'], 'on');
  });

  test('200 MB TCP each way and over IPv6, a UDP transfer: byte-exact, no checksum errors', async () => {
    await exercise(tunnel, FULL);
    counters = { a: await tunnel.counters('a'), b: await tunnel.counters('b') };
  });

  test('the offloads were used: super-packets split, writes coalesced, GSO sends, GRO receives', () => {
    for (const side of ['a', 'b'] as const) {
      const o = counters[side].offload;
      assert.ok(o.tun_super_packets! > 0 && o.tun_segments! > o.tun_super_packets!, `${side}: super-packets read and split`);
      assert.ok(o.coalesced_items! > 0 && o.coalesced_packets! > o.coalesced_items!, `${side}: coalesced TUN writes`);
      assert.ok(o.gso_sends! > 0 && o.gso_datagrams! > o.gso_sends!, `${side}: UDP GSO sends`);
      assert.ok(o.gro_receives! > 0 && o.gro_datagrams! > o.gro_receives!, `${side}: UDP GRO receives`);
      assert.deepEqual(o.fallbacks, {}, `${side}: no fallback taken`);
    }
  });
});

describe('all offloads off (TUNDRA_OFFLOAD=none), tundra ↔ tundra', { skip, timeout: 300_000 }, () => {
  let tunnel: Tunnel;
  before(async () => {
    tunnel = new Tunnel('none', { a: 'tundra', b: 'tundra', env: offloadEnv('none') });
    await tunnel.start();
  });
  after(() => tunnel?.destroy());

  test('ethtool shows no segmentation offload', () => {
    const f = features(tunnel, 'a');
    assert.equal(f['tx-tcp-segmentation'], 'off');
    assert.equal(f['tx-udp-segmentation'], 'off');
  });

  test('200 MB TCP each way and over IPv6, a UDP transfer: byte-exact, no checksum errors', async () => {
    await exercise(tunnel, FULL);
  });

  test('no offload counter moved', async () => {
    for (const side of ['a', 'b'] as const) {
      const o = (await tunnel.counters(side)).offload;
      for (const name of ['tun_super_packets', 'coalesced_items', 'gso_sends', 'gro_receives']) assert.equal(o[name], 0, `${side}: ${name}`);
    }
  });
});

/** The counter that must stay at 0 with each single switch off (TSO and USO show in ethtool instead). */
const UNUSED: Record<OffloadName, string> = {
  'tun-tso': '',
  'tun-uso': '',
  'tun-gro': 'coalesced_items',
  'udp-gso': 'gso_sends',
  'udp-gro': 'gro_receives',
};

for (const name of OFFLOAD_NAMES) {
  describe(`offloads on but ${name} (TUNDRA_OFFLOAD=-${name}), tundra ↔ tundra`, { skip, timeout: 120_000 }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(`x${OFFLOAD_NAMES.indexOf(name)}`, { a: 'tundra', b: 'tundra', env: offloadEnv(`-${name}`) });
      await tunnel.start();
    });
    after(() => tunnel?.destroy());

    test('20 MB TCP each way and over IPv6, a UDP transfer: byte-exact, no checksum errors', async () => {
      await exercise(tunnel, SMALL);
    });

    test(`${name} is off`, async () => {
      const f = features(tunnel, 'a');
      if (name === 'tun-tso') assert.deepEqual([f['tx-tcp-segmentation'], f['tx-tcp6-segmentation'], f['tx-udp-segmentation']], ['off', 'off', 'on']);
      if (name === 'tun-uso') assert.deepEqual([f['tx-tcp-segmentation'], f['tx-udp-segmentation']], ['on', 'off']);
      const counter = UNUSED[name];
      if (counter !== '') {
        for (const side of ['a', 'b'] as const) assert.equal((await tunnel.counters(side)).offload[counter], 0, `${side}: ${counter}`);
      }
    });
  });
}

const PEERS: [Implementation, string, string | false][] = [
  ['wireguard-go', 'Debian wireguard-go (no offloads)', false],
  ['wireguard-go-upstream', 'upstream wireguard-go 0.0.20250522 (offloads)',
    UPSTREAM_WIREGUARD_GO === undefined ? 'TUNDRA_UPSTREAM_WIREGUARD_GO does not name the upstream wireguard-go binary' : false],
];
for (const [peer, label, peerSkip] of PEERS) {
  describe(`tundra (offloads on) ↔ ${label}`, { skip: skip || peerSkip, timeout: 300_000 }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(peer === 'wireguard-go' ? 'dw' : 'uw', { a: 'tundra', b: peer });
      await tunnel.start();
    });
    after(() => tunnel?.destroy());

    test('TCP each way and over IPv6, a UDP transfer: byte-exact, no checksum errors', async () => {
      await exercise(tunnel, peer === 'wireguard-go' ? SMALL : FULL, peer === 'wireguard-go' ? UDP_MBITS_DEBIAN : UDP_MBITS);
    });
  });
}

describe('UDP GSO refused by the kernel: every datagram still arrives', { skip, timeout: 120_000 }, () => {
  let tunnel: Tunnel;
  before(async () => {
    tunnel = new Tunnel('gf', { a: 'tundra', b: 'tundra' });
    await tunnel.start();
  });
  after(() => tunnel?.destroy());

  test('an underlay MTU of 1280, below the datagrams: GSO sends are resent one by one (and fragmented)', async () => {
    for (const side of ['a', 'b'] as const) tunnel.hosts.exec(tunnel.ns(side), 'ip', ['link', 'set', 'dev', vethOf(tunnel, side), 'mtu', '1280']);
    const { sent, received } = await tunnel.transfer('a', SMALL, 4);
    assert.equal(received.sha256, sent.sha256);
    assert.ok(((await tunnel.counters('a')).offload.fallbacks.udp_gso_resent ?? 0) > 0, 'the resend fallback was counted');
    for (const side of ['a', 'b'] as const) tunnel.hosts.exec(tunnel.ns(side), 'ip', ['link', 'set', 'dev', vethOf(tunnel, side), 'mtu', '1500']);
  });

  // Before Linux 6.11 the kernel refuses GSO out of such a device with EIO (tundra then
  // turns GSO off for the family, once); later kernels checksum in software instead.
  test('an egress veth without TX checksumming: nothing is lost uncounted', async () => {
    tunnel.hosts.exec(tunnel.ns('a'), 'ethtool', ['-K', vethOf(tunnel, 'a'), 'tx-checksumming', 'off']);
    const { sent, received } = await tunnel.transfer('a', SMALL, 4);
    assert.equal(received.sha256, sent.sha256);
    await udpExact(tunnel, UDP_MBITS);
    assert.ok(((await tunnel.counters('a')).offload.fallbacks.udp_gso_eio ?? 0) <= 1, 'GSO is turned off at most once per family');
    assert.deepEqual(tunnel.checksumErrors('b'), { tcp: 0, udp: 0 });
  });
});

describe('coalesced writes forwarded out of a veth without TX checksumming', { skip, timeout: 120_000 }, () => {
  // a ═ tunnel ═ b ── veth (tx-checksumming off on b's end) ── c: b routes between its
  // TUN and c, so the kernel must complete the partial checksums of tundra's coalesced
  // writes in software before they leave; c checks every one.
  let tunnel: Tunnel;
  const c = `tdr-fw${process.pid % 100000}-c`;
  const [vb, vc] = [`tdrfv${process.pid % 100000}b`, `tdrfv${process.pid % 100000}c`];
  const ipc = (args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  before(async () => {
    tunnel = new Tunnel('fw', { a: 'tundra', b: 'tundra' });
    await tunnel.start();
    ipc(['netns', 'add', c]);
    ipc(['-n', tunnel.ns('b'), 'link', 'add', vb, 'type', 'veth', 'peer', 'name', vc, 'netns', c]);
    ipc(['-n', tunnel.ns('b'), 'addr', 'add', '100.96.1.1/24', 'dev', vb]);
    ipc(['-n', c, 'addr', 'add', '100.96.1.2/24', 'dev', vc]);
    ipc(['-n', tunnel.ns('b'), 'link', 'set', vb, 'up']);
    ipc(['-n', c, 'link', 'set', vc, 'up']);
    ipc(['-n', c, 'link', 'set', 'lo', 'up']);
    ipc(['-n', c, 'route', 'add', '100.96.0.0/24', 'via', '100.96.1.1']);
    tunnel.hosts.exec(tunnel.ns('b'), 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    tunnel.hosts.exec(tunnel.ns('b'), 'ethtool', ['-K', vb, 'tx-checksumming', 'off']);
    // a reaches c through the tunnel: b's peer on a also carries 100.96.1.0/24.
    const peerB = tunnel.wg('a', ['show', tunnel.ifName.a, 'peers']).trim();
    tunnel.wg('a', ['set', tunnel.ifName.a, 'peer', peerB, 'allowed-ips', '100.96.0.2/32,fd7a:7d0::2/128,100.96.1.0/24']);
    tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['route', 'add', '100.96.1.0/24', 'dev', tunnel.ifName.a]);
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', c]);
    tunnel?.destroy();
  });

  test('200 MB from a to c arrive byte for byte and c counts no checksum error', async () => {
    const { sent, received } = await tunnel.transferBetween('a', c, '100.96.1.2', FULL);
    assert.equal(received.sha256, sent.sha256);
    const out = spawnSync('ip', ['netns', 'exec', c, 'nstat', '-azs', 'TcpInCsumErrors'], { encoding: 'utf8' }).stdout;
    assert.match(out, /^TcpInCsumErrors\s+0\s/m);
    assert.ok((await tunnel.counters('b')).offload.coalesced_items! > 0, 'b wrote coalesced packets');
  });
});

function vethOf(tunnel: Tunnel, side: Side): string {
  return tunnel.hosts.exec(tunnel.ns(side), 'ip', ['-o', 'link', 'show', 'type', 'veth']).split(':')[1]!.trim().split('@')[0]!;
}
