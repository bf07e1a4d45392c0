// Key text as `wg` reads and writes it: base64 of 32 bytes; private keys clamped.
import { randomBytes } from 'node:crypto';
import { KEY_SIZE } from './sizes.js';
import { importPrivateKey } from './x25519.js';
import { KeyFormatError } from '../errors.js';

/** Curve25519 clamping, as `wg genkey` applies it. Bounds: out.length = KEY_SIZE = 32, checked first. */
export function clamp(key: Uint8Array): Uint8Array {
  if (key.length !== KEY_SIZE) throw new RangeError(`a key has ${KEY_SIZE} bytes, not ${key.length}`);
  const out = Uint8Array.from(key);
  out[0]! &= 248;
  out[31]! = (out[31]! & 127) | 64;
  return out;
}

export function generatePrivateKey(): Uint8Array {
  return clamp(randomBytes(KEY_SIZE));
}

export function generatePresharedKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_SIZE));
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  const key = importPrivateKey(privateKey);
  key.privateKey.fill(0); // the copy importPrivateKey made; the caller's is left alone
  return key.publicKey;
}

export function encodeKey(key: Uint8Array): string {
  return Buffer.from(key).toString('base64');
}

/** Decodes canonical base64 of exactly 32 bytes; anything else is a KeyFormatError. */
export function decodeKey(text: string): Uint8Array {
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== KEY_SIZE || bytes.toString('base64') !== trimmed) {
    throw new KeyFormatError('a key is 32 bytes in base64 (44 characters ending in "=")');
  }
  return new Uint8Array(bytes);
}

export function encodeKeyHex(key: Uint8Array): string {
  return Buffer.from(key).toString('hex');
}

/** Whether every byte is zero: the UAPI's and wireguard-go's "no key". */
export function isZeroKey(key: Uint8Array): boolean {
  for (let i = 0; i < key.length; i++) if (key[i] !== 0) return false;
  return true;
}

/** Whether two keys (or any two byte strings) hold the same bytes. */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
