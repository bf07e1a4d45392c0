// Three namespaces in a line for router tests (docs/design.md §11):
//   a (the client) —198.18.0.0/24— b (the router) —198.18.N.0/24, fd7a:7d0:N::/64— c
// where c is a LAN host behind a subnet router, or the upstream "internet" of an exit
// node (testnet/ builds all three).
// Also: wg-quick style config files, `tundra up` and the checks the router tests share.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Address } from '../../testnet/testnet.js';
import { captureOutput, TwoHosts, waitFor } from './netns.js';
import { checksumErrorsIn, countersOf, jsonOf, TCP_TRANSFER, TUNDRA_MAIN } from './tunnel.js';
import { startWireguardGo } from './wireguard-go.js';


export type { Address };

export class ThreeHosts extends TwoHosts {
  declare readonly c: string;
  /** b's and c's addresses on the b–c link (198.18.N.1/.2, fd7a:7d0:N::1/::2). */
  readonly farB: Address;
  readonly farC: Address;
  /** The b–c link as prefixes. */
  readonly farNet: Address;
  /** a's end of the a–b link (TwoHosts names it so), and the b–c link's two ends. */
  readonly linkA: string;
  readonly linkB: string;
  readonly linkC: string;

  constructor(tag: string, subnet: number) {
    super(tag, subnet);
    const far = this.far!; // made by super() for a subnet
    this.farB = far.b;
    this.farC = far.c;
    this.farNet = far.net;
    this.linkA = this.vethA;
    this.linkB = far.devB;
    this.linkC = far.devC;
  }
}

/** Writes a wg-quick style file; sections are [name, lines] pairs. */
export function writeWgConfig(path: string, sections: [string, string[]][]): void {
  const text = sections.map(([name, lines]) => [`[${name}]`, ...lines, ''].join('\n')).join('\n');
  writeFileSync(path, text, { mode: 0o600 });
}

/** Routes `ip` shows on `dev` in `ns`, as their destinations (a /32 or /128 without its length). */
function routesOn(hosts: TwoHosts, ns: string, dev: string): string[] {
  let out: string;
  try {
    out = hosts.exec(ns, 'ip', ['-o', '-4', 'route', 'show', 'dev', dev]) + hosts.exec(ns, 'ip', ['-o', '-6', 'route', 'show', 'dev', dev]);
  } catch {
    return []; // no such device yet
  }
  return out.split('\n').map((l) => l.split(' ')[0]!).filter((d) => d !== '');
}

function routeKey(prefix: string): string {
  return prefix.replace(/\/(32|128)$/, '');
}

/** Waits until `ns` routes each prefix through `dev`. */
export async function waitForRoutes(hosts: TwoHosts, ns: string, dev: string, prefixes: string[], what: () => string): Promise<void> {
  await waitFor(`routes ${prefixes.join(', ')} on ${dev}`, () => {
    const have = routesOn(hosts, ns, dev);
    const missing = prefixes.filter((p) => !have.includes(routeKey(p)));
    if (missing.length > 0 && what().includes('ERROR')) throw new Error(`set-up failed: ${what()}`);
    return missing.length === 0;
  });
}

/**
 * `tundra up CONFIG` in `ns`, as the README shows; resolves once the routes of
 * `routes` are in place (the last thing it sets up). destroy() ends it.
 */
export async function tundraUp(hosts: TwoHosts, ns: string, config: string, dev: string, routes: string[]): Promise<{ child: ChildProcess; output: () => string }> {
  const child = hosts.spawn(ns, process.execPath, [TUNDRA_MAIN, 'up', config]);
  const output = captureOutput(child);
  await waitForRoutes(hosts, ns, dev, routes, () => {
    if (child.exitCode !== null) throw new Error(`tundra up exited ${child.exitCode}: ${output()}`);
    return output();
  });
  return { child, output };
}

/**
 * Debian's wireguard-go with the same file, set up by hand as the README shows for a
 * daemon without `tundra up`: `wg setconf` with what `wg-quick strip` leaves, then the
 * addresses, MTU and routes with ip.
 */
export async function wireguardGoByHand(
  hosts: TwoHosts, ns: string, name: string, config: string, addresses: string[], routes: string[],
): Promise<{ child: ChildProcess; output: () => string }> {
  const started = await startWireguardGo(hosts, ns, 'wireguard-go', name, { LOG_LEVEL: 'verbose' });
  const stripped = `${config}.stripped`;
  writeFileSync(stripped, hosts.exec(ns, 'wg-quick', ['strip', config]), { mode: 0o600 });
  hosts.exec(ns, 'wg', ['setconf', name, stripped]);
  for (const address of addresses) hosts.exec(ns, 'ip', ['address', 'add', address, 'dev', name]);
  hosts.exec(ns, 'ip', ['link', 'set', 'mtu', '1420', 'up', 'dev', name]);
  for (const route of routes) hosts.exec(ns, 'ip', ['route', 'add', route, 'dev', name]);
  return started;
}

