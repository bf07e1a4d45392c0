// Typed wrapper over the addon's batched ChaCha20-Poly1305 (native/aead.cc).
//
// WireGuard transport AEAD: 32-byte key, nonce = 4 zero bytes ‖ 64-bit
// little-endian counter, empty AAD, 16-byte tag. One call seals or opens a
// whole batch in place; there is no per-packet JS↔C++ crossing and no
// per-packet allocation. The functions below are the native functions
// themselves (no JS shim): all argument checks happen in C++, once per call.
import { expectNativeConstants, nativeFunction, nativeNumber } from '../native/addon.js';
import { AEAD_TAG_SIZE, KEY_SIZE } from './sizes.js';

/** uint32 slots per packet in a descriptor array. */
export const DESC_STRIDE = 5;
/** Slot: byte offset of the packet in `data`. */
export const DESC_OFFSET = 0;
/** Slot: seal — plaintext length; open — ciphertext length including the 16-byte tag. */
export const DESC_LENGTH = 1;
/** Slot: index of the packet's 32-byte key in `keys`. */
export const DESC_KEY_INDEX = 2;
/** Slot: low 32 bits of the 64-bit nonce counter. */
export const DESC_COUNTER_LO = 3;
/** Slot: high 32 bits of the 64-bit nonce counter. */
export const DESC_COUNTER_HI = 4;

/**
 * Seals `count` packets in place.
 *
 * - `keys` holds k keys of 32 bytes back to back (`keys.length` must be a multiple of 32).
 * - `desc` holds `DESC_STRIDE` uint32 per packet: [offset, length, keyIndex, counterLo, counterHi].
 *   The plaintext `data[offset, offset+length)` is replaced by ciphertext and the tag is
 *   written to `data[offset+length, offset+length+16)`, so each packet needs 16 bytes of room.
 * - `ok`, if given, gets 1 per sealed packet and 0 otherwise.
 *
 * Every descriptor is checked before any packet is touched: a descriptor out of
 * range (keyIndex ≥ k, offset+length+16 > data.length), `count` larger than
 * `desc` holds, or `ok` shorter than `count` throws a RangeError; an argument of
 * the wrong type throws a TypeError. A throw means `data` is unchanged.
 *
 * Returns the number of packets sealed: `count`, unless OpenSSL itself failed
 * (not expected; then `ok` says which).
 *
 * Packets must not overlap each other, `keys`, `desc` or `ok`. Any Uint8Array
 * view works, including Buffers, subarrays and SharedArrayBuffer-backed views.
 */
export type SealBatch = (
  data: Uint8Array,
  keys: Uint8Array,
  desc: Uint32Array,
  count: number,
  ok?: Uint8Array,
  variant?: AeadVariant,
) => number;

/**
 * Opens `count` packets in place.
 *
 * Same descriptor layout as {@link SealBatch}, but `length` is the ciphertext length
 * including the trailing 16-byte tag (so ≥ 16; offset+length ≤ data.length). The
 * plaintext (length − 16 bytes) replaces the ciphertext at `offset`; the tag bytes
 * are left as they were.
 *
 * `ok[i]` becomes 1 if packet i verified and 0 if not. A packet that fails has its
 * plaintext region zeroed, so unauthenticated plaintext is never exposed; the other
 * packets of the batch are unaffected. Bad packets never throw. Malformed calls
 * throw exactly as for {@link SealBatch} (and `ok` is required here).
 *
 * Returns the number of packets that verified.
 */
export type OpenBatch = (
  data: Uint8Array,
  keys: Uint8Array,
  desc: Uint32Array,
  count: number,
  ok: Uint8Array,
  variant?: AeadVariant,
) => number;

/**
 * How the addon seals and opens (the last argument of both, for tests): `best` (the
 * default) is `direct` where this node exports OpenSSL's ChaCha20 and Poly1305
 * primitives (a node with its bundled OpenSSL), else `evp`, the EVP AEAD. `direct`
 * makes one ChaCha20 call per packet where EVP makes three (native/aead.cc says why
 * that matters), and XORs the keystream in AVX2 lanes where the CPU has them;
 * `directPortable` is `direct` with the plain XOR loop. All give the same bytes. Asking
 * for a `direct` way where it is missing throws a RangeError.
 */
export const AEAD_VARIANT = { best: 0, evp: 1, direct: 2, directPortable: 3 } as const;
export type AeadVariant = (typeof AEAD_VARIANT)[keyof typeof AEAD_VARIANT];
/** Whether the `direct` way is there. */
export const AEAD_DIRECT_AVAILABLE = nativeNumber('AEAD_DIRECT') === 1;

// A mismatch would silently corrupt every batch: fail at load instead.
expectNativeConstants([
  ['AEAD_DESC_STRIDE', DESC_STRIDE],
  ['AEAD_KEY_SIZE', KEY_SIZE],
  ['AEAD_TAG_SIZE', AEAD_TAG_SIZE],
]);

/** See {@link SealBatch}. */
export const sealBatch: SealBatch = nativeFunction<SealBatch>('sealBatch');
/** See {@link OpenBatch}. */
export const openBatch: OpenBatch = nativeFunction<OpenBatch>('openBatch');
