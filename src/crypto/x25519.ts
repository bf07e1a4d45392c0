// X25519 for the handshake through node:crypto (about 30× @noble/curves, design.md §1).
// Keys cross this module as raw 32-byte arrays; KeyObjects stay inside.
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX_LENGTH = 12;

/** A private key ready for repeated DH, with its public key. */
export interface StaticKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly keyObject: KeyObject;
}

export function importPrivateKey(raw: Uint8Array): StaticKey {
  const keyObject = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(keyObject).export({ format: 'der', type: 'spki' });
  return { privateKey: Uint8Array.from(raw), publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX_LENGTH)), keyObject };
}

/** A fresh key pair (handshake ephemerals): KeyObjects straight from OpenSSL, no re-import. */
export function generateStaticKey(): StaticKey {
  const { privateKey } = generateKeyPairSync('x25519');
  // JWK is by far the cheapest way in and out of a KeyObject (about 10× DER here).
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    privateKey: new Uint8Array(Buffer.from(jwk.d!, 'base64url')),
    publicKey: new Uint8Array(Buffer.from(jwk.x!, 'base64url')),
    keyObject: privateKey,
  };
}

/** Imports a peer's public key once, for several DH computations with it. */
export function importPublicKey(raw: Uint8Array): KeyObject | undefined {
  if (raw.length !== 32) return undefined;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

/**
 * DH(private, public). Undefined when the result would be all zeros (a low-order
 * public key), which WireGuard rejects; OpenSSL refuses to derive it.
 */
export function sharedSecret(own: StaticKey, peerPublic: Uint8Array | KeyObject): Uint8Array | undefined {
  const publicKey = peerPublic instanceof Uint8Array ? importPublicKey(peerPublic) : peerPublic;
  if (publicKey === undefined) return undefined;
  try {
    const out = new Uint8Array(diffieHellman({ privateKey: own.keyObject, publicKey }));
    return out.some((b) => b !== 0) ? out : undefined;
  } catch {
    return undefined;
  }
}
