// Shared by the AEAD tests: the WireGuard nonce, hex literals, and a byte comparison
// that names the first difference instead of printing a 64 KiB diff.
import assert from 'node:assert/strict';

/** WireGuard's transport nonce: 4 zero bytes, then the 64-bit counter little-endian. */
export function wgNonce(counter: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, counter, true);
  return n;
}

/** Bytes from hex text; white space and colons are ignored. */
export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[\s:]/g, ''), 'hex'));

export function equalBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(e)) return;
  let i = 0;
  while (i < a.length && a[i] === e[i]) i++;
  assert.fail(`${what}: bytes differ at ${i} (lengths ${a.length}/${e.length})`);
}
