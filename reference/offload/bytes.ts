// Header field access for the TypeScript twins: IP, TCP and UDP fields are big-endian,
// the virtio_net_hdr's are little-endian (x86).

export const u16be = (buf: Uint8Array, at: number): number => (buf[at]! << 8) | buf[at + 1]!;

export const u32be = (buf: Uint8Array, at: number): number =>
  ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;

export function setU16be(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 8) & 0xff;
  buf[at + 1] = value & 0xff;
}

export function setU32be(buf: Uint8Array, at: number, value: number): void {
  buf[at] = (value >>> 24) & 0xff;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}

export function setU16le(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value & 0xff;
  buf[at + 1] = (value >>> 8) & 0xff;
}
