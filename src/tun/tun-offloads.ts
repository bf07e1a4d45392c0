// What the TUN device does for us, negotiated once at start-up: the offload bits the
// kernel takes (TUNSETOFFLOAD), falling back a group of bits at a time, and what each
// switch leaves on. The native calls only report errno values; the policy is here.
import { getSystemErrorName } from 'node:util';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6, tunSetOffload, tunSetVnetHeaderSize } from './tun.js';
import { VNET_HDR_LEN } from '../offload/vnet-header.js';
import type { OffloadSettings } from '../offload/settings.js';

/** An offload that is on, for the start-up log line and the metrics: its name, and a word on it ('' when none). */
export interface OffloadOn {
  readonly name: string;
  readonly detail: string;
}

export interface TunOffloads {
  /** Reads and writes carry a virtio_net_hdr (IFF_VNET_HDR). */
  readonly vnetHeader: boolean;
  /** The kernel may hand us TCP super-packets (TSO4 / TSO6). */
  readonly tso4: boolean;
  readonly tso6: boolean;
  /** The kernel may hand us UDP super-packets (USO4 + USO6, Linux 6.2+). */
  readonly uso: boolean;
  /** We may write coalesced TCP / UDP super-packets (before the write probe). */
  readonly groTcp: boolean;
  readonly groUdp: boolean;
  /** Why each thing that is off is off, for the start-up log line. */
  readonly notes: readonly string[];
}

/** Whether the TUN should be opened with IFF_VNET_HDR: any TUN offload is allowed. */
export function wantsVnetHeader(settings: OffloadSettings): boolean {
  return settings['tun-tso'] || settings['tun-uso'] || settings['tun-gro'];
}

/**
 * Sets the header size and the offload bits on a TUN opened with IFF_VNET_HDR. The
 * kernel takes TSO only together with CSUM and USO4 only together with USO6, so the
 * bits are tried in those groups, each kept only if the kernel accepts it.
 */
export function negotiateTunOffloads(fd: number, settings: OffloadSettings): TunOffloads {
  const notes: string[] = [];
  tunSetVnetHeaderSize(fd, VNET_HDR_LEN);
  const groups: { bits: number; name: string; wanted: boolean }[] = [
    { bits: TUN_F_CSUM, name: 'csum', wanted: settings['tun-tso'] || settings['tun-uso'] },
    { bits: TUN_F_TSO4, name: 'tso4', wanted: settings['tun-tso'] },
    { bits: TUN_F_TSO6, name: 'tso6', wanted: settings['tun-tso'] },
    { bits: TUN_F_USO4 | TUN_F_USO6, name: 'uso', wanted: settings['tun-uso'] },
  ];
  let accepted = 0;
  for (const group of groups) {
    if (!group.wanted) continue;
    if (group.bits !== TUN_F_CSUM && (accepted & TUN_F_CSUM) === 0) {
      notes.push(`tun-${group.name} off: needs checksum offload, which the kernel refused`);
      continue;
    }
    const err = tunSetOffload(fd, accepted | group.bits);
    if (err === 0) accepted |= group.bits;
    else notes.push(`tun-${group.name} off: the kernel refused it (${getSystemErrorName(-err)})`);
  }
  const uso = (accepted & TUN_F_USO4) !== 0;
  // Writing UDP super-packets needs a kernel that knows UDP_L4 segmentation, i.e. one
  // that takes the USO bits; ask it, and put the accepted bits back.
  let kernelUso = uso;
  if (!uso && settings['tun-gro'] && (accepted & TUN_F_CSUM) !== 0) {
    kernelUso = tunSetOffload(fd, accepted | TUN_F_USO4 | TUN_F_USO6) === 0;
  }
  if (tunSetOffload(fd, accepted) !== 0) notes.push('could not set the TUN offload bits back');
  if (!settings['tun-tso']) notes.push('tun-tso off: switched off');
  if (!settings['tun-uso']) notes.push('tun-uso off: switched off');
  if (!settings['tun-gro']) notes.push('tun-gro off: switched off');
  else if (!kernelUso) notes.push('tun-gro for UDP off: the kernel has no USO (Linux 6.2+)');
  return {
    vnetHeader: true,
    tso4: (accepted & TUN_F_TSO4) !== 0,
    tso6: (accepted & TUN_F_TSO6) !== 0,
    uso,
    groTcp: settings['tun-gro'],
    groUdp: settings['tun-gro'] && kernelUso,
    notes,
  };
}

/** The TUN without a vnet header: no offload at all. */
export const NO_TUN_OFFLOADS: TunOffloads = Object.freeze({
  vnetHeader: false, tso4: false, tso6: false, uso: false, groTcp: false, groUdp: false,
  notes: Object.freeze(['tun-tso, tun-uso, tun-gro off: switched off']),
});
