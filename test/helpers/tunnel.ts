// A WireGuard tunnel between two test namespaces (see netns.ts), with tundra,
// Debian's wireguard-go or upstream wireguard-go (when its binary is given) on
// either side, configured through `wg` over UAPI as a person would.
// Overlay: 100.96.0.1/24 + fd7a:7d0::1/64 on side a, .2 / ::2 on b.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, TwoHosts, waitFor } from './netns.js';
import { startWireguardGo } from './wireguard-go.js';
import type { UdpTransferReport } from './udp-transfer.js';

export type Implementation = 'tundra' | 'wireguard-go' | 'wireguard-go-upstream';

/**
 * Upstream wireguard-go with offloads (0.0.20250522), for interop: the path in
 * TUNDRA_UPSTREAM_WIREGUARD_GO, which .ci/run sets when ../shared/peers has it.
 */
export const UPSTREAM_WIREGUARD_GO = process.env.TUNDRA_UPSTREAM_WIREGUARD_GO || undefined;
export type Side = 'a' | 'b';

export const TUNDRA_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** tundra's systemd unit. */
export const SYSTEMD_UNIT = fileURLToPath(new URL('../../../contrib/systemd/tundra@.service', import.meta.url));
/**
 * How long a stop may take: the unit's TimeoutStopSec, after which systemd kills tundra
 * (its socket and link left behind). Not a speed claim (the suite passes on a busy machine): a stop takes well under a
 * second of tundra's time (a worker that ignores it is terminated after 2 s), so a busy
 * machine stays far inside it; what it catches is a stop that never ends (a worker,
 * timer or handle left alive) or one that waits out a long timer of its own.
 */
export const STOP_BOUND_MS = Number(/^TimeoutStopSec=(\d+)s$/m.exec(readFileSync(SYSTEMD_UNIT, 'utf8'))![1]) * 1000;
export const TCP_TRANSFER = fileURLToPath(new URL('./tcp-transfer.js', import.meta.url));
const UDP_TRANSFER = fileURLToPath(new URL('./udp-transfer.js', import.meta.url));

export const OVERLAY = {
  a: { v4: '100.96.0.1', v6: 'fd7a:7d0::1' },
  b: { v4: '100.96.0.2', v6: 'fd7a:7d0::2' },
} as const;
const PORT = { a: 51820, b: 51821 } as const;

export interface TunnelOptions {
  a: Implementation;
  b: Implementation;
  /** Which sides know the other's endpoint (and so can initiate). Default both. */
  endpoints?: { a: boolean; b: boolean };
  /** Extra environment of each side's daemon (e.g. TUNDRA_OFFLOAD). */
  env?: Partial<Record<Side, NodeJS.ProcessEnv>>;
}

/** The kernel's counters `names` in namespace `ns` since it was made (nstat); NaN for a name it lacks. */
function nstat(hosts: TwoHosts, ns: string, names: string[]): Record<string, number> {
  const out = hosts.exec(ns, 'nstat', ['-azs', ...names]);
  return Object.fromEntries(names.map((name) => [name, Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(out)?.[1] ?? NaN)]));
}

/** TCP and UDP checksum errors the kernel counted in namespace `ns` since it was made. */
export function checksumErrorsIn(hosts: TwoHosts, ns: string): { tcp: number; udp: number } {
  const n = nstat(hosts, ns, ['TcpInCsumErrors', 'UdpInCsumErrors', 'Udp6InCsumErrors']);
  return { tcp: n.TcpInCsumErrors!, udp: n.UdpInCsumErrors! + n.Udp6InCsumErrors! };
}

export class Tunnel {
  readonly hosts: TwoHosts;
  readonly ifName: Record<Side, string>;
  readonly daemons = {} as Record<Side, ChildProcess>;
  readonly output = {} as Record<Side, () => string>;
  readonly keys = { a: generatePrivateKey(), b: generatePrivateKey() };
  private readonly dir = mkdtempSync(join(tmpdir(), 'tundra-tunnel-'));

