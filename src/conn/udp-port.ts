// The device's UDP side: one socket with UDP GSO on send (a run of same-size
// datagrams to one endpoint in one sendmmsg entry) and UDP GRO on receive (super-
// datagrams cut back into the batch's slots), where the kernel has them, and the
// fallbacks the kernel's refusals call for: without GSO, and without the sticky
// source address when this host no longer has it. The native calls report; this
// decides.
import { constants } from 'node:os';
import { ADDR_FAMILY, ADDR_STRIDE, clearLocal, hasLocal, sameLocalAddress } from '../pipeline/address.js';
import { openUdpGroup, UDP_GSO_IPV4, UDP_GSO_IPV6, udpGroBuffers, udpGroStashed, udpRecv, udpSend, type UdpGroBuffers, type UdpRecvOptions, type UdpSocket } from './udp.js';
import { FdWatcher } from '../io/watch.js';
import { UDP_RECV_SOJOURN_NEWEST_NS, UDP_RECV_SOJOURN_OLDEST_NS } from '../offload/udp-stats.js';
import type { Logger } from '../log.js';
import type { PacketBatch } from '../pipeline/batch.js';
import type { OffloadCounters } from '../offload/counters.js';
import type { OffloadSettings } from '../offload/settings.js';
import type { OffloadOn } from '../tun/tun-offloads.js';

const { EIO, EMSGSIZE, EINVAL, ENETUNREACH, ENODEV, EADDRNOTAVAIL } = constants.errno;

/**
 * What a send from a local address this host no longer has fails with: EINVAL (IPv6,
 * and IPv4 on older kernels), ENETUNREACH (IPv4 on newer ones), ENODEV (an IPv6
 * link-local address whose interface is gone).
 */
function sourceGoneError(err: number): boolean {
  return err === EINVAL || err === ENETUNREACH || err === ENODEV || err === EADDRNOTAVAIL;
}

/**
 * Told that sending from the local side of record `i` of `addrs` failed and sending
 * without it worked: the control plane forgets that address for the endpoints using
 * it. Called at most once per local address and send call, never on the normal path.
 */
export type SourceGone = (addrs: Uint8Array, i: number) => void;
/** Super-datagrams one GRO receive reads at most (each up to 64 KiB; what does not fit the batch waits). */
const GRO_MESSAGES = 8;

/**
 * Opens the listen port's sockets: `count` of them in an SO_REUSEPORT group, after
 * checking that the port is free without it (so nothing else silently shares it), or
 * one plain socket. Close each fd with closeFd.
 */
export function openUdpSockets(port: number, fwmark: number, settings: OffloadSettings, count: number): UdpSocket[] {
  return openUdpGroup({ port, family: 'dual', gro: settings['udp-gro'], count, ...(fwmark === 0 ? {} : { fwmark }) });
}

export interface UdpPortOptions {
  /** The socket; it stays its opener's to close. */
  socket: UdpSocket;
  settings: OffloadSettings;
  counters: OffloadCounters;
  log: Logger;
  slots: number;
  /** Called when datagrams wait; without it the port only sends. */
  onReadable?: () => void;
  /** Called when a sticky source address turned out gone (the datagrams are resent without it either way). */
  onSourceGone?: SourceGone;
}

interface Resend {
  offsets: Uint32Array;
  lengths: Uint32Array;
  addrs: Uint8Array;
  status: Int32Array;
}

function resendArrays(slots: number): Resend {
  return { offsets: new Uint32Array(slots), lengths: new Uint32Array(slots), addrs: new Uint8Array(slots * ADDR_STRIDE), status: new Int32Array(slots) };
}

/**
 * Copies entry i (offset, length, record) to entry k of `to`.
 * Bounds: i < the sent count, which udpSend checked fits offsets, lengths and addrs (native batch_args.h);
 * k < that count ≤ status.length = slots, the resend arrays' length (constructor).
 */
function copyEntry(offsets: Uint32Array, lengths: Uint32Array, addrs: Uint8Array, i: number, to: Resend, k: number): void {
  to.offsets[k] = offsets[i]!;
  to.lengths[k] = lengths[i]!;
  for (let b = 0; b < ADDR_STRIDE; b++) to.addrs[k * ADDR_STRIDE + b] = addrs[i * ADDR_STRIDE + b]!;
}

