// Transport AEAD backends behind one interface, chosen by --crypto / TUNDRA_CRYPTO
// for the data path's batches and the engine's own sends (keepalives, staged packets)
// alike:
//
// - native: the addon's batched ChaCha20-Poly1305 (native-aead.ts), the default;
// - node:   node:crypto, one createCipheriv/createDecipheriv per packet;
// - noble:  @noble/ciphers, one chacha20poly1305 instance per packet (the reference).
//
// All three are SealBatch/OpenBatch (see native-aead.ts for the contract) and
// behave identically: same in-place layout, same `ok` array and return value,
// failed opens zero their plaintext region, and the same argument and descriptor
// validation, done in full before any packet is touched, so a throw leaves
// `data` unchanged. The JS backends even throw the native messages word for word.
//
// The JS backends are reference/slow paths. They never copy a batch, but per
// packet they allocate what their library allocates:
// - node: the Cipher/Decipher object, a Buffer holding the update() output (node
//   has no in-place update, so that output is copied back into `data`), the
//   empty final() Buffer and the 16-byte tag Buffer (seal); plus one subarray
//   view of the packet (and one of the tag on open).
// - noble: the cipher object and its small internals (key/nonce state, a 64-byte
//   keystream block, the Poly1305 state and one-time key, the tag), plus the
//   subarray views of the packet; the encryption itself is in place.
// Both keep one view per key run (a new view only when keyIndex changes) and
// one nonce buffer per thread, rewritten per packet.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { types } from 'node:util';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { DESC_COUNTER_HI, DESC_COUNTER_LO, DESC_KEY_INDEX, DESC_LENGTH, DESC_OFFSET, DESC_STRIDE, openBatch, sealBatch, type OpenBatch, type SealBatch } from './native-aead.js';
import { AEAD_TAG_SIZE, KEY_SIZE } from './sizes.js';
import { SettingError } from '../errors.js';

export type { OpenBatch, SealBatch };

export type CryptoBackendName = 'native' | 'node' | 'noble';

/** Every backend, the default first. */
export const CRYPTO_BACKENDS: readonly CryptoBackendName[] = Object.freeze(['native', 'node', 'noble'] as const);

export interface AeadBackend {
  readonly name: CryptoBackendName;
  readonly seal: SealBatch;
  readonly open: OpenBatch;
}

/**
 * Parses a backend name as given on the command line or in the environment.
 * `source` names where it came from ("--crypto", "TUNDRA_CRYPTO") for the message.
 */
export function parseCryptoBackend(value: string, source: string): CryptoBackendName {
  if ((CRYPTO_BACKENDS as readonly string[]).includes(value)) return value as CryptoBackendName;
  throw new SettingError(`${source}: unknown crypto backend "${value}" (expected native, node or noble)`);
}

// ---- shared validation: the checks native/aead.cc makes, in its order ------

const TAG = AEAD_TAG_SIZE;

/**
 * Throws exactly what the native BatchJs throws for a malformed call; returns the key count.
 * Bounds: i < count ≤ rows = ⌊desc.length / DESC_STRIDE⌋, checked before the loop.
 */
function checkCall(
  fn: string,
  seal: boolean,
  data: unknown,
  keys: unknown,
  desc: unknown,
  count: unknown,
  ok: unknown,
): number {
  if (!types.isUint8Array(data)) throw new TypeError(`${fn}: data must be a Uint8Array`);
  if (!types.isUint8Array(keys)) throw new TypeError(`${fn}: keys must be a Uint8Array`);
  if (!types.isUint32Array(desc)) throw new TypeError(`${fn}: desc must be a Uint32Array`);
  if (typeof count !== 'number') throw new TypeError(`${fn}: count must be a number`);
  const rows = Math.floor(desc.length / DESC_STRIDE);
  if (!(count >= 0) || Math.floor(count) !== count || count > rows) {
    throw new RangeError(
      `${fn}: count ${String(count)} is not an integer in [0, ${rows}] (desc holds ${rows} descriptors)`,
    );
  }
  if (keys.length % KEY_SIZE !== 0) throw new RangeError(`${fn}: keys.length ${keys.length} is not a multiple of 32`);
  const keyCount = keys.length / KEY_SIZE;
  // ok is required for open, optional for seal.
  if (!seal || ok !== undefined) {
    if (!types.isUint8Array(ok)) throw new TypeError(`${fn}: ok must be a Uint8Array`);
    if (ok.length < count) throw new RangeError(`${fn}: ok.length ${ok.length} is less than count ${count}`);
  }
  for (let i = 0; i < count; i++) {
    const base = i * DESC_STRIDE;
    const problem = rowProblem(seal, desc[base + DESC_OFFSET]!, desc[base + DESC_LENGTH]!, desc[base + DESC_KEY_INDEX]!, data.length, keyCount);
    if (problem !== undefined) throw new RangeError(`${fn}: descriptor ${i}: ${problem}`);
  }
  return keyCount;
}

/** What is wrong with one row, or undefined. Doubles hold offset + length exactly (< 2^33). */
function rowProblem(
  seal: boolean,
  offset: number,
  length: number,
  keyIndex: number,
  dataLength: number,
  keyCount: number,
): string | undefined {
  if (keyIndex >= keyCount) return `keyIndex ${keyIndex} is out of range (${keyCount} keys)`;
  const end = offset + length;
  if (seal) {
    if (end + TAG > dataLength) return `offset + length + 16 = ${end + TAG} exceeds data.length ${dataLength}`;
  } else {
    if (length < TAG) return `length ${length} is shorter than the 16-byte tag`;
    if (end > dataLength) return `offset + length = ${end} exceeds data.length ${dataLength}`;
  }
  return undefined;
}

