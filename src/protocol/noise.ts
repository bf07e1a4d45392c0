// The Noise_IKpsk2 handshake of WireGuard (whitepaper §5.4.2–§5.4.5), free of I/O:
// functions over a peer's Handshake state that build and consume messages.
import { hash, kdf } from '../crypto/blake2s.js';
import { openZeroNonce, sealZeroNonce } from '../crypto/aead.js';
import { isZeroKey } from '../crypto/keys.js';
import { generateStaticKey, sharedSecret, type StaticKey } from '../crypto/x25519.js';
import { CONSTRUCTION, HANDSHAKE_INITIATION_RATE, IDENTIFIER, MAC_SIZE, TIMESTAMP_SIZE } from './constants.js';
import { KEY_SIZE } from '../crypto/sizes.js';
import { Drop, type DropReason } from './drop-reasons.js';
import type { InitiationMessage, ResponseMessage } from './messages.js';
import { isAfter, tai64n } from './timestamp.js';

const encoder = new TextEncoder();
const INITIAL_CHAIN_KEY = hash(encoder.encode(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, encoder.encode(IDENTIFIER));
const EMPTY = new Uint8Array(0);
const ZERO_MACS = new Uint8Array(MAC_SIZE);

export type HandshakeState = 'zeroed' | 'initiation-created' | 'initiation-consumed' | 'response-created' | 'response-consumed';

/** What a peer's fields hold while unused: shared, never written (filling an empty array is a no-op). */
const UNUSED = new Uint8Array(0);
const NO_TIMESTAMP = new Uint8Array(TIMESTAMP_SIZE);
const NO_PRESHARED_KEY = new Uint8Array(KEY_SIZE);

/**
 * Per-peer handshake state: the peer's static key, the PSK and the Noise transcript.
 * A peer that never handshakes holds no buffers of its own: the transcript exists only
 * while a handshake is in progress, the timestamp once one was accepted, the PSK once set.
 */
export class Handshake {
  state: HandshakeState = 'zeroed';
  hash: Uint8Array = UNUSED;
  chainKey: Uint8Array = UNUSED;
  localEphemeral: StaticKey | undefined;
  remoteEphemeral: Uint8Array = UNUSED;
  localIndex = 0;
  remoteIndex = 0;
  /** Newest TAI64N timestamp accepted from this peer: older or equal ones are replays. */
  latestTimestamp: Uint8Array = NO_TIMESTAMP;
  lastInitiationConsumedAt = -Infinity;
  /** Our own copy (setPresharedKey), zeroed when replaced or forgotten; never written in place otherwise. */
  presharedKey: Uint8Array = NO_PRESHARED_KEY;
  /** DH(local static, peer static); undefined when the peer's key is of low order. */
  staticStatic: Uint8Array | undefined;

  constructor(readonly remoteStatic: Uint8Array, local: StaticKey | undefined) {
    this.setLocalKey(local);
  }

  /** Our static key from now on; the DH result of the old one is zeroed. */
  setLocalKey(local: StaticKey | undefined): void {
    this.staticStatic?.fill(0);
    this.staticStatic = local === undefined ? undefined : sharedSecret(local, this.remoteStatic);
  }

  /** Copies `key` in (all zero: none); the key it replaces is zeroed. */
  setPresharedKey(key: Uint8Array): void {
    // The shared all-zero key is never written (filling it with zeros would do nothing anyway).
    if (this.presharedKey !== NO_PRESHARED_KEY) this.presharedKey.fill(0);
    this.presharedKey = isZeroKey(key) ? NO_PRESHARED_KEY : Uint8Array.from(key);
  }

  /** Zeroes every key this peer holds: the transcript, the PSK and the static DH (the peer is being removed). */
  forgetKeys(): void {
    this.clear();
    this.setPresharedKey(NO_PRESHARED_KEY);
    this.setLocalKey(undefined);
  }

  /** Our ephemeral key from now on; the one it replaces (a previous attempt's) is zeroed. */
  setLocalEphemeral(key: StaticKey | undefined): void {
    this.localEphemeral?.privateKey.fill(0);
    this.localEphemeral = key;
  }

  /** Forgets the transcript (after keys are derived, or on give-up). */
  clear(): void {
    this.hash.fill(0);
    this.chainKey.fill(0);
    this.remoteEphemeral.fill(0);
    this.hash = UNUSED;
    this.chainKey = UNUSED;
    this.remoteEphemeral = UNUSED;
    this.setLocalEphemeral(undefined);
    this.localIndex = 0;
    this.remoteIndex = 0;
    this.state = 'zeroed';
  }
}

function mixHash(h: Uint8Array, data: Uint8Array): Uint8Array {
  return hash(h, data);
}

function mixKey(chainKey: Uint8Array, data: Uint8Array): Uint8Array {
  return kdf(1, chainKey, data)[0];
}

/** Builds an initiation (MACs still zero: the CookieGenerator adds them). */
export function createInitiation(
  local: StaticKey, hs: Handshake, localIndex: number, wallClockMs: number,
): InitiationMessage | undefined {
  if (hs.staticStatic === undefined) return undefined;
  let h = mixHash(INITIAL_HASH, hs.remoteStatic);
  const ephemeral = generateStaticKey();
  let ck = mixKey(INITIAL_CHAIN_KEY, ephemeral.publicKey);
  h = mixHash(h, ephemeral.publicKey);
  const es = sharedSecret(ephemeral, hs.remoteStatic);
  if (es === undefined) return undefined;
  let key: Uint8Array;
  [ck, key] = kdf(2, ck, es);
  const encryptedStatic = sealZeroNonce(key, local.publicKey, h);
  h = mixHash(h, encryptedStatic);
  [ck, key] = kdf(2, ck, hs.staticStatic);
  const encryptedTimestamp = sealZeroNonce(key, tai64n(wallClockMs), h);
  h = mixHash(h, encryptedTimestamp);

  hs.hash = h;
  hs.chainKey = ck;
  hs.setLocalEphemeral(ephemeral);
  hs.localIndex = localIndex;
  hs.state = 'initiation-created';
  return { sender: localIndex, ephemeral: ephemeral.publicKey, encryptedStatic, encryptedTimestamp, mac1: ZERO_MACS, mac2: ZERO_MACS };
}

/**
 * Consumes an initiation: finds the sending peer by its decrypted static key and
 * checks the timestamp is newer than the last one and the peer is not flooding.
 */
export function consumeInitiation(
  local: StaticKey,
  msg: InitiationMessage,
  findPeer: (publicKey: Uint8Array) => Handshake | undefined,
  now: number,
): Handshake | { drop: DropReason } {
  let h = mixHash(mixHash(INITIAL_HASH, local.publicKey), msg.ephemeral);
  let ck = mixKey(INITIAL_CHAIN_KEY, msg.ephemeral);
  const es = sharedSecret(local, msg.ephemeral);
  if (es === undefined) return { drop: Drop.BadPublicKey };
  let key: Uint8Array;
  [ck, key] = kdf(2, ck, es);
  const peerStatic = openZeroNonce(key, msg.encryptedStatic, h);
  if (peerStatic === undefined) return { drop: Drop.HandshakeDecryptFailed };
  h = mixHash(h, msg.encryptedStatic);

  const hs = findPeer(peerStatic);
  if (hs === undefined) return { drop: Drop.UnknownPeer };
  if (hs.staticStatic === undefined) return { drop: Drop.BadPublicKey };
  [ck, key] = kdf(2, ck, hs.staticStatic);
  const timestamp = openZeroNonce(key, msg.encryptedTimestamp, h);
  if (timestamp === undefined) return { drop: Drop.HandshakeDecryptFailed };
  h = mixHash(h, msg.encryptedTimestamp);

  if (!isAfter(timestamp, hs.latestTimestamp)) return { drop: Drop.StaleTimestamp };
  if (now - hs.lastInitiationConsumedAt < HANDSHAKE_INITIATION_RATE) return { drop: Drop.InitiationFlood };

  hs.hash = h;
  hs.chainKey = ck;
  hs.remoteIndex = msg.sender;
  hs.remoteEphemeral = Uint8Array.from(msg.ephemeral);
  hs.latestTimestamp = timestamp;
  hs.lastInitiationConsumedAt = now;
  hs.setLocalEphemeral(undefined);
  hs.state = 'initiation-consumed';
  return hs;
}

/** Builds the response to a consumed initiation (MACs still zero). */
export function createResponse(hs: Handshake, localIndex: number): ResponseMessage | undefined {
  if (hs.state !== 'initiation-consumed') return undefined;
  const ephemeral = generateStaticKey();
  let h = mixHash(hs.hash, ephemeral.publicKey);
  let ck = mixKey(hs.chainKey, ephemeral.publicKey);
  const ee = sharedSecret(ephemeral, hs.remoteEphemeral);
  const es = sharedSecret(ephemeral, hs.remoteStatic);
  if (ee === undefined || es === undefined) return undefined;
  ck = mixKey(ck, ee);
  ck = mixKey(ck, es);
  let tau: Uint8Array;
  let key: Uint8Array;
  [ck, tau, key] = kdf(3, ck, hs.presharedKey);
  h = mixHash(h, tau);
  const encryptedNothing = sealZeroNonce(key, EMPTY, h);
  h = mixHash(h, encryptedNothing);

  hs.hash = h;
  hs.chainKey = ck;
  hs.setLocalEphemeral(ephemeral);
  hs.localIndex = localIndex;
  hs.state = 'response-created';
  return { sender: localIndex, receiver: hs.remoteIndex, ephemeral: ephemeral.publicKey, encryptedNothing, mac1: ZERO_MACS, mac2: ZERO_MACS };
}

/** Consumes the response to our initiation (`hs` found by the message's receiver index). */
export function consumeResponse(local: StaticKey, msg: ResponseMessage, hs: Handshake): true | { drop: DropReason } {
  if (hs.state !== 'initiation-created' || hs.localEphemeral === undefined) return { drop: Drop.UnexpectedResponse };
  let h = mixHash(hs.hash, msg.ephemeral);
  let ck = mixKey(hs.chainKey, msg.ephemeral);
  const ee = sharedSecret(hs.localEphemeral, msg.ephemeral);
  const se = sharedSecret(local, msg.ephemeral);
  if (ee === undefined || se === undefined) return { drop: Drop.BadPublicKey };
  ck = mixKey(ck, ee);
  ck = mixKey(ck, se);
  let tau: Uint8Array;
  let key: Uint8Array;
  [ck, tau, key] = kdf(3, ck, hs.presharedKey);
  h = mixHash(h, tau);
  if (openZeroNonce(key, msg.encryptedNothing, h) === undefined) return { drop: Drop.HandshakeDecryptFailed };
  h = mixHash(h, msg.encryptedNothing);

  hs.hash = h;
  hs.chainKey = ck;
  hs.remoteIndex = msg.sender;
  hs.state = 'response-consumed';
  return true;
}

export interface SessionKeys {
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  isInitiator: boolean;
  localIndex: number;
  remoteIndex: number;
}

/** Derives the transport keys of a finished handshake and clears its transcript. */
export function deriveSessionKeys(hs: Handshake): SessionKeys | undefined {
  let isInitiator: boolean;
  if (hs.state === 'response-consumed') isInitiator = true;
  else if (hs.state === 'response-created') isInitiator = false;
  else return undefined;
  const [first, second] = kdf(2, hs.chainKey, EMPTY);
  const keys: SessionKeys = {
    sendKey: isInitiator ? first : second,
    receiveKey: isInitiator ? second : first,
    isInitiator,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
  };
  hs.clear();
  return keys;
}
