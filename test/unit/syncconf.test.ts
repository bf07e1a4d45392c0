// syncRequest: the diff `tundra up` sends on SIGHUP, against the running device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/wg-config.js';
import { encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { appliedConfig, syncRequest } from '../../src/daemon/up.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import type { UapiInterfaceState, UapiPeerState } from '../../src/uapi/protocol.js';

const key = generatePrivateKey();
const a = publicKeyOf(generatePrivateKey());
const b = publicKeyOf(generatePrivateKey());
const psk = generatePresharedKey();

function file(text: string): ReturnType<typeof parseConfig> {
  return parseConfig(`[Interface]\nPrivateKey = ${encodeKey(key)}\n${text}`, { file: 'tdr0.conf', mode: 'wg-quick' });
}
const peerA = (extra = ''): string => `[Peer]\nPublicKey = ${encodeKey(a)}\nAllowedIPs = 100.96.0.2/32\nEndpoint = 198.18.0.2:51821\n${extra}`;

function running(peers: Partial<UapiPeerState>[], listenPort = 51820): UapiInterfaceState {
  return {
    privateKey: key, listenPort, fwmark: 0,
    peers: peers.map((p) => ({
      publicKey: a, presharedKey: undefined, endpoint: { address: '198.18.0.2', port: 51821 }, lastHandshakeWallMs: 1, rxBytes: 1, txBytes: 1,
      persistentKeepalive: 0, allowedIPs: [parsePrefix('100.96.0.2/32')], ...p,
    })),
  };
}
const endpointA = { address: '198.18.0.2', port: 51821 };

test('an unchanged file sends nothing, even for a peer that roamed', () => {
  const cfg = file(peerA());
  const previous = appliedConfig(cfg, [endpointA]);
  const { request, summary } = syncRequest(running([{ endpoint: { address: '198.18.0.9', port: 40000 } }]), previous, cfg, [endpointA]);
  assert.deepEqual(request, { replacePeers: false, peers: [] });
  assert.deepEqual(summary, { added: 0, removed: 0, updated: 0, interfaceKeys: [] });
});

test('only the changed fields of a changed peer; new peers whole; gone peers removed', () => {
  const previous = appliedConfig(file(peerA()), [endpointA]);
  const next = file(`${peerA(`PersistentKeepalive = 25\nPresharedKey = ${encodeKey(psk)}\n`)}\n[Peer]\nPublicKey = ${encodeKey(b)}\nAllowedIPs = 100.96.0.3/32\n`);
  const stale = publicKeyOf(generatePrivateKey());
  const { request, summary } = syncRequest(running([{}, { publicKey: stale }]), previous, next, [endpointA, undefined]);
  assert.equal(request.replacePeers, false);
  assert.deepEqual(summary, { added: 1, removed: 1, updated: 1, interfaceKeys: [] });
  const [removed, changed, added] = request.peers;
  assert.deepEqual(removed, { publicKey: stale, remove: true, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [] });
  assert.deepEqual(changed, { publicKey: a, remove: false, updateOnly: true, replaceAllowedIPs: false, allowedIPs: [], persistentKeepalive: 25, presharedKey: psk });
  assert.equal(added!.updateOnly, false);
  assert.equal(added!.replaceAllowedIPs, true);
  assert.deepEqual(added!.allowedIPs.map((x) => x.prefix), [parsePrefix('100.96.0.3/32')]);
});

test('allowed IPs are replaced when the set differs; an endpoint when its line changed', () => {
  const previous = appliedConfig(file(peerA()), [endpointA]);
  const next = file(`[Peer]\nPublicKey = ${encodeKey(a)}\nAllowedIPs = 100.96.0.2/32, 100.96.5.0/24\nEndpoint = 198.18.0.3:51821\n`);
  const { request } = syncRequest(running([{}]), previous, next, [{ address: '198.18.0.3', port: 51821 }]);
  assert.equal(request.peers.length, 1);
  assert.deepEqual(request.peers[0]!.endpoint, { address: '198.18.0.3', port: 51821 });
  assert.equal(request.peers[0]!.replaceAllowedIPs, true);
  assert.deepEqual(request.peers[0]!.allowedIPs.map((x) => x.prefix), [parsePrefix('100.96.0.2/32'), parsePrefix('100.96.5.0/24')]);
});

test('interface keys: set when they differ; absent or ListenPort = 0 (any port) leaves them', () => {
  const previous = appliedConfig(file(''), []);
  assert.deepEqual(syncRequest(running([]), previous, file(''), []).request, { replacePeers: false, peers: [] });
  assert.deepEqual(syncRequest(running([]), previous, file('ListenPort = 0\n'), []).request, { replacePeers: false, peers: [] });
  const other = generatePrivateKey();
  const next = parseConfig(`[Interface]\nPrivateKey = ${encodeKey(other)}\nListenPort = 51999\nFwMark = 7\n`, { file: 'tdr0.conf', mode: 'wg-quick' });
  const { request, summary } = syncRequest(running([]), previous, next, []);
  assert.deepEqual(summary.interfaceKeys, ['PrivateKey', 'ListenPort', 'FwMark']);
  assert.deepEqual(request.privateKey, other);
  assert.equal(request.listenPort, 51999);
  assert.equal(request.fwmark, 7);
});
