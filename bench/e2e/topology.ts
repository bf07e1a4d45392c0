// The benchmark's test networks: namespaces joined by veths (testnet/ builds them), the
// implementation under test at both tunnel ends, configured with `wg` and `ip`, and
// everything removed again, also when set-up fails half-way or the runner is interrupted
// (docs/design.md §11: names tdr-…, underlay 198.18.0.0/15, overlay 100.96.0.0/16 and
// fd7a:7d0::/48, processes ended by pid).
//
//   a (client) —198.18.0.0/24— b (peer / router) —198.18.N.0/24, fd7a:7d0:N::/64— c (LAN or internet host)
import { spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRunning as running, run, TestNet } from '../../testnet/testnet.js';
import { ImplFailed, Unavailable } from './errors.js';
import type { ImplSpec } from './impls.js';
import { requireTool } from './tools.js';

export type TopologyName = 'p2p' | 'router' | 'router-tuned' | 'exit-node';
export const TOPOLOGIES: readonly TopologyName[] = ['p2p', 'router', 'router-tuned', 'exit-node'];

/** A host and its address as the other end reaches it. */
export interface Endpoint { ns: string; v4: string; v6: string }

export interface TopologyOptions {
  name: TopologyName;
  runId: string;
  impl: ImplSpec;
  /** Created if missing; daemon logs daemon-a.log, daemon-b.log; `wg show` at down. */
  logDir: string;
  /** The interface and its UAPI socket must appear by then (default 10 s). */
  startTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Progress and retry messages. */
  log?: (line: string) => void;
}

// dist/bench/e2e/topology.js → the repository: scripts/ and examples/ are not under dist.
const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const ETHTOOL_TUNE = join(REPO, 'scripts', 'ethtool-tune.sh');
const EXIT_RULESET = join(REPO, 'examples', 'exit-node', 'tdr-exit.nft');
const UAPI_DIR = '/var/run/wireguard';
const TUN_MTU = '1420';
const PORT = { a: 51820, b: 51821 } as const;
const OVERLAY = { a: { v4: '100.96.0.1', v6: 'fd7a:7d0::1' }, b: { v4: '100.96.0.2', v6: 'fd7a:7d0::2' } } as const;
/** The b–c link's third octet / IPv6 group: a LAN behind a router, or the exit node's upstream. */
const FAR_SUBNET: Record<TopologyName, number | undefined> = { 'p2p': undefined, 'router': 2, 'router-tuned': 2, 'exit-node': 3 };
/** Debian packages of the tools set-up runs itself (the daemon's own binary is impls.ts' business). */
const TOOLS = ['ip', 'wg', 'ping', 'sysctl'];
const EXIT_TOOLS = ['nft'];
const TUNE_TOOLS = ['bash'];
const MAX_STARTS = 3;
const DEFAULT_EXEC_TIMEOUT_MS = 20_000;
const TERM_GRACE_MS = 2_000;
const LOG_TAIL_LINES = 8;

type Side = 'a' | 'b';

/** Topologies up in this process, each with its synchronous teardown, for downAllSync. */
const live = new Map<Topology, () => void>();

export class Topology {
  readonly name: TopologyName;
  readonly runId: string;
  readonly impl: ImplSpec;
  readonly client: Endpoint;
  readonly server: Endpoint;
  private readonly opts: TopologyOptions;
  /** The namespaces tdr-b<run id>-a|b|c and their links; ends what is started in them. */
  private readonly net: TestNet;
  private readonly ns: Record<Side, string>;
  private readonly underlay: Record<Side, string>;
  private readonly tunnel: Record<Side, string>;
  private readonly daemons: Record<Side, ChildProcess | null> = { a: null, b: null };
  /** Keys and ethtool-tune's state: private, removed at down. */
  private readonly scratch: string;
  private downing: Promise<void> | null = null;

