// What `tundra doctor` reads from the system: sysctls, `ip -j`, `ethtool -k`, the nft
// ruleset, /proc and the UAPI sockets. Every command has a time limit and a failure
// reads as "not known", never as an exception. The host kernel's facts (release,
// WireGuard module) come through HostProbe so tests can feed fake values.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { release } from 'node:os';
import { join } from 'node:path';
import type { ClampSearch, Daemon, Features, Link, ModuleState, Sysctl } from './checks.js';

export const UAPI_DIR = '/var/run/wireguard';

/** The host kernel, as checks 6 and 7 see it. */
export interface HostProbe {
  kernelRelease(): string;
  wireguardModule(): ModuleState;
}

export const realHostProbe: HostProbe = {
  kernelRelease: () => release(),
  wireguardModule(): ModuleState {
    if (existsSync('/sys/module/wireguard')) return { state: 'loaded', source: '/sys/module/wireguard' };
    const builtin = `/lib/modules/${release()}/modules.builtin`;
    if (readText(builtin)?.split('\n').some((l) => l.endsWith('/wireguard.ko'))) return { state: 'builtin', source: builtin };
    const r = command('modinfo', ['-F', 'filename', 'wireguard']);
    if (r !== undefined && r.trim() !== '') return { state: 'loadable', source: `modinfo wireguard: ${r.trim().split('\n')[0]}` };
    return { state: 'absent', source: r === undefined ? `no /sys/module/wireguard, no wireguard.ko in ${builtin} or modinfo` : `no /sys/module/wireguard, not in ${builtin}, modinfo finds none` };
  },
};

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A command's standard output, or undefined when it is missing, fails or takes over 5 s. */
export function command(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0 ? r.stdout : undefined;
}

/** A sysctl by name; in net.ipv4.conf.eth0/100.rp_filter the dots separate and a slash stands for a dot of the device name. */
export function readSysctl(name: string): Sysctl {
  const path = `/proc/sys/${name.split('.').map((p) => p.replace(/\//g, '.')).join('/')}`;
  return { name, path, value: readText(path)?.trim() };
}

interface IpLink {
  ifname: string;
  mtu: number;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: { vnet_hdr?: boolean } };
}

/** Every link of this namespace (ip -j -d link show). */
export function links(): Link[] {
  const out = command('ip', ['-j', '-d', 'link', 'show']);
  if (out === undefined) return [];
  let parsed: IpLink[];
  try {
    parsed = JSON.parse(out) as IpLink[];
  } catch {
    return [];
  }
  return parsed.map((l) => ({
    name: l.ifname,
    mtu: l.mtu,
    up: (l.flags ?? []).includes('UP'),
    loopback: (l.flags ?? []).includes('LOOPBACK'),
    kind: l.linkinfo?.info_kind,
    vnetHeader: l.linkinfo?.info_kind === 'tun' ? l.linkinfo.info_data?.vnet_hdr === true : undefined,
  }));
}

/** The device the default route of a family leaves by (the first one, lowest metric first as ip lists them). */
export function defaultRouteDevice(family: 4 | 6): string | undefined {
  const out = command('ip', ['-j', `-${family}`, 'route', 'show', 'default']);
  if (out === undefined) return undefined;
  try {
    return (JSON.parse(out) as { dev?: string }[]).find((r) => r.dev !== undefined)?.dev;
  } catch {
    return undefined;
  }
}

/** ethtool -k DEV as name → on; undefined when ethtool is missing or refuses. */
export function ethtoolFeatures(dev: string): Features | undefined {
  const out = command('ethtool', ['-k', dev]);
  if (out === undefined) return undefined;
  const features = new Map<string, boolean>();
  for (const line of out.split('\n')) {
    const [, feature, state] = /^\s*([a-z0-9_-]+): (on|off)\b/.exec(line) ?? [];
    if (feature !== undefined) features.set(feature, state === 'on');
  }
  return features;
}

