// `tundra doctor` on a router namespace: each finding a namespace can show is set up
// badly, doctor must report it (exit 1), its printed fix is run as written with sh in
// the namespace, and doctor must then say ok; at the end the router is well set up
// and doctor exits 0. Namespace a is the router (default route out of its veth), b
// the upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generatePrivateKey, publicKeyOf, encodeKey } from '../../src/crypto/keys.js';
import { checkKernel, checkWireguardModule, type Finding } from '../../src/doctor/checks.js';
import type { Report } from '../../src/doctor/doctor.js';
import { realHostProbe, uapiDaemon } from '../../src/doctor/probe.js';
import { networkTestsUnavailable, run, TwoHosts, waitFor } from '../helpers/netns.js';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';

const skip = networkTestsUnavailable(['ip', 'ethtool', 'nft', 'wg', 'wireguard-go', 'sysctl', 'timeout', 'tail']);

describe('tundra doctor on a router namespace', { skip, timeout: 90_000 }, () => {
  let hosts: TwoHosts;
  const id = process.pid % 100000;
  const wg = `tdr${id}dw`;
  const wgGo = `tdr${id}dg`;
  let uplink: string;
  // Host-kernel checks a namespace cannot change: left out of the exit status only where this host fails them.
  const hostSkips = [checkKernel(realHostProbe.kernelRelease()), checkWireguardModule(realHostProbe.wireguardModule())]
    .filter((f) => f.status === 'problem').map((f) => f.check);

  const doctor = (...args: string[]): { status: number | null; report: Report; stderr: string } => {
    const r = spawnSync('ip', ['netns', 'exec', hosts.a, process.execPath, TUNDRA_MAIN, 'doctor', '--json', ...args], { encoding: 'utf8', timeout: 20_000 });
    let report: Report;
    try {
      report = JSON.parse(r.stdout) as Report;
    } catch {
      throw new Error(`doctor printed no JSON (status ${r.status}): ${r.stdout}${r.stderr}`);
    }
    return { status: r.status, report, stderr: r.stderr };
  };
  const finding = (report: Report, check: string, iface?: string): Finding => {
    // System-wide findings carry no interface.
    const f = report.findings.find((x) => x.check === check && (iface === undefined || x.interface === undefined || x.interface === iface));
    assert.ok(f, `no ${check} finding in ${JSON.stringify(report)}`);
    return f;
  };
  /** Doctor must see the problem (exit 1); its fix, run with sh in the namespace, must make it ok. */
  const problemThenFix = async (check: string, iface: string | undefined, message: RegExp): Promise<Finding> => {
    const before = doctor(...(iface === undefined ? [] : [iface]));
    assert.equal(before.status, 1, JSON.stringify(before.report));
    const f = finding(before.report, check, iface);
    assert.equal(f.status, 'problem', JSON.stringify(f));
    assert.match(f.message, message);
    assert.ok(f.why, 'a problem says why it matters');
    assert.ok(f.fix, 'a problem has a fix');
    run('ip', ['netns', 'exec', hosts.a, 'sh', '-c', f.fix]);
    const fixed = finding(doctor(...(iface === undefined ? [] : [iface])).report, check, iface);
    assert.equal(fixed.status, 'ok', `after "${f.fix}": ${JSON.stringify(fixed)}`);
    return fixed;
  };
  const sysctl = (setting: string): void => void run('ip', ['netns', 'exec', hosts.a, 'sysctl', '-qw', setting]);
  /** The tundra daemons serving our interfaces in namespace a (they were started by this test or by a fix it ran). */
  const daemonOf = (name: string) => uapiDaemon(name, run('ip', ['netns', 'exec', hosts.a, 'cat', '/proc/net/unix']));
  const startTundra = (name: string, env: NodeJS.ProcessEnv): void => {
    // Without -f it goes to the background once the interface and its socket are ready.
    const r = spawnSync('ip', ['netns', 'exec', hosts.a, process.execPath, TUNDRA_MAIN, name], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
  };

  before(() => {
    hosts = new TwoHosts('doc');
    uplink = run('ip', ['-n', hosts.a, '-o', 'link', 'show', 'type', 'veth']).split(':')[1]!.trim().split('@')[0]!;
    run('ip', ['-n', hosts.a, 'route', 'add', 'default', 'via', hosts.underlayB]);
    // A fresh namespace's defaults, set explicitly: each test makes its own finding bad.
    sysctl('net.ipv4.conf.all.rp_filter=0');
    sysctl('net.ipv4.conf.default.rp_filter=0');
    sysctl(`net.ipv4.conf.${uplink}.rp_filter=0`);
  });
  after(() => {
    for (const name of [wg, wgGo]) {
      const daemon = (() => { try { return daemonOf(name); } catch { return undefined; } })();
      if (daemon !== undefined && daemon.kind === 'tundra') {
        try { process.kill(daemon.pid, 'SIGTERM'); } catch { /* gone */ }
      }
    }
    hosts?.destroy();
  });

  test('TUN offloads: off with TUNDRA_OFFLOAD=none, on after a restart without it', async () => {
    startTundra(wg, { TUNDRA_OFFLOAD: 'none' });
    const daemon = daemonOf(wg);
    assert.equal(daemon?.kind, 'tundra');
    const ok = await problemThenFix('tun-offloads', wg, new RegExp(`tx-tcp-segmentation.*off.*switched off by TUNDRA_OFFLOAD=none of the daemon \\(pid ${daemon!.pid}\\)`));
    assert.match(ok.message, /tx-tcp-segmentation, tx-tcp6-segmentation, tx-udp-segmentation on \(ethtool -k/);
    assert.notEqual(daemonOf(wg)?.pid, daemon!.pid, 'the fix restarted the daemon');
  });

  test('TUN offloads: not a tundra interface (wireguard-go), served by tundra after the fix', async () => {
    const { child } = await startWireguardGo(hosts, hosts.a, 'wireguard-go', wgGo);
    await problemThenFix('tun-offloads', wgGo, new RegExp(`not a tundra interface: ${wgGo} is served by wireguard-go \\(pid ${child.pid}\\)`));
    await waitFor('wireguard-go to end', () => child.exitCode !== null || child.signalCode !== null, 10_000);
    assert.equal(daemonOf(wgGo)?.kind, 'tundra');
  });

  test('interface: down, then up; missing; not a userspace WireGuard interface', async () => {
    await problemThenFix('interface', wg, new RegExp(`${wg} is down`));
    const missing = doctor(`tdr${id}none`);
    assert.equal(missing.status, 1);
    assert.match(finding(missing.report, 'interface').message, /no interface tdr\d+none in this network namespace/);
    const veth = doctor(uplink);
    assert.equal(veth.status, 1);
    assert.match(finding(veth.report, 'interface').message, new RegExp(`not a userspace WireGuard interface: start it with tundra ${uplink}`));
    assert.equal(finding(veth.report, 'tun-offloads').status, 'skipped');
  });

  test('without INTERFACE: every interface with a UAPI socket whose link is here, and only those', () => {
    const { report } = doctor();
    assert.equal(report.interface, null);
    const checked = new Set(report.findings.filter((f) => f.check === 'interface').map((f) => f.interface));
    assert.deepEqual([...checked].sort(), [wgGo, wg].sort());
  });

  test('forwarding: IPv4 and IPv6 off, then on', async () => {
    const v4 = await problemThenFix('ipv4-forwarding', wg, /net\.ipv4\.ip_forward = 0 \(\/proc\/sys\/net\/ipv4\/ip_forward\)/);
    assert.match(v4.message, /net\.ipv4\.ip_forward = 1/);
    await problemThenFix('ipv6-forwarding', wg, /net\.ipv6\.conf\.all\.forwarding = 0/);
  });

  test('rp_filter: strict on all, then strict on the WireGuard interface, then loose', async () => {
    sysctl('net.ipv4.conf.all.rp_filter=1');
    await problemThenFix('rp-filter', wg, /strict reverse-path filtering \(rp_filter 1\) on .*net\.ipv4\.conf\.all\.rp_filter = 1/);
    // all = 2 would win over the device's 1 (the value in force is the larger): back to 0 first.
    sysctl('net.ipv4.conf.all.rp_filter=0');
    sysctl(`net.ipv4.conf.${wg}.rp_filter=1`);
    const ok = await problemThenFix('rp-filter', wg, new RegExp(`on ${wg}:.*${wg} \\(WireGuard interface\\) 1, in force max\\(all, ${wg}\\) = 1`));
    assert.match(ok.message, new RegExp(`${wg} \\(WireGuard interface\\) 2`));
  });

  test('MTU: too big for the uplink over IPv4 (+60), then over IPv6 (+80, a peer with an IPv6 endpoint)', async () => {
    run('ip', ['-n', hosts.a, 'link', 'set', 'dev', uplink, 'mtu', '1400']);
    await problemThenFix('mtu', wg, new RegExp(`MTU 1420 \\+ 60 \\(WireGuard over IPv4: no peer endpoint yet and no IPv6 default route\\) = 1480 does not fit ${uplink}'s MTU 1400`));
    assert.match(run('ip', ['-n', hosts.a, 'link', 'show', wg]), /mtu 1340 /);
    const peer = encodeKey(publicKeyOf(generatePrivateKey()));
    run('ip', ['netns', 'exec', hosts.a, 'wg', 'set', wg, 'peer', peer, 'endpoint', '[fd7a:7d0::9]:51820', 'allowed-ips', '100.96.9.0/24']);
    await problemThenFix('mtu', wg, /MTU 1340 \+ 80 \(WireGuard over IPv6: peer endpoint \[fd7a:7d0::9\]:51820\) = 1420 does not fit/);
    assert.match(run('ip', ['-n', hosts.a, 'link', 'show', wg]), /mtu 1320 /);
  });

  test('MSS: no clamp while forwarding into a smaller tunnel MTU, then the printed nft rule', async () => {
    const ok = await problemThenFix('mss-clamp', wg, new RegExp(`no TCP MSS clamping, with ${wg}'s MTU 1320 below .*${uplink} 1400.*nft list ruleset: no maxseg rule`));
    assert.match(ok.message, /TCP MSS clamping is there \(nft list ruleset: tcp option maxseg size set rt mtu\)/);
    assert.match(run('ip', ['netns', 'exec', hosts.a, 'nft', 'list', 'ruleset']), new RegExp(`oifname "${wg}" tcp flags syn tcp option maxseg size set rt mtu`));
  });

  test('uplink offloads: rx-udp-gro-forwarding off and rx-gro-list on, then tuned', async () => {
    run('ip', ['netns', 'exec', hosts.a, 'ethtool', '-K', uplink, 'rx-udp-gro-forwarding', 'off', 'rx-gro-list', 'on']);
    const before = finding(doctor(wg).report, 'uplink-offloads');
    assert.equal(before.fix, `ethtool -K ${uplink} rx-udp-gro-forwarding on rx-gro-list off`);
    assert.match(before.why ?? '', /scripts\/ethtool-tune\.sh --interface/);
    await problemThenFix('uplink-offloads', wg, new RegExp(`rx-udp-gro-forwarding off, rx-gro-list on on ${uplink}, the default route's interface`));
  });

  test('a well set-up router: every check ok or not applicable, exit 0, and the text form says so', (t) => {
    if (hostSkips.length > 0) t.diagnostic(`this host fails ${hostSkips.join(', ')}: left out with --skip`);
    const skips = hostSkips.length > 0 ? [`--skip=${hostSkips.join(',')}`] : [];
    const { status, report } = doctor(wg, ...skips);
    assert.deepEqual(report.findings.filter((f) => f.status === 'problem'), []);
    assert.equal(status, 0);
    for (const check of ['interface', 'tun-offloads', 'mtu', 'mss-clamp', 'rp-filter', 'ipv4-forwarding', 'ipv6-forwarding', 'uplink-offloads']) {
      assert.equal(finding(report, check).status, 'ok', check);
    }
    const text = spawnSync('ip', ['netns', 'exec', hosts.a, process.execPath, TUNDRA_MAIN, 'doctor', wg, ...skips], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(text.status, 0, text.stdout + text.stderr);
    assert.match(text.stdout, new RegExp(`^tundra doctor: ${wg}\nok +interface \\(${wg}\\) +${wg} is up`));
    assert.match(text.stdout, /\nNo problems found\.\n$/);
  });
});
