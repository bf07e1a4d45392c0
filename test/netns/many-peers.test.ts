// tundra with 2,000 idle peers besides the real one: 2,000 configured peers on side a
// (random keys, persistent keepalive 25, one allowed /32 each, loaded with `wg addconf`)
// whose endpoints never answer, while byte-exact TCP transfers cross the tunnel both
// ways and the real peer's handshakes still complete. It guards the control plane at
// scale: timers of thousands of peers must not starve the one that talks.
//
// The idle endpoints are ports nobody listens on at b's own underlay address
// (198.18.0.2:20000–21999): the initiations really leave a and cross the veth, b's
// kernel drops them (no socket, so no answer), and tcpdump on b's veth sees each one
// with its destination port, i.e. which idle peer sent it. Addresses no host has would
// stall in ARP instead, one incomplete neighbour entry per peer, past the kernel's
// default table limit (gc_thresh3, 1024).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, run, waitFor } from '../helpers/netns.js';
import { Tunnel, type Implementation } from '../helpers/tunnel.js';
import { UdpCapture } from '../helpers/udp-capture.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'tcpdump']);
const IDLE_PEERS = 2000;
const FIRST_IDLE_PORT = 20000;
const TRANSFER_BYTES = 100 * 1024 * 1024;
/** A retried initiation comes REKEY_TIMEOUT (5 s) plus up to 1/3 s of jitter after the last. */
const RETRY_WINDOW_MS = 6_000;

/** The idle peers' configuration, as `wg addconf` reads it: overlay 100.96.16.0 onwards, one /32 each. */
function idlePeersConfig(underlayB: string): string {
  const lines: string[] = [];
  for (let i = 0; i < IDLE_PEERS; i++) {
    const host = 16 * 256 + i;
    lines.push(
      '[Peer]',
      `PublicKey = ${encodeKey(publicKeyOf(generatePrivateKey()))}`,
      `Endpoint = ${underlayB}:${FIRST_IDLE_PORT + i}`,
      `AllowedIPs = 100.96.${host >> 8}.${host & 255}/32`,
      'PersistentKeepalive = 25',
      '',
    );
  }
  return lines.join('\n');
}

/** Handshake initiations (message type 1, 148 bytes) seen arriving at the idle peers' ports, per port. */
class InitiationCapture {
  private readonly child: ChildProcess;
  private readonly output: () => string;

  constructor(tunnel: Tunnel) {
    const { hosts } = tunnel;
    const filter = `udp and dst host ${hosts.underlayB} and dst portrange ${FIRST_IDLE_PORT}-${FIRST_IDLE_PORT + IDLE_PEERS - 1} and udp[8] = 1 and udp[4:2] = 156`;
    this.child = hosts.spawn(hosts.b, 'tcpdump', ['-i', hosts.vethB, '-nn', '-l', '-q', '-B', '8192', filter]);
    this.output = captureOutput(this.child);
  }

  async started(): Promise<void> {
    await waitFor('tcpdump to listen', () => {
      if (this.child.exitCode !== null) throw new Error(`tcpdump exited: ${this.output()}`);
      return this.output().includes('listening on');
    });
  }

  /** Initiations per idle port so far. */
  counts(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const match of this.output().matchAll(/ > [\d.]+\.(\d+): UDP/g)) {
      const port = Number(match[1]);
      counts.set(port, (counts.get(port) ?? 0) + 1);
    }
    return counts;
  }

  /** Ports that saw at least `n` initiations. */
  portsWithAtLeast(n: number): number {
    let ports = 0;
    for (const count of this.counts().values()) if (count >= n) ports++;
    return ports;
  }
}

/** The latest handshake (seconds since the epoch) `side` has with its first configured peer, the real one. */
function latestHandshake(tunnel: Tunnel, side: 'a' | 'b', peerKey: string): number {
  const line = tunnel.wg(side, ['show', tunnel.ifName[side], 'latest-handshakes']).split('\n').find((l) => l.startsWith(peerKey));
  return Number(line?.split('\t')[1] ?? NaN);
}