/**
 * One packet in place. Seal: `length` plaintext bytes at `offset`, tag written
 * after them. Open: `length` ciphertext bytes (without the tag, which follows);
 * returns false on a bad tag and may then leave the region in any state (the
 * caller zeroes it).
 */
type PacketOp = (data: Uint8Array, offset: number, length: number, key: Uint8Array, nonce: Uint8Array) => boolean;

/** A SealBatch or OpenBatch over a per-packet operation, with the native semantics. */
function batchOver(seal: boolean, nonce: Uint8Array, op: PacketOp): SealBatch & OpenBatch {
  const fn = seal ? 'sealBatch' : 'openBatch';
  // Bounds: i < count ≤ ⌊desc.length / DESC_STRIDE⌋ (checkCall), so each row's fields lie inside desc.
  const batch = (data: Uint8Array, keys: Uint8Array, desc: Uint32Array, count: number, ok?: Uint8Array): number => {
    const keyCount = checkCall(fn, seal, data, keys, desc, count, ok);
    let done = 0;
    let heldIndex = -1;
    let key = keys;
    for (let i = 0; i < count; i++) {
      // Read the row once into locals and check it again: a SharedArrayBuffer-backed
      // desc may have changed since checkCall, and what we check must be what we use.
      const base = i * DESC_STRIDE;
      const offset = desc[base + DESC_OFFSET]!;
      const length = desc[base + DESC_LENGTH]!;
      const keyIndex = desc[base + DESC_KEY_INDEX]!;
      const lo = desc[base + DESC_COUNTER_LO]!;
      const hi = desc[base + DESC_COUNTER_HI]!;
      let good = false;
      if (rowProblem(seal, offset, length, keyIndex, data.length, keyCount) === undefined) {
        if (keyIndex !== heldIndex) {
          key = keys.subarray(keyIndex * KEY_SIZE, (keyIndex + 1) * KEY_SIZE);
          heldIndex = keyIndex;
        }
        writeNonce(nonce, lo, hi);
        const len = seal ? length : length - TAG;
        try {
          good = op(data, offset, len, key, nonce);
        } catch {
          good = false; // the library failed (as an EVP error in native): this packet only
        }
        // Never hand back unauthenticated plaintext.
        if (!good && !seal) data.fill(0, offset, offset + len);
      }
      if (ok !== undefined) ok[i] = good ? 1 : 0;
      if (good) done++;
    }
    return done;
  };
  return batch;
}

/** WireGuard nonce: 4 zero bytes ‖ 64-bit little-endian counter. */
function writeNonce(n: Uint8Array, lo: number, hi: number): void {
  n[0] = n[1] = n[2] = n[3] = 0;
  n[4] = lo & 0xff;
  n[5] = (lo >>> 8) & 0xff;
  n[6] = (lo >>> 16) & 0xff;
  n[7] = lo >>> 24;
  n[8] = hi & 0xff;
  n[9] = (hi >>> 8) & 0xff;
  n[10] = (hi >>> 16) & 0xff;
  n[11] = hi >>> 24;
}

// ---- node:crypto -----------------------------------------------------------

const AUTH_TAG = { authTagLength: TAG } as const;

// Separate nonce buffers per direction; each is rewritten per packet and read
// synchronously by createCipheriv (which copies it), so sharing one per thread is safe.
const nodeSeal = batchOver(true, Buffer.alloc(12), (data, offset, length, key, nonce) => {
  const c = createCipheriv('chacha20-poly1305', key, nonce, AUTH_TAG);
  data.set(c.update(data.subarray(offset, offset + length)), offset);
  c.final();
  data.set(c.getAuthTag(), offset + length);
  return true;
});

const nodeOpen = batchOver(false, Buffer.alloc(12), (data, offset, length, key, nonce) => {
  const d = createDecipheriv('chacha20-poly1305', key, nonce, AUTH_TAG);
  d.setAuthTag(data.subarray(offset + length, offset + length + TAG));
  // update() returns plaintext before the tag is checked: keep it out of
  // `data` until final() has verified.
  const plaintext = d.update(data.subarray(offset, offset + length));
  d.final(); // throws on a bad tag
  data.set(plaintext, offset);
  return true;
});

// ---- @noble/ciphers ----------------------------------------------------------

// noble borrows key and nonce by reference, but only within the synchronous call.
const nobleSeal = batchOver(true, new Uint8Array(12), (data, offset, length, key, nonce) => {
  const region = data.subarray(offset, offset + length + TAG);
  chacha20poly1305(key, nonce).encrypt(region.subarray(0, length), region);
  return true;
});

const nobleOpen = batchOver(false, new Uint8Array(12), (data, offset, length, key, nonce) => {
  // decrypt checks the tag before it writes anything; output is the plaintext prefix.
  chacha20poly1305(key, nonce).decrypt(data.subarray(offset, offset + length + TAG), data.subarray(offset, offset + length));
  return true;
});

const BACKENDS: Readonly<Record<CryptoBackendName, AeadBackend>> = Object.freeze({
  native: Object.freeze({ name: 'native', seal: sealBatch, open: openBatch }),
  node: Object.freeze({ name: 'node', seal: nodeSeal, open: nodeOpen }),
  noble: Object.freeze({ name: 'noble', seal: nobleSeal, open: nobleOpen }),
});

/** The backend of that name (a frozen singleton). */
export function aeadBackend(name: CryptoBackendName): AeadBackend {
  const backend = Object.hasOwn(BACKENDS, name) ? BACKENDS[name] : undefined;
  if (backend === undefined) {
    throw new SettingError(`unknown crypto backend "${String(name)}" (expected native, node or noble)`);
  }
  return backend;
}