  private constructor(opts: TopologyOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.runId = opts.runId;
    this.impl = opts.impl;
    const id = opts.runId;
    const net = this.net = new TestNet(`b${id}`, FAR_SUBNET[opts.name]);
    this.ns = { a: net.a, b: net.b };
    this.underlay = { a: net.underlayA, b: net.underlayB };
    this.tunnel = { a: net.ifname('a'), b: net.ifname('b') };
    this.client = { ns: net.a, ...OVERLAY.a };
    this.server = net.c === undefined || net.far === undefined ? { ns: net.b, ...OVERLAY.b } : { ns: net.c, ...net.far.c };
    this.scratch = mkdtempSync(join(tmpdir(), `tdr-bench-${id}-`));
  }

  /** Builds the topology; on any failure it has already removed everything it made, then throws. */
  static async up(opts: TopologyOptions): Promise<Topology> {
    if (!/^[a-z0-9]{4}$/.test(opts.runId)) throw new Error(`run id must be 4 characters [a-z0-9], not '${opts.runId}'`);
    if (!TOPOLOGIES.includes(opts.name)) throw new Error(`unknown topology '${opts.name}' (one of ${TOPOLOGIES.join(', ')})`);
    for (const tool of [...TOOLS, ...(opts.name === 'exit-node' ? EXIT_TOOLS : []), ...(opts.name === 'router-tuned' ? TUNE_TOOLS : [])]) {
      requireTool(tool);
    }
    mkdirSync(opts.logDir, { recursive: true });
    const topology = new Topology(opts);
    live.set(topology, () => topology.removeAll());
    try {
      await topology.build();
    } catch (err) {
      await topology.down();
      throw err;
    }
    return topology;
  }

  /** The tunnel interfaces of the client's and the peer's end, for `wg` in client.ns and the peer's namespace. */
  interfaceNames(): { client: string; peer: string } {
    return { client: this.tunnel.a, peer: this.tunnel.b };
  }

  daemonPids(): { client: number | null; peer: number | null } {
    return { client: this.daemons.a?.pid ?? null, peer: this.daemons.b?.pid ?? null };
  }

  /** Starts argv inside ns, stdout and stderr to logFile; down() ends it by pid. */
  spawn(ns: string, argv: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
    return this.spawnInto(ns, argv, logFile, env, 'w');
  }

  /** Runs argv inside ns and returns its stdout. */
  exec(ns: string, argv: string[], timeoutMs = DEFAULT_EXEC_TIMEOUT_MS): string {
    const [cmd, ...args] = argv as [string, ...string[]];
    return this.net.exec(ns, cmd, args, undefined, timeoutMs);
  }

  /** The peer's (b's) listen address and the public key of its interface, as a stranger on the underlay sees them. */
  peerListen(): { address: string; port: number; publicKey: string } {
    return { address: this.underlay.b, port: PORT.b, publicKey: this.exec(this.ns.b, ['wg', 'show', this.tunnel.b, 'public-key']).trim() };
  }

  /** Adds `address` (198.18.0.0/24) to the client's underlay link: a second host on a's side (a flood's source). */
  addClientUnderlayAddress(address: string): void {
    run(['ip', '-n', this.ns.a, 'addr', 'add', `${address}/24`, 'dev', this.net.vethA]);
  }

  /**
   * Makes the client forget the peer and know it again: its next packet needs a fresh
   * handshake (the peer keeps its old session, which the new one replaces).
   */
  renewClientPeer(): void {
    const key = this.exec(this.ns.a, ['wg', 'show', this.tunnel.a, 'peers']).trim();
    const allowed = this.exec(this.ns.a, ['wg', 'show', this.tunnel.a, 'allowed-ips']).trim().split(/\s+/).slice(1).join(',');
    this.exec(this.ns.a, ['wg', 'set', this.tunnel.a, 'peer', key, 'remove']);
    this.exec(this.ns.a, ['wg', 'set', this.tunnel.a, 'peer', key, 'endpoint', `${this.underlay.b}:${PORT.b}`, 'allowed-ips', allowed]);
  }

