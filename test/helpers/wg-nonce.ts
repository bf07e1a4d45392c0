/** WireGuard's transport nonce: 4 zero bytes, then the 64-bit counter little-endian. */
export function wgNonce(counter: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, counter, true);
  return n;
}