for (const [b, tag] of [['tundra', 'mt'], ['wireguard-go', 'mw']] as [Implementation, string][]) {
  describe(`tundra with ${IDLE_PEERS} idle peers ↔ ${b}`, { skip, timeout: 300_000 }, () => {
    let tunnel: Tunnel;
    let capture: InitiationCapture;
    let loadedAt = 0;
    const dir = mkdtempSync(join(tmpdir(), 'tundra-many-peers-'));
    before(async () => {
      tunnel = new Tunnel(tag, { a: 'tundra', b });
      await tunnel.start();
      capture = new InitiationCapture(tunnel);
      await capture.started();
    });
    after(() => {
      tunnel?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    test(`wg addconf loads ${IDLE_PEERS} peers beside the real one`, () => {
      const file = join(dir, 'idle.conf');
      writeFileSync(file, idlePeersConfig(tunnel.hosts.underlayB));
      const started = Date.now();
      tunnel.wg('a', ['addconf', tunnel.ifName.a, file]);
      loadedAt = Date.now();
      process.stderr.write(`# wg addconf of ${IDLE_PEERS} peers: ${loadedAt - started} ms\n`);
      const peers = tunnel.wg('a', ['show', tunnel.ifName.a, 'peers']).trim().split('\n');
      assert.equal(peers.length, IDLE_PEERS + 1);
      assert.ok(peers.includes(encodeKey(publicKeyOf(tunnel.keys.b))), 'the real peer is still there');
      assert.equal(tunnel.wg('a', ['show', tunnel.ifName.a, 'allowed-ips']).trim().split('\n').length, IDLE_PEERS + 1);
    });

    for (const from of ['a', 'b'] as const) {
      test(`${TRANSFER_BYTES >> 20} MB over TCP from ${from} arrives byte for byte`, async () => {
        const { sent, received } = await tunnel.transfer(from, TRANSFER_BYTES, 4);
        assert.equal(received.bytes, TRANSFER_BYTES);
        assert.equal(received.sha256, sent.sha256);
      });
    }

    test('a fresh handshake of the real peer completes while the idle peers retry', async () => {
      const keyA = encodeKey(publicKeyOf(tunnel.keys.a));
      const keyB = encodeKey(publicKeyOf(tunnel.keys.b));
      // wg's latest-handshakes has whole seconds: let one pass so an advance shows.
      const before = latestHandshake(tunnel, 'a', keyB);
      assert.ok(before > 0, 'the transfers made a handshake');
      await new Promise((r) => setTimeout(r, 1100));
      // b forgets a and learns it again: its next packet needs a new handshake, which a must answer.
      tunnel.wg('b', ['set', tunnel.ifName.b, 'peer', keyA, 'remove']);
      tunnel.wg('b', [
        'set', tunnel.ifName.b, 'peer', keyA, 'endpoint', `${tunnel.hosts.underlayA}:51820`, 'allowed-ips', '100.96.0.1/32,fd7a:7d0::1/128',
      ]);
      assert.equal(latestHandshake(tunnel, 'b', keyA), 0, 'b starts over');
      const initiations = await UdpCapture.start(tunnel.hosts, tunnel.ns('b'), tunnel.hosts.vethB,
        ['-Q', 'out', 'udp', 'and', 'dst', 'port', '51820', 'and', 'udp[8]', '=', '1', 'and', 'udp[4:2]', '=', '156']);
      // One ping makes b initiate. Its reply can be lost today: a may seal it with the old session,
      // which b has forgotten, before it has switched to the new one. The handshake is what counts here.
      tunnel.ping('b', 4, 1);
      // A bound for a hang only (no timing assertions): how long it took is no proof, a busy machine makes it seconds.
      await waitFor('a new handshake at both ends', () => latestHandshake(tunnel, 'a', keyB) > before && latestHandshake(tunnel, 'b', keyA) > 0, 60_000);
      // What proves a was not starved is the protocol's own deadline: b sends its initiation
      // again if no response came within REKEY_TIMEOUT (5 s). A handshake takes milliseconds
      // of a's time, so a answers the first one however busy the machine; one stuck behind
      // the idle peers' timers makes b retry, and the handshake completes on a later initiation.
      const sent = (await initiations.stop((d) => d.length > 0)).filter((d) => d.destination === tunnel.hosts.underlayA);
      assert.equal(sent.length, 1, `a answered b's first initiation: b sent ${sent.length}`);
      assert.equal(tunnel.ping('b', 4, 3), 3, 'the new session carries traffic both ways');
    });

    test('every idle peer sent initiations and retried them', async () => {
      // Each idle peer initiates when its keepalive is set, then again every ~5 s.
      const since = Date.now() - loadedAt;
      if (since < 2 * RETRY_WINDOW_MS) await new Promise((r) => setTimeout(r, 2 * RETRY_WINDOW_MS - since));
      // A bound for a hang: a busy machine may take longer to send 2,000 initiations twice.
      await waitFor('the idle peers\' retries', () => capture.portsWithAtLeast(2) === IDLE_PEERS, 10 * RETRY_WINDOW_MS);
      const counts = capture.counts();
      assert.equal(counts.size, IDLE_PEERS, 'initiations went to every idle endpoint');
      const handshakes = tunnel.wg('a', ['show', tunnel.ifName.a, 'latest-handshakes']).trim().split('\n');
      assert.equal(handshakes.filter((l) => l.endsWith('\t0')).length, IDLE_PEERS, 'no idle peer ever completed a handshake');
    });

    test('nothing is left behind', () => {
      const names = [tunnel.ns('a'), tunnel.ns('b')];
      const sockets = [tunnel.ifName.a, tunnel.ifName.b].map((name) => `/var/run/wireguard/${name}.sock`);
      tunnel.destroy();
      const namespaces = run('ip', ['netns', 'list']);
      for (const ns of names) assert.ok(!namespaces.split('\n').some((l) => l.split(' ')[0] === ns), `namespace ${ns} is gone`);
      // The daemons remove their UAPI sockets as they exit, which may take a moment after SIGTERM.
      return waitFor('the UAPI sockets to go', () => sockets.every((path) => !existsSync(path)), 30_000);
    });
  });
}
