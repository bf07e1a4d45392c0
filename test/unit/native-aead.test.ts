// The native batched AEAD against @noble/ciphers (the reference), byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import {
  AEAD_DIRECT_AVAILABLE, AEAD_VARIANT, DESC_COUNTER_HI, DESC_COUNTER_LO, DESC_LENGTH, DESC_STRIDE, openBatch, sealBatch,
} from '../../src/crypto/native-aead.js';
import { AEAD_TAG_SIZE, KEY_SIZE } from '../../src/crypto/sizes.js';
import { fillRandom, prng, randInt } from '../helpers/prng.js';
import { equalBytes, hex, setDescriptor, wgNonce } from '../helpers/aead.js';

const TAG = AEAD_TAG_SIZE;

function nobleSeal(key: Uint8Array, counter: bigint, pt: Uint8Array): Uint8Array {
  return chacha20poly1305(key, wgNonce(counter)).encrypt(pt);
}

interface Packet {
  offset: number;
  length: number; // plaintext length
  keyIndex: number;
  counter: bigint;
}
interface Batch {
  data: Uint8Array;
  keys: Uint8Array;
  desc: Uint32Array;
  packets: Packet[];
  original: Uint8Array; // copy of data before any call
}

// 8192 is the longest payload the direct way takes; 8193 goes through EVP even there.
const EDGE_SIZES = [0, 1, 15, 16, 17, 31, 32, 33, 47, 63, 64, 1420, 1500, 8192, 8193, 65535];
const EDGE_COUNTERS = [0n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 64n - 1n];

/**
 * Lays packets out back to back with 0..7-byte random gaps (so offsets are
 * unaligned) and 16 bytes of tag room each, in a buffer from `alloc`.
 */
function makeBatch(
  seed: number,
  sizes: number[],
  keyCount: number,
  alloc: (n: number) => Uint8Array = (n) => new Uint8Array(n),
): Batch {
  const rnd = prng(seed);
  const keys = fillRandom(new Uint8Array(keyCount * KEY_SIZE), rnd);
  const packets: Packet[] = [];
  let at = randInt(rnd, 8);
  sizes.forEach((length, i) => {
    // First alternate keys every packet, then in runs of three (the native
    // side skips the key setup when a key repeats).
    const keyIndex = i < 12 ? i % keyCount : Math.floor(i / 3) % keyCount;
    const counter =
      i < EDGE_COUNTERS.length * 2
        ? EDGE_COUNTERS[i % EDGE_COUNTERS.length]!
        : (BigInt(randInt(rnd, 2 ** 32)) << 32n) | BigInt(randInt(rnd, 2 ** 32));
    packets.push({ offset: at, length, keyIndex, counter });
    at += length + TAG + randInt(rnd, 8);
  });
  const data = fillRandom(alloc(at + randInt(rnd, 8)), rnd);
  const desc = new Uint32Array(packets.length * DESC_STRIDE);
  packets.forEach((p, i) => setDescriptor(desc, i, p.offset, p.length, p.keyIndex, p.counter));
  return { data, keys, desc, packets, original: data.slice() };
}

function randomSizes(seed: number, n: number): number[] {
  const rnd = prng(seed);
  return [...EDGE_SIZES, ...Array.from({ length: n }, () => randInt(rnd, 65536))];
}

const keyOf = (b: Batch, p: Packet): Uint8Array => b.keys.subarray(p.keyIndex * KEY_SIZE, (p.keyIndex + 1) * KEY_SIZE);

/** What `data` must hold after sealing: every packet replaced by noble's ct‖tag, gaps untouched. */
function expectedSealed(b: Batch): Uint8Array {
  const out = b.original.slice();
  for (const p of b.packets) {
    out.set(nobleSeal(keyOf(b, p), p.counter, b.original.subarray(p.offset, p.offset + p.length)), p.offset);
  }
  return out;
}

