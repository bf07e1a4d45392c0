// Writing the virtio_net_hdr (README.md, "virtio_net_hdr"), for the coalesce twin: the device
// reads headers (src/offload/vnet-header.ts) and leaves writing them to the native code.
import { VNET_HDR_LEN, type VnetHeader } from '../../src/offload/vnet-header.js';
import { setU16le } from './bytes.js';

/** Writes `h` at buf[offset, offset+10); every field is truncated to its width. */
export function writeVnetHeader(buf: Uint8Array, offset: number, h: VnetHeader): void {
  if (offset < 0 || offset + VNET_HDR_LEN > buf.length) throw new RangeError('vnet header out of range');
  buf[offset] = h.flags & 0xff;
  buf[offset + 1] = h.gsoType & 0xff;
  setU16le(buf, offset + 2, h.hdrLen);
  setU16le(buf, offset + 4, h.gsoSize);
  setU16le(buf, offset + 6, h.csumStart);
  setU16le(buf, offset + 8, h.csumOffset);
}

/** Writes an all-zero header (no offload) at buf[offset, offset+10). */
export function clearVnetHeader(buf: Uint8Array, offset: number): void {
  if (offset < 0 || offset + VNET_HDR_LEN > buf.length) throw new RangeError('vnet header out of range');
  buf.fill(0, offset, offset + VNET_HDR_LEN);
}