/** Looks for a TCP MSS clamp: `maxseg size set` in the nft ruleset, TCPMSS in iptables' mangle tables. */
export function findClamp(): ClampSearch {
  const read: string[] = [];
  const nft = command('nft', ['list', 'ruleset']);
  if (nft === undefined) read.push('nft: not installed or failed');
  else {
    const rule = /tcp option maxseg size set (rt mtu|\d+)/.exec(nft);
    if (rule) return { found: `nft list ruleset: ${rule[0]}`, read: 'nft list ruleset' };
    read.push('nft list ruleset: no maxseg rule');
  }
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const out = command(tool, ['-t', 'mangle']);
    if (out === undefined) read.push(`${tool}: not installed or failed`);
    else if (/-j TCPMSS\b/.test(out)) return { found: `${tool} -t mangle: TCPMSS`, read: tool };
    else read.push(`${tool} -t mangle: no TCPMSS`);
  }
  return { found: undefined, read: read.join('; ') };
}

/** The interface names with a socket in /var/run/wireguard. */
export function uapiSocketNames(): string[] {
  let entries: string[];
  try {
    entries = readdirSync(UAPI_DIR);
  } catch {
    return [];
  }
  return entries.filter((e) => e.endsWith('.sock') && hasUapiSocket(e.slice(0, -5))).map((e) => e.slice(0, -5)).sort();
}

export function hasUapiSocket(name: string): boolean {
  try {
    return statSync(join(UAPI_DIR, `${name}.sock`)).isSocket();
  } catch {
    return false;
  }
}

/**
 * The process listening on NAME's UAPI socket: its inode from this namespace's
 * /proc/net/unix (bound at /var/run/wireguard/NAME.sock, or, by tundra, in a staging
 * directory `.NAME-XXXXXX/uapi.sock` and renamed), then the /proc/PID/fd that holds it.
 * `table` is another namespace's /proc/net/unix (the tests read it from outside).
 */
export function uapiDaemon(name: string, table = readText('/proc/net/unix')): Daemon | undefined {
  if (table === undefined) return undefined;
  const paths = new Set([`${UAPI_DIR}/${name}.sock`]);
  const staged = new RegExp(`^${UAPI_DIR.replace(/\//g, '\\/')}\\/\\.${name.replace(/[^A-Za-z0-9]/g, '\\$&')}-[^/]+\\/uapi\\.sock$`);
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = listening.
    const [, , , flags, , , inode, path] = line.trim().split(/\s+/);
    if (path !== undefined && flags === '00010000' && (paths.has(path) || staged.test(path))) inodes.add(`socket:[${inode}]`);
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (inodes.has(target)) return describeProcess(Number(pid));
    }
  }
  return undefined;
}

function describeProcess(pid: number): Daemon {
  const argv = (readText(`/proc/${pid}/cmdline`) ?? '').split('\0').filter((a) => a !== '');
  const base = (p: string | undefined): string => (p ?? '').split('/').pop() ?? '';
  const isTundra = argv.slice(0, 2).some((a) => base(a) === 'tundra' || a.endsWith('/cli/main.js'));
  const kind = isTundra ? 'tundra' : argv.slice(0, 1).some((a) => base(a).startsWith('wireguard-go')) ? 'wireguard-go' : 'other';
  let offload: Daemon['offload'];
  if (isTundra) {
    for (const [k, arg] of argv.entries()) {
      const next = argv[k + 1];
      if (arg === '--offload' && next !== undefined) offload = { text: next, source: '--offload' };
      else if (arg.startsWith('--offload=')) offload = { text: arg.slice('--offload='.length), source: '--offload' };
    }
    if (offload === undefined) {
      const env = (readText(`/proc/${pid}/environ`) ?? '').split('\0').find((e) => e.startsWith('TUNDRA_OFFLOAD='));
      if (env !== undefined) offload = { text: env.slice('TUNDRA_OFFLOAD='.length), source: 'TUNDRA_OFFLOAD' };
    }
    // An empty or "all" switch turns nothing off.
    if (offload !== undefined && (offload.text.trim() === '' || offload.text.trim() === 'all')) offload = undefined;
  }
  return { pid, kind, argv, offload };
}

/** The peers' endpoints from the UAPI (`get=1`), or undefined when it does not answer within 2 s. */
export function uapiEndpoints(name: string): Promise<string[] | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection(join(UAPI_DIR, `${name}.sock`));
    const done = (value: string[] | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), 2_000);
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.write('get=1\n\n'));
    socket.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (text.includes('\n\n') || text.length > 1 << 20) {
        done(text.split('\n').filter((l) => l.startsWith('endpoint=')).map((l) => l.slice('endpoint='.length)));
      }
    });
    socket.on('end', () => done(undefined));
  });
}