export class UdpPort {
  readonly fd: number;
  readonly port: number;
  private readonly watcher: FdWatcher | undefined;
  private readonly counters: OffloadCounters;
  private readonly log: Logger;
  /** Families GSO may be used for (UDP_GSO_IPV4 | UDP_GSO_IPV6); cleared per family on EIO. */
  private gso: number;
  private readonly gro: UdpGroBuffers | undefined;
  private readonly status: Int32Array;
  /** udpRecv's options, made once: nothing is allocated per receive. */
  private readonly recvOptions: UdpRecvOptions;
  /** Datagrams to send again without GSO: their indices in the batch, and a batch view of them. */
  private readonly resend: Resend;
  private readonly notes: string[] = [];
  private readonly onSourceGone: SourceGone | undefined;
  /** Datagrams to send again without their local address (`original`: their records before), and how many. */
  private readonly withoutSource: Resend & { original: Uint8Array };
  private unsourced = 0;

  constructor(options: UdpPortOptions) {
    const { settings, socket } = options;
    this.fd = socket.fd;
    this.port = socket.port;
    this.counters = options.counters;
    this.log = options.log;
    this.onSourceGone = options.onSourceGone;
    const gsoOk = settings['udp-gso'] && socket.offloads.gso;
    this.gso = gsoOk ? UDP_GSO_IPV4 | UDP_GSO_IPV6 : 0;
    if (!settings['udp-gso']) this.notes.push('udp-gso off: switched off');
    else if (!socket.offloads.gso) this.notes.push('udp-gso off: the kernel has no UDP_SEGMENT');
    if (!settings['udp-gro']) this.notes.push('udp-gro off: switched off');
    else if (!socket.offloads.gro) this.notes.push('udp-gro off: the kernel has no UDP_GRO');
    this.gro = socket.offloads.gro ? udpGroBuffers(GRO_MESSAGES) : undefined;
    this.recvOptions = { ...(this.gro === undefined ? {} : { gro: this.gro }), stats: this.counters.udpRecv };
    this.status = new Int32Array(options.slots);
    this.resend = resendArrays(options.slots);
    this.withoutSource = { ...resendArrays(options.slots), original: new Uint8Array(options.slots * ADDR_STRIDE) };
    if (options.onReadable !== undefined) {
      this.watcher = new FdWatcher(this.fd, options.onReadable);
      this.watcher.watch(true, false);
    }
  }

  /** What is on, and why anything is off (for the start-up log line). */
  describe(): { on: OffloadOn[]; notes: string[] } {
    const on: OffloadOn[] = [];
    if (this.gso !== 0) on.push({ name: 'udp-gso', detail: '' });
    if (this.gro !== undefined) on.push({ name: 'udp-gro', detail: '' });
    return { on, notes: this.notes };
  }

  /**
   * How long the newest datagram the last receive took from the kernel had waited in
   * the socket's queue, in ms; -1 when it took none with a timestamp (all came from
   * the GRO stash, or the kernel gives no SO_TIMESTAMPNS).
   */
  get sojournNewestMs(): number {
    return this.sojournMs(UDP_RECV_SOJOURN_NEWEST_NS);
  }

  /** Likewise for the oldest datagram. */
  get sojournOldestMs(): number {
    return this.sojournMs(UDP_RECV_SOJOURN_OLDEST_NS);
  }

  /** Bounds: i is a UDP_RECV_STAT_NAMES position, inside udpRecv (OffloadCounters' layout). */
  private sojournMs(i: number): number {
    const ns = this.counters.udpRecv[i]!;
    return ns < 0 ? -1 : ns / 1e6;
  }

  /** Datagrams of a super-datagram are still waiting in the receive buffer: receive again without waiting. */
  get pending(): boolean {
    return this.gro !== undefined && udpGroStashed(this.gro);
  }

  /** Fills the batch with received datagrams, one per slot; returns how many. */
  receive(batch: PacketBatch): number {
    batch.resetOffsets(0);
    const n = udpRecv(this.fd, batch.data, batch.offsets, batch.lengths, batch.addrs, batch.slots, batch.slotSize, this.recvOptions);
    this.counters.noteReceive();
    batch.count = n;
    return n;
  }

