// The one builder of test networks (docs/design.md §11), shared by the tests'
// TwoHosts/ThreeHosts, the benchmarks' Topology and the demo:
//
//   a —198.18.0.1/24 … 198.18.0.2/24— b —198.18.N.1/24, fd7a:7d0:N::1/64 … .2, ::2— c
//
// Namespaces tdr-<tag>-a|b|c, links tdr<tag>va|vb (a–b) and tdr<tag>vc|vd (b–c, only
// with a far subnet N). It deletes only the namespaces it made and ends only the
// children it started, by pid, also when set-up fails half-way and on process 'exit'.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Address { v4: string; v6: string }

/** The b–c link: each end's addresses, the link as prefixes, and its two interfaces. */
export interface FarLink { b: Address; c: Address; net: Address; devB: string; devC: string }

const EXEC_TIMEOUT_MS = 20_000;
/** How long destroy() lets a child end after SIGTERM, and again after SIGKILL. */
const STOP_GRACE_MS = 2_000;

/** Nets not yet destroyed, for the 'exit' handler. */
const live = new Set<TestNet>();
process.on('exit', () => {
  for (const net of [...live]) net.destroy();
});

/** Runs argv (not in a namespace) and returns its stdout; throws with its stderr when it fails. */
export function run(argv: string[], input?: string, timeoutMs = EXEC_TIMEOUT_MS): string {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) {
    const why = r.error !== undefined ? r.error.message : r.status === null ? `signal ${r.signal}` : `status ${r.status}`;
    throw new Error(`${argv.join(' ')} failed (${why}): ${(r.stderr ?? '').trim()}`);
  }
  return r.stdout;
}

export class TestNet {
  readonly a: string;
  readonly b: string;
  /** Only with a far link. */
  readonly c: string | undefined;
  readonly underlayA = '198.18.0.1';
  readonly underlayB = '198.18.0.2';
  /** The veth ends carrying the underlay addresses, in a and in b. */
  readonly vethA: string;
  readonly vethB: string;
  readonly far: FarLink | undefined;
  /** Namespaces made so far, in order: only these are deleted. */
  private readonly made: string[] = [];
  private readonly children: ChildProcess[] = [];
  private destroyed = false;

  /** `far`: the b–c link's subnet N (1–255); without it, two hosts. */
  constructor(readonly tag: string, far?: number) {
    this.a = `tdr-${tag}-a`;
    this.b = `tdr-${tag}-b`;
    this.c = far === undefined ? undefined : `tdr-${tag}-c`;
    this.vethA = this.ifname('va');
    this.vethB = this.ifname('vb');
    this.far = far === undefined ? undefined : {
      b: { v4: `198.18.${far}.1`, v6: `fd7a:7d0:${far}::1` },
      c: { v4: `198.18.${far}.2`, v6: `fd7a:7d0:${far}::2` },
      net: { v4: `198.18.${far}.0/24`, v6: `fd7a:7d0:${far}::/64` },
      devB: this.ifname('vc'),
      devC: this.ifname('vd'),
    };
    live.add(this);
    try {
      this.build();
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** An interface name of this net: tdr<tag><suffix>, the tag cut so that it fits 15 characters. */
  ifname(suffix: string): string {
    return `tdr${this.tag}`.slice(0, 15 - suffix.length) + suffix;
  }

  private build(): void {
    for (const ns of [this.a, this.b, this.c]) {
      if (ns === undefined) continue;
      run(['ip', 'netns', 'add', ns]);
      this.made.push(ns);
      run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      // No automatic IPv6 link-local addresses (so no router solicitations) on the
      // interfaces made here later: the tunnels carry only the tests' own addresses.
      this.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.addr_gen_mode=1']);
    }
    // Made inside the namespaces, so nothing ever appears in the root namespace.
    this.link(this.a, this.vethA, this.b, this.vethB);
    run(['ip', '-n', this.a, 'addr', 'add', `${this.underlayA}/24`, 'dev', this.vethA]);
    run(['ip', '-n', this.b, 'addr', 'add', `${this.underlayB}/24`, 'dev', this.vethB]);
    for (const [ns, dev] of [[this.a, this.vethA], [this.b, this.vethB]] as const) run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    if (this.c === undefined || this.far === undefined) return;
    const far = this.far;
    this.link(this.b, far.devB, this.c, far.devC);
    for (const [ns, dev, addr] of [[this.b, far.devB, far.b], [this.c, far.devC, far.c]] as const) {
      // A link-local address after all, usable at once: b's neighbour solicitations for
      // what it forwards to c go out from one (without it the kernel sends none).
      this.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.addr_gen_mode=0`, `net.ipv6.conf.${dev}.accept_dad=0`]);
      run(['ip', '-n', ns, 'addr', 'add', `${addr.v4}/24`, 'dev', dev]);
      // nodad: usable at once, not after duplicate address detection.
      run(['ip', '-n', ns, '-6', 'addr', 'add', `${addr.v6}/64`, 'dev', dev, 'nodad']);
      run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
  }

  private link(ns1: string, dev1: string, ns2: string, dev2: string): void {
    run(['ip', '-n', ns1, 'link', 'add', dev1, 'type', 'veth', 'peer', 'name', dev2, 'netns', ns2]);
  }

  /** Runs a command inside a namespace and returns its standard output. */
  exec(ns: string, cmd: string, args: string[], input?: string, timeoutMs = EXEC_TIMEOUT_MS): string {
    return run(['ip', 'netns', 'exec', ns, cmd, ...args], input, timeoutMs);
  }

  /** Starts a long-running process inside a namespace; destroy() ends it. */
  spawn(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): ChildProcess {
    if (this.destroyed) throw new Error(`the namespaces of ${this.tag} are gone: not starting ${cmd} ${args.join(' ')}`);
    // `ip netns exec` execs the command, so the child's pid is the program's own.
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { env: { ...process.env, ...env }, stdio });
    this.children.push(child);
    return child;
  }

  /** The children started here that are still running. */
  running(): ChildProcess[] {
    return this.children.filter(isRunning);
  }

  /**
   * Synchronous and idempotent: SIGTERM to the children still running, SIGKILL to any
   * left after a grace, then the namespaces this net made are deleted.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      // No event loop here: poll /proc. A child not yet reaped is at least a zombie, so its pid is still ours.
      const alive = this.children.filter(isRunning).filter((child) => pidAlive(child.pid));
      for (const child of alive) {
        try { process.kill(child.pid, sig); } catch { /* ended since the check: nothing to do */ }
      }
      const deadline = Date.now() + STOP_GRACE_MS;
      while (alive.some((child) => pidAlive(child.pid)) && Date.now() < deadline) sleepSync(20);
    }
    for (const ns of this.made.reverse()) {
      const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8', timeout: EXEC_TIMEOUT_MS });
      if (r.status !== 0) process.emitWarning(`could not delete namespace ${ns}: ${(r.stderr ?? '').trim()}`);
    }
    this.made.length = 0;
  }
}

/** Started, not ended and not yet reaped. */
export function isRunning(child: ChildProcess): child is ChildProcess & { pid: number } {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** There and not a zombie. */
function pidAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
