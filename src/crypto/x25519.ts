// X25519 for the handshake in the addon (native/noise_crypto.cc, OpenSSL underneath):
// raw 32-byte keys in and out, one call per key pair or shared secret, no KeyObjects.
import { nativeFunction } from '../native/addon.js';
import { KEY_SIZE } from './sizes.js';

const x25519Generate = nativeFunction<(out: Uint8Array) => void>('x25519Generate');
const x25519Public = nativeFunction<(out: Uint8Array, privateKey: Uint8Array) => boolean>('x25519Public');
const x25519 = nativeFunction<(out: Uint8Array, privateKey: Uint8Array, publicKey: Uint8Array) => boolean>('x25519');

/** A private key with its public key; `privateKey` is its holder's own copy, to zero when done with it. */
export interface StaticKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Copies `raw` in, so the holder may zero its copy without touching the caller's. */
export function importPrivateKey(raw: Uint8Array): StaticKey {
  if (raw.length !== KEY_SIZE) throw new RangeError(`an X25519 private key has ${KEY_SIZE} bytes, not ${raw.length}`);
  const publicKey = new Uint8Array(KEY_SIZE);
  if (!x25519Public(publicKey, raw)) throw new Error('OpenSSL refused the X25519 private key');
  return { privateKey: Uint8Array.from(raw), publicKey };
}

/** A fresh key pair (handshake ephemerals), both halves views of one 64-byte array. */
export function generateStaticKey(): StaticKey {
  const pair = new Uint8Array(2 * KEY_SIZE);
  x25519Generate(pair);
  return { privateKey: pair.subarray(0, KEY_SIZE), publicKey: pair.subarray(KEY_SIZE) };
}

/**
 * DH(private, public). Undefined when the result would be all zeros (a low-order
 * public key), which WireGuard rejects, or the public key is not 32 bytes.
 */
export function sharedSecret(own: StaticKey, peerPublic: Uint8Array): Uint8Array | undefined {
  if (peerPublic.length !== KEY_SIZE) return undefined;
  const out = new Uint8Array(KEY_SIZE);
  return x25519(out, own.privateKey, peerPublic) ? out : undefined;
}
