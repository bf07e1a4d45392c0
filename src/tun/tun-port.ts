// The device's TUN side: reads that split super-packets into the batch's slots and
// writes that coalesce a batch into super-packets, when the TUN has a vnet header;
// plain batched reads and writes when it has not. The stages never see a vnet header.
import { constants } from 'node:os';
import { closeFd } from '../io/fd.js';
import { openTunQueues, tunRead, tunReadVnet, tunWrite, TUN_READ_SCRATCH_SIZE } from './tun.js';
import type { Logger } from '../log.js';
import { HEADROOM, TAILROOM, type PacketBatch } from '../pipeline/batch.js';
import type { OffloadCounters } from '../offload/counters.js';
import { buildGroProbe } from './gro-probe.js';
import { COALESCE_TCP, COALESCE_TRUSTED, COALESCE_UDP } from '../offload/coalesce.js';
import { nativeCoalesce } from '../offload/native.js';
import { readVnetHeader, VNET_GSO_NONE, VNET_HDR_LEN } from '../offload/vnet-header.js';
import type { OffloadSettings } from '../offload/settings.js';
import { negotiateTunOffloads, NO_TUN_OFFLOADS, wantsVnetHeader, type OffloadOn, type TunOffloads } from './tun-offloads.js';

const { EIO, EINVAL } = constants.errno;
/** How often a GRO write probe is retried while the link is down (it fails with EIO then). */
const PROBE_RETRY_MS = 100;

/** TUN GRO: not tried until a coalesced write was seen to work on this kernel. */
type GroState = 'probing' | 'on' | 'off';

/** One queue of the TUN: its fd and what was negotiated on it (structured-cloneable, for a worker). */
export interface TunQueue {
  readonly fd: number;
  readonly offloads: TunOffloads;
}

/**
 * Opens `count` queues of the TUN `name` (made if it does not exist), each with the
 * offloads `settings` allow. Always multi-queue: a TUN made without it can never gain
 * a second queue. Close each fd with closeFd; the interface goes with the last one.
 */
export function openTunDevice(name: string, settings: OffloadSettings, count: number): TunQueue[] {
  const vnetHeader = wantsVnetHeader(settings);
  const fds = openTunQueues(name, count, { vnetHeader }).map((q) => q.fd);
  try {
    return fds.map((fd) => ({ fd, offloads: vnetHeader ? negotiateTunOffloads(fd, settings) : NO_TUN_OFFLOADS }));
  } catch (err) {
    for (const fd of fds) closeFd(fd);
    throw err;
  }
}

/** The offloads on for a queue (TUN GRO waits for its write probe). */
export function describeTunOffloads(o: TunOffloads): OffloadOn[] {
  const probe = 'after its write probe';
  const all: [boolean, OffloadOn][] = [
    [o.tso4, { name: 'tun-tso4', detail: '' }], [o.tso6, { name: 'tun-tso6', detail: '' }], [o.uso, { name: 'tun-uso', detail: '' }],
    [o.groTcp, { name: 'tun-gro-tcp', detail: probe }], [o.groUdp, { name: 'tun-gro-udp', detail: probe }],
  ];
  return all.filter(([on]) => on).map(([, offload]) => offload);
}

/** Reads and writes of one TUN queue; the queue's fd stays its opener's to close. */
export class TunPort {
  readonly fd: number;
  readonly offloads: TunOffloads;
  private readonly scratch: Uint8Array;
  private readonly state = new Uint32Array(1);
  private readonly status: Int32Array;
  private gro: GroState;
  private lastProbe = -Infinity;

  constructor(queue: TunQueue, private readonly counters: OffloadCounters, private readonly log: Logger, slots: number) {
    this.fd = queue.fd;
    this.offloads = queue.offloads;
    const vnetHeader = this.offloads.vnetHeader;
    this.scratch = new Uint8Array(vnetHeader ? TUN_READ_SCRATCH_SIZE : 0);
    this.status = new Int32Array(slots);
    this.gro = this.offloads.groTcp || this.offloads.groUdp ? 'probing' : 'off';
  }

  /** A packet of a super-packet is still waiting in the read buffer: read again without waiting for the fd. */
  get pending(): boolean {
    return this.state[0] !== 0;
  }