  constructor(tag: string, readonly options: TunnelOptions) {
    this.hosts = new TwoHosts(tag);
    const id = `${tag}${process.pid % 100000}`;
    this.ifName = { a: `tdr${id}a`.slice(0, 15), b: `tdr${id}b`.slice(0, 15) };
  }

  ns(side: Side): string {
    return side === 'a' ? this.hosts.a : this.hosts.b;
  }

  underlay(side: Side): string {
    return side === 'a' ? this.hosts.underlayA : this.hosts.underlayB;
  }

  async start(): Promise<void> {
    for (const side of ['a', 'b'] as const) await this.startDaemon(side);
    for (const side of ['a', 'b'] as const) this.configure(side);
  }

  private async startDaemon(side: Side): Promise<void> {
    const impl = this.options[side];
    const name = this.ifName[side];
    const env = { LOG_LEVEL: 'verbose', ...this.options.env?.[side] };
    if (impl !== 'tundra') {
      const cmd = impl === 'wireguard-go' ? 'wireguard-go' : UPSTREAM_WIREGUARD_GO ?? 'wireguard-go-upstream-not-given';
      const { child, output } = await startWireguardGo(this.hosts, this.ns(side), cmd, name, env);
      this.daemons[side] = child;
      this.output[side] = output;
      return;
    }
    const child = this.hosts.spawn(this.ns(side), process.execPath, [TUNDRA_MAIN, '-f', name], env);
    this.daemons[side] = child;
    this.output[side] = captureOutput(child);
    await waitFor(`tundra to serve ${name}`, () => {
      if (child.exitCode !== null) throw new Error(`tundra exited: ${this.output[side]()}`);
      try {
        this.wg(side, ['show', name]);
        return true;
      } catch {
        return false;
      }
    }, 60_000);
  }

  private configure(side: Side): void {
    const other: Side = side === 'a' ? 'b' : 'a';
    const keyFile = join(this.dir, `${side}.key`);
    writeFileSync(keyFile, encodeKey(this.keys[side]), { mode: 0o600 });
    const endpoint = (this.options.endpoints ?? { a: true, b: true })[side] ? ['endpoint', `${this.underlay(other)}:${PORT[other]}`] : [];
    this.wg(side, [
      'set', this.ifName[side], 'private-key', keyFile, 'listen-port', String(PORT[side]),
      'peer', encodeKey(publicKeyOf(this.keys[other])), 'allowed-ips', `${OVERLAY[other].v4}/32,${OVERLAY[other].v6}/128`, ...endpoint,
    ]);
    const ns = this.ns(side);
    const name = this.ifName[side];
    this.hosts.exec(ns, 'ip', ['address', 'add', `${OVERLAY[side].v4}/24`, 'dev', name]);
    this.hosts.exec(ns, 'ip', ['-6', 'address', 'add', `${OVERLAY[side].v6}/64`, 'dev', name, 'nodad']);
    this.hosts.exec(ns, 'ip', ['link', 'set', 'mtu', '1420', 'up', 'dev', name]);
  }

  wg(side: Side, args: string[]): string {
    return this.hosts.exec(this.ns(side), 'wg', args);
  }

  /**
   * Pings the other side's overlay address; returns how many replies came back. A reply
   * may take `waitSeconds` after the last request: a bound for a lost reply, not a speed
   * (a busy machine stretches a first handshake past a second or two).
   */
  ping(from: Side, family: 4 | 6, count = 3, waitSeconds = 10): number {
    const to = OVERLAY[from === 'a' ? 'b' : 'a'][family === 4 ? 'v4' : 'v6'];
    let out: string;
    try {
      out = this.hosts.exec(this.ns(from), 'ping', [`-${family}`, '-c', String(count), '-i', '0.2', '-W', String(waitSeconds), to]);
    } catch (err) {
      out = (err as Error).message;
    }
    const match = /(\d+) received/.exec(out);
    return match === null ? 0 : Number(match[1]);
  }

  /**
   * Pings until a reply comes back, a bounded number of times; whether one did. The first
   * handshake takes a retransmission (5 s) when the responder asks for a cookie first,
   * as it does under load (also a busy machine's: a handshake that waited 20 ms).
   */
  pingUntilReply(from: Side, family: 4 | 6 = 4): boolean {
    for (let attempt = 0; attempt < 20; attempt++) if (this.ping(from, family, 1, 2) === 1) return true;
    return false;
  }