/** Switches each descriptor from plaintext length to ciphertext-with-tag length. */
function forOpen(desc: Uint32Array, count: number): Uint32Array {
  const d = desc.slice();
  for (let i = 0; i < count; i++) d[i * DESC_STRIDE + DESC_LENGTH]! += TAG;
  return d;
}

// Every way the addon seals and opens (AEAD_VARIANT), each against the reference.
for (const [name, variant] of [['evp', AEAD_VARIANT.evp], ['direct', AEAD_VARIANT.direct], ['direct, plain XOR', AEAD_VARIANT.directPortable]] as const) {
  const skip = variant !== AEAD_VARIANT.evp && !AEAD_DIRECT_AVAILABLE ? 'this node does not export OpenSSL\'s ChaCha20 and Poly1305' : false;
  const seal = (data: Uint8Array, keys: Uint8Array, desc: Uint32Array, count: number, ok?: Uint8Array): number => sealBatch(data, keys, desc, count, ok, variant);
  const open = (data: Uint8Array, keys: Uint8Array, desc: Uint32Array, count: number, ok: Uint8Array): number => openBatch(data, keys, desc, count, ok, variant);

  test(`sealBatch matches @noble/ciphers byte for byte (sizes, keys, counters) (${name})`, { skip }, () => {
    const b = makeBatch(1, randomSizes(2, 14), 4);
    const n = b.packets.length;
    const ok = new Uint8Array(n);
    assert.equal(seal(b.data, b.keys, b.desc, n, ok), n);
    assert.deepEqual([...ok], new Array<number>(n).fill(1));
    equalBytes(b.data, expectedSealed(b), 'sealed buffer');
  });

  test(`seal then open restores the plaintext and verifies every packet (${name})`, { skip }, () => {
    const b = makeBatch(3, randomSizes(4, 14), 3);
    const n = b.packets.length;
    assert.equal(seal(b.data, b.keys, b.desc, n), n);
    const sealed = b.data.slice();
    const ok = new Uint8Array(n).fill(7);
    assert.equal(open(b.data, b.keys, forOpen(b.desc, n), n, ok), n);
    assert.deepEqual([...ok], new Array<number>(n).fill(1));
    // Plaintext back in place; tags and gaps left as they were.
    const expected = sealed.slice();
    for (const p of b.packets) expected.set(b.original.subarray(p.offset, p.offset + p.length), p.offset);
    equalBytes(b.data, expected, 'opened buffer');
  });

  test(`openBatch opens ciphertext produced by @noble/ciphers (${name})`, { skip }, () => {
    const b = makeBatch(5, randomSizes(6, 10), 2);
    const n = b.packets.length;
    b.data.set(expectedSealed(b));
    const ok = new Uint8Array(n);
    assert.equal(open(b.data, b.keys, forOpen(b.desc, n), n, ok), n);
    assert.deepEqual([...ok], new Array<number>(n).fill(1));
    for (const [i, p] of b.packets.entries()) {
      equalBytes(b.data.subarray(p.offset, p.offset + p.length), b.original.subarray(p.offset, p.offset + p.length), `packet ${i}`);
    }
  });

  // With one key, packets after a failure reuse the key the context holds.
  for (const keyCount of [1, 3]) {
    test(`a flipped bit fails only its own packet, whose plaintext is zeroed (${keyCount} keys) (${name})`, { skip }, () => {
      const b = makeBatch(7, [0, 1, 64, 1420, 1500, 65535, 17, 16, 300], keyCount);
      const n = b.packets.length;
      seal(b.data, b.keys, b.desc, n);
      const p = b.packets;
      b.data[p[3]!.offset + 700]! ^= 0x10; // ciphertext of the 1420-byte packet
      b.data[p[5]!.offset + p[5]!.length + 15]! ^= 0x80; // last tag byte of the 65535-byte packet
      b.data[p[0]!.offset]! ^= 0x01; // the tag of the empty packet (it is all tag)
      b.data[p[2]!.offset]! ^= 0x01; // first ciphertext byte
      const bad = new Set([0, 2, 3, 5]);
      const ok = new Uint8Array(n).fill(9);
      assert.equal(open(b.data, b.keys, forOpen(b.desc, n), n, ok), n - bad.size);
      for (const [i, q] of p.entries()) {
        assert.equal(ok[i], bad.has(i) ? 0 : 1, `ok[${i}]`);
        const expected = bad.has(i) ? new Uint8Array(q.length) : b.original.subarray(q.offset, q.offset + q.length);
        equalBytes(b.data.subarray(q.offset, q.offset + q.length), expected, `packet ${i}`);
      }
      // A later good batch on this thread is unaffected by the failures.
      const c = makeBatch(8, [100, 2000], 1);
      seal(c.data, c.keys, c.desc, 2);
      equalBytes(c.data, expectedSealed(c), 'batch after failures');
    });
  }

  test(`known answers: Linux chacha20poly1305 selftest vectors without AAD (${name})`, { skip }, () => {
    // lib/crypto/chacha20poly1305-selftest.c, enc vectors 002, 005 and 007. Their
    // 8-byte nonce is read as a little-endian u64, i.e. exactly our counter.
    const vectors = [
      {
        key: '4cf5968338e6ae7f2d292576d5752786919a277afb46c5ef9481795714594068',
        nonce: 'cabf33713245778e',
        input: '',
        output: 'eae01e9e2c91aae1db5d993f8af76992',
      },
      {
        key: '66ca9c232a4b4b310e92898bf493c78798a3d839f8f4a701c02e0aa67e5a7887',
        nonce: '201caa5f9cbf9230',
        input: '2d',
        output: 'bfe15b0bdb6bf55e6c5d84443981c19cac',
      },
      {
        key: '8db89148f0e70abdf93fcdd9a01e424ce7de253da3d705808df282ac44165101',
        nonce: 'de7befc3651b68b0',
        input:
          '9b18dbdd9a0f3ea51517dedf089d650a673012e234774bc1d9c61fabc6185017a79d3ca6c5358c1cc0a17c9f0389cae1' +
          'e6e9d4d388dbb4519decb4fc52ee6df17542c6fdbd7a8e86fc44b34ff3ea675a4113bab0dce1d32a7c22b3caac6a3798' +
          '3e1d4097f79b1d366bb328bd60824734aa2f7de9a8708157d4b9770a9d29a784524fc24a403b3cd4c92adb4a53c4be80' +
          'e9517f8fc7a2ce825c911e74d9d0bdd5f3fdda4d25b4bb2dac2f3d71857bcf3c7b3e0e22780c29bfe4f457b3cb49a0fc' +
          '1e054e16bcd5a8a3ee0535c67cab6014551a8ec5885dd581c281a5c460dbaf7791e1cea27e7f42e3b0131c1f256021e2' +
          '405f99b773ec9b2bf06511c8d00a9fd3',
        output:
          '8504c2ed8dfd975cd2b7e2c16ba3baf8c950c3c6a5e3a47cc323495ea9b932eb8a7ccae5ecfb7cc0cb7ddc2c9d925521' +
          '0ac84363590a317082674103f8dff2aca702d4d58a2dc8991966d0f6882c77d9d40d6cbd98dee77fad7e8afbe94be5f7' +
          'e550a0903fd62253e3fe1bcc793bec124752a7d604e352e6939091327379b8d031de1f9f2f0538542f350439e0a7bac6' +
          '52f637654c07a97eb3216f748cc9dedb651b9baa60b103306bb203c41c04f80f64af46e4659949e2eace7800d88bd52e' +
          'cffc4049e858dc349c8c61bf0a8eec39a930055ad25601c7da8f4ebb43a33af9152ad0a07a873482fe8ad12d5ec7bf04' +
          '535f3b36d4255c347a8dd505ce72caef7a4bbcb0105c96423a0098cd15e8b753',
      },
    ];
    const keys = new Uint8Array(vectors.length * KEY_SIZE);
    const desc = new Uint32Array(vectors.length * DESC_STRIDE);
    const data = new Uint8Array(vectors.reduce((n, v) => n + v.output.length / 2, 0));
    let at = 0;
    vectors.forEach((v, i) => {
      keys.set(hex(v.key), i * KEY_SIZE);
      data.set(hex(v.input), at);
      setDescriptor(desc, i, at, v.input.length / 2, i, new DataView(hex(v.nonce).buffer).getBigUint64(0, true));
      at += v.output.length / 2;
    });
    assert.equal(seal(data, keys, desc, vectors.length), vectors.length);
    equalBytes(data, hex(vectors.map((v) => v.output).join('')), 'known-answer ciphertexts');
    const ok = new Uint8Array(vectors.length);
    assert.equal(open(data, keys, forOpen(desc, vectors.length), vectors.length, ok), vectors.length);
    at = 0;
    for (const v of vectors) {
      equalBytes(data.subarray(at, at + v.input.length / 2), hex(v.input), 'known-answer plaintext');
      at += v.output.length / 2;
    }
  });
}

