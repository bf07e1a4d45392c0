// Sizes every WireGuard primitive shares, defined once for crypto/ and everything above it.

/** Bytes in every key: X25519 private and public keys, ChaCha20-Poly1305 keys, preshared keys. */
export const KEY_SIZE = 32;
/** Bytes in a Poly1305 tag. */
export const AEAD_TAG_SIZE = 16;