  /** tx_dropped of both tunnel interfaces, summed: what the kernel could not hand to the tunnel. */
  tunDrops(): number {
    let sum = 0;
    for (const side of ['a', 'b'] as const) {
      const out = run(['ip', '-n', this.ns[side], '-s', '-j', 'link', 'show', 'dev', this.tunnel[side]]);
      const links = JSON.parse(out) as { stats64?: { tx?: { dropped?: number } } }[];
      sum += links[0]?.stats64?.tx?.dropped ?? 0;
    }
    return sum;
  }

  /** Throws ImplFailed if a daemon has exited since up(). */
  check(): void {
    for (const side of ['a', 'b'] as const) {
      const daemon = this.daemons[side];
      if (daemon !== null && !running(daemon)) {
        throw new ImplFailed(`${this.impl.label}: the daemon of ${this.tunnel[side]} exited (${exitOf(daemon)}) (log: ${this.logTail(side)})`);
      }
    }
  }

  /** Idempotent: ends every process by pid, keeps `wg show` of both ends in logDir, deletes the namespaces. */
  down(): Promise<void> {
    this.downing ??= this.teardown();
    return this.downing;
  }

  private async teardown(): Promise<void> {
    // `wg show` first: a userspace daemon takes its answers with it.
    this.saveWgShow();
    const alive = this.net.running();
    for (const child of alive) signal(child, 'SIGTERM');
    await Promise.all(alive.map((child) => exited(child, TERM_GRACE_MS)));
    const stubborn = alive.filter(running);
    for (const child of stubborn) signal(child, 'SIGKILL');
    await Promise.all(stubborn.map((child) => exited(child, TERM_GRACE_MS)));
    this.removeAll();
  }

  /**
   * The end of both teardowns (and all of downAllSync's): the namespaces go (testnet ends
   * what still runs in them, synchronously), then stale sockets and the scratch directory.
   */
  private removeAll(): void {
    this.net.destroy();
    // A daemon ended by SIGKILL leaves its socket behind; these names are this run's alone.
    for (const name of Object.values(this.tunnel)) rmSync(join(UAPI_DIR, `${name}.sock`), { force: true });
    rmSync(this.scratch, { recursive: true, force: true });
    live.delete(this);
  }

  private spawnInto(ns: string, argv: string[], logFile: string, env: Record<string, string>, flags: 'w' | 'a'): ChildProcess {
    const [cmd, ...args] = argv as [string, ...string[]];
    const fd = openSync(logFile, flags, 0o644);
    try {
      const child = this.net.spawn(ns, cmd, args, env, ['ignore', fd, fd]);
      child.on('error', (err) => this.opts.log?.(`${cmd} in ${ns}: ${err.message}`));
      return child;
    } finally {
      closeSync(fd);
    }
  }

