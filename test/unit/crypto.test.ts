// The handshake's primitives against published vectors and @noble as the oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hash, hmac, kdf, mac } from '../../src/crypto/blake2s.js';
import { openZeroNonce, sealZeroNonce, xopenCookie, xsealCookie } from '../../src/crypto/aead.js';
import { generateStaticKey, importPrivateKey, sharedSecret } from '../../src/crypto/x25519.js';
import { nativeFunction } from '../../src/native/addon.js';
import { openTransport, sealTransport, wgNonce as transportNonce } from '../helpers/aead.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

test('BLAKE2s-256 of "abc" matches RFC 7693 Appendix B', () => {
  assert.equal(hex(hash(new TextEncoder().encode('abc'))), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
});

test('hash of several parts equals hash of their concatenation', () => {
  const a = randomBytes(13);
  const b = randomBytes(70);
  assert.equal(hex(hash(a, b)), hex(blake2s(Buffer.concat([a, b]))));
});

test('mac is keyed BLAKE2s-128, as @noble computes it', () => {
  for (let i = 0; i < 20; i++) {
    const key = randomBytes(32);
    const msg = randomBytes(i * 11);
    assert.equal(hex(mac(key, msg)), hex(blake2s(msg, { key, dkLen: 16 })));
  }
});

test('hash and hmac (the addon) equal @noble\'s on many parts, empty parts, inputs of many blocks and keys longer than a block', () => {
  for (let i = 0; i < 200; i++) {
    const parts = Array.from({ length: 1 + (i % 5) }, (_, k) => randomBytes((i * 37 + k * 61) % (i % 3 === 0 ? 7 : 300)));
    const whole = Buffer.concat(parts);
    assert.equal(hex(hash(...parts)), hex(blake2s(whole)), `hash ${i}`);
    const key = randomBytes([0, 1, 16, 32, 63, 64, 65, 200][i % 8]!);
    assert.equal(hex(hmac(key, ...parts)), hex(nobleHmac(blake2s, key, whole)), `hmac ${i} key ${key.length}`);
  }
  assert.equal(hex(hash()), hex(blake2s(new Uint8Array(0))));
  assert.ok(!Buffer.isBuffer(hash(randomBytes(3))), 'a plain Uint8Array, not a Buffer');
});

test('hmac is HMAC-BLAKE2s, and kdf is HKDF-BLAKE2s with an empty info', () => {
  for (let i = 0; i < 100; i++) {
    const key = randomBytes(32);
    const input = randomBytes(i * 7);
    assert.equal(hex(hmac(key, input)), hex(nobleHmac(blake2s, key, input)));
    // HKDF-Extract(salt = chaining key, IKM = input), then Expand with empty info.
    const expected = hkdf(blake2s, input, key, new Uint8Array(0), 96);
    const [t1, t2, t3] = kdf(3, key, input);
    assert.equal(hex(t1) + hex(t2) + hex(t3), hex(expected));
    assert.equal(hex(kdf(1, key, input)[0]), hex(expected.subarray(0, 32)));
    const [u1, u2] = kdf(2, key, input);
    assert.equal(hex(u1) + hex(u2), hex(expected.subarray(0, 64)));
  }
});

test('ChaCha20-Poly1305 matches RFC 8439 §2.8.2 through @noble and round-trips', () => {
  const key = bytes('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = bytes('070000004041424344454647');
  const aad = bytes('50515253c0c1c2c3c4c5c6c7');
  const pt = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
  const sealed = chacha20poly1305(key, nonce, aad).encrypt(pt);
  assert.equal(hex(sealed.subarray(-16)), '1ae10b594f09e26a7e902ecbd0600691');
  const k = randomBytes(32);
  const h = randomBytes(32);
  const msg = randomBytes(48);
  const c = sealZeroNonce(k, msg, h);
  assert.equal(hex(c), hex(chacha20poly1305(k, new Uint8Array(12), h).encrypt(msg)));
  assert.equal(hex(openZeroNonce(k, c, h)!), hex(msg));
  c[3]! ^= 1;
  assert.equal(openZeroNonce(k, c, h), undefined);
});

test('zero-nonce ChaCha20-Poly1305 (the addon) equals @noble for every handshake size, with and without AAD', () => {
  for (const size of [0, 1, 12, 16, 32, 63, 64, 65, 200]) {
    for (const aad of [new Uint8Array(0), randomBytes(32)]) {
      const key = randomBytes(32);
      const msg = randomBytes(size);
      const sealed = sealZeroNonce(key, msg, aad);
      assert.equal(hex(sealed), hex(chacha20poly1305(key, new Uint8Array(12), aad).encrypt(msg)), `seal ${size}`);
      assert.equal(hex(openZeroNonce(key, sealed, aad)!), hex(msg), `open ${size}`);
      const badTag = Uint8Array.from(sealed);
      badTag[badTag.length - 1]! ^= 0x80;
      assert.equal(openZeroNonce(key, badTag, aad), undefined, `tag ${size}`);
      assert.equal(openZeroNonce(key, sealed, randomBytes(aad.length + 1)), undefined, `aad ${size}`);
    }
  }
  assert.equal(openZeroNonce(randomBytes(32), randomBytes(15), new Uint8Array(0)), undefined, 'shorter than a tag');
});

test('the addon\'s handshake primitives reject wrong argument sizes and types with an error, not a crash', () => {
  const blake = nativeFunction<(...a: unknown[]) => void>('blake2s');
  const hkdfNative = nativeFunction<(...a: unknown[]) => void>('hkdfBlake2s');
  const dh = nativeFunction<(...a: unknown[]) => boolean>('x25519');
  const seal = nativeFunction<(...a: unknown[]) => void>('chachaSealZeroNonce');
  const open = nativeFunction<(...a: unknown[]) => boolean>('chachaOpenZeroNonce');
  assert.throws(() => blake(new Uint8Array(33), new Uint8Array(0)), /blake2s: out has 33 bytes, expected 1\.\.32/);
  assert.throws(() => blake(new Uint8Array(32), new Uint8Array(33)), /blake2s: key has 33 bytes/);
  assert.throws(() => blake(new Uint8Array(32), new Uint8Array(0), 'abc'), TypeError);
  assert.throws(() => blake(new Uint8Array(32), new Uint8Array(0), ...Array.from({ length: 9 }, () => new Uint8Array(1))), RangeError);
  assert.throws(() => hkdfNative(new Uint8Array(48), new Uint8Array(32), new Uint8Array(0)), /expected 32, 64 or 96/);
  assert.throws(() => dh(new Uint8Array(32), new Uint8Array(31), new Uint8Array(32)), /x25519: privateKey has 31 bytes/);
  assert.throws(() => dh(new Uint8Array(32), new Uint16Array(16), new Uint8Array(32)), TypeError);
  assert.throws(() => seal(new Uint8Array(16), new Uint8Array(32), new Uint8Array(1), new Uint8Array(0)), /out has 16 bytes, expected 17/);
  assert.throws(() => open(new Uint8Array(0), new Uint8Array(32), new Uint8Array(15), new Uint8Array(0)), /ciphertext has 15 bytes/);
});

test('transport nonce is 4 zero bytes and the little-endian counter', () => {
  assert.equal(hex(transportNonce(0x0102030405060708n)), '000000000807060504030201');
  const key = randomBytes(32);
  const pt = randomBytes(100);
  const c = sealTransport(key, 5n, pt);
  assert.equal(hex(c), hex(chacha20poly1305(key, transportNonce(5n)).encrypt(pt)));
  assert.equal(hex(openTransport(key, 5n, c)!), hex(pt));
  assert.equal(openTransport(key, 6n, c), undefined);
});

test('XChaCha20-Poly1305 in the addon (cookie replies) matches @noble, and refuses any changed byte', () => {
  for (let length = 0; length <= 64; length++) {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const plaintext = randomBytes(length);
    const aad = randomBytes(length % 17);
    const sealed = xsealCookie(key, nonce, plaintext, aad);
    assert.equal(hex(sealed), hex(xchacha20poly1305(key, nonce, aad).encrypt(plaintext)), `length ${length}`);
    assert.equal(hex(xopenCookie(key, nonce, sealed, aad)!), hex(plaintext));
    const flipped = sealed.slice();
    flipped[length % sealed.length]! ^= 1;
    assert.equal(xopenCookie(key, nonce, flipped, aad), undefined);
    const otherNonce = nonce.slice();
    otherNonce[length % 24]! ^= 1;
    assert.equal(xopenCookie(key, otherNonce, sealed, aad), undefined, 'every nonce byte counts (HChaCha20 takes 16, the rest 8)');
  }
  assert.equal(xopenCookie(randomBytes(32), randomBytes(24), randomBytes(15), new Uint8Array(0)), undefined, 'shorter than a tag');
});

test('X25519 in the addon agrees with @noble/curves', () => {
  for (let i = 0; i < 10; i++) {
    const a = generateStaticKey();
    const b = generateStaticKey();
    assert.equal(hex(a.publicKey), hex(x25519.getPublicKey(a.privateKey)));
    assert.equal(hex(sharedSecret(a, b.publicKey)!), hex(x25519.getSharedSecret(a.privateKey, b.publicKey)));
  }
  // Both native paths: the fast one (node's exported ossl_x25519, when present) and EVP.
  const viaEvp = nativeFunction<(out: Uint8Array, privateKey: Uint8Array, publicKey: Uint8Array) => boolean>('x25519Evp');
  for (let i = 0; i < 10; i++) {
    const a = randomBytes(32);
    const b = x25519.getPublicKey(randomBytes(32));
    const out = new Uint8Array(32);
    assert.equal(viaEvp(out, a, b), true);
    assert.equal(hex(out), hex(x25519.getSharedSecret(a, b)));
  }
  assert.equal(viaEvp(new Uint8Array(32), randomBytes(32), new Uint8Array(32)), false, 'EVP: a low-order key');
  // RFC 7748 §6.1.
  const alice = importPrivateKey(bytes('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
  assert.equal(hex(alice.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  const bobPublic = bytes('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  assert.equal(hex(sharedSecret(alice, bobPublic)!), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
});

test('a low-order public key gives no shared secret', () => {
  const a = generateStaticKey();
  assert.equal(sharedSecret(a, new Uint8Array(32)), undefined);
  const order8 = bytes('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800');
  assert.equal(sharedSecret(a, order8), undefined);
});
