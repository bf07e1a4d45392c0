// tundra doctor's checks fed fake values (the host-kernel probes: release and the
// WireGuard module; rp_filter's max rule; MTU overheads; why TUN offloads are off),
// its text form, --skip, and its usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  checkInterface, checkKernel, checkMtu, checkRpFilter, checkTunOffloads, checkWireguardModule, hasUso, kernelVersion,
  restartCommand, shellQuote, TUN_FEATURES, type Daemon, type Link,
} from '../../src/doctor/checks.js';
import { applySkips, formatReport, outerFamily, problems, runDoctor, type Report } from '../../src/doctor/doctor.js';
import type { HostProbe } from '../../src/doctor/probe.js';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';

const link = (name: string, mtu: number, extra: Partial<Link> = {}): Link => ({ name, mtu, up: true, loopback: false, kind: undefined, vnetHeader: undefined, ...extra });
const TUNDRA = ['/usr/bin/node', '/opt/tundra/dist/src/cli/main.js'];

test('kernel release: 6.2 and later have USO on TUN; anything unreadable is skipped, not guessed', () => {
  assert.deepEqual(kernelVersion('6.1.0-18-amd64'), [6, 1]);
  for (const [release, uso] of [['5.15.0-91-generic', false], ['6.1.0-18-amd64', false], ['6.2.0', true], ['6.18.44-fc', true], ['7.0.1', true], ['4.19.0', false]] as const) {
    assert.equal(hasUso(release), uso, release);
    const f = checkKernel(release);
    assert.equal(f.status, uso ? 'ok' : 'problem', release);
    assert.match(f.message, new RegExp(`Linux ${release.replace(/\./g, '\\.')}.*uname -r`));
    if (!uso) assert.match(f.why ?? '', /6\.2/);
  }
  assert.equal(checkKernel('weird').status, 'skipped');
  assert.equal(hasUso('weird'), undefined);
});

