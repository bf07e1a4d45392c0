// The three AEAD backends (native, node, noble) give the same bytes, the same
// `ok` and return values and the same errors, on the same vectors and batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import {
  aeadBackend,
  CRYPTO_BACKENDS,
  parseCryptoBackend,
  type AeadBackend,
  type CryptoBackendName,
} from '../../src/crypto/backends.js';
import { SettingError } from '../../src/errors.js';
import { DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE } from '../../src/crypto/native-aead.js';
import { AEAD_TAG_SIZE, KEY_SIZE } from '../../src/crypto/sizes.js';
import { fillRandom, prng, randInt } from '../helpers/prng.js';
import { equalBytes, hex, setDescriptor, wgNonce } from '../helpers/aead.js';

const TAG = AEAD_TAG_SIZE;
const backends: AeadBackend[] = CRYPTO_BACKENDS.map((name) => aeadBackend(name));

interface Packet {
  offset: number;
  length: number; // plaintext length
  keyIndex: number;
  counter: bigint;
}
interface Batch {
  keys: Uint8Array;
  sealDesc: Uint32Array;
  openDesc: Uint32Array;
  packets: Packet[];
  original: Uint8Array; // data before any call
}

const NEAR_COUNTERS = [0n, 2n ** 32n - 2n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 64n - 2n, 2n ** 64n - 1n];

/** Packets back to back with 0..7-byte random gaps (unaligned offsets) and 16 bytes of tag room each. */
function makeBatch(seed: number, sizes: number[], keyCount: number): Batch {
  const rnd = prng(seed);
  const keys = fillRandom(new Uint8Array(keyCount * KEY_SIZE), rnd);
  const packets: Packet[] = [];
  let at = randInt(rnd, 8);
  sizes.forEach((length, i) => {
    // Keys alternate at first, then in random runs (the native side keeps a key across a run).
    const keyIndex = i < 8 ? i % keyCount : randInt(rnd, keyCount);
    const near = NEAR_COUNTERS[randInt(rnd, NEAR_COUNTERS.length)]!;
    const counter = i < NEAR_COUNTERS.length ? NEAR_COUNTERS[i]! : near >= 2n ** 63n ? near - BigInt(randInt(rnd, 1000)) : near + BigInt(randInt(rnd, 1000));
    packets.push({ offset: at, length, keyIndex, counter });
    at += length + TAG + randInt(rnd, 8);
  });
  const original = fillRandom(new Uint8Array(at + randInt(rnd, 8)), rnd);
  const sealDesc = new Uint32Array(packets.length * DESC_STRIDE);
  const openDesc = new Uint32Array(packets.length * DESC_STRIDE);
  packets.forEach((p, i) => {
    setDescriptor(sealDesc, i, p.offset, p.length, p.keyIndex, p.counter);
    setDescriptor(openDesc, i, p.offset, p.length + TAG, p.keyIndex, p.counter);
  });
  return { keys, sealDesc, openDesc, packets, original };
}

function randomSizes(seed: number, n: number): number[] {
  const rnd = prng(seed);
  const sizes = [0, 1, 15, 16, 17, 63, 64, 65, 1420, 1500, 65535, 65536];
  for (let i = 0; i < n; i++) sizes.push(randInt(rnd, 1501));
  return sizes;
}

const keyOf = (b: Batch, p: Packet): Uint8Array => b.keys.subarray(p.keyIndex * KEY_SIZE, (p.keyIndex + 1) * KEY_SIZE);

/** Noble single-shot (not through any backend): the buffer each backend must produce. */
function expectedSealed(b: Batch): Uint8Array {
  const out = b.original.slice();
  for (const p of b.packets) {
    out.set(chacha20poly1305(keyOf(b, p), wgNonce(p.counter)).encrypt(b.original.subarray(p.offset, p.offset + p.length)), p.offset);
  }
  return out;
}

