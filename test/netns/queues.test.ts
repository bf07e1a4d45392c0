// The data path on two queue workers with a crypto pool of two (--queues 2
// --workers 2: batches are sealed and opened out of order and released in order): a
// tundra hub with its own endpoint per peer, and Debian wireguard-go peers, each on
// its own port, so the kernel spreads them over the hub's two UDP sockets
// (SO_REUSEPORT hashes the 4-tuple) and TUN queues. Each peer's UDP stream arrives in
// order (sequence numbers at the receiver), TCP arrives byte for byte both ways, and
// both queues carried traffic (their counters) and handed batches to the pool.
//
// Hub (namespace a): tun 100.96.0.1/24, plus 100.96.0.(100+i)/32 for peer i.
// Peer i (namespace b): interface with 100.96.0.(10+i)/32 and a route to 100.96.0.(100+i).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, TwoHosts, waitFor } from '../helpers/netns.js';
import { countersOf, tcpTransfer, TUNDRA_MAIN, udpTransfer } from '../helpers/tunnel.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
const HUB_PORT = 51820;
/** Peers to start with; more are added (up to MAX_PEERS) until both queues have one. */
const FIRST_PEERS = 4;
const MAX_PEERS = 12;
const UDP_DATAGRAMS = 4000;
/** Per peer; Debian wireguard-go's default 212 KB socket buffer rides through this (offload.test.ts). */
const UDP_MBITS = 20;
const TCP_BYTES = 8 * 1024 * 1024;

const peerAddress = (i: number): string => `100.96.0.${10 + i}`;
const hubAddress = (i: number): string => `100.96.0.${100 + i}`;

