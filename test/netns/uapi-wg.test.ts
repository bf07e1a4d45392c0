// The UAPI server driven by the real `wg` (wireguard-tools) against an in-memory
// device: what `wg` sends must arrive as the right SetRequests, and what the device
// holds must come back out of `wg show`. No namespace is needed (nothing is sent on
// a network), but /var/run/wireguard is root's, and it is shared: the interface name
// carries this process's pid.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { clamp, encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { formatPrefix, parsePrefix } from '../../src/routing/prefix.js';
import { UapiError } from '../../src/errors.js';
import {
  type PeerChange,
  type SetRequest,
  type UapiDevice,
  type UapiInterfaceState,
  type UapiPeerState,
} from '../../src/uapi/protocol.js';
import { DEFAULT_SOCKET_DIRECTORY, startUapiServer, type UapiServer } from '../../src/uapi/server.js';
import { networkTestsUnavailable } from '../helpers/netns.js';

const skip = networkTestsUnavailable(['wg']);

const hexOf = (key: Uint8Array) => Buffer.from(key).toString('hex');
const zero = (key: Uint8Array) => key.every((b) => b === 0);

/** Applies requests the way wireguard-go does, and records them. */
class FakeDevice implements UapiDevice {
  readonly requests: SetRequest[] = [];
  privateKey: Uint8Array | undefined;
  listenPort = 51820;
  fwmark = 0;
  peers = new Map<string, UapiPeerState>();
  /** A port `set` refuses, as if something else held it. */
  takenPort = -1;

  get(): UapiInterfaceState {
    return { privateKey: this.privateKey, listenPort: this.listenPort, fwmark: this.fwmark, peers: [...this.peers.values()] };
  }

  async set(request: SetRequest): Promise<void> {
    this.requests.push(request);
    if (request.listenPort === this.takenPort) throw new UapiError(constants.errno.EADDRINUSE, `port ${request.listenPort} is taken`);
    if (request.privateKey !== undefined) this.privateKey = request.privateKey ?? undefined;
    if (request.listenPort !== undefined) this.listenPort = request.listenPort || 40000;
    if (request.fwmark !== undefined) this.fwmark = request.fwmark;
    if (request.replacePeers) this.peers.clear();
    const own = this.privateKey && hexOf(publicKeyOf(this.privateKey));
    for (const change of request.peers) this.apply(change, own);
  }

  private apply(change: PeerChange, ownKey: string | undefined): void {
    const id = hexOf(change.publicKey);
    if (id === ownKey) return;
    if (change.remove) {
      this.peers.delete(id);
      return;
    }
    let peer = this.peers.get(id);
    if (peer === undefined) {
      if (change.updateOnly) return;
      peer = newPeer(change.publicKey);
      this.peers.set(id, peer);
    }
    if (change.presharedKey !== undefined) peer.presharedKey = zero(change.presharedKey) ? undefined : change.presharedKey;
    if (change.endpoint !== undefined) peer.endpoint = change.endpoint;
    if (change.persistentKeepalive !== undefined) peer.persistentKeepalive = change.persistentKeepalive;
    if (change.replaceAllowedIPs) peer.allowedIPs = [];
    for (const { prefix, remove } of change.allowedIPs) {
      const text = formatPrefix(prefix);
      // A prefix belongs to one peer: adding it here takes it from the others.
      for (const other of remove ? [peer] : this.peers.values()) other.allowedIPs = other.allowedIPs.filter((p) => formatPrefix(p) !== text);
      if (!remove) peer.allowedIPs.push(prefix);
    }
  }
}

function newPeer(publicKey: Uint8Array, fields: Partial<UapiPeerState> = {}): UapiPeerState {
  return { publicKey, presharedKey: undefined, endpoint: undefined, lastHandshakeWallMs: 0, rxBytes: 0, txBytes: 0, persistentKeepalive: 0, allowedIPs: [], ...fields };
}

/** Runs wg without blocking the event loop: the server answering it lives in this process. */
function wg(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('wg', args, { timeout: 5000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(`wg ${args.join(' ')}: ${stderr || err.message}`), { stderr, code: err.code }));
      else resolve(stdout);
    });
  });
}