/** After opening: plaintext back at each offset, tags and gaps as the sealed buffer had them. */
function expectedOpened(b: Batch, sealed: Uint8Array): Uint8Array {
  const out = sealed.slice();
  for (const p of b.packets) out.set(b.original.subarray(p.offset, p.offset + p.length), p.offset);
  return out;
}

test('CRYPTO_BACKENDS lists native (the default) first, and aeadBackend returns each by name', () => {
  assert.deepEqual([...CRYPTO_BACKENDS], ['native', 'node', 'noble']);
  assert.ok(Object.isFrozen(CRYPTO_BACKENDS));
  for (const name of CRYPTO_BACKENDS) {
    const b = aeadBackend(name);
    assert.equal(b.name, name);
    assert.equal(typeof b.seal, 'function');
    assert.equal(typeof b.open, 'function');
    assert.equal(aeadBackend(name), b, 'one instance per backend');
  }
  assert.notEqual(aeadBackend('node').seal, aeadBackend('native').seal);
  assert.throws(() => aeadBackend('openssl' as CryptoBackendName), SettingError);
  assert.throws(() => aeadBackend('constructor' as CryptoBackendName), SettingError);
});

test('parseCryptoBackend accepts the three names and rejects anything else with the source named', () => {
  for (const name of ['native', 'node', 'noble'] as const) assert.equal(parseCryptoBackend(name, '--crypto'), name);
  const bad: [string, string][] = [
    ['openssl', '--crypto'],
    ['', 'TUNDRA_CRYPTO'],
    ['Native', 'TUNDRA_CRYPTO'],
    [' node', '--crypto'],
    ['toString', '--crypto'],
  ];
  for (const [value, source] of bad) {
    assert.throws(
      () => parseCryptoBackend(value, source),
      (e: unknown) => {
        assert.ok(e instanceof SettingError, `${JSON.stringify(value)} throws a SettingError`);
        assert.ok(e instanceof Error);
        assert.equal(e.message, `${source}: unknown crypto backend "${value}" (expected native, node or noble)`);
        return true;
      },
    );
  }
});

test('RFC 8439 §2.8.2: noble reproduces the vector; its WireGuard-layout variant is the same in every backend', () => {
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const plaintext = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const rfcCiphertext = hex(`
    d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
    3ff4def08e4b7a9de576d26586cec64b6116`);
  const rfcTag = hex('1ae10b594f09e26a7e902ecbd0600691');
  // 1. The reference is right: the RFC's own nonce (07000000 ‖ iv) and AAD.
  const rfc = chacha20poly1305(key, hex('070000004041424344454647'), hex('50515253c0c1c2c3c4c5c6c7')).encrypt(plaintext);
  equalBytes(rfc, new Uint8Array([...rfcCiphertext, ...rfcTag]), 'noble on the RFC vector');

  // 2. WireGuard has no AAD and a nonce of 4 zero bytes ‖ counter LE: the same key and
  // plaintext with the RFC's iv bytes as the counter, computed by noble single-shot.
  const counter = new DataView(hex('4041424344454647').buffer).getBigUint64(0, true);
  const expected = chacha20poly1305(key, hex('000000004041424344454647')).encrypt(plaintext);
  assert.equal(expected.length, plaintext.length + TAG);
  assert.notDeepEqual(expected.subarray(0, 16), rfcCiphertext.subarray(0, 16), 'the nonce change changes the keystream');
  for (const b of backends) {
    const data = new Uint8Array(3 + plaintext.length + TAG + 5);
    data.set(plaintext, 3);
    const desc = new Uint32Array(DESC_STRIDE);
    setDescriptor(desc, 0, 3, plaintext.length, 0, counter);
    const ok = new Uint8Array(1);
    assert.equal(b.seal(data, key, desc, 1, ok), 1, b.name);
    assert.equal(ok[0], 1, b.name);
    equalBytes(data.subarray(3, 3 + expected.length), expected, `${b.name} seal`);
    assert.ok(data.subarray(0, 3).every((x) => x === 0) && data.subarray(3 + expected.length).every((x) => x === 0), `${b.name}: no writes outside`);
    desc[DESC_LENGTH] = plaintext.length + TAG;
    ok[0] = 9;
    assert.equal(b.open(data, key, desc, 1, ok), 1, b.name);
    assert.equal(ok[0], 1, b.name);
    equalBytes(data.subarray(3, 3 + plaintext.length), plaintext, `${b.name} open`);
  }
});