/** Sets forwarding in `ns` (0 or 1), both families. */
export function setForwarding(hosts: TwoHosts, ns: string, on: boolean): void {
  const v = on ? '1' : '0';
  hosts.exec(ns, 'sysctl', ['-q', '-w', `net.ipv4.ip_forward=${v}`, `net.ipv6.conf.all.forwarding=${v}`]);
}

/** Pings `address` from `ns`; returns how many replies came back. */
export function ping(hosts: TwoHosts, ns: string, address: string, count = 3): number {
  const family = address.includes(':') ? '-6' : '-4';
  let out: string;
  try {
    out = hosts.exec(ns, 'ping', [family, '-c', String(count), '-i', '0.2', '-W', '10', address]);
  } catch (err) {
    out = (err as Error).message;
  }
  const match = /(\d+) received/.exec(out);
  return match === null ? 0 : Number(match[1]);
}

export interface Download {
  /** The source address the server saw. */
  remote: string;
  sent: { bytes: number; sha256: string };
  received: { bytes: number; sha256: string };
}

/**
 * The client in `clientNs` connects to `address`:`port` in `serverNs`, which sends it
 * `bytes`; returns both ends' byte counts and SHA-256, and the source the server saw.
 */
export async function download(hosts: TwoHosts, clientNs: string, serverNs: string, address: string, port: number, bytes: number): Promise<Download> {
  const server = hosts.spawn(serverNs, process.execPath, [TCP_TRANSFER, 'serve', address, String(port), String(bytes)]);
  const serverOut = captureOutput(server);
  await waitFor('the download server to listen', () => {
    if (server.exitCode !== null) throw new Error(`download serve exited: ${serverOut()}`);
    return serverOut().includes('listening');
  });
  const client = hosts.spawn(clientNs, process.execPath, [TCP_TRANSFER, 'fetch', address, String(port)]);
  const clientOut = captureOutput(client);
  const [sent, received] = await Promise.all([
    jsonOf<{ remote: string; bytes: number; sha256: string }>(server, serverOut),
    jsonOf<{ bytes: number; sha256: string }>(client, clientOut),
  ]);
  return { remote: sent.remote, sent: { bytes: sent.bytes, sha256: sent.sha256 }, received };
}

/**
 * Captures on `dev` in `ns` while `action` runs and returns the MSS option of the first
 * IPv4 SYN-ACK seen there (what the client's TCP is told it may send).
 */
export async function synAckMss(ns: string, dev: string, action: () => Promise<unknown>): Promise<number> {
  const filter = 'tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)';
  // Not through hosts.spawn: it ends by itself after one packet, or on the timeout below.
  const dump = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-l', '-nn', '-c', '1', '-i', dev, filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = captureOutput(dump);
  const exited = new Promise<number | null>((resolve) => dump.once('exit', resolve));
  const stop = setTimeout(() => { if (dump.exitCode === null) dump.kill('SIGTERM'); }, 15_000);
  try {
    await waitFor('tcpdump to listen', () => {
      if (dump.exitCode !== null) throw new Error(`tcpdump exited: ${output()}`);
      return output().includes('listening on');
    });
    await action();
    await exited;
  } finally {
    clearTimeout(stop);
    if (dump.exitCode === null && dump.signalCode === null) dump.kill('SIGTERM');
  }
  const mss = /options \[mss (\d+)/.exec(output());
  if (mss === null) throw new Error(`no SYN-ACK with an MSS seen on ${dev}: ${output()}`);
  return Number(mss[1]);
}

/**
 * After the transfers: the kernel handed the router forwarded TCP as super-packets (TUN
 * TSO) and it split them (only checked with the default offloads, so that a run under
 * TUNDRA_OFFLOAD still tests the rest), and the kernel of none of the three hosts
 * counted a checksum error (tundra no longer sums what it opened, as the kernel's
 * WireGuard does not: a packet it writes unmerged is still checked by the kernel).
 */
export async function assertForwardedSuperPackets(router: { child: ChildProcess; output: () => string }, hosts: ThreeHosts): Promise<void> {
  const counters = await countersOf(router.child, router.output);
  if (process.env.TUNDRA_OFFLOAD === undefined) {
    assert.ok((counters.offload.tun_super_packets ?? 0) > 0, `forwarded super-packets split: ${JSON.stringify(counters.offload)}`);
  }
  for (const ns of [hosts.a, hosts.b, hosts.c]) assert.deepEqual(checksumErrorsIn(hosts, ns), { tcp: 0, udp: 0 }, `no checksum errors in ${ns}`);
}
