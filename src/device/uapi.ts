// The device's side of the UAPI (wireguard-go's uapi.go): the interface state `wg show`
// reads, and the parts of a `wg set` request: the interface key and peers applied to
// the engine, and the socket steps (a new listen port, a firewall mark) that fail with
// the errno the request is answered with.
import { constants } from 'node:os';
import type { UdpSocket } from '../conn/udp.js';
import { udpSetFwmark } from '../conn/udp.js';
import { openUdpSockets } from '../conn/udp-port.js';
import { isZeroKey, sameKey } from '../crypto/keys.js';
import type { OffloadSettings } from '../offload/settings.js';
import type { Engine } from '../protocol/engine.js';
import { errnoOf, PeerTableFullError, UapiError } from '../errors.js';
import type { SetRequest, UapiInterfaceState, UapiPeerState } from '../uapi/protocol.js';

const { EADDRINUSE, ENOSPC } = constants.errno;

/** The interface and its peers, as `wg show` and `wg showconf` read them. */
export function interfaceState(engine: Engine, listenPort: number, fwmark: number): UapiInterfaceState {
  const peers: UapiPeerState[] = [];
  for (const peer of engine.peers) {
    const psk = peer.handshake.presharedKey;
    peers.push({
      publicKey: peer.publicKey,
      presharedKey: isZeroKey(psk) ? undefined : psk,
      endpoint: peer.endpoint,
      lastHandshakeWallMs: peer.lastHandshakeWallMs,
      rxBytes: peer.rxBytes,
      txBytes: peer.txBytes,
      persistentKeepalive: peer.persistentKeepalive,
      allowedIPs: engine.allowedIPs.prefixesOf(peer),
    });
  }
  return { privateKey: engine.privateKey, listenPort, fwmark, peers };
}

/** Applies the request's interface key and peer changes to the engine; throws UapiError(ENOSPC) when the peer table is full. */
export function applyKeyAndPeers(engine: Engine, request: SetRequest): void {
  if (request.privateKey !== undefined) setPrivateKey(engine, request.privateKey);
  if (request.replacePeers) for (const peer of [...engine.peers]) engine.removePeer(peer);
  const ownKey = engine.publicKey;
  for (const change of request.peers) {
    let peer = engine.peer(change.publicKey);
    if (change.remove) {
      if (peer !== undefined) engine.removePeer(peer);
      continue;
    }
    if (peer === undefined) {
      // wireguard-go ignores a peer that is the interface itself, and update_only skips new peers.
      if (change.updateOnly || (ownKey !== undefined && sameKey(ownKey, change.publicKey))) continue;
      try {
        peer = engine.addPeer(change.publicKey);
      } catch (err) {
        if (err instanceof PeerTableFullError) throw new UapiError(ENOSPC, err.message);
        throw err;
      }
    }
    peer.update({
      ...(change.presharedKey === undefined ? {} : { presharedKey: change.presharedKey }),
      ...(change.endpoint === undefined ? {} : { endpoint: { address: change.endpoint.address, port: change.endpoint.port } }),
      ...(change.persistentKeepalive === undefined ? {} : { persistentKeepalive: change.persistentKeepalive }),
    });
    if (change.replaceAllowedIPs && change.allowedIPs.every((c) => !c.remove)) {
      // What `wg syncconf` sends for every peer: the whole list again, usually what the peer has.
      engine.allowedIPs.replacePeer(peer, change.allowedIPs.map((c) => c.prefix));
    } else {
      if (change.replaceAllowedIPs) engine.allowedIPs.removePeer(peer);
      for (const { prefix, remove } of change.allowedIPs) {
        if (remove) engine.allowedIPs.remove(prefix, peer);
        else engine.allowedIPs.insert(prefix, peer);
      }
    }
  }
}

function setPrivateKey(engine: Engine, key: Uint8Array | null): void {
  const current = engine.privateKey;
  if (key === null) {
    if (current !== undefined) engine.setPrivateKey(undefined);
    return;
  }
  if (current !== undefined && sameKey(current, key)) return;
  engine.setPrivateKey(key);
  // A peer with our own public key cannot exist (wireguard-go removes it).
  const self = engine.peer(engine.publicKey!);
  if (self !== undefined) engine.removePeer(self);
}

/** Marks every socket with `mark`, or (when one refuses) puts `previous` back on those done and throws UapiError. */
export function setFwmark(sockets: readonly UdpSocket[], mark: number, previous: number): void {
  const done: UdpSocket[] = [];
  try {
    for (const socket of sockets) {
      udpSetFwmark(socket.fd, mark);
      done.push(socket);
    }
  } catch (err) {
    for (const socket of done) {
      try {
        udpSetFwmark(socket.fd, previous);
      } catch {
        // it was allowed a moment ago; nothing more to undo with
      }
    }
    throw new UapiError(errnoOf(err), (err as Error).message);
  }
}

/** The sockets of a new listen port (`count`, marked `fwmark`), or UapiError(EADDRINUSE or the errno) when they cannot be opened. */
export function openListenSockets(port: number, fwmark: number, settings: OffloadSettings, count: number): UdpSocket[] {
  try {
    return openUdpSockets(port, fwmark, settings, count);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UapiError(code === 'EADDRINUSE' ? EADDRINUSE : errnoOf(err), `cannot listen on port ${port}: ${(err as Error).message}`);
  }
}