test('known answer in the WireGuard layout (Linux chacha20poly1305 selftest enc vector 005)', () => {
  const key = hex('66ca9c232a4b4b310e92898bf493c78798a3d839f8f4a701c02e0aa67e5a7887');
  const counter = new DataView(hex('201caa5f9cbf9230').buffer).getBigUint64(0, true);
  const expected = hex('bfe15b0bdb6bf55e6c5d84443981c19cac');
  for (const b of backends) {
    const data = hex('2d' + '00'.repeat(TAG));
    const desc = new Uint32Array(DESC_STRIDE);
    setDescriptor(desc, 0, 0, 1, 0, counter);
    assert.equal(b.seal(data, key, desc, 1), 1, b.name);
    equalBytes(data, expected, b.name);
  }
});

test('random batches: every backend seals to the same bytes, and each opens what each sealed', () => {
  for (const [seed, keyCount] of [
    [1, 1],
    [2, 3],
    [3, 5],
  ] as const) {
    const b = makeBatch(seed, randomSizes(seed + 100, 40), keyCount);
    const n = b.packets.length;
    const expected = expectedSealed(b);
    const sealedBy = new Map<string, Uint8Array>();
    for (const be of backends) {
      const data = b.original.slice();
      const ok = new Uint8Array(n).fill(7);
      assert.equal(be.seal(data, b.keys, b.sealDesc, n, ok), n, `${be.name} seal (seed ${seed})`);
      assert.deepEqual([...ok], new Array<number>(n).fill(1), `${be.name} seal ok`);
      equalBytes(data, expected, `${be.name} sealed buffer (seed ${seed})`);
      sealedBy.set(be.name, data);
    }
    const opened = expectedOpened(b, expected);
    for (const sealer of backends) {
      for (const opener of backends) {
        const data = sealedBy.get(sealer.name)!.slice();
        const ok = new Uint8Array(n).fill(7);
        assert.equal(opener.open(data, b.keys, b.openDesc, n, ok), n, `${sealer.name} → ${opener.name}`);
        assert.deepEqual([...ok], new Array<number>(n).fill(1), `${sealer.name} → ${opener.name} ok`);
        equalBytes(data, opened, `${sealer.name} → ${opener.name} opened buffer (seed ${seed})`);
      }
    }
  }
});

test('SharedArrayBuffer-backed data, keys, desc and ok work in every backend', () => {
  const b = makeBatch(9, [0, 33, 1420, 4097, 65535], 2);
  const n = b.packets.length;
  const shared = <T extends Uint8Array | Uint32Array>(src: T, pad: number): T => {
    const bytes = (src.length + pad + 1) * src.BYTES_PER_ELEMENT;
    const view =
      src instanceof Uint8Array
        ? new Uint8Array(new SharedArrayBuffer(bytes), pad, src.length)
        : new Uint32Array(new SharedArrayBuffer(bytes), pad * 4, src.length);
    view.set(src);
    return view as T;
  };
  const expected = expectedSealed(b);
  for (const be of backends) {
    const data = shared(b.original, 5);
    const keys = shared(b.keys, 3);
    const ok = shared(new Uint8Array(n), 1);
    assert.equal(be.seal(data, keys, shared(b.sealDesc, 2), n, ok), n, be.name);
    equalBytes(data, expected, `${be.name} sealed`);
    assert.equal(be.open(data, keys, shared(b.openDesc, 2), n, ok), n, be.name);
    equalBytes(data, expectedOpened(b, expected), `${be.name} opened`);
    // Nothing written around the views.
    const whole = new Uint8Array(data.buffer);
    assert.ok(whole.subarray(0, 5).every((x) => x === 0) && whole.subarray(5 + data.length).every((x) => x === 0), be.name);
  }
});

