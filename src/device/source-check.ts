// Sticky source addresses the kernel's way. A peer's replies leave from the local
// address its packets come to (the endpoint's local side), but not when the route to
// the peer from that address leaves through another interface than the one its
// packets come in on, or that address cannot send at all (the kernel's WireGuard
// checks this on every send; wireguard-go asks the routing table on every route
// change): then they leave from the routing table's choice, as a new, better route
// with its own `src` says. This asks `ip route get PEER from LOCAL mark FWMARK` over
// rtnetlink for every peer with a local side whenever routes or addresses change, and
// for a peer whose local side changed, and sets the peer table's refused flag, which
// every sender honours. An address removed from the host is forgotten at once.
import { FdWatcher } from '../io/watch.js';
import { closeFd } from '../io/fd.js';
import {
  netlinkOpen, netlinkRecv, netlinkSend, NETLINK_OVERRUN, readNetlinkMessages, writeRouteQuery,
  RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE,
} from '../io/netlink.js';
import type { Logger } from '../log.js';
import type { Engine } from '../protocol/engine.js';
import type { Peer } from '../protocol/peer.js';

/** Look-ups sent in one batch (the next goes when all are answered): their answers fit the socket's buffer many times over. */
const QUERIES_AT_ONCE = 128;
const QUERY_BYTES = 80;

interface Pending {
  readonly peerId: number;
  /** The local side asked about: the answer counts only while the peer still has it. */
  readonly local: string;
  readonly ifindex: number;
}

export interface SourceCheckOptions {
  engine: Engine;
  /** The sockets' fwmark now (routing rules may depend on it). */
  fwmark: () => number;
  log: Logger;
}

export class SourceCheck {
  private readonly events: number;
  private readonly queries: number;
  private readonly eventWatcher: FdWatcher;
  private readonly queryWatcher: FdWatcher;
  private readonly buffer = new Uint8Array(64 * 1024);
  private readonly request = new Uint8Array(QUERIES_AT_ONCE * QUERY_BYTES);
  private readonly pending = new Map<number, Pending>();
  /** Peers to look up, in order; a peer is in it at most once. */
  private readonly waiting = new Set<number>();
  private seq = 0;
  private everyPeerScheduled = false;
  private closed = false;

  /** Throws (with the errno) when the kernel refuses a netlink socket. */
  constructor(private readonly o: SourceCheckOptions) {
    this.events = netlinkOpen(RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
    try {
      this.queries = netlinkOpen(0);
    } catch (err) {
      closeFd(this.events);
      throw err;
    }
    this.eventWatcher = new FdWatcher(this.events, () => this.readEvents());
    this.queryWatcher = new FdWatcher(this.queries, () => this.readAnswers());
    // Neither keeps the process alive: the device's sockets and the UAPI server do.
    this.eventWatcher.unref();
    this.queryWatcher.unref();
    this.eventWatcher.watch(true, false);
    this.queryWatcher.watch(true, false);
  }

  /** The peer's endpoint changed: look at its local side again (a peer without one is never refused). */
  endpointChanged(peer: Peer): void {
    if (this.closed) return;
    if (peer.endpoint?.local === undefined) {
      this.o.engine.peerTable.setSourceRefused(peer.id, false);
      return;
    }
    this.waiting.add(peer.id);
    this.sendQueries();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.eventWatcher.close();
    this.queryWatcher.close();
    closeFd(this.events);
    closeFd(this.queries);
  }

  private readEvents(): void {
    let changed = false;
    for (;;) {
      const n = netlinkRecv(this.events, this.buffer);
      if (n === 0) break;
      if (n === NETLINK_OVERRUN) {
        changed = true; // events were lost: look at everything
        continue;
      }
      const messages = readNetlinkMessages(this.buffer, n, 'events');
      for (const address of messages.removed) this.forget(address);
      changed ||= messages.changed;
    }
    if (changed) this.checkEveryPeer();
  }

  /** `address` left the host: every endpoint that replies from it forgets it (its peer's next packet says where to now). */
  private forget(address: string): void {
    const peers = this.o.engine.forgetLocalAddress(address);
    if (peers > 0) this.o.log.verbose(`Address ${address} was removed: ${peers === 1 ? '1 peer now replies' : `${peers} peers now reply`} from the routing table's choice`);
  }

  /**
   * Routes, addresses or the fwmark (which routing rules may match) changed: every peer
   * with a local side, once the burst of events is read.
   */
  checkEveryPeer(): void {
    if (this.everyPeerScheduled) return;
    this.everyPeerScheduled = true;
    setImmediate(() => {
      this.everyPeerScheduled = false;
      if (this.closed) return;
      for (const peer of this.o.engine.peers) if (peer.endpoint?.local !== undefined) this.waiting.add(peer.id);
      this.sendQueries();
    });
  }

  /** Sends the next batch of look-ups (at most QUERIES_AT_ONCE waiting peers), once the batch before is answered. */
  private sendQueries(): void {
    if (this.closed || this.pending.size > 0 || this.waiting.size === 0) return;
    const engine = this.o.engine;
    let at = 0;
    for (const id of this.waiting) {
      if (this.pending.size === QUERIES_AT_ONCE) break;
      this.waiting.delete(id);
      const endpoint = engine.peerById(id)?.endpoint;
      if (endpoint?.local === undefined) continue;
      this.seq = this.seq === 0x7fff_ffff ? 1 : this.seq + 1;
      at = writeRouteQuery(this.request, at, this.seq, { destination: endpoint.address, source: endpoint.local.address, mark: this.o.fwmark() });
      this.pending.set(this.seq, { peerId: id, local: endpoint.local.address, ifindex: endpoint.local.ifindex });
    }
    if (at === 0) return;
    try {
      netlinkSend(this.queries, this.request.subarray(0, at));
    } catch (err) {
      this.o.log.error(`Source address check: ${(err as Error).message}`);
      this.pending.clear();
    }
  }

  private readAnswers(): void {
    const engine = this.o.engine;
    for (;;) {
      const n = netlinkRecv(this.queries, this.buffer);
      if (n === 0) break;
      if (n === NETLINK_OVERRUN) {
        // Answers were lost: ask again for those still waiting for one.
        for (const { peerId } of this.pending.values()) this.waiting.add(peerId);
        this.pending.clear();
        continue;
      }
      for (const answer of readNetlinkMessages(this.buffer, n, 'answers').answers) {
        const asked = this.pending.get(answer.seq);
        if (asked === undefined) continue;
        this.pending.delete(answer.seq);
        const peer = engine.peerById(asked.peerId);
        if (peer?.endpoint?.local?.address !== asked.local || peer.endpoint.local.ifindex !== asked.ifindex) continue;
        const refused = 'errno' in answer ? answer.errno !== 0 : asked.ifindex !== 0 && answer.oif !== asked.ifindex;
        if (refused !== engine.peerTable.sourceRefused(peer.id)) {
          engine.peerTable.setSourceRefused(peer.id, refused);
          const why = 'errno' in answer ? `it cannot send (errno ${answer.errno})` : 'the route to the peer leaves through another interface';
          this.o.log.verbose(refused
            ? `Peer ${peer.endpoint.address}:${peer.endpoint.port}: replies leave from the routing table's choice, not ${asked.local}: ${why}`
            : `Peer ${peer.endpoint.address}:${peer.endpoint.port}: replies leave from ${asked.local}, where it sends to`);
        }
      }
    }
    this.sendQueries();
  }
}
