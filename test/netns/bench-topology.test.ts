// bench/e2e/topology.ts: every benchmark topology comes up with tundra at both ends and
// carries traffic (router-tuned with the LAN veth tuned, exit-node masqueraded), p2p with
// Debian's wireguard-go, and every way set-up can fail (an implementation that exits, one
// that never makes its interface, no handshake, no kernel module) leaves nothing behind;
// two runs side by side do not collide, and downAllSync in a signal handler cleans up.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImplFailed, Unavailable } from '../../bench/e2e/errors.js';
import type { ImplSpec } from '../../bench/e2e/impls.js';
import { downAllSync, leftovers, Topology, TOPOLOGIES } from '../../bench/e2e/topology.js';
import { networkTestsUnavailable, waitFor } from '../helpers/netns.js';
import { TCP_TRANSFER, TUNDRA_MAIN } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'sysctl', 'nft', 'ethtool', 'bash']);
const CHILD = fileURLToPath(new URL('../helpers/bench-topology-child.js', import.meta.url));
/** How long an implementation has to come up: a bound for a hang, which a busy machine's tundra needs. */
const START_MS = 60_000;
const TUNDRA: ImplSpec = { label: 'tundra', kind: 'userspace', argv: [process.execPath, TUNDRA_MAIN, '-f', '%IF%'], env: {} };
const dirs: string[] = [];

/** A fresh run id, as the runner makes them: two tests never share a name. */
function runId(): string {
  return (randomBytes(4).readUInt32BE() % 36 ** 4).toString(36).padStart(4, '0');
}

function logDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tdr-bench-topology-test-'));
  dirs.push(dir);
  return dir;
}

/** Replies of 2 pings from ns to address, through whatever route ns has. */
function pings(t: Topology, ns: string, address: string): number {
  try {
    t.exec(ns, ['ping', address.includes(':') ? '-6' : '-4', '-c', '2', '-i', '0.2', '-W', '10', address]);
    return 2;
  } catch (err) {
    return Number(/(\d+) received/.exec((err as Error).message)?.[1] ?? 0);
  }
}

