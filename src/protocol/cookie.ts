// MAC1/MAC2 and cookies (whitepaper §5.4.4, §5.4.7): the responder's DoS defence.
// CookieChecker is the receiving side (one per local key); CookieGenerator is the
// sending side (one per peer, keyed by that peer's public key).
import { randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import { hash, mac } from '../crypto/blake2s.js';
import { xopenCookie, xsealCookie } from '../crypto/aead.js';
import { COOKIE_REFRESH_TIME, LABEL_COOKIE, LABEL_MAC1, MAC_SIZE } from './constants.js';
import { encodeCookieReply, type CookieReplyMessage } from './messages.js';

const encoder = new TextEncoder();
const LABEL_MAC1_BYTES = encoder.encode(LABEL_MAC1);
const LABEL_COOKIE_BYTES = encoder.encode(LABEL_COOKIE);

export function mac1Key(publicKey: Uint8Array): Uint8Array {
  return hash(LABEL_MAC1_BYTES, publicKey);
}

export function cookieKey(publicKey: Uint8Array): Uint8Array {
  return hash(LABEL_COOKIE_BYTES, publicKey);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Offsets of mac1 and mac2 in a handshake message: its last 32 bytes. */
function macOffsets(msg: Uint8Array): { mac1: number; mac2: number } {
  return { mac1: msg.length - 2 * MAC_SIZE, mac2: msg.length - MAC_SIZE };
}

const NONCE_SIZE = 24;
/** Cookie reply nonces drawn from the system at once (one call per 256 replies, not per reply). */
const NONCE_POOL = 256 * NONCE_SIZE;

/** Verifies MACs of received handshake messages and makes cookie replies. */
export class CookieChecker {
  private readonly nonces = new Uint8Array(NONCE_POOL);
  private noncesUsed = NONCE_POOL;
  private mac1Key: Uint8Array;
  private encryptionKey: Uint8Array;
  private secret = new Uint8Array(32);
  private secretSetAt = -Infinity;

  constructor(localPublicKey: Uint8Array, private readonly now: () => number) {
    this.mac1Key = mac1Key(localPublicKey);
    this.encryptionKey = cookieKey(localPublicKey);
  }

  /** The local key changed (UAPI private_key=…). */
  setLocalPublicKey(localPublicKey: Uint8Array): void {
    this.mac1Key = mac1Key(localPublicKey);
    this.encryptionKey = cookieKey(localPublicKey);
  }

  checkMac1(msg: Uint8Array): boolean {
    const { mac1 } = macOffsets(msg);
    return equal(mac(this.mac1Key, msg.subarray(0, mac1)), msg.subarray(mac1, mac1 + MAC_SIZE));
  }

  /** `source` identifies the sender's address and port (see endpointKey). */
  checkMac2(msg: Uint8Array, source: Uint8Array): boolean {
    const { mac2 } = macOffsets(msg);
    return equal(mac(this.cookieFor(source), msg.subarray(0, mac2)), msg.subarray(mac2));
  }

  /**
   * A cookie reply to a handshake message whose MAC2 was missing under load: cheap, as
   * a flood makes one per message (a random nonce from a pool, one native seal).
   */
  createReply(msg: Uint8Array, senderIndex: number, source: Uint8Array): Uint8Array {
    const { mac1 } = macOffsets(msg);
    if (this.noncesUsed === NONCE_POOL) {
      randomFillSync(this.nonces);
      this.noncesUsed = 0;
    }
    const nonce = this.nonces.subarray(this.noncesUsed, this.noncesUsed + NONCE_SIZE);
    this.noncesUsed += NONCE_SIZE;
    const sealed = xsealCookie(this.encryptionKey, nonce, this.cookieFor(source), msg.subarray(mac1, mac1 + MAC_SIZE));
    return encodeCookieReply({ receiver: senderIndex, nonce, encryptedCookie: sealed });
  }

  private cookieFor(source: Uint8Array): Uint8Array {
    const now = this.now();
    if (now - this.secretSetAt > COOKIE_REFRESH_TIME) {
      this.secret = new Uint8Array(randomBytes(32));
      this.secretSetAt = now;
    }
    return mac(this.secret, source);
  }
}

/** Adds MACs to handshake messages sent to one peer and takes that peer's cookie replies. */
export class CookieGenerator {
  private readonly mac1Key: Uint8Array;
  private readonly decryptionKey: Uint8Array;
  private cookie: Uint8Array | undefined;
  private cookieSetAt = -Infinity;
  /** mac1 of the last handshake message sent: the AAD a cookie reply must carry. */
  private lastMac1: Uint8Array | undefined;

  constructor(peerPublicKey: Uint8Array, private readonly now: () => number) {
    // Both keys in one buffer: a peer's only bytes of its own before it handshakes.
    const keys = new Uint8Array(64);
    keys.set(mac1Key(peerPublicKey), 0);
    keys.set(cookieKey(peerPublicKey), 32);
    this.mac1Key = keys.subarray(0, 32);
    this.decryptionKey = keys.subarray(32);
  }

  /** Fills in mac1 and mac2 (zero unless a fresh cookie is held) of an encoded message. */
  addMacs(msg: Uint8Array): void {
    const { mac1, mac2 } = macOffsets(msg);
    const m1 = mac(this.mac1Key, msg.subarray(0, mac1));
    msg.set(m1, mac1);
    this.lastMac1 = m1;
    if (this.cookie !== undefined && this.now() - this.cookieSetAt < COOKIE_REFRESH_TIME) {
      msg.set(mac(this.cookie, msg.subarray(0, mac2)), mac2);
    } else {
      msg.fill(0, mac2);
    }
  }

  /** Takes a cookie reply; false when it does not decrypt against the last mac1 sent. */
  consumeReply(reply: CookieReplyMessage): boolean {
    if (this.lastMac1 === undefined) return false;
    const cookie = xopenCookie(this.decryptionKey, reply.nonce, reply.encryptedCookie, this.lastMac1);
    if (cookie === undefined) return false;
    this.cookie = cookie;
    this.cookieSetAt = this.now();
    return true;
  }
}