  /**
   * Sends the batch's datagrams (each peer's consecutive, so GSO can carry a run in one
   * message); returns how many were not sent.
   * Bounds: i < consumed ≤ count and k < resent ≤ retry: udpSend checks each count against the arrays it is given
   * (status, slots long, included), and batch.addrs holds batch.slots records (PacketBatch's constructor).
   */
  send(batch: PacketBatch): number {
    const { count } = batch;
    const status = this.status;
    status.fill(0, 0, count);
    const gso = this.gso;
    const consumed = udpSend(this.fd, batch.data, batch.offsets, batch.lengths, batch.addrs, count, status, gso, this.counters.udpSend);
    // Not consumed means the socket buffer is full: dropped, as a full queue would.
    let failed = count - consumed;
    const again = this.resend;
    let retry = 0;
    this.unsourced = 0;
    for (let i = 0; i < consumed; i++) {
      const err = -status[i]!;
      if (err === 0) continue;
      if (gso !== 0 && (err === EIO || err === EMSGSIZE || err === EINVAL)) {
        // A refused GSO message (its EINVAL may also be a gone source: the plain resend tells).
        if (err === EIO) this.gsoOff(batch.addrs[i * ADDR_STRIDE + ADDR_FAMILY] === 6 ? UDP_GSO_IPV6 : UDP_GSO_IPV4);
        copyEntry(batch.offsets, batch.lengths, batch.addrs, i, again, retry++);
      } else if (!this.unsource(batch.offsets, batch.lengths, batch.addrs, i, err)) {
        failed++;
      }
    }
    if (retry > 0) {
      // The GSO message was refused: send its datagrams one by one, so none is lost.
      this.counters.fallback('udp_gso_resent', retry);
      again.status.fill(0, 0, retry);
      const resent = udpSend(this.fd, batch.data, again.offsets, again.lengths, again.addrs, retry, again.status);
      failed += retry - resent;
      for (let k = 0; k < resent; k++) {
        const err = -again.status[k]!;
        if (err !== 0 && !this.unsource(again.offsets, again.lengths, again.addrs, k, err)) failed++;
      }
    }
    if (this.unsourced > 0) failed += this.sendUnsourced(batch);
    return failed;
  }

  /**
   * Entry i failed with `err`: if its local address may be the cause, it is queued to
   * go again without it (true). Its original record is kept, to report the address.
   * Bounds: k < the sent count ≤ slots (udpSend's check on status), the withoutSource arrays' length.
   */
  private unsource(offsets: Uint32Array, lengths: Uint32Array, addrs: Uint8Array, i: number, err: number): boolean {
    if (!sourceGoneError(err) || !hasLocal(addrs, i)) return false;
    const u = this.withoutSource;
    const k = this.unsourced++;
    copyEntry(offsets, lengths, addrs, i, u, k);
    for (let b = 0; b < ADDR_STRIDE; b++) u.original[k * ADDR_STRIDE + b] = u.addrs[k * ADDR_STRIDE + b]!;
    clearLocal(u.addrs, k);
    return true;
  }

  /**
   * Sends the datagrams whose source address failed from the routing table's choice;
   * returns how many failed again. A source is reported gone (once per address and
   * call) only when sending without it worked: a datagram with no route at all
   * (ENETUNREACH either way) says nothing about the address.
   * Bounds: k < sent ≤ n = unsourced ≤ slots, status's length.
   */
  private sendUnsourced(batch: PacketBatch): number {
    const u = this.withoutSource;
    const n = this.unsourced;
    u.status.fill(0, 0, n);
    const sent = udpSend(this.fd, batch.data, u.offsets, u.lengths, u.addrs, n, u.status);
    let failed = n - sent;
    let cleared = 0;
    let reported = -1;
    for (let k = 0; k < sent; k++) {
      if (u.status[k]! < 0) {
        failed++;
        continue;
      }
      cleared++;
      if (reported >= 0 && sameLocalAddress(u.original, reported, u.original, k)) continue;
      reported = k;
      this.onSourceGone?.(u.original, k);
    }
    if (cleared > 0) this.counters.fallback('sticky_source_cleared', cleared);
    return failed;
  }
  /** Stops (true) or resumes (false) watching for datagrams, while the reader has no room for them. */
  pause(pause: boolean): void {
    this.watcher?.watch(!pause, false);
  }

  /** Stops watching; the socket stays open. */
  close(): void {
    this.watcher?.close();
  }

  private gsoOff(family: number): void {
    if ((this.gso & family) === 0) return;
    this.gso &= ~family;
    this.counters.fallback('udp_gso_eio');
    this.log.error(`UDP GSO off for IPv${family === UDP_GSO_IPV4 ? 4 : 6}: the egress device has no TX checksum offload (EIO)`);
  }
}