/** Gone, or a zombie its (perhaps already exited) parent leaves to init to reap. */
function gone(pid: number | null): boolean {
  if (pid === null) return true;
  try {
    return /^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function pidsIn(file: string): number[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map(Number) : [];
}

/** The source address the server in `t.server.ns` sees for a TCP connection from the client. */
async function sourceSeenByServer(t: Topology, address: string, dir: string): Promise<string> {
  const log = join(dir, `serve-${address.includes(':') ? 6 : 4}.log`);
  const server = t.spawn(t.server.ns, [process.execPath, TCP_TRANSFER, 'serve', address, '5301', '4096'], log);
  await waitFor('the TCP server to listen', () => readFileSync(log, 'utf8').includes('listening'));
  t.exec(t.client.ns, [process.execPath, TCP_TRANSFER, 'fetch', address, '5301']);
  if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
  const line = readFileSync(log, 'utf8').split('\n').find((l) => l.startsWith('{')) ?? '{}';
  return (JSON.parse(line) as { remote?: string }).remote ?? '';
}

async function assertRemoved(id: string, pids: (number | null)[]): Promise<void> {
  assert.deepEqual(leftovers(id), []);
  for (const pid of pids) assert.ok(gone(pid), `process ${pid} is gone`);
}

describe('bench/e2e/topology.ts', { skip, timeout: 600_000 }, () => {
  after(() => {
    downAllSync();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const name of TOPOLOGIES) {
    test(`${name} with tundra: up, traffic through the tunnel, down leaves nothing`, async () => {
      const id = runId();
      const dir = logDir();
      let t: Topology;
      try {
        t = await Topology.up({ name, runId: id, impl: TUNDRA, logDir: dir, startTimeoutMs: START_MS });
      } catch (err) {
        // Only a kernel without rx-udp-gro-forwarding may refuse the tuned router.
        const [major = 0, minor = 0] = release().split('.').map(Number);
        if (name === 'router-tuned' && err instanceof Unavailable && (major < 6 || (major === 6 && minor < 2))) return;
        throw err;
      }
      const pids = t.daemonPids();
      try {
        assert.ok(pids.client !== null && pids.peer !== null && pids.client !== pids.peer, JSON.stringify(pids));
        assert.equal(t.client.ns, `tdr-b${id}-a`);
        assert.equal(t.server.ns, name === 'p2p' ? `tdr-b${id}-b` : `tdr-b${id}-c`);
        assert.equal(pings(t, t.client.ns, t.server.v4), 2, `${name}: ${t.server.v4} answers`);
        assert.equal(pings(t, t.client.ns, t.server.v6), 2, `${name}: ${t.server.v6} answers`);
        if (name === 'router-tuned') {
          const features = t.exec(`tdr-b${id}-b`, ['ethtool', '-k', `tdrb${id}vc`]);
          assert.match(features, /^rx-udp-gro-forwarding: on/m);
        }
        if (name === 'exit-node') {
          // The masquerade: the upstream host sees the exit node's own LAN address.
          assert.equal(await sourceSeenByServer(t, t.server.v4, dir), '198.18.3.1');
          assert.equal(await sourceSeenByServer(t, t.server.v6, dir), 'fd7a:7d0:3::1');
        }
        if (name === 'p2p') {
          assert.throws(() => t.exec(t.client.ns, ['sh', '-c', 'echo nope >&2; exit 4']), /sh -c .*status 4.*nope/);
        }
        assert.ok(t.tunDrops() >= 0);
        t.check();
      } finally {
        await t.down();
        await t.down(); // idempotent
      }
      await assertRemoved(id, [pids.client, pids.peer]);
      assert.match(readFileSync(join(dir, 'wg-show.txt'), 'utf8'), /latest handshake/);
      assert.ok(existsSync(join(dir, 'daemon-a.log')) && existsSync(join(dir, 'daemon-b.log')));
    });
  }

  test('p2p with Debian wireguard-go', async () => {
    const id = runId();
    const t = await Topology.up({
      name: 'p2p', runId: id, logDir: logDir(), startTimeoutMs: START_MS,
      impl: { label: 'wireguard-go', kind: 'userspace', argv: ['wireguard-go', '-f', '%IF%'], env: {} },
    });
    const pids = t.daemonPids();
    try {
      assert.equal(pings(t, t.client.ns, t.server.v4), 2);
      assert.equal(pings(t, t.client.ns, t.server.v6), 2);
    } finally {
      await t.down();
    }
    await assertRemoved(id, [pids.client, pids.peer]);
  });

  test('an implementation that exits at once: started three times, then ImplFailed with its label, status and log', async () => {
    const id = runId();
    const said: string[] = [];
    await assert.rejects(Topology.up({
      name: 'router', runId: id, logDir: logDir(), log: (l) => said.push(l), startTimeoutMs: START_MS,
      impl: { label: 'quitter', kind: 'userspace', argv: ['sh', '-c', 'echo boom >&2; exit 3'], env: {} },
    }), (err: Error) => {
      assert.ok(err instanceof ImplFailed, String(err));
      assert.match(err.message, /^quitter: exited \(status 3\) before it served tdrb\w{4}[ab] \(log: .*boom/);
      return true;
    });
    assert.equal(said.filter((l) => /starting it again/.test(l)).length, 4, said.join('\n')); // 2 retries per side
    await assertRemoved(id, []);
  });

  test('an implementation that never creates its interface: ImplFailed "did not create", the process ended', async () => {
    const id = runId();
    const dir = logDir();
    const pidFile = join(dir, 'pids');
    await assert.rejects(Topology.up({
      name: 'p2p', runId: id, logDir: dir, startTimeoutMs: 1500,
      impl: { label: 'sleeper', kind: 'userspace', argv: ['sh', '-c', `echo $$ >> ${pidFile}; exec sleep 60`], env: {} },
    }), (err: Error) => err instanceof ImplFailed && /^sleeper: did not create tdrb\w{4}[ab] and serve \/var\/run\/wireguard\/tdrb\w+\.sock within 1\.5 s/.test(err.message));
    const pids = pidsIn(pidFile);
    assert.equal(pids.length, 2, 'one sleep per side');
    await assertRemoved(id, pids);
  });

  test('no handshake (b cannot answer): ImplFailed after both daemons served, nothing left', async () => {
    const id = runId();
    const dir = logDir();
    const pidFile = join(dir, 'pids');
    // b's answers to a's endpoint go nowhere, so the daemons run but never shake hands.
    const script = `echo $$ >> ${pidFile}; case "$1" in *b) ip route add blackhole 198.18.0.1/32;; esac; exec "$0" ${TUNDRA_MAIN} -f "$1"`;
    await assert.rejects(Topology.up({
      name: 'router', runId: id, logDir: dir, handshakeTimeoutMs: 2000, startTimeoutMs: START_MS,
      impl: { label: 'tundra-mute', kind: 'userspace', argv: ['sh', '-c', script, process.execPath, '%IF%'], env: {} },
    }), (err: Error) => err instanceof ImplFailed && err.message === 'tundra-mute: no handshake within 2 s');
    const pids = pidsIn(pidFile);
    assert.equal(pids.length, 2);
    await assertRemoved(id, pids);
  });

  test('two p2p topologies of different runs at once both carry traffic, then both go', async () => {
    const ids = [runId(), runId()];
    const ups = await Promise.allSettled(ids.map((id) => Topology.up({ name: 'p2p', runId: id, impl: TUNDRA, logDir: logDir(), startTimeoutMs: START_MS })));
    const ts = ups.flatMap((u) => (u.status === 'fulfilled' ? [u.value] : []));
    const pids = ts.flatMap((t) => Object.values(t.daemonPids()));
    try {
      for (const u of ups) if (u.status === 'rejected') throw u.reason;
      for (const t of ts) assert.equal(pings(t, t.client.ns, t.server.v4), 2, t.runId);
    } finally {
      await Promise.all(ts.map((t) => t.down()));
    }
    for (const id of ids) assert.deepEqual(leftovers(id), []);
    for (const pid of pids) assert.ok(gone(pid));
  });

  test('kernel: Unavailable with the module message without CONFIG_WIREGUARD, else it works', async () => {
    const id = runId();
    let t: Topology | undefined;
    try {
      t = await Topology.up({ name: 'p2p', runId: id, logDir: logDir(), impl: { label: 'kernel', kind: 'kernel', argv: [], env: {} } });
    } catch (err) {
      assert.ok(err instanceof Unavailable, String(err));
      assert.equal(err.message, 'the kernel has no WireGuard module (CONFIG_WIREGUARD); --impl kernel needs it');
    }
    if (t !== undefined) {
      try {
        assert.deepEqual(t.daemonPids(), { client: null, peer: null });
        assert.equal(pings(t, t.client.ns, t.server.v4), 2);
      } finally {
        await t.down();
      }
    }
    assert.deepEqual(leftovers(id), []);
  });

  test('downAllSync in a SIGINT handler removes a topology of that process', async () => {
    const id = runId();
    const child = spawn(process.execPath, [CHILD, id, logDir()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await waitFor('the child to be READY', () => {
        if (child.exitCode !== null) throw new Error(`child exited ${child.exitCode}: ${out}`);
        return out.includes('READY');
      }, 150_000);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    const pids = JSON.parse(/READY (.*)/.exec(out)![1]!) as { client: number; peer: number };
    assert.deepEqual(leftovers(id).sort(), [`tdr-b${id}-a`, `tdr-b${id}-b`], 'its namespaces while up; nothing in the root namespace');
    child.kill('SIGINT');
    assert.equal(await exit, 130, out);
    await assertRemoved(id, [pids.client, pids.peer]);
  });
});