test('a flipped bit fails only its own packet in every backend, and zeroes that plaintext', () => {
  for (const keyCount of [1, 3]) {
    const b = makeBatch(11 + keyCount, [0, 1, 64, 1420, 1500, 65535, 17, 16, 300, 700], keyCount);
    const n = b.packets.length;
    const p = b.packets;
    const sealed = expectedSealed(b);
    // Ciphertext of the 1420-byte packet, the last tag byte of the 64 KiB one, the tag
    // of the empty packet (it is all tag), the first ciphertext byte of the 64-byte one.
    const flips = [p[3]!.offset + 700, p[5]!.offset + p[5]!.length + 15, p[0]!.offset, p[2]!.offset];
    const bad = new Set([0, 2, 3, 5]);
    for (const flip of flips) sealed[flip]! ^= 0x10;
    const expected = expectedOpened(b, sealed);
    for (const [i, q] of p.entries()) if (bad.has(i)) expected.fill(0, q.offset, q.offset + q.length);
    for (const be of backends) {
      const data = sealed.slice();
      const ok = new Uint8Array(n).fill(9);
      assert.equal(be.open(data, b.keys, b.openDesc, n, ok), n - bad.size, `${be.name}, ${keyCount} keys`);
      assert.deepEqual([...ok], p.map((_, i) => (bad.has(i) ? 0 : 1)), `${be.name} ok, ${keyCount} keys`);
      equalBytes(data, expected, `${be.name} opened buffer, ${keyCount} keys`);
    }
  }
});