  /** Fills the batch with MTU-sized packets at slot + HEADROOM; returns how many. Throws when the device is gone. */
  read(batch: PacketBatch): number {
    batch.resetOffsets(HEADROOM);
    const capacity = batch.slotSize - HEADROOM - TAILROOM;
    const n = this.offloads.vnetHeader
      ? tunReadVnet(this.fd, this.scratch, this.state, batch.data, batch.offsets, batch.lengths, batch.slots, capacity, this.counters.tunRead)
      : tunRead(this.fd, batch.data, batch.offsets, batch.lengths, batch.slots, capacity);
    batch.count = n;
    return n;
  }

  /**
   * Writes the batch's packets, coalesced where they may be. Each packet needs
   * VNET_HDR_LEN bytes of room before it and may grow to `capacity` bytes from its
   * offset. Returns how many packets could not be written. Throws when the device is gone.
   */
  write(batch: PacketBatch, capacity: number): number {
    if (!this.offloads.vnetHeader) return this.writeItems(batch, batch.count, false);
    if (this.gro === 'probing') this.probe();
    // Trusted: what is written here was opened by the AEAD from an authenticated peer (or
    // is an ICMP error made here), so its checksums are not summed again before a merge.
    const merge = this.gro === 'on' ? (this.offloads.groTcp ? COALESCE_TCP : 0) | (this.offloads.groUdp ? COALESCE_UDP : 0) : 0;
    const flags = merge | COALESCE_TRUSTED;
    const items = nativeCoalesce(batch.data, batch.offsets, batch.lengths, batch.count, capacity, flags, this.counters.coalesce);
    return this.writeItems(batch, items, true);
  }

  // Bounds: k < items, which tunWrite (called first) checks fits offsets, lengths and status (native batch_args.h).
  private writeItems(batch: PacketBatch, items: number, vnet: boolean): number {
    const status = this.status;
    status.fill(0, 0, items);
    const consumed = tunWrite(this.fd, batch.data, batch.offsets, batch.lengths, items, status);
    let failed = 0;
    for (let k = 0; k < items; k++) {
      if (k < consumed && status[k]! >= 0) continue;
      const packets = vnet ? packetsInItem(batch.data, batch.offsets[k]!, batch.lengths[k]!) : 1;
      failed += packets;
      // A refused super-packet means this kernel cannot take them after all.
      if (packets > 1 && status[k] === -EINVAL && this.gro === 'on') this.groOff('a coalesced write was refused (EINVAL)');
    }
    return failed;
  }

  /**
   * Writes two coalesced TCP packets (TTL 0, loopback addresses: the kernel drops them
   * as martians) to see whether this kernel takes GRO writes. EIO means the link is
   * still down (wg-quick brings it up after start): try again later.
   * Bounds: status has the one entry read.
   */
  private probe(): void {
    const now = performance.now();
    if (now - this.lastProbe < PROBE_RETRY_MS) return;
    this.lastProbe = now;
    const probe = buildGroProbe();
    const status = new Int32Array(1);
    tunWrite(this.fd, probe.data, probe.offsets, probe.lengths, 1, status);
    const err = -status[0]!;
    if (err === 0) {
      this.gro = 'on';
      this.log.verbose('TUN GRO on: the kernel took a coalesced write');
    } else if (err === EINVAL) {
      this.counters.fallback('tun_gro_einval');
      this.groOff('the kernel refused a coalesced write (EINVAL: the 6.1.103/6.6.44 virtio regression)');
    } else if (err !== EIO) {
      this.groOff(`its write probe failed (errno ${err})`);
    }
  }

  private groOff(why: string): void {
    this.gro = 'off';
    this.log.error(`TUN GRO off: ${why}`);
  }
}

/** Packets in one written item (only for failed writes): its gso_size splits the payload after hdr_len. */
function packetsInItem(data: Uint8Array, offset: number, length: number): number {
  const h = readVnetHeader(data, offset);
  if (h.gsoType === VNET_GSO_NONE || h.gsoSize === 0) return 1;
  return Math.max(1, Math.ceil((length - VNET_HDR_LEN - h.hdrLen) / h.gsoSize));
}
