// `tundra doctor [--json] [--skip=CHECK,…] [INTERFACE]`: checks a router's set-up in
// the network namespace it runs in and says what is wrong and the command that fixes
// it. Exit status 0 when nothing is wrong, 1 when something is, 2 for a usage error.
import { fileURLToPath } from 'node:url';
import { interfaceNameProblem } from '../tun/tun.js';
import {
  checkForwarding, checkInterface, checkKernel, checkMss, checkMtu, checkRpFilter, checkTunOffloads,
  checkUplinkOffloads, checkWireguardModule, confName, type ClampSearch, type Finding, type Link,
} from './checks.js';
import {
  defaultRouteDevice, ethtoolFeatures, findClamp, hasUapiSocket, links, readSysctl, realHostProbe,
  uapiDaemon, uapiEndpoints, uapiSocketNames, type HostProbe,
} from './probe.js';

export interface Report {
  /** The interface asked about, or null when every UAPI interface of the namespace was checked. */
  interface: string | null;
  findings: Finding[];
}

export const CHECKS = [
  'interface', 'tun-offloads', 'mtu', 'mss-clamp', 'rp-filter', 'ipv4-forwarding', 'ipv6-forwarding',
  'uplink-offloads', 'kernel-version', 'wireguard-module',
] as const;

/** How to start tundra from this package: the node running doctor and the CLI next to it. */
const TUNDRA = [process.execPath, fileURLToPath(new URL('../cli/main.js', import.meta.url))];
const TUNE_SCRIPT = fileURLToPath(new URL('../../../scripts/ethtool-tune.sh', import.meta.url));

export const DOCTOR_USAGE = `Usage: tundra doctor [--json] [--skip=CHECK,…] [INTERFACE]

Checks this network namespace's set-up as a WireGuard router: INTERFACE (or every
interface with a socket in /var/run/wireguard), forwarding, rp_filter, MTU and MSS
clamping, the TUN's and the uplink's offloads, the kernel. Prints one line per check
and, for each problem, why it matters and a command that fixes it.
  --json        one JSON object: {interface, findings: [{check, status, message, why?, fix?, interface?}]}
  --skip=LIST   do not count these checks (${CHECKS.join(', ')})
Exit status: 0 nothing wrong, 1 a problem found, 2 usage error.
`;

/** Runs every check; `host` gives the kernel's facts (release, WireGuard module). */
export async function diagnose(name: string | undefined, host: HostProbe = realHostProbe): Promise<Report> {
  const findings: Finding[] = [];
  const all = links();
  const byName = new Map(all.map((l) => [l.name, l]));
  const v4Default = defaultRouteDevice(4);
  const v6Default = defaultRouteDevice(6);
  const uplink = byName.get(v4Default ?? v6Default ?? '');
  const fwd4 = readSysctl('net.ipv4.ip_forward');
  const fwd6 = readSysctl('net.ipv6.conf.all.forwarding');
  const forwarding = fwd4.value === '1' || fwd6.value === '1';
  const release = host.kernelRelease();
  let clamp: ClampSearch | undefined;

  const names = name !== undefined ? [name] : uapiSocketNames().filter((n) => byName.has(n));
  const tunnels: Link[] = [];
  for (const ifname of names) {
    const of = (f: Finding): Finding => ({ ...f, interface: ifname });
    const link = byName.get(ifname);
    const socket = hasUapiSocket(ifname);
    findings.push(of(checkInterface(ifname, link, socket, TUNDRA)));
    if (link === undefined) {
      for (const check of ['tun-offloads', 'mtu', 'mss-clamp']) findings.push(of({ check, status: 'skipped', message: `no interface ${ifname}` }));
      continue;
    }
    tunnels.push(link);
    const daemon = socket ? uapiDaemon(ifname) : undefined;
    findings.push(of(link.kind === 'tun'
      ? checkTunOffloads(link, ethtoolFeatures(ifname), daemon, release, TUNDRA)
      : { check: 'tun-offloads', status: 'skipped', message: `${ifname} is not a TUN (${link.kind ?? 'a plain device'}; ip -d link show ${ifname})` }));
    const endpoints = socket ? await uapiEndpoints(ifname) : undefined;
    findings.push(of(checkMtu(link, uplink, outerFamily(endpoints, v6Default !== undefined))));
    const lan = all.filter((l) => l.up && !l.loopback && l.kind !== 'tun' && l.kind !== 'wireguard' && l.name !== ifname);
    clamp ??= forwarding ? findClamp() : { found: undefined, read: 'not looked for' };
    findings.push(of(checkMss(link, forwarding, lan, clamp)));
  }
  if (names.length === 0) {
    findings.push({ check: 'interface', status: 'skipped', message: `no userspace WireGuard interface in this namespace (no /var/run/wireguard/*.sock with a link here): only the system-wide checks ran` });
  }
  const devices = [
    ...tunnels.map((l) => ({ dev: l.name, role: 'WireGuard interface' })),
    ...(uplink !== undefined && !tunnels.includes(uplink) ? [{ dev: uplink.name, role: 'uplink' }] : []),
  ].map((d) => ({ ...d, sysctl: readSysctl(confName('ipv4', d.dev, 'rp_filter')) }));
  findings.push(checkRpFilter(readSysctl('net.ipv4.conf.all.rp_filter'), devices));
  findings.push(checkForwarding('ipv4', fwd4), checkForwarding('ipv6', fwd6));
  findings.push(checkUplinkOffloads(uplink, uplink === undefined ? undefined : ethtoolFeatures(uplink.name), `${TUNE_SCRIPT} --interface ${uplink?.name ?? 'DEV'}`));
  findings.push(checkKernel(release), checkWireguardModule(host.wireguardModule()));
  return { interface: name ?? null, findings };
}