test('malformed calls throw the same error (class and message) in every backend and leave data unchanged', () => {
  const b = makeBatch(17, [10, 20, 30], 2);
  const { keys } = b;
  const desc = b.sealDesc;
  const openDesc = b.openDesc;
  const last = b.packets[2]!;
  const len = b.original.length;
  const withRow = (base: Uint32Array, i: number, slot: number, value: number): Uint32Array => {
    const d = base.slice();
    d[i * DESC_STRIDE + slot] = value;
    return d;
  };
  type Call = (be: AeadBackend, data: Uint8Array) => unknown;
  const anyCall = (f: unknown, ...args: unknown[]): unknown => (f as (...a: unknown[]) => unknown)(...args);
  const cases: [string, Call, typeof TypeError | typeof RangeError][] = [
    ['seal past end by one', (be, d) => be.seal(d, keys, withRow(desc, 2, DESC_LENGTH, len - last.offset - TAG + 1), 3), RangeError],
    ['seal offset past end', (be, d) => be.seal(d, keys, withRow(desc, 2, DESC_OFFSET, len), 3), RangeError],
    ['seal offset+length past 2^32', (be, d) => be.seal(d, keys, withRow(withRow(desc, 2, DESC_OFFSET, 0xffff_ffff), 2, DESC_LENGTH, 0x20), 3), RangeError],
    ['seal huge length', (be, d) => be.seal(d, keys, withRow(desc, 1, DESC_LENGTH, 0xffff_ffff), 3), RangeError],
    ['keyIndex = k', (be, d) => be.seal(d, keys, withRow(desc, 1, DESC_KEY_INDEX, 2), 3), RangeError],
    ['keyIndex with no keys', (be, d) => be.seal(d, new Uint8Array(0), desc, 3), RangeError],
    ['count > desc rows', (be, d) => be.seal(d, keys, desc, 4), RangeError],
    ['desc cut mid-row', (be, d) => be.seal(d, keys, desc.subarray(0, 14), 3), RangeError],
    ['count negative', (be, d) => be.seal(d, keys, desc, -1), RangeError],
    ['count fractional', (be, d) => be.seal(d, keys, desc, 1.5), RangeError],
    ['count NaN', (be, d) => be.seal(d, keys, desc, NaN), RangeError],
    ['count Infinity', (be, d) => be.seal(d, keys, desc, Infinity), RangeError],
    ['count string', (be, d) => anyCall(be.seal, d, keys, desc, '1'), TypeError],
    ['keys not a multiple of 32', (be, d) => be.seal(d, keys.subarray(1), desc, 3), RangeError],
    ['keys Uint16Array', (be, d) => anyCall(be.seal, d, new Uint16Array(32), desc, 3), TypeError],
    ['data ArrayBuffer', (be, d) => anyCall(be.seal, d.buffer, keys, desc, 3), TypeError],
    ['data DataView', (be, d) => anyCall(be.seal, new DataView(d.buffer), keys, desc, 3), TypeError],
    ['data Uint8ClampedArray', (be, d) => anyCall(be.seal, new Uint8ClampedArray(d.buffer), keys, desc, 3), TypeError],
    ['no arguments', (be) => anyCall(be.seal), TypeError],
    ['desc Int32Array', (be, d) => anyCall(be.seal, d, keys, new Int32Array(desc), 3), TypeError],
    ['desc plain array', (be, d) => anyCall(be.open, d, keys, [...openDesc], 3, new Uint8Array(3)), TypeError],
    ['seal ok an array', (be, d) => anyCall(be.seal, d, keys, desc, 3, [0, 0, 0]), TypeError],
    ['seal ok null', (be, d) => anyCall(be.seal, d, keys, desc, 3, null), TypeError],
    ['seal ok too short', (be, d) => be.seal(d, keys, desc, 3, new Uint8Array(2)), RangeError],
    ['open length below tag', (be, d) => be.open(d, keys, withRow(openDesc, 1, DESC_LENGTH, 15), 3, new Uint8Array(3)), RangeError],
    ['open past end by one', (be, d) => be.open(d, keys, withRow(openDesc, 2, DESC_LENGTH, len - last.offset + 1), 3, new Uint8Array(3)), RangeError],
    ['open keyIndex 2^32-1', (be, d) => be.open(d, keys, withRow(openDesc, 0, DESC_KEY_INDEX, 0xffff_ffff), 3, new Uint8Array(3)), RangeError],
    ['open ok missing', (be, d) => anyCall(be.open, d, keys, openDesc, 3), TypeError],
    ['open ok too short', (be, d) => be.open(d, keys, openDesc, 3, new Uint8Array(2)), RangeError],
  ];
  for (const [name, call, type] of cases) {
    const messages = new Set<string>();
    for (const be of backends) {
      const data = b.original.slice();
      assert.throws(
        () => call(be, data),
        (e: unknown) => {
          assert.ok(e instanceof type, `${be.name} "${name}": ${String(e)} is a ${type.name}`);
          messages.add(e.message);
          return true;
        },
      );
      equalBytes(data, b.original, `${be.name}: data after "${name}"`);
    }
    assert.equal(messages.size, 1, `"${name}": one message across backends: ${[...messages].join(' | ')}`);
  }
  // Exact fits are fine everywhere: the last packet's tag ends on the last byte.
  for (const be of backends) {
    const data = b.original.slice();
    assert.equal(be.seal(data, keys, withRow(desc, 2, DESC_LENGTH, len - last.offset - TAG), 3), 3, be.name);
  }
});

test('count 0 is a no-op and a count below the rows touches only the first packets', () => {
  const empty = new Uint8Array(0);
  const b = makeBatch(19, [40, 50], 1);
  for (const be of backends) {
    assert.equal(be.seal(empty, empty, new Uint32Array(0), 0), 0, be.name);
    assert.equal(be.open(empty, empty, new Uint32Array(0), 0, empty), 0, be.name);
    const data = b.original.slice();
    const ok = new Uint8Array(2).fill(5);
    assert.equal(be.seal(data, b.keys, b.sealDesc, 1, ok), 1, be.name);
    assert.deepEqual([...ok], [1, 5], `${be.name}: ok beyond count untouched`);
    const second = b.packets[1]!;
    equalBytes(data.subarray(second.offset), b.original.subarray(second.offset), `${be.name}: untouched second packet`);
    equalBytes(data.subarray(0, second.offset), expectedSealed(b).subarray(0, second.offset), `${be.name}: first packet sealed`);
  }
});
