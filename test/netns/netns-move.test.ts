// Moving the interface to another network namespace, as wireguard.com/netns
// ("Ordinary Containerization") gives a container its WireGuard interface:
// `ip link set IF netns C`. tundra's UDP socket stays in the namespace it was made in,
// the interface is configured in C and carries C's traffic; `wg show IF` and
// `tundra stats IF` work in C (the UAPI socket's directory is shared); tundra follows
// the MTU set there; moving it back works too. Deleting the interface in C, or C
// itself with the interface in it, ends tundra cleanly (exit 0) as `ip link del` does
// at home. Inline (--queues 0), one and two queue workers, against Debian's
// wireguard-go. Below that, tunLink and tunName, what tundra looks through, on a TUN
// walked through three namespaces.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { tunLink, tunName, type TunLink } from '../../src/tun/tun.js';
import { networkTestsUnavailable, run, TwoHosts, waitFor } from '../helpers/netns.js';
import { OVERLAY, Tunnel, TUNDRA_MAIN } from '../helpers/tunnel.js';

const WALK = fileURLToPath(new URL('../helpers/tun-netns-walk.js', import.meta.url));

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'ss']);
/**
 * A bound for a daemon that never notices the deletion, not a speed (the suite passes on a busy machine): its link
 * check runs each second and the stop takes well under one, however busy the machine.
 */
const EXIT_BOUND_MS = 30_000;

/** The "container": a third namespace next to the tunnel's, deleted by remove() (also at exit). */
class Container {
  readonly name: string;
  private removed = false;
  private readonly onExit = (): void => this.remove();