/** Which outer IP the tunnel's datagrams use: IPv6 if any peer's endpoint is, or if it may be. */
export function outerFamily(endpoints: string[] | undefined, v6DefaultRoute: boolean): { family: 'ipv4' | 'ipv6'; reason: string } {
  const v6 = endpoints?.find((e) => e.startsWith('['));
  if (v6 !== undefined) return { family: 'ipv6', reason: `peer endpoint ${v6}` };
  if (endpoints !== undefined && endpoints.length > 0) return { family: 'ipv4', reason: 'every peer endpoint is IPv4' };
  return v6DefaultRoute
    ? { family: 'ipv6', reason: 'no peer endpoint yet and an IPv6 default route' }
    : { family: 'ipv4', reason: 'no peer endpoint yet and no IPv6 default route' };
}

/** Marks the findings of the checks in `skip` as skipped. */
export function applySkips(report: Report, skip: ReadonlySet<string>): Report {
  return {
    ...report,
    findings: report.findings.map((f) => (skip.has(f.check) && f.status !== 'skipped'
      ? { check: f.check, status: 'skipped', message: `not counted (--skip): ${f.message}`, ...(f.interface === undefined ? {} : { interface: f.interface }) }
      : f)),
  };
}

export function problems(report: Report): number {
  return report.findings.filter((f) => f.status === 'problem').length;
}

const LABEL = { ok: 'ok     ', problem: 'PROBLEM', skipped: 'n/a    ' } as const;

/** The text form: one line per check, each problem followed by why and fix. */
export function formatReport(report: Report): string {
  const lines = [`tundra doctor: ${report.interface ?? 'every WireGuard interface in this network namespace'}`];
  const width = Math.max(...report.findings.map((f) => title(f).length));
  for (const f of report.findings) {
    lines.push(`${LABEL[f.status]}  ${title(f).padEnd(width)}  ${f.message}`);
    if (f.status !== 'problem') continue;
    const indent = ' '.repeat(LABEL.ok.length + 2);
    if (f.why !== undefined) lines.push(`${indent}why: ${f.why}`);
    lines.push(`${indent}fix: ${f.fix ?? '(no command: see why)'}`);
  }
  const n = problems(report);
  lines.push(n === 0 ? 'No problems found.' : `${n} problem${n === 1 ? '' : 's'} found: run each fix above, then tundra doctor again.`);
  return `${lines.join('\n')}\n`;
}

function title(f: Finding): string {
  return f.interface === undefined ? f.check : `${f.check} (${f.interface})`;
}

/** The `doctor` subcommand: returns the exit status. */
// Bounds: k < args.length, the loop's condition (an option's value is read with `args[++k]`, which may be undefined).
export async function runDoctor(args: string[], host: HostProbe = realHostProbe): Promise<number> {
  let json = false;
  let name: string | undefined;
  const skip = new Set<string>();
  const usage = (message: string): number => {
    process.stderr.write(`tundra doctor: ${message}\n${DOCTOR_USAGE}`);
    return 2;
  };
  for (let k = 0; k < args.length; k++) {
    const arg = args[k]!;
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(DOCTOR_USAGE);
      return 0;
    }
    if (arg === '--json') json = true;
    else if (arg === '--skip' || arg.startsWith('--skip=')) {
      const list = arg === '--skip' ? args[++k] : arg.slice('--skip='.length);
      if (list === undefined) return usage('--skip needs a list of checks');
      for (const item of list.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
        if (!(CHECKS as readonly string[]).includes(item)) return usage(`--skip: "${item}" is not a check; the checks are ${CHECKS.join(', ')}`);
        skip.add(item);
      }
    } else if (arg.startsWith('-')) return usage(`unknown option "${arg}"`);
    else if (name !== undefined) return usage('give at most one interface');
    else {
      const problem = interfaceNameProblem(arg);
      if (problem !== undefined) return usage(problem);
      name = arg;
    }
  }
  const report = applySkips(await diagnose(name, host), skip);
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : formatReport(report));
  return problems(report) === 0 ? 0 : 1;
}