test('the kernel WireGuard module: present in any form is a problem that says how to choose tundra', () => {
  assert.equal(checkWireguardModule({ state: 'absent', source: 'modinfo finds none' }).status, 'ok');
  const loaded = checkWireguardModule({ state: 'loaded', source: '/sys/module/wireguard' });
  assert.equal(loaded.status, 'problem');
  assert.match(loaded.message, /is loaded \(\/sys\/module\/wireguard\)/);
  assert.match(loaded.why ?? '', /wg-quick .* kernel's WireGuard, not tundra.*tundra up \/etc\/wireguard\/wg0\.conf/);
  assert.equal(loaded.fix, `printf 'blacklist wireguard\\ninstall wireguard /bin/false\\n' > /etc/modprobe.d/tundra-no-wireguard.conf && modprobe -r wireguard`);
  const loadable = checkWireguardModule({ state: 'loadable', source: 'modinfo wireguard: /lib/modules/x/wireguard.ko' });
  assert.equal(loadable.status, 'problem');
  assert.ok(loadable.fix?.endsWith('tundra-no-wireguard.conf'), 'nothing to unload');
  const builtin = checkWireguardModule({ state: 'builtin', source: 'modules.builtin' });
  assert.equal(builtin.status, 'problem');
  assert.equal(builtin.fix, undefined, 'a built-in cannot be blacklisted');
  assert.match(builtin.why ?? '', /built-in cannot be blacklisted/);
});

test('rp_filter: the value in force is max(all, device); the fix sets to 2 exactly what is 1', () => {
  const s = (name: string, value: string | undefined) => ({ name, path: `/proc/sys/${name}`, value });
  const dev = (d: string, v: string) => ({ dev: d, role: 'uplink', sysctl: s(`net.ipv4.conf.${d}.rp_filter`, v) });
  const allStrict = checkRpFilter(s('net.ipv4.conf.all.rp_filter', '1'), [dev('eth0', '0')]);
  assert.equal(allStrict.status, 'problem');
  assert.equal(allStrict.fix, 'sysctl -w net.ipv4.conf.all.rp_filter=2');
  const devStrict = checkRpFilter(s('net.ipv4.conf.all.rp_filter', '0'), [dev('eth0', '1'), dev('wg0', '0')]);
  assert.equal(devStrict.status, 'problem');
  assert.match(devStrict.message, /on eth0:/);
  assert.equal(devStrict.fix, 'sysctl -w net.ipv4.conf.eth0.rp_filter=2');
  assert.equal(checkRpFilter(s('net.ipv4.conf.all.rp_filter', '2'), [dev('eth0', '1')]).status, 'ok', 'max(2, 1) = 2 is loose');
  assert.equal(checkRpFilter(s('net.ipv4.conf.all.rp_filter', '0'), [dev('eth0', '2')]).status, 'ok');
  assert.equal(checkRpFilter(s('net.ipv4.conf.all.rp_filter', undefined), []).status, 'skipped');
  const vlan = checkRpFilter(s('net.ipv4.conf.all.rp_filter', '0'), [dev('eth0/100', '1')]);
  assert.equal(vlan.fix, 'sysctl -w net.ipv4.conf.eth0/100.rp_filter=2', 'a dot in a device name is a slash for sysctl');
});

test('MTU: the tunnel MTU + 60 (IPv4 outer) or + 80 (IPv6 outer) must fit the uplink; the fix is the largest that does', () => {
  const v4 = { family: 'ipv4' as const, reason: 'r' };
  const v6 = { family: 'ipv6' as const, reason: 'r' };
  assert.equal(checkMtu(link('wg0', 1420), link('eth0', 1500), v6).status, 'ok');
  assert.equal(checkMtu(link('wg0', 1440), link('eth0', 1500), v4).status, 'ok');
  const tight = checkMtu(link('wg0', 1440), link('eth0', 1500), v6);
  assert.equal(tight.status, 'problem');
  assert.match(tight.message, /MTU 1440 \+ 80 .* = 1520 does not fit eth0's MTU 1500/);
  assert.equal(tight.fix, 'ip link set dev wg0 mtu 1420');
  assert.equal(checkMtu(link('wg0', 1420), link('ppp0', 1452), v4).fix, 'ip link set dev wg0 mtu 1392');
  assert.equal(checkMtu(link('wg0', 1420), undefined, v4).status, 'skipped');
  assert.deepEqual(outerFamily(['198.18.0.2:51820', '[fd7a:7d0::2]:51820'], false).family, 'ipv6');
  assert.deepEqual(outerFamily(['198.18.0.2:51820'], true).family, 'ipv4');
  assert.deepEqual(outerFamily([], true).family, 'ipv6');
  assert.deepEqual(outerFamily(undefined, false).family, 'ipv4');
});

test('TUN offloads: why they are off (switch, kernel without USO, wireguard-go), and the restart command', () => {
  const tun = link('wg0', 1420, { kind: 'tun', vnetHeader: true });
  const on = new Map(TUN_FEATURES.map((f) => [f, true]));
  const tundra = (argv: string[], offload?: Daemon['offload']): Daemon => ({ pid: 42, kind: 'tundra', argv, offload });
  assert.equal(checkTunOffloads(tun, on, tundra(TUNDRA), '6.8.0', TUNDRA).status, 'ok');
  const noUso = new Map([...on, ['tx-udp-segmentation', false]]);
  const oldKernel = checkTunOffloads(tun, noUso, tundra(TUNDRA), '6.1.0-18-amd64', TUNDRA);
  assert.equal(oldKernel.status, 'problem');
  assert.match(oldKernel.message, /tx-udp-segmentation off .*Linux 6\.1\.0-18-amd64 has no USO on TUN \(Linux 6\.2\+\)/);
  const off = new Map(TUN_FEATURES.map((f) => [f, false]));
  const argv = ['/usr/bin/node', '/opt/tundra/dist/src/cli/main.js', '--foreground', '--offload', 'none', '--queues=2', 'wg0'];
  const switched = checkTunOffloads(tun, off, tundra(argv, { text: 'none', source: '--offload' }), '6.8.0', TUNDRA);
  assert.match(switched.message, /switched off by --offload=none of the daemon \(pid 42\)/);
  assert.equal(switched.fix, 'kill 42 && timeout 10 tail --pid=42 -f /dev/null; env -u TUNDRA_OFFLOAD -u WG_PROCESS_FOREGROUND /usr/bin/node /opt/tundra/dist/src/cli/main.js --queues=2 wg0');
  const wgGo = checkTunOffloads(link('wg0', 1420, { kind: 'tun', vnetHeader: false }), off, { pid: 7, kind: 'wireguard-go', argv: ['wireguard-go', 'wg0'], offload: undefined }, '6.8.0', TUNDRA);
  assert.match(wgGo.message, /not a tundra interface: wg0 is served by wireguard-go \(pid 7\), which opened the TUN without a vnet header/);
  assert.equal(wgGo.fix, restartCommand({ pid: 7, kind: 'wireguard-go', argv: [], offload: undefined }, 'wg0', TUNDRA));
  assert.ok(wgGo.fix?.endsWith(' /usr/bin/node /opt/tundra/dist/src/cli/main.js wg0'));
  assert.equal(checkTunOffloads(tun, undefined, undefined, '6.8.0', TUNDRA).status, 'skipped');
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote('/a/b-c.js'), '/a/b-c.js');
});

test('interface: missing, not userspace, down, up', () => {
  assert.match(checkInterface('wg0', undefined, false, TUNDRA).fix ?? '', /main\.js wg0$/);
  assert.match(checkInterface('eth0', link('eth0', 1500, { kind: 'veth' }), false, TUNDRA).message, /^not a userspace WireGuard interface: start it with tundra eth0/);
  assert.equal(checkInterface('wg0', link('wg0', 1420, { up: false }), true, TUNDRA).fix, 'ip link set dev wg0 up');
  assert.equal(checkInterface('wg0', link('wg0', 1420), true, TUNDRA).status, 'ok');
});

test('the text form: a line per check, why and fix under each problem, a last line that counts them; --skip', () => {
  const report: Report = {
    interface: 'wg0',
    findings: [
      { check: 'interface', status: 'ok', message: 'wg0 is up', interface: 'wg0' },
      { check: 'ipv4-forwarding', status: 'problem', message: 'IPv4 forwarding is off', why: 'routers forward', fix: 'sysctl -w net.ipv4.ip_forward=1' },
      { check: 'kernel-version', status: 'problem', message: 'old', why: 'no USO' },
      { check: 'mss-clamp', status: 'skipped', message: 'forwarding is off', interface: 'wg0' },
    ],
  };
  assert.equal(formatReport(report), [
    'tundra doctor: wg0',
    'ok       interface (wg0)  wg0 is up',
    'PROBLEM  ipv4-forwarding  IPv4 forwarding is off',
    '         why: routers forward',
    '         fix: sysctl -w net.ipv4.ip_forward=1',
    'PROBLEM  kernel-version   old',
    '         why: no USO',
    '         fix: (no command: see why)',
    'n/a      mss-clamp (wg0)  forwarding is off',
    '2 problems found: run each fix above, then tundra doctor again.',
    '',
  ].join('\n'));
  const skipped = applySkips(report, new Set(['kernel-version']));
  assert.equal(problems(skipped), 1);
  assert.deepEqual(skipped.findings[2], { check: 'kernel-version', status: 'skipped', message: 'not counted (--skip): old' });
  assert.match(formatReport(applySkips(report, new Set(['kernel-version', 'ipv4-forwarding']))), /\nNo problems found\.\n$/);
});

test('usage errors exit 2 before anything is read; --help exits 0', async () => {
  const host: HostProbe = { kernelRelease: () => assert.fail('read'), wireguardModule: () => assert.fail('read') };
  const write = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    assert.equal(await runDoctor(['--bogus'], host), 2);
    assert.equal(await runDoctor(['wg0', 'wg1'], host), 2);
    assert.equal(await runDoctor(['--skip=nonsense'], host), 2);
    assert.equal(await runDoctor(['a-name-longer-than-15'], host), 2);
  } finally {
    process.stderr.write = write;
  }
  const cli = spawnSync(process.execPath, [TUNDRA_MAIN, 'doctor', '--frobnicate'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(cli.status, 2);
  assert.match(cli.stderr, /^tundra doctor: unknown option "--frobnicate"\nUsage: tundra doctor/);
  const help = spawnSync(process.execPath, [TUNDRA_MAIN, 'doctor', '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--skip=LIST/);
});