test('any view works: SharedArrayBuffer, subarrays with byteOffset, Buffer', () => {
  const sizes = [0, 33, 1420, 4097];
  const reference = makeBatch(11, sizes, 2);
  const expected = expectedSealed(reference);
  const n = sizes.length;

  const variants: Record<string, (len: number) => Uint8Array> = {
    'SharedArrayBuffer at offset 13': (len) => new Uint8Array(new SharedArrayBuffer(len + 20), 13, len),
    'subarray at offset 7': (len) => new Uint8Array(len + 9).subarray(7, 7 + len),
    Buffer: (len) => Buffer.alloc(len),
  };
  for (const [name, alloc] of Object.entries(variants)) {
    const b = makeBatch(11, sizes, 2, alloc);
    // keys and desc as offset views too, on their own backing stores.
    const keysHost = new Uint8Array(b.keys.length + 5);
    keysHost.set(b.keys, 5);
    const keys = keysHost.subarray(5);
    const descHost = new Uint32Array(new SharedArrayBuffer((b.desc.length + 3) * 4));
    const desc = descHost.subarray(3);
    desc.set(b.desc);
    assert.equal(sealBatch(b.data, keys, desc, n), n, name);
    equalBytes(b.data, expected, name);
    // The bytes around the view are untouched.
    const whole = new Uint8Array(b.data.buffer);
    const end = b.data.byteOffset + b.data.length;
    assert.ok(whole.subarray(0, b.data.byteOffset).every((x) => x === 0), name);
    assert.ok(whole.subarray(end).every((x) => x === 0), name);
    const ok = new Uint8Array(new SharedArrayBuffer(n + 2), 2, n);
    assert.equal(openBatch(b.data, keys, forOpen(desc, n), n, ok), n, name);
    for (const p of b.packets) {
      equalBytes(b.data.subarray(p.offset, p.offset + p.length), b.original.subarray(p.offset, p.offset + p.length), name);
    }
  }
});