/** One peer's line of `wg show <if> dump`, from what the fake holds. */
function dumpLine(p: UapiPeerState): string {
  const endpoint = p.endpoint ? (p.endpoint.address.includes(':') ? `[${p.endpoint.address}]:${p.endpoint.port}` : `${p.endpoint.address}:${p.endpoint.port}`) : '(none)';
  return [
    encodeKey(p.publicKey),
    p.presharedKey ? encodeKey(p.presharedKey) : '(none)',
    endpoint,
    p.allowedIPs.length ? p.allowedIPs.map(formatPrefix).join(',') : '(none)',
    Math.floor(p.lastHandshakeWallMs / 1000),
    p.rxBytes,
    p.txBytes,
    p.persistentKeepalive || 'off',
  ].join('\t');
}

function expectedDump(d: FakeDevice): string {
  const key = d.privateKey;
  const head = [key ? encodeKey(key) : '(none)', key ? encodeKey(publicKeyOf(key)) : '(none)', d.listenPort, d.fwmark ? `0x${d.fwmark.toString(16)}` : 'off'].join('\t');
  return [head, ...[...d.peers.values()].map(dumpLine)].join('\n') + '\n';
}

/** `wg show dump` sorts peers by latest handshake; compare as sets of lines, header first. */
function assertDump(actual: string, d: FakeDevice): void {
  const [head, ...peers] = actual.trimEnd().split('\n');
  const [wantHead, ...wantPeers] = expectedDump(d).trimEnd().split('\n');
  assert.equal(head, wantHead);
  assert.deepEqual(peers.sort(), wantPeers.sort());
}

const peerChange = (publicKey: Uint8Array, fields: Partial<PeerChange> = {}): PeerChange => ({
  publicKey, remove: false, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [], ...fields,
});
const adds = (...prefixes: string[]) => prefixes.map((p) => ({ prefix: parsePrefix(p), remove: false }));

