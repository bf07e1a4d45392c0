// TUN I/O against the kernel, inside a test namespace: a fixture process there opens
// the TUN and answers pings read from it in FdWatcher-driven batches; this process
// (in the root namespace) never creates an interface itself. It drives the fixture
// over stdin/stdout and checks the results with `ip` and `ping`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { networkTestsUnavailable, TwoHosts } from '../helpers/netns.js';

const FIXTURE = fileURLToPath(new URL('../helpers/tun-echo.js', import.meta.url));
const EINVAL = constants.errno.EINVAL!;

interface Event {
  event: string;
  [field: string]: unknown;
}

/** The fixture: one command line in, JSON event lines out. */
class Fixture {
  private readonly events: Event[] = [];
  private waiter: (() => void) | undefined;
  private output = '';

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      this.output += `${line}\n`;
      try {
        this.events.push(JSON.parse(line) as Event);
      } catch {
        return;
      }
      this.waiter?.();
    });
    child.stderr.on('data', (d: Buffer) => { this.output += d.toString(); });
    child.on('exit', () => this.waiter?.());
  }

  /** Waits for the next event named `name` (earlier other events are discarded). */
  async next(name: string, timeoutMs = 10_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => e.event === name);
      if (i >= 0) return this.events.splice(0, i + 1)[i]!;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`fixture exited waiting for "${name}": ${this.output}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for "${name}": ${this.output}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(timer); resolve(); };
      });
      this.waiter = undefined;
    }
  }

  async command(line: string, reply = 'ok'): Promise<Event> {
    this.child.stdin.write(`${line}\n`);
    return this.next(reply);
  }
}

const skip = networkTestsUnavailable(['ip', 'ping']);

describe('TUN I/O in a namespace', { timeout: 120_000, skip }, () => {
  let hosts: TwoHosts;
  let ns: string;
  let fixture: Fixture;
  const ifname = `tdrt${process.pid % 100000}`;

  before(async () => {
    hosts = new TwoHosts('tt');
    ns = hosts.a;
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, FIXTURE, ifname], { stdio: ['pipe', 'pipe', 'pipe'] });
    fixture = new Fixture(child);
    await fixture.next('ready');
  });

  after(() => {
    const child = fixture?.child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
    }
    hosts?.destroy();
  });

  function link(): { mtu: number; flags: string[]; ifindex: number } {
    const out = hosts.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', ifname]);
    return (JSON.parse(out) as { mtu: number; flags: string[]; ifindex: number }[])[0]!;
  }

  function ping(args: string[]): { status: number | null; out: string } {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }

  test('openTun creates the interface in the namespace, with the MTU linkMtu reports', async () => {
    const { mtu } = await fixture.command('read-mtu', 'mtu');
    assert.ok(typeof mtu === 'number' && mtu > 0);
    assert.equal(link().mtu, mtu);
    // Not in the root namespace.
    assert.notEqual(spawnSync('ip', ['link', 'show', 'dev', ifname]).status, 0);
  });

  test('setLinkMtu is reflected in ip link show', async () => {
    await fixture.command('mtu 1420');
    assert.equal(link().mtu, 1420);
    await fixture.command('mtu 1380');
    assert.equal(link().mtu, 1380);
    assert.equal((await fixture.command('read-mtu', 'mtu')).mtu, 1380);
    const bad = await fixture.command('mtu 10', 'error');
    assert.equal(bad.code, 'EINVAL');
    assert.match(String(bad.message), new RegExp(`cannot set the MTU of "${ifname}" to 10: Invalid argument \\(EINVAL\\)`));
    await fixture.command('mtu 1420');
    assert.equal(link().mtu, 1420);
  });

  test('ping through the TUN: echo requests read in batches, replies written with tunWrite', async () => {
    hosts.exec(ns, 'ip', ['addr', 'add', '100.96.0.1/24', 'dev', ifname]);
    hosts.exec(ns, 'ip', ['addr', 'add', 'fd7a:7d0::1/64', 'dev', ifname, 'nodad']);
    hosts.exec(ns, 'ip', ['link', 'set', 'dev', ifname, 'up']);
    await fixture.command('stats', 'stats');

    const v4 = ping(['-c', '3', '-i', '0.2', '-W', '10', '100.96.0.2']);
    assert.match(v4.out, /3 packets transmitted, 3 received/, v4.out);

    const v6 = ping(['-6', '-c', '3', '-i', '0.2', '-W', '10', 'fd7a:7d0::2']);
    assert.match(v6.out, /3 packets transmitted, 3 received/, v6.out);

    // 64 requests, 16 in flight at a time: several arrive per read batch.
    const burst = ping(['-c', '64', '-l', '16', '-i', '0.01', '-W', '10', '-s', '1372', '100.96.0.2']);
    assert.match(burst.out, /64 packets transmitted, 64 received/, burst.out);

    const stats = await fixture.command('stats', 'stats');
    assert.equal(stats.pollerrs, 0);
    assert.equal(stats.requests, 70);
    assert.equal(stats.replies, 70);
    assert.equal(stats.truncated, 0);
    assert.ok((stats.maxBatch as number) >= 1);
  });

  test('a packet longer than the read capacity arrives with length 0', async () => {
    await fixture.command('capacity 200');
    const r = ping(['-c', '1', '-W', '1', '-s', '500', '100.96.0.2']);
    assert.match(r.out, /1 packets transmitted, 0 received/, r.out);
    await fixture.command('capacity 2040');
    const stats = await fixture.command('stats', 'stats');
    assert.equal(stats.truncated, 1);
    assert.equal(stats.replies, 0);
    const again = ping(['-c', '1', '-W', '10', '-s', '500', '100.96.0.2']);
    assert.match(again.out, /1 packets transmitted, 1 received/, again.out);
  });

  test('tunWrite of malformed packets: status -EINVAL, consumed, no throw; the valid one goes', async () => {
    const m = await fixture.command('malformed', 'malformed');
    assert.equal(m.written, 4);
    assert.deepEqual(m.status, [-EINVAL, -EINVAL, 0, -EINVAL]);
  });

  test('openTun errors are clean Errors naming the interface and the errno', async () => {
    const long = await fixture.command('open-long', 'openError');
    assert.equal(long.type, 'Error');
    assert.equal(long.code, 'ENAMETOOLONG');
    assert.match(String(long.message), /^cannot create TUN "tdr-name-too-long": File name too long \(ENAMETOOLONG\)/);
    const busy = await fixture.command('open-again', 'openError');
    assert.equal(busy.code, 'EBUSY');
    assert.equal(busy.message, `cannot create TUN "${ifname}": Device or resource busy (EBUSY)`);
  });

  test('after ip link del: the watcher reports the error once, tunRead/tunWrite throw EBADFD, linkMtu is 0', async () => {
    hosts.exec(ns, 'ip', ['link', 'del', 'dev', ifname]);
    const pollerr = await fixture.next('pollerr');
    assert.equal(pollerr.readable, true);
    const readError = await fixture.next('readError');
    assert.equal(readError.code, 'EBADFD');
    assert.match(String(readError.message), /cannot read from TUN fd \d+: File descriptor in bad state \(EBADFD\)/);
    assert.equal((await fixture.command('read-mtu', 'mtu')).mtu, 0);
    // The watcher stopped itself: no stream of error reports, no busy loop.
    await new Promise((r) => setTimeout(r, 300));
    const stats = await fixture.command('stats', 'stats');
    assert.deepEqual([stats.pollerrs, stats.readErrors], [1, 1]);
    // Writes and link settings fail cleanly too.
    const write = await fixture.command('malformed', 'error');
    assert.equal(write.code, 'EBADFD');
    const mtu = await fixture.command('mtu 1420', 'error');
    assert.equal(mtu.code, 'ENODEV');
    assert.match(String(mtu.message), new RegExp(`cannot set the MTU of "${ifname}" to 1420: No such device \\(ENODEV\\)`));
    await fixture.command('exit', 'closed');
  });
});