  /** Named after `home` (a `tdr-…-a` namespace of the test's), with -c for -a. */
  constructor(home: string) {
    this.name = home.replace(/-a$/, '-c');
    assert.match(this.name, /^tdr-.+-c$/);
    process.once('exit', this.onExit);
    run('ip', ['netns', 'add', this.name]);
    run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    process.removeListener('exit', this.onExit);
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

/** Side a's overlay addresses, MTU and up, on the interface in namespace `ns`. */
function configure(ns: string, name: string, mtu: number): void {
  run('ip', ['-n', ns, 'address', 'add', `${OVERLAY.a.v4}/24`, 'dev', name]);
  run('ip', ['-n', ns, '-6', 'address', 'add', `${OVERLAY.a.v6}/64`, 'dev', name, 'nodad']);
  run('ip', ['-n', ns, 'link', 'set', 'mtu', String(mtu), 'up', 'dev', name]);
}

/** Waits (bounded) until a ping from `ns` to `address` is answered. */
async function pingWorks(ns: string, address: string): Promise<void> {
  const family = address.includes(':') ? '-6' : '-4';
  await waitFor(`a ping from ${ns} to ${address}`, () =>
    spawnSync('ip', ['netns', 'exec', ns, 'ping', family, '-c', '1', '-W', '1', address]).status === 0);
}

/** Pings both ways over both families: from `ns` (side a's interface) to side b, and back. */
async function trafficFlows(tunnel: Tunnel, ns: string): Promise<void> {
  await pingWorks(ns, OVERLAY.b.v4);
  await pingWorks(ns, OVERLAY.b.v6);
  await pingWorks(tunnel.ns('b'), OVERLAY.a.v4);
  await pingWorks(tunnel.ns('b'), OVERLAY.a.v6);
}

function daemonOf(tunnel: Tunnel): { alive: () => boolean; waitForLog: (line: string, from: number) => Promise<void>; exit: () => Promise<number | null> } {
  const daemon = tunnel.daemons.a;
  const output = tunnel.output.a;
  const alive = (): boolean => daemon.exitCode === null && daemon.signalCode === null;
  return {
    alive,
    waitForLog: (line, from) => waitFor(`tundra to log "${line}"`, () => {
      if (output().indexOf(line, from) >= 0) return true;
      if (!alive()) throw new Error(`tundra exited (${daemon.exitCode ?? daemon.signalCode}): ${output()}`);
      return false;
    }),
    exit: () => new Promise((resolve, reject) => {
      if (!alive()) {
        resolve(daemon.exitCode);
        return;
      }
      const timer = setTimeout(() => reject(new Error(`tundra still runs ${EXIT_BOUND_MS} ms after its interface was deleted: ${output()}`)), EXIT_BOUND_MS);
      daemon.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    }),
  };
}

function assertStoppedCleanly(tunnel: Tunnel, code: number | null): void {
  const output = tunnel.output.a();
  assert.equal(code, 0, `tundra's exit: ${output}`);
  assert.match(output, /Shutting down: interface was removed/);
  assert.doesNotMatch(output, /ERROR/, output);
}

/** The UDP sockets listening on side a's port in namespace `ns`. */
function listeners(ns: string): string {
  return run('ip', ['netns', 'exec', ns, 'ss', '-Hunl', 'sport', '=', ':51820']);
}

describe('moving the interface to another namespace (tundra ↔ Debian wireguard-go)', { skip, timeout: 240_000 }, () => {
  for (const queues of ['0', '1', '2']) {
    test(`--queues ${queues}: works in the other namespace and back again; deleting it there ends tundra (exit 0)`, async () => {
      const tunnel = new Tunnel(`mv${queues}`, { a: 'tundra', b: 'wireguard-go', env: { a: { TUNDRA_QUEUES: queues } } });
      let container: Container | undefined;
      try {
        await tunnel.start();
        const home = tunnel.ns('a');
        const name = tunnel.ifName.a;
        const daemon = daemonOf(tunnel);
        await trafficFlows(tunnel, home);

        container = new Container(tunnel.ns('a'));
        const c = container.name;
        run('ip', ['-n', home, 'link', 'set', name, 'netns', c]);
        configure(c, name, 1380);
        // tundra follows the MTU set in C: a link check that ran after the move.
        await daemon.waitForLog('MTU updated: 1380', 0);
        await trafficFlows(tunnel, c);
        const peer = encodeKey(publicKeyOf(tunnel.keys.b));
        assert.match(run('ip', ['netns', 'exec', c, 'wg', 'show', name]), new RegExp(`peer: ${peer.replace(/[+/]/g, '\\$&')}`));
        const stats = JSON.parse(run('ip', ['netns', 'exec', c, process.execPath, TUNDRA_MAIN, 'stats', name, '--json'])) as { interface: string };
        assert.equal(stats.interface, name);
        // The UDP socket stayed where tundra made it.
        assert.match(listeners(home), /:51820\b/);
        assert.equal(listeners(c).trim(), '');
        assert.ok(daemon.alive(), tunnel.output.a());

        // Back home (the move takes its addresses away).
        const mark = tunnel.output.a().length;
        run('ip', ['-n', c, 'link', 'set', name, 'netns', home]);
        configure(home, name, 1420);
        await daemon.waitForLog('MTU updated: 1420', mark);
        await trafficFlows(tunnel, home);
        assert.ok(daemon.alive(), tunnel.output.a());

        // To C again, and deleted there.
        run('ip', ['-n', home, 'link', 'set', name, 'netns', c]);
        configure(c, name, 1420);
        await pingWorks(c, OVERLAY.b.v4);
        const exit = daemon.exit();
        run('ip', ['-n', c, 'link', 'del', name]);
        assertStoppedCleanly(tunnel, await exit);
      } finally {
        container?.remove();
        tunnel.destroy();
      }
    });
  }

  for (const queues of ['0', '2']) {
    test(`--queues ${queues}: deleting the namespace the interface was moved to ends tundra (exit 0)`, async () => {
      const tunnel = new Tunnel(`mvd${queues}`, { a: 'tundra', b: 'wireguard-go', env: { a: { TUNDRA_QUEUES: queues } } });
      let container: Container | undefined;
      try {
        await tunnel.start();
        const name = tunnel.ifName.a;
        const daemon = daemonOf(tunnel);
        container = new Container(tunnel.ns('a'));
        run('ip', ['-n', tunnel.ns('a'), 'link', 'set', name, 'netns', container.name]);
        configure(container.name, name, 1380);
        await daemon.waitForLog('MTU updated: 1380', 0);
        await pingWorks(container.name, OVERLAY.b.v4);
        assert.ok(daemon.alive(), tunnel.output.a());
        const exit = daemon.exit();
        container.remove();
        assertStoppedCleanly(tunnel, await exit);
      } finally {
        container?.remove();
        tunnel.destroy();
      }
    });
  }
});

describe('tunLink and tunName follow a TUN through namespaces', { skip, timeout: 180_000 }, () => {
  test('name, namespace, MTU and tx_dropped wherever it is (also where this namespace had no nsid); EBADFD once its namespace is deleted', () => {
    const hosts = new TwoHosts('mvw');
    const c = new Container(hosts.a);
    try {
      const id = process.pid % 100000;
      const [name, renamed] = [`tdrmvw${id}`, `tdrmvw${id}r`];
      const r = spawnSync('ip', ['netns', 'exec', hosts.a, process.execPath, WALK, name, renamed, hosts.a, c.name, hosts.b],
        { encoding: 'utf8', timeout: 40_000 });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      const steps = new Map(r.stdout.trim().split('\n').map((line) => {
        const step = JSON.parse(line) as { step: string; link?: TunLink; name?: string; error?: { code: string; syscall: string } };
        return [step.step, step];
      }));
      const expect = (step: string, want: Partial<TunLink>): void => {
        const got = steps.get(step);
        assert.ok(got?.link !== undefined, `${step}: ${JSON.stringify(got)}`);
        const link = got.link;
        assert.deepEqual(Object.fromEntries(Object.keys(want).map((k) => [k, link[k as keyof TunLink]])), want, step);
        assert.equal(typeof link.txDropped, 'number', step);
        assert.equal(got.name, link.name, step);
      };
      expect('home', { name, callerNetns: true });
      expect('c', { name, callerNetns: false });
      expect('d renamed', { name: renamed, callerNetns: false });
      expect('d mtu', { name: renamed, callerNetns: false, mtu: 1280 });
      expect('home again', { name: renamed, callerNetns: true, mtu: 1280 });
      const deleted = steps.get('c deleted');
      assert.equal(deleted?.error?.code, 'EBADFD', JSON.stringify(deleted));
      assert.equal(deleted.error.syscall, 'ioctl');
    } finally {
      c.remove();
      hosts.destroy();
    }
  });

  test('argument checks before any system call; a fd that is no TUN is an errno Error', () => {
    const call = (fn: (fd: number) => unknown, fd: unknown): unknown => fn(fd as number);
    for (const fn of [tunLink, tunName]) {
      assert.throws(() => call(fn, 'x'), TypeError);
      assert.throws(() => call(fn, -1), RangeError);
      assert.throws(() => call(fn, 1.5), RangeError);
      const fd = openSync('/dev/null', 'r');
      try {
        assert.throws(() => fn(fd), (err: NodeJS.ErrnoException) => err.code === 'ENOTTY' && err.syscall === 'ioctl' && err.errno === -25);
      } finally {
        closeSync(fd);
      }
    }
  });
});