describe('uapi server with the real wg', { skip, timeout: 30_000 }, () => {
  const ifname = `tdru${process.pid}`.slice(0, 15);
  const socketPath = join(DEFAULT_SOCKET_DIRECTORY, `${ifname}.sock`);
  const device = new FakeDevice();
  let server: UapiServer | undefined;
  let dir: string;

  const keyA = publicKeyOf(generatePrivateKey());
  const keyB = publicKeyOf(generatePrivateKey());
  const keyC = publicKeyOf(generatePrivateKey());
  const keyD = publicKeyOf(generatePrivateKey());
  const keyE = publicKeyOf(generatePrivateKey());
  const pskA = generatePresharedKey();
  const lastRequest = () => device.requests.at(-1);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tundra-uapi-wg-'));
    device.privateKey = generatePrivateKey();
    device.peers.set(hexOf(keyA), newPeer(keyA, {
      presharedKey: pskA,
      endpoint: { address: 'fd7a:7d0::2', port: 51820 },
      lastHandshakeWallMs: 1_700_000_000_250,
      rxBytes: 123_456_789_012,
      txBytes: 42,
      persistentKeepalive: 25,
      allowedIPs: [parsePrefix('100.96.1.0/24'), parsePrefix('fd7a:7d0:1::/64')],
    }));
    device.peers.set(hexOf(keyB), newPeer(keyB, { endpoint: { address: '198.18.0.2', port: 443 } }));
    server = await startUapiServer(ifname, device);
  });

  after(async () => {
    await server?.close();
    rmSync(socketPath, { force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test('wg show <if> dump prints what the device holds', async () => {
    assert.equal(lstatSync(socketPath).mode & 0o777, 0o600);
    assertDump(await wg(['show', ifname, 'dump']), device);
    assert.ok((await wg(['show', 'interfaces'])).split(/\s+/).includes(ifname));
  });

  test('wg show <if> in human form', async () => {
    const text = await wg(['show', ifname]);
    for (const line of [
      `interface: ${ifname}`,
      `  public key: ${encodeKey(publicKeyOf(device.privateKey!))}`,
      '  private key: (hidden)',
      '  listening port: 51820',
      `peer: ${encodeKey(keyA)}`,
      '  preshared key: (hidden)',
      '  endpoint: [fd7a:7d0::2]:51820',
      '  allowed ips: 100.96.1.0/24, fd7a:7d0:1::/64',
      '  transfer: 114.98 GiB received, 42 B sent',
      '  persistent keepalive: every 25 seconds',
      `peer: ${encodeKey(keyB)}`,
      '  endpoint: 198.18.0.2:443',
      '  allowed ips: (none)',
    ]) {
      assert.ok(text.split('\n').includes(line), `missing ${JSON.stringify(line)} in:\n${text}`);
    }
    assert.match(text, /latest handshake: .* ago/);
  });

  test('wg showconf <if>', async () => {
    assert.equal(
      await wg(['showconf', ifname]),
      `[Interface]\nListenPort = 51820\nPrivateKey = ${encodeKey(device.privateKey!)}\n\n` +
        `[Peer]\nPublicKey = ${encodeKey(keyA)}\nPresharedKey = ${encodeKey(pskA)}\n` +
        'AllowedIPs = 100.96.1.0/24, fd7a:7d0:1::/64\nEndpoint = [fd7a:7d0::2]:51820\nPersistentKeepalive = 25\n\n' +
        `[Peer]\nPublicKey = ${encodeKey(keyB)}\nEndpoint = 198.18.0.2:443\n`,
    );
  });

  test('wg set: interface and a new peer with every option', async () => {
    const privateKey = randomBytes(32); // unclamped: the server clamps as wireguard-go does
    const psk = generatePresharedKey();
    writeFileSync(join(dir, 'private'), encodeKey(privateKey), { mode: 0o600 });
    writeFileSync(join(dir, 'psk'), encodeKey(psk), { mode: 0o600 });
    await wg(['set', ifname, 'private-key', join(dir, 'private'), 'listen-port', '51821', 'fwmark', '0x20',
      'peer', encodeKey(keyC), 'preshared-key', join(dir, 'psk'), 'endpoint', '198.18.0.3:51820', 'persistent-keepalive', '30',
      'allowed-ips', '100.96.3.0/24,fd7a:7d0:3::/64']);
    assert.deepEqual(lastRequest(), {
      privateKey: clamp(privateKey),
      listenPort: 51821,
      fwmark: 0x20,
      replacePeers: false,
      peers: [peerChange(keyC, {
        presharedKey: psk,
        endpoint: { address: '198.18.0.3', port: 51820 },
        persistentKeepalive: 30,
        replaceAllowedIPs: true,
        allowedIPs: adds('100.96.3.0/24', 'fd7a:7d0:3::/64'),
      })],
    });
    assertDump(await wg(['show', ifname, 'dump']), device);
  });

  test('wg set: an IPv6 endpoint, keepalive off, allowed IPs emptied, preshared key cleared', async () => {
    await wg(['set', ifname, 'peer', encodeKey(keyC), 'endpoint', '[fd7a:7d0::3]:4500', 'persistent-keepalive', 'off', 'allowed-ips', '',
      'preshared-key', '/dev/null']);
    assert.deepEqual(lastRequest(), {
      replacePeers: false,
      peers: [peerChange(keyC, {
        presharedKey: new Uint8Array(32),
        endpoint: { address: 'fd7a:7d0::3', port: 4500 },
        persistentKeepalive: 0,
        replaceAllowedIPs: true,
      })],
    });
    const line = (await wg(['show', ifname, 'dump'])).split('\n').find((l) => l.startsWith(encodeKey(keyC)));
    assert.equal(line, `${encodeKey(keyC)}\t(none)\t[fd7a:7d0::3]:4500\t(none)\t0\t0\t0\toff`);
  });

  test('wg set: remove a peer', async () => {
    await wg(['set', ifname, 'peer', encodeKey(keyC), 'remove']);
    assert.deepEqual(lastRequest(), { replacePeers: false, peers: [peerChange(keyC, { remove: true })] });
    assert.ok(!device.peers.has(hexOf(keyC)));
  });

  test('wg set: a refused listen port fails the command and changes nothing', async () => {
    device.takenPort = 51999;
    const before = expectedDump(device);
    await assert.rejects(wg(['set', ifname, 'listen-port', '51999']), (err: Error & { stderr?: string }) => {
      assert.match(err.stderr ?? '', /Address already in use/);
      return true;
    });
    assert.equal(expectedDump(device), before);
    device.takenPort = -1;
  });

  const config = (peers: string) => `[Interface]\nPrivateKey = ${encodeKey(device.privateKey!)}\nListenPort = 51822\n\n${peers}`;
  const peerSection = (key: Uint8Array, allowed: string, extra = '') => `[Peer]\nPublicKey = ${encodeKey(key)}\nAllowedIPs = ${allowed}\n${extra}\n`;

  test('wg setconf replaces every peer', async () => {
    const privateKey = device.privateKey!;
    writeFileSync(join(dir, 'set.conf'), config(peerSection(keyD, '100.96.4.0/24', 'Endpoint = 198.18.0.4:51820\n')));
    await wg(['setconf', ifname, join(dir, 'set.conf')]);
    assert.deepEqual(lastRequest(), {
      privateKey,
      listenPort: 51822,
      fwmark: 0, // setconf clears a fwmark the file does not give
      replacePeers: true,
      peers: [peerChange(keyD, { endpoint: { address: '198.18.0.4', port: 51820 }, replaceAllowedIPs: true, allowedIPs: adds('100.96.4.0/24') })],
    });
    assert.deepEqual([...device.peers.keys()], [hexOf(keyD)]);
    assertDump(await wg(['show', ifname, 'dump']), device);
  });

  test('wg addconf adds a peer and keeps the others', async () => {
    writeFileSync(join(dir, 'add.conf'), `[Peer]\nPublicKey = ${encodeKey(keyE)}\nAllowedIPs = 100.96.5.0/24, fd7a:7d0:5::/64\nPersistentKeepalive = 15\n`);
    await wg(['addconf', ifname, join(dir, 'add.conf')]);
    assert.deepEqual(lastRequest(), {
      replacePeers: false,
      peers: [peerChange(keyE, { persistentKeepalive: 15, replaceAllowedIPs: true, allowedIPs: adds('100.96.5.0/24', 'fd7a:7d0:5::/64') })],
    });
    assert.deepEqual(new Set(device.peers.keys()), new Set([hexOf(keyD), hexOf(keyE)]));
  });

  test('wg syncconf removes peers missing from the file and updates the rest', async () => {
    writeFileSync(join(dir, 'sync.conf'), config(peerSection(keyE, '100.96.6.0/24') + peerSection(keyA, '100.96.1.0/24')));
    await wg(['syncconf', ifname, join(dir, 'sync.conf')]);
    const request = lastRequest()!;
    assert.equal(request.replacePeers, false);
    assert.equal(request.listenPort, 51822);
    const byKey = new Map(request.peers.map((p) => [hexOf(p.publicKey), p]));
    assert.deepEqual(byKey.get(hexOf(keyD)), peerChange(keyD, { remove: true }));
    assert.deepEqual(byKey.get(hexOf(keyE)), peerChange(keyE, { replaceAllowedIPs: true, allowedIPs: adds('100.96.6.0/24') }));
    assert.deepEqual(byKey.get(hexOf(keyA)), peerChange(keyA, { replaceAllowedIPs: true, allowedIPs: adds('100.96.1.0/24') }));
    assert.equal(request.peers.length, 3);
    assert.deepEqual(new Set(device.peers.keys()), new Set([hexOf(keyE), hexOf(keyA)]));
    assertDump(await wg(['show', ifname, 'dump']), device);
  });

  test('garbage and cut-off requests on the socket leave the device unchanged and wg working', async () => {
    const requestsBefore = device.requests.length;
    const dumpBefore = await wg(['show', ifname, 'dump']);
    const inputs: Buffer[] = [
      ...Array.from({ length: 20 }, (_, i) => randomBytes(1 + i * 50)),
      Buffer.from(`set=1\nlisten_port=1\npublic_key=${hexOf(keyA)}\nremove=true\n`), // no blank line, then gone
      Buffer.from('get=1\n'),
      Buffer.from('set=1\nlisten_port=1\nallowed_ip=10.0.0.0/8\n\n'), // invalid: allowed_ip needs a peer
      Buffer.from('foo=1\n\n'),
      Buffer.concat([Buffer.from('set=1\n'), randomBytes(3000), Buffer.from('\n\n')]),
    ];
    for (const input of inputs) {
      await new Promise<void>((resolve) => {
        const s = connect(socketPath, () => {
          s.write(input);
          setTimeout(() => s.destroy(), 20);
        });
        s.on('error', () => {});
        s.on('close', () => resolve());
      });
    }
    // Nothing that changes anything reached the device (random bytes may, rarely, hold an empty request).
    for (const request of device.requests.slice(requestsBefore)) assert.deepEqual(request, { replacePeers: false, peers: [] });
    assert.equal(await wg(['show', ifname, 'dump']), dumpBefore);
  });
});