describe('--queues 2 --workers 2: a hub with peers on both queues', { skip, timeout: 240_000 }, () => {
  const id = `q${process.pid % 100000}`;
  const dir = mkdtempSync(join(tmpdir(), 'tundra-queues-'));
  const hubKey = generatePrivateKey();
  const hubName = `tdr${id}h`.slice(0, 15);
  let hosts: TwoHosts;
  let hub: ChildProcess;
  let hubOutput: () => string;
  let peers = 0;

  const wg = (ns: string, args: string[]): string => hosts.exec(ns, 'wg', args);
  const keyFile = (name: string, key: Uint8Array): string => {
    const file = join(dir, `${name}.key`);
    writeFileSync(file, encodeKey(key), { mode: 0o600 });
    return file;
  };

  async function addPeer(i: number): Promise<void> {
    const name = `tdr${id}p${i}`.slice(0, 15);
    const key = generatePrivateKey();
    await startWireguardGo(hosts, hosts.b, 'wireguard-go', name);
    wg(hosts.b, ['set', name, 'private-key', keyFile(name, key), 'listen-port', String(HUB_PORT + 10 + i),
      'peer', encodeKey(publicKeyOf(hubKey)), 'allowed-ips', `${hubAddress(i)}/32`, 'endpoint', `${hosts.underlayA}:${HUB_PORT}`]);
    hosts.exec(hosts.b, 'ip', ['address', 'add', `${peerAddress(i)}/32`, 'dev', name]);
    hosts.exec(hosts.b, 'ip', ['link', 'set', 'mtu', '1420', 'up', 'dev', name]);
    hosts.exec(hosts.b, 'ip', ['route', 'add', `${hubAddress(i)}/32`, 'dev', name, 'src', peerAddress(i)]);
    wg(hosts.a, ['set', hubName, 'peer', encodeKey(publicKeyOf(key)), 'allowed-ips', `${peerAddress(i)}/32`,
      'endpoint', `${hosts.underlayB}:${HUB_PORT + 10 + i}`]);
    hosts.exec(hosts.a, 'ip', ['address', 'add', `${hubAddress(i)}/32`, 'dev', hubName]);
    hosts.exec(hosts.a, 'ip', ['route', 'add', `${peerAddress(i)}/32`, 'dev', hubName, 'src', hubAddress(i)]);
    const ping = hosts.exec(hosts.b, 'ping', ['-c', '2', '-i', '0.2', '-W', '10', '-I', peerAddress(i), hubAddress(i)]);
    assert.match(ping, /2 received/, `peer ${i} reaches the hub`);
  }

  const busy = (queue: Record<string, number>): boolean => queue.udp_received_datagrams! > 0 && queue.tun_read_packets! > 0;

  before(async () => {
    hosts = new TwoHosts(id);
    hub = hosts.spawn(hosts.a, process.execPath, [TUNDRA_MAIN, '-f', hubName], { LOG_LEVEL: 'verbose', TUNDRA_QUEUES: '2', TUNDRA_WORKERS: '2' });
    hubOutput = captureOutput(hub);
    await waitFor('tundra to serve the hub', () => {
      if (hub.exitCode !== null) throw new Error(`tundra exited: ${hubOutput()}`);
      try {
        wg(hosts.a, ['show', hubName]);
        return true;
      } catch {
        return false;
      }
    });
    wg(hosts.a, ['set', hubName, 'private-key', keyFile('hub', hubKey), 'listen-port', String(HUB_PORT)]);
    hosts.exec(hosts.a, 'ip', ['address', 'add', '100.96.0.1/24', 'dev', hubName]);
    hosts.exec(hosts.a, 'ip', ['link', 'set', 'mtu', '1420', 'up', 'dev', hubName]);
    // Which socket a peer lands on is the kernel's hash: add peers until both queues carry one.
    while (peers < FIRST_PEERS || (peers < MAX_PEERS && !(await countersOf(hub, hubOutput)).queues.every(busy))) {
      await addPeer(peers++);
    }
  });
  after(() => {
    hosts?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('both queues carry peers (their counters)', async () => {
    const { queues } = await countersOf(hub, hubOutput);
    assert.equal(queues.length, 2);
    for (const [k, queue] of queues.entries()) assert.ok(busy(queue), `queue ${k} received and read packets: ${JSON.stringify(queue)}`);
  });

  test("every peer's UDP stream arrives in order, at the same time as the others", async () => {
    const reports = await Promise.all(Array.from({ length: peers }, (_, i) =>
      udpTransfer(hosts, hosts.b, hosts.a, hubAddress(i), 5300 + i, UDP_DATAGRAMS, UDP_MBITS)));
    for (const [i, r] of reports.entries()) {
      assert.equal(r.reordered, 0, `peer ${i}: no datagram out of order (${JSON.stringify(r)})`);
      assert.equal(r.duplicates, 0, `peer ${i}: no duplicates`);
      assert.equal(r.corrupt, 0, `peer ${i}: none corrupt`);
      assert.ok(r.received >= UDP_DATAGRAMS * 0.95, `peer ${i}: at least 95% arrived (${r.received})`);
    }
  });

  test('TCP both ways, byte for byte, with two peers at once', async () => {
    const runs = await Promise.all([0, 1].flatMap((i) => [
      tcpTransfer(hosts, hosts.b, hosts.a, hubAddress(i), 5400 + i, TCP_BYTES),
      tcpTransfer(hosts, hosts.a, hosts.b, peerAddress(i), 5410 + i, TCP_BYTES),
    ]));
    for (const { sent, received } of runs) {
      assert.equal(received.bytes, TCP_BYTES);
      assert.equal(received.sha256, sent.sha256);
    }
    const { drops, queues } = await countersOf(hub, hubOutput);
    assert.equal(drops.decrypt_failed ?? 0, 0, 'nothing failed to open');
    assert.equal(drops.replay ?? 0, 0, 'nothing was taken for a replay');
    for (const queue of queues) assert.equal(queue.restarts, 0, 'no worker died');
    const after = await countersOf(hub, hubOutput);
    assert.deepEqual(after.pool, { workers: 2, restarts: 0, lost_batches: 0 }, 'the pool sealed and opened without a fault');
    assert.ok(after.queues.every((q) => q.pool_batches! > 0), `both queues handed batches to the pool: ${JSON.stringify(after.queues)}`);
  });
});