  private async build(): Promise<void> {
    const { a, b } = this.ns;
    // The a–b underlay is IPv4 only: no IPv6 chatter beside the benchmark's traffic.
    for (const [ns, dev] of [[a, this.net.vethA], [b, this.net.vethB]] as const) {
      this.exec(ns, ['sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    }
    if (this.net.far !== undefined) this.exec(b, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);

    // Both daemons start at once; a failure of either fails the set-up after both settled.
    const starts = await Promise.allSettled([this.startImpl('a'), this.startImpl('b')]);
    for (const s of starts) if (s.status === 'rejected') throw s.reason;

    this.configure();
    if (this.name === 'exit-node') this.exec(b, ['nft', '-D', `WAN=${this.net.far?.devB}`, '-f', EXIT_RULESET]);
    await this.waitForHandshake();
    if (this.name === 'router-tuned') this.tune();
    this.opts.log?.(`${this.name} up with ${this.impl.label} (run ${this.runId})`);
  }

  private async startImpl(side: Side): Promise<void> {
    const ns = this.ns[side];
    const name = this.tunnel[side];
    if (this.impl.kind === 'kernel') {
      const r = spawnSync('ip', ['-n', ns, 'link', 'add', name, 'type', 'wireguard'], { encoding: 'utf8', timeout: DEFAULT_EXEC_TIMEOUT_MS });
      if (r.status === 0) return;
      if (/Unknown device type|not supported/i.test(r.stderr)) {
        throw new Unavailable('the kernel has no WireGuard module (CONFIG_WIREGUARD); --impl kernel needs it');
      }
      throw new ImplFailed(`${this.impl.label}: ip link add ${name} type wireguard failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
    }
    const argv = this.impl.argv.map((arg) => arg.replaceAll('%IF%', name));
    const logFile = this.logFile(side);
    const timeoutMs = this.opts.startTimeoutMs ?? 10_000;
    for (let attempt = 1; attempt <= MAX_STARTS; attempt++) {
      const daemon = this.spawnInto(ns, argv, logFile, this.impl.env, attempt === 1 ? 'w' : 'a');
      this.daemons[side] = daemon;
      const deadline = Date.now() + timeoutMs;
      while (running(daemon) && !this.serves(side)) {
        if (Date.now() > deadline) {
          signal(daemon, 'SIGTERM');
          throw new ImplFailed(
            `${this.impl.label}: did not create ${name} and serve ${UAPI_DIR}/${name}.sock within ${timeoutMs / 1000} s (log: ${this.logTail(side)})`);
        }
        await sleep(50);
      }
      if (running(daemon)) return;
      // Debian's wireguard-go sometimes ends by itself right at start-up: start it again.
      if (attempt < MAX_STARTS) {
        this.opts.log?.(`${this.impl.label}: ${name} exited (${exitOf(daemon)}) at start-up (attempt ${attempt}), starting it again: ${this.logTail(side, 1)}`);
        await sleep(100 * attempt);
      } else {
        throw new ImplFailed(`${this.impl.label}: exited (${exitOf(daemon)}) before it served ${name} (log: ${this.logTail(side)})`);
      }
    }
  }

  /** `wg show IF` answers in the side's namespace: the interface exists and its UAPI is served. */
  private serves(side: Side): boolean {
    return spawnSync('ip', ['netns', 'exec', this.ns[side], 'wg', 'show', this.tunnel[side]], { stdio: 'ignore', timeout: 5_000 }).status === 0;
  }

  private configure(): void {
    const keys = { a: join(this.scratch, 'a.key'), b: join(this.scratch, 'b.key') };
    const pub: Record<Side, string> = { a: '', b: '' };
    for (const side of ['a', 'b'] as const) {
      writeFileSync(keys[side], run(['wg', 'genkey']), { mode: 0o600 });
      pub[side] = run(['wg', 'pubkey'], readFileSync(keys[side], 'utf8')).trim();
    }
    const far = this.net.far;
    const allowed: Record<Side, string[]> = {
      a: this.name === 'exit-node' ? ['0.0.0.0/0', '::/0']
        : [`${OVERLAY.b.v4}/32`, `${OVERLAY.b.v6}/128`, ...(far === undefined ? [] : [far.net.v4, far.net.v6])],
      b: [`${OVERLAY.a.v4}/32`, `${OVERLAY.a.v6}/128`],
    };
    for (const side of ['a', 'b'] as const) {
      const other: Side = side === 'a' ? 'b' : 'a';
      const ns = this.ns[side];
      const dev = this.tunnel[side];
      this.exec(ns, [
        'wg', 'set', dev, 'private-key', keys[side], 'listen-port', String(PORT[side]),
        'peer', pub[other], 'endpoint', `${this.underlay[other]}:${PORT[other]}`, 'allowed-ips', allowed[side].join(','),
      ]);
      run(['ip', '-n', ns, 'addr', 'add', `${OVERLAY[side].v4}/24`, 'dev', dev]);
      run(['ip', '-n', ns, '-6', 'addr', 'add', `${OVERLAY[side].v6}/64`, 'dev', dev, 'nodad']);
      run(['ip', '-n', ns, 'link', 'set', dev, 'mtu', TUN_MTU, 'up']);
    }
    const c = this.net.c;
    if (far === undefined || c === undefined) return;
    // Only the far prefixes go into a's tunnel: its route to b's endpoint stays on the veth.
    run(['ip', '-n', this.ns.a, 'route', 'add', far.net.v4, 'dev', this.tunnel.a]);
    run(['ip', '-n', this.ns.a, '-6', 'route', 'add', far.net.v6, 'dev', this.tunnel.a]);
    // An exit node's upstream has no way back to the overlay: it only sees b (masquerade).
    if (this.name === 'exit-node') return;
    run(['ip', '-n', c, 'route', 'add', '100.96.0.0/24', 'via', far.b.v4]);
    run(['ip', '-n', c, '-6', 'route', 'add', 'fd7a:7d0::/64', 'via', far.b.v6]);
  }

  private async waitForHandshake(): Promise<void> {
    const timeoutMs = this.opts.handshakeTimeoutMs ?? 5_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = spawnSync('ip', ['netns', 'exec', this.ns.a, 'ping', '-c1', '-W1', OVERLAY.b.v4], { stdio: 'ignore', timeout: 5_000 });
      if (r.status === 0) return;
      this.check();
      if (Date.now() > deadline) throw new ImplFailed(`${this.impl.label}: no handshake within ${timeoutMs / 1000} s`);
      await sleep(50);
    }
  }

  /** scripts/ethtool-tune.sh on b's LAN veth; 2 or 3 means this machine cannot have it. */
  private tune(): void {
    const lan = this.net.far!.devB; // router-tuned always has its LAN
    const r = spawnSync('ip', ['netns', 'exec', this.ns.b, 'bash', ETHTOOL_TUNE, '--interface', lan], {
      encoding: 'utf8', timeout: DEFAULT_EXEC_TIMEOUT_MS, env: { ...process.env, TUNDRA_ETHTOOL_STATE_DIR: join(this.scratch, 'ethtool') },
    });
    if (r.status === 0) return;
    const said = (r.stderr || r.stdout || r.error?.message || '').trim();
    if (r.status === 2 || r.status === 3) throw new Unavailable(`router-tuned: ${said}`);
    throw new Error(`scripts/ethtool-tune.sh --interface ${lan} failed (${r.status ?? r.signal}): ${said}`);
  }

  private saveWgShow(): void {
    const parts: string[] = [];
    for (const side of ['a', 'b'] as const) {
      const r = spawnSync('ip', ['netns', 'exec', this.ns[side], 'wg', 'show', this.tunnel[side]], { encoding: 'utf8', timeout: 5_000 });
      parts.push(`# ${this.ns[side]}: wg show ${this.tunnel[side]}\n${r.status === 0 ? r.stdout : `(failed: ${(r.stderr ?? '').trim()})\n`}`);
    }
    if (parts.length > 0) writeFileSync(join(this.opts.logDir, 'wg-show.txt'), parts.join('\n'));
  }

  private logFile(side: Side): string {
    return join(this.opts.logDir, `daemon-${side}.log`);
  }

  private logTail(side: Side, lines = LOG_TAIL_LINES): string {
    let text = '';
    try {
      text = readFileSync(this.logFile(side), 'utf8');
    } catch {
      return 'no log';
    }
    const tail = text.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-lines);
    return tail.length === 0 ? 'empty' : tail.join(' | ');
  }
}

/** For the runner's signal and 'exit' handlers: every topology still up goes, synchronously. */
export function downAllSync(): void {
  for (const remove of [...live.values()]) remove();
}

/** Namespaces and root-namespace links carrying this run id that exist now. */
export function leftovers(runId: string): string[] {
  const namespaces = run(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`tdr-b${runId}-`));
  // "7: name@if6: <…" or "7: name: <…"
  const links = run(['ip', '-o', 'link']).split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(`tdrb${runId}`));
  return [...namespaces, ...links];
}

function exitOf(child: ChildProcess): string {
  return child.signalCode !== null ? `signal ${child.signalCode}` : `status ${child.exitCode}`;
}

function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(child.pid, sig);
  } catch { /* exited meanwhile */ }
}

/** Resolves when the child has exited (and is reaped), or after timeoutMs. */
function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (!running(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