test('sealing in worker threads gives the same bytes as the main thread', async () => {
  const b = makeBatch(13, randomSizes(14, 4), 3);
  const n = b.packets.length;
  const expected = b.data.slice();
  assert.equal(sealBatch(expected, b.keys, b.desc, n), n);

  const moduleUrl = new URL('../../src/crypto/native-aead.js', import.meta.url).href;
  // An eval worker is CommonJS: load the ESM wrapper (and so the addon) with import().
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.moduleUrl).then((m) => {
      const { data, keys, desc, count } = workerData;
      const sealed = m.sealBatch(data, keys, desc, count);
      parentPort.postMessage({ sealed, data });
    });
  `;
  const runWorker = (): Promise<{ sealed: number; data: Uint8Array }> =>
    new Promise((resolve, reject) => {
      const w = new Worker(source, {
        eval: true,
        workerData: { moduleUrl, data: b.original, keys: b.keys, desc: b.desc, count: n },
      });
      let result: { sealed: number; data: Uint8Array } | undefined;
      w.once('message', (m: { sealed: number; data: Uint8Array }) => (result = m));
      w.once('error', reject);
      // Waiting for exit also checks that thread teardown (freeing the thread's contexts) is clean.
      w.once('exit', (code) =>
        code === 0 && result !== undefined ? resolve(result) : reject(new Error(`worker exited with ${code}`)),
      );
    });
  const results = await Promise.all([runWorker(), runWorker()]);
  for (const r of results) {
    assert.equal(r.sealed, n);
    equalBytes(r.data, expected, 'worker output');
  }
});

test('malformed calls throw TypeError/RangeError and leave data unchanged', () => {
  const b = makeBatch(17, [10, 20, 30], 2);
  const { data, keys, desc } = b;
  const openDesc = forOpen(desc, 3);
  const ok = new Uint8Array(3);
  const withRow = (base: Uint32Array, i: number, slot: number, value: number): Uint32Array => {
    const d = base.slice();
    d[i * DESC_STRIDE + slot] = value;
    return d;
  };
  const last = b.packets[2]!;
  const cases: [string, () => unknown, typeof TypeError | typeof RangeError][] = [
    // Bounds: the last packet's tag would run one byte past the end.
    ['seal past end', () => sealBatch(data, keys, withRow(desc, 2, 1, data.length - last.offset - TAG + 1), 3), RangeError],
    ['seal offset past end', () => sealBatch(data, keys, withRow(desc, 2, 0, data.length), 3), RangeError],
    ['seal offset+length wraps 32 bits', () => sealBatch(data, keys, withRow(withRow(desc, 2, 0, 0xffff_ffff), 2, 1, 0x20), 3), RangeError],
    ['seal huge length', () => sealBatch(data, keys, withRow(desc, 1, 1, 0xffff_ffff), 3), RangeError],
    ['keyIndex out of range', () => sealBatch(data, keys, withRow(desc, 1, 2, 2), 3), RangeError],
    ['keyIndex with no keys', () => sealBatch(data, new Uint8Array(0), desc, 3), RangeError],
    ['desc too short for count', () => sealBatch(data, keys, desc, 4), RangeError],
    ['desc cut mid-row', () => sealBatch(data, keys, desc.subarray(0, 14), 3), RangeError],
    ['count negative', () => sealBatch(data, keys, desc, -1), RangeError],
    ['count fractional', () => sealBatch(data, keys, desc, 1.5), RangeError],
    ['count NaN', () => sealBatch(data, keys, desc, NaN), RangeError],
    ['count Infinity', () => sealBatch(data, keys, desc, Infinity), RangeError],
    ['count string', () => sealBatch(data, keys, desc, '1' as unknown as number), TypeError],
    ['keys not a multiple of 32', () => sealBatch(data, keys.subarray(1), desc, 3), RangeError],
    ['keys wrong type', () => sealBatch(data, new Uint16Array(32) as unknown as Uint8Array, desc, 3), TypeError],
    ['data ArrayBuffer', () => sealBatch(data.buffer as unknown as Uint8Array, keys, desc, 3), TypeError],
    ['data DataView', () => sealBatch(new DataView(data.buffer) as unknown as Uint8Array, keys, desc, 3), TypeError],
    ['data Uint8ClampedArray', () => sealBatch(new Uint8ClampedArray(data.buffer) as unknown as Uint8Array, keys, desc, 3), TypeError],
    ['data missing', () => (sealBatch as unknown as () => number)(), TypeError],
    ['desc Int32Array', () => sealBatch(data, keys, new Int32Array(desc.buffer) as unknown as Uint32Array, 3), TypeError],
    ['seal ok not a Uint8Array', () => sealBatch(data, keys, desc, 3, [0, 0, 0] as unknown as Uint8Array), TypeError],
    ['seal ok too short', () => sealBatch(data, keys, desc, 3, new Uint8Array(2)), RangeError],
    ['open length below tag', () => openBatch(data, keys, withRow(openDesc, 1, 1, 15), 3, ok), RangeError],
    ['open past end', () => openBatch(data, keys, withRow(openDesc, 2, 1, data.length - last.offset + 1), 3, ok), RangeError],
    ['open keyIndex out of range', () => openBatch(data, keys, withRow(openDesc, 0, 2, 0xffff_ffff), 3, ok), RangeError],
    ['open ok missing', () => (openBatch as unknown as (...a: unknown[]) => number)(data, keys, openDesc, 3), TypeError],
    ['open ok too short', () => openBatch(data, keys, openDesc, 3, new Uint8Array(2)), RangeError],
  ];
  for (const [name, call, type] of cases) {
    assert.throws(call, type, name);
    equalBytes(data, b.original, `data after "${name}"`);
  }
  // Exact fits are fine: a packet whose tag ends on the last byte.
  const exact = withRow(desc, 2, 1, data.length - last.offset - TAG);
  assert.equal(sealBatch(data, keys, exact, 3), 3);
});

test('the variant argument: absent or 0 is the fastest way, an unknown one is refused', () => {
  const b = makeBatch(11, [100, 1420], 1);
  assert.equal(sealBatch(b.data, b.keys, b.desc, 2, undefined, AEAD_VARIANT.best), 2);
  equalBytes(b.data, expectedSealed(b), 'sealed the fastest way');
  for (const bad of [4, -1, 0.5, 'direct']) {
    assert.throws(() => sealBatch(b.data, b.keys, b.desc, 2, undefined, bad as never),
      /^RangeError: sealBatch: variant must be 0 \(the fastest\), 1 \(evp\), 2 \(direct\) or 3 \(direct, plain XOR\)$/);
  }
  if (!AEAD_DIRECT_AVAILABLE) {
    for (const variant of [AEAD_VARIANT.direct, AEAD_VARIANT.directPortable]) {
      assert.throws(() => openBatch(b.data, b.keys, b.desc, 2, new Uint8Array(2), variant), /does not export OpenSSL's ChaCha20 and Poly1305/);
    }
  }
});

test('count 0 and empty arrays are a no-op', () => {
  const empty = new Uint8Array(0);
  assert.equal(sealBatch(empty, empty, new Uint32Array(0), 0), 0);
  assert.equal(openBatch(empty, empty, new Uint32Array(0), 0, empty), 0);
  // count below the number of descriptors only touches the first ones.
  const b = makeBatch(19, [40, 50], 1);
  assert.equal(sealBatch(b.data, b.keys, b.desc, 1), 1);
  const second = b.packets[1]!;
  equalBytes(b.data.subarray(second.offset), b.original.subarray(second.offset), 'untouched second packet');
});

test('setDescriptor splits 64-bit counters into lo/hi', () => {
  const d = new Uint32Array(DESC_STRIDE * 4);
  setDescriptor(d, 0, 1, 2, 3, 2n ** 64n - 1n);
  setDescriptor(d, 1, 0, 0, 0, 2 ** 32);
  setDescriptor(d, 2, 0, 0, 0, 2 ** 32 - 1);
  setDescriptor(d, 3, 0, 0, 0, Number.MAX_SAFE_INTEGER);
  const counters = [0, 1, 2, 3].map((i) => [d[i * DESC_STRIDE + DESC_COUNTER_LO], d[i * DESC_STRIDE + DESC_COUNTER_HI]]);
  assert.deepEqual(counters, [
    [0xffff_ffff, 0xffff_ffff],
    [0, 1],
    [0xffff_ffff, 0],
    [0xffff_ffff, 0x1f_ffff],
  ]);
  assert.deepEqual([...d.subarray(0, 3)], [1, 2, 3]);
  assert.throws(() => setDescriptor(d, 0, 0, 0, 0, 2n ** 64n), RangeError);
  assert.throws(() => setDescriptor(d, 0, 0, 0, 0, -1n), RangeError);
  assert.throws(() => setDescriptor(d, 0, 0, 0, 0, -1), RangeError);
  assert.throws(() => setDescriptor(d, 0, 0, 0, 0, 2 ** 53), RangeError);
});