  /** Sends `bytes` over TCP from one side to the other; returns both ends' byte counts and SHA-256. */
  transfer(from: Side, bytes: number, family: 4 | 6 = 4, during?: () => void): Promise<{ sent: TransferReport; received: TransferReport }> {
    const to: Side = from === 'a' ? 'b' : 'a';
    return this.transferBetween(from, this.ns(to), OVERLAY[to][family === 4 ? 'v4' : 'v6'], bytes, during);
  }

  /** Sends `bytes` over TCP from a side to `address` in namespace `toNs` (a side's, or one behind it). */
  transferBetween(from: Side, toNs: string, address: string, bytes: number, during?: () => void): Promise<{ sent: TransferReport; received: TransferReport }> {
    return tcpTransfer(this.hosts, this.ns(from), toNs, address, 5201, bytes, during);
  }

  /** Sends `count` 1200-byte datagrams at `mbits` Mbit/s (UDP GSO out, GRO in); returns what the sink saw. */
  udpTransfer(from: Side, count: number, mbits: number, family: 4 | 6 = 4): Promise<UdpTransferReport> {
    const to: Side = from === 'a' ? 'b' : 'a';
    return udpTransfer(this.hosts, this.ns(from), this.ns(to), OVERLAY[to][family === 4 ? 'v4' : 'v6'], 5202, count, mbits);
  }

  /** Packets nftables counted in named counter `counter` of table `inet TABLE` in the side's namespace. */
  nftPackets(side: Side, table: string, counter: string): number {
    const out = this.hosts.exec(this.ns(side), 'nft', ['-j', 'list', 'counter', 'inet', table, counter]);
    const doc = JSON.parse(out) as { nftables: { counter?: { packets: number } }[] };
    const found = doc.nftables.find((e) => e.counter !== undefined)?.counter;
    if (found === undefined) throw new Error(`nft printed no counter ${counter} of table inet ${table}: ${out}`);
    return found.packets;
  }

  /** The kernel's counters `names` in the side's namespace since it was made (nstat); NaN for a name it lacks. */
  nstat(side: Side, names: string[]): Record<string, number> {
    return nstat(this.hosts, this.ns(side), names);
  }

  /** TCP and UDP checksum errors the kernel counted in the side's namespace since it was made (nstat). */
  checksumErrors(side: Side): { tcp: number; udp: number } {
    return checksumErrorsIn(this.hosts, this.ns(side));
  }

  /**
   * Every packet drop counted in the side's namespace so far, by counter: the kernel's (UDP
   * socket buffers full, IP discards, each link's and each qdisc's drops) and, when tundra
   * runs there, tundra's (by reason). Where a datagram that never arrived may have gone.
   */
  async drops(side: Side): Promise<Record<string, number>> {
    const ns = this.ns(side);
    const drops = nstat(this.hosts, ns, ['UdpRcvbufErrors', 'UdpSndbufErrors', 'UdpMemErrors', 'Udp6RcvbufErrors', 'Udp6SndbufErrors',
      'Udp6MemErrors', 'IpInDiscards', 'IpOutDiscards', 'Ip6InDiscards', 'Ip6OutDiscards']);
    type Link = { ifname: string; stats64: { rx: { dropped: number }; tx: { dropped: number } } };
    for (const l of JSON.parse(this.hosts.exec(ns, 'ip', ['-s', '-j', 'link', 'show'])) as Link[]) {
      drops[`${l.ifname} rx`] = l.stats64.rx.dropped;
      drops[`${l.ifname} tx`] = l.stats64.tx.dropped;
    }
    // mq only adds up its children's.
    type Qdisc = { kind: string; handle: string; parent?: string; dev: string; drops: number };
    for (const q of JSON.parse(this.hosts.exec(ns, 'tc', ['-s', '-j', 'qdisc', 'show'])) as Qdisc[]) {
      if (q.kind !== 'mq') drops[`${q.dev} qdisc ${q.handle} ${q.parent ?? 'root'}`] = q.drops;
    }
    if (this.options[side] === 'tundra') {
      for (const [reason, n] of Object.entries((await this.counters(side)).drops)) drops[`tundra ${reason}`] = n;
    }
    return drops;
  }

