// Faults a running tundra meets: each ends in recovery or a clean exit with a
// clear message, never a hang, never corrupted traffic. The bounds are for hangs only.
//   - its UDP port taken by another program: `wg set listen-port` fails and leaves the
//     old port working; `tundra up` with that port exits 1 saying what to do, leaving nothing;
//   - its interface deleted during a handshake flood (paced, and unpaced): it exits 0;
//   - its queue worker killed during a flood: restarted, the flood still cut, traffic exact.
// faults-stall.test.ts has the daemon stopped (SIGSTOP) and a full device queue on send.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, waitFor } from '../helpers/netns.js';
import { TUNDRA_MAIN, Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping']);
const SENDER = fileURLToPath(new URL('../../bench/flood/sender.js', import.meta.url));
const CRASH_STAGE = fileURLToPath(new URL('../helpers/crash-stage.js', import.meta.url));
const FLOOD_SOURCE = '198.18.0.3';
const B_PORT = 51821; // the Tunnel helper's port of side b
const TAKEN_PORT = 51900;

/** Floods b from a second address in a's namespace (bench/flood) until the test ends. */
function flood(tunnel: Tunnel, pace: readonly string[]): void {
  tunnel.hosts.exec(tunnel.ns('a'), 'ip', ['addr', 'add', `${FLOOD_SOURCE}/24`, 'dev', tunnel.hosts.vethA]);
  tunnel.hosts.spawn(tunnel.ns('a'), process.execPath, [
    SENDER, '--from', FLOOD_SOURCE, '--to', `${tunnel.underlay('b')}:${B_PORT}`, '--public-key', encodeKey(publicKeyOf(tunnel.keys.b)),
    ...pace, '--seconds', '170',
  ]);
}

/** Waits for b's cookie_rate_limited drops to exceed `above`: b is reading the flood and cutting it. */
async function floodCut(tunnel: Tunnel, above = 0): Promise<void> {
  let cut = 0;
  for (let i = 0; i < 300 && cut <= above; i++) {
    cut = (await tunnel.counters('b')).drops.cookie_rate_limited ?? 0;
    if (cut <= above) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(cut > above, `b cut the flood: cookie_rate_limited ${cut} > ${above}`);
}

describe('a UDP port taken by another program', { skip, timeout: 120_000 }, () => {
  let tunnel: Tunnel;
  const dir = mkdtempSync(join(tmpdir(), 'tundra-port-'));
  before(async () => {
    tunnel = new Tunnel('fport', { a: 'tundra', b: 'tundra' });
    await tunnel.start();
    assert.ok(tunnel.pingUntilReply('a'), 'the tunnel works');
    // The other program: a UDP socket on TAKEN_PORT in b's namespace, until the test ends.
    const holder = tunnel.hosts.spawn(tunnel.ns('b'), process.execPath, ['-e',
      `const s = require('node:dgram').createSocket('udp4'); s.bind(${TAKEN_PORT}, () => console.log('bound')); setTimeout(() => {}, 120000);`]);
    const out = captureOutput(holder);
    await waitFor('the other program to hold the port', () => out().includes('bound'));
  });
  after(() => {
    tunnel?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('wg set listen-port fails with "Address already in use"; the old port goes on working', () => {
    const b = tunnel.ifName.b;
    assert.throws(() => tunnel.wg('b', ['set', b, 'listen-port', String(TAKEN_PORT)]), /Address already in use/);
    assert.equal(tunnel.wg('b', ['show', b, 'listen-port']).trim(), String(B_PORT));
    assert.equal(tunnel.ping('a', 4), 3, 'pings cross on the old port');
    assert.equal(tunnel.daemons.b.exitCode, null, 'b is running');
  });

  test('tundra up with that ListenPort exits 1 naming the port and what to do, and leaves nothing behind', () => {
    const name = `tdrfup${process.pid % 10000}`;
    const config = join(dir, `${name}.conf`);
    writeFileSync(config, `[Interface]\nPrivateKey = ${encodeKey(tunnel.keys.b)}\nListenPort = ${TAKEN_PORT}\nAddress = 100.96.1.1/24\n`, { mode: 0o600 });
    const r = spawnSync('ip', ['netns', 'exec', tunnel.ns('b'), process.execPath, TUNDRA_MAIN, 'up', config], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, `${r.signal ?? ''} ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`cannot listen on port ${TAKEN_PORT}: .*Address already in use`));
    assert.match(r.stderr, new RegExp(`another program or interface has UDP port ${TAKEN_PORT} .*: stop it, or give this interface another ListenPort`));
    assert.notEqual(spawnSync('ip', ['-n', tunnel.ns('b'), 'link', 'show', name]).status, 0, 'no interface is left');
    assert.equal(existsSync(`/var/run/wireguard/${name}.sock`), false, 'no UAPI socket is left');
  });
});

for (const [tag, pace] of [['fdel', ['--rate', '5000']], ['fdelu', ['--unpaced']]] as const) {
  describe(`the interface deleted during a handshake flood (${pace.join(' ')})`, { skip, timeout: 120_000 }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(tag, { a: 'tundra', b: 'tundra' });
      await tunnel.start();
      flood(tunnel, pace);
    });
    after(() => tunnel?.destroy());

    test('b exits 0 with "interface was removed", leaving no process or socket', async () => {
      await floodCut(tunnel);
      const b = tunnel.daemons.b;
      tunnel.hosts.exec(tunnel.ns('b'), 'ip', ['link', 'del', tunnel.ifName.b]);
      await waitFor('b to exit', () => b.exitCode !== null || b.signalCode !== null, 60_000);
      assert.equal(b.exitCode, 0, `b exited ${b.exitCode ?? b.signalCode}: ${tunnel.output.b().slice(-2000)}`);
      assert.match(tunnel.output.b(), /Shutting down: interface was removed/);
      assert.doesNotMatch(tunnel.output.b(), /ERROR/);
      assert.equal(existsSync(`/var/run/wireguard/${tunnel.ifName.b}.sock`), false, 'the UAPI socket is gone');
    });
  });
}

describe('a queue worker killed during a handshake flood', { skip, timeout: 180_000 }, () => {
  let tunnel: Tunnel;
  const dir = mkdtempSync(join(tmpdir(), 'tundra-fcrash-'));
  const marker = join(dir, 'crash-now');
  before(async () => {
    // One queue: the worker that dies is the one reading the flood.
    tunnel = new Tunnel('fkill', { a: 'tundra', b: 'tundra', env: { b: { TUNDRA_QUEUES: '1', TUNDRA_STAGES: `${CRASH_STAGE}=${marker}` } } });
    await tunnel.start();
    assert.ok(tunnel.pingUntilReply('a'), 'the tunnel works');
    flood(tunnel, ['--rate', '40000']); // more DH than a core does: b goes under load and cuts
  });
  after(() => {
    tunnel?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('is restarted and cuts the flood again; traffic after it is byte-exact', async () => {
    await floodCut(tunnel);
    // b's next outbound packet (its reply to a ping) ends the worker.
    writeFileSync(marker, '1');
    tunnel.ping('a', 4, 1);
    let restarts = 0;
    for (let i = 0; i < 300 && restarts === 0; i++) {
      restarts = (await tunnel.counters('b')).queues[0]!.restarts!;
      if (restarts === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(restarts, 1, 'the worker was restarted once');
    assert.match(tunnel.output.b(), /queue-0 worker exited \(code 70\)/);
    await floodCut(tunnel, (await tunnel.counters('b')).drops.cookie_rate_limited ?? 0);
    const { sent, received } = await tunnel.transfer('a', 8 * 1024 * 1024);
    assert.equal(received.bytes, sent.bytes);
    assert.equal(received.sha256, sent.sha256);
    assert.equal(tunnel.ping('a', 6), 3);
    assert.equal((await tunnel.counters('b')).queues[0]!.restarts, 1, 'no further restarts');
  });
});