  /** tundra's counters on `side` (SIGUSR1 makes it print them as one JSON line). */
  counters(side: Side): Promise<TundraCounters> {
    return countersOf(this.daemons[side], this.output[side]);
  }

  /** Bytes the peer on `side` has received (wg show transfer). */
  rxBytes(side: Side): number {
    const line = this.wg(side, ['show', this.ifName[side], 'transfer']).trim();
    return Number(line.split('\t')[1] ?? 0);
  }

  destroy(): void {
    this.hosts.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The line tundra prints on SIGUSR1. */
export interface TundraCounters {
  drops: Record<string, number>;
  offload: Record<string, number> & { fallbacks: Record<string, number> };
  stages: Record<string, number>;
  queues: Record<string, number>[];
  pool?: Record<string, number>;
}

/** A tundra daemon's counters (SIGUSR1 makes it print them as one JSON line on `output`). */
export async function countersOf(daemon: ChildProcess, output: () => string): Promise<TundraCounters> {
  const before = output().length;
  process.kill(daemon.pid!, 'SIGUSR1');
  let line: string | undefined;
  await waitFor('the counters line', () => {
    line = output().slice(before).split('\n').find((l) => l.startsWith('{"interface"'));
    return line !== undefined;
  });
  return JSON.parse(line!) as TundraCounters;
}

export interface TransferReport {
  bytes: number;
  sha256: string;
}

/** Sends `bytes` over TCP from namespace `fromNs` to `address`:`port` in `toNs`; returns both ends' byte counts and SHA-256. */
export async function tcpTransfer(
  hosts: TwoHosts, fromNs: string, toNs: string, address: string, port: number, bytes: number, during?: () => void,
): Promise<{ sent: TransferReport; received: TransferReport }> {
  const sink = hosts.spawn(toNs, process.execPath, [TCP_TRANSFER, 'sink', address, String(port)]);
  const sinkOut = captureOutput(sink);
  await waitFor('the TCP sink to listen', () => sinkOut().includes('listening'));
  const source = hosts.spawn(fromNs, process.execPath, [TCP_TRANSFER, 'source', address, String(port), String(bytes)]);
  const sourceOut = captureOutput(source);
  during?.();
  const [sent, received] = await Promise.all([jsonOf<TransferReport>(source, sourceOut), jsonOf<TransferReport>(sink, sinkOut)]);
  return { sent, received };
}

/** Sends `count` 1200-byte datagrams at `mbits` Mbit/s from `fromNs` to `address`:`port` in `toNs`; returns what the sink saw. */
export async function udpTransfer(
  hosts: TwoHosts, fromNs: string, toNs: string, address: string, port: number, count: number, mbits: number,
): Promise<UdpTransferReport> {
  const sink = hosts.spawn(toNs, process.execPath, [UDP_TRANSFER, 'sink', address, String(port), String(count)]);
  const sinkOut = captureOutput(sink);
  await waitFor('the UDP sink to listen', () => sinkOut().includes('listening'));
  const source = hosts.spawn(fromNs, process.execPath, [UDP_TRANSFER, 'source', address, String(port), String(count), String(mbits)]);
  const sourceOut = captureOutput(source);
  const [, report] = await Promise.all([jsonOf<{ sent: number }>(source, sourceOut), jsonOf<UdpTransferReport>(sink, sinkOut)]);
  return report;
}

/** The JSON line a helper script prints before it exits 0 (it may have exited already). */
export function jsonOf<T>(child: ChildProcess, output: () => string): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (code: number | null): void => {
      const line = output().split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`${child.spawnargs.slice(3).join(' ')} exited ${code}: ${output()}`));
      else resolve(JSON.parse(line) as T);
    };
    if (child.exitCode !== null) done(child.exitCode);
    else child.once('exit', done);
  });
}
