// The Prometheus metrics of one interface, on prom-client. Nothing here runs on the
// data path: the threads count into shared memory (DropCounters, OffloadCounters,
// QueueStats) and every metric is read from one DeviceMetrics snapshot taken when
// the scrape arrives. Names follow Prometheus conventions (README, "Metrics").
import { collectDefaultMetrics, Registry } from 'prom-client';
import { encodeKey } from '../crypto/keys.js';
import { DROP_DIRECTIONS, type DropDirection } from '../protocol/drop-reasons.js';
import { HANDSHAKE_DURATION_BOUNDS, type HandshakeStats } from '../protocol/handshake-stats.js';
import { HISTOGRAM_BOUNDS, type HistogramValue } from '../offload/histogram.js';
import { SPLIT_DROP_NAMES } from '../offload/split.js';

/** What a scrape reads: the device's counters at one moment (Device.metrics()). */
export interface DeviceMetrics {
  readonly peers: readonly {
    readonly publicKey: Uint8Array;
    readonly rxBytes: number;
    readonly txBytes: number;
    /** Transport messages received (authenticated, keepalives included) and sent. */
    readonly rxPackets: number;
    readonly txPackets: number;
    /** Wall-clock ms of the last completed handshake; 0 for none. */
    readonly lastHandshakeWallMs: number;
    readonly keypairs: number;
  }[];
  /** Bytes and packets of peers removed since start, so the device totals never go back. */
  readonly removedRxBytes: number;
  readonly removedTxBytes: number;
  readonly removedRxPackets: number;
  readonly removedTxPackets: number;
  /** Every drop by reason, as `tundra stats` shows them. */
  readonly drops: Readonly<Record<string, number>>;
  /** The offload counters summed over every thread. */
  readonly offload: Readonly<Record<string, number | Readonly<Record<string, number>>>>;
  readonly histograms: Readonly<Record<string, HistogramValue>>;
  /** Per queue (Device.queueSnapshot()). */
  readonly queues: readonly Readonly<Record<string, number>>[];
  readonly pool: Readonly<Record<string, number>> | undefined;
  readonly handshakes: HandshakeStats;
  /** Each offload tundra knows, and whether it is on. */
  readonly offloads: Readonly<Record<string, boolean>>;
  /** SO_RCVBUF / SO_SNDBUF of the listen socket, as the kernel granted them. */
  readonly socketBuffers: { readonly receive: number; readonly send: number };
  /** The kernel's tx_dropped of the TUN interface (packets it could not queue for tundra to read), if readable. */
  readonly tunTxDropped: number | undefined;
}

export interface MetricsOptions {
  /** Series per peer (label `peer`); off on routers with many peers. Default true. */
  perPeer?: boolean;
}

type Labels = Record<string, string | number>;
interface Sample {
  value: number;
  labels?: Labels;
  metricName?: string;
}

/** Offload drops (from the TUN read) are outbound; the socket's truncated control messages inbound. */
function directionOf(reason: string): DropDirection {
  const known = DROP_DIRECTIONS[reason];
  if (known !== undefined) return known;
  if ((SPLIT_DROP_NAMES as readonly string[]).includes(reason)) return 'outbound';
  if (reason === 'udp_control_truncated') return 'inbound';
  return 'unknown';
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/**
 * A registry with tundra's metrics and prom-client's default process metrics.
 * `snapshot` is called once per scrape (see MetricsRegistry.metrics()).
 */
export class MetricsRegistry {
  readonly registry = new Registry();
  private current: DeviceMetrics | undefined;

  constructor(private readonly snapshot: () => DeviceMetrics, options: MetricsOptions = {}) {
    const perPeer = options.perPeer ?? true;
    collectDefaultMetrics({ register: this.registry });
    const m = (): DeviceMetrics => this.current ?? this.snapshot();
    const counter = (name: string, help: string, read: () => Sample[]): void => this.add(name, help, 'counter', read);
    const gauge = (name: string, help: string, read: () => Sample[]): void => this.add(name, help, 'gauge', read);
    const offload = (name: string): number => {
      const v = m().offload[name];
      return typeof v === 'number' ? v : 0;
    };
    const perQueue = (name: string): Sample[] => m().queues.map((q, i) => ({ value: q[name] ?? 0, labels: { queue: i } }));

    // Bytes and packets.
    counter('tundra_received_bytes_total', 'Bytes received from all peers (as wg show transfer counts them).',
      () => [{ value: m().removedRxBytes + sum(m().peers.map((p) => p.rxBytes)) }]);
    counter('tundra_sent_bytes_total', 'Bytes sent to all peers (as wg show transfer counts them).',
      () => [{ value: m().removedTxBytes + sum(m().peers.map((p) => p.txBytes)) }]);
    counter('tundra_received_packets_total', 'Transport messages received from all peers (authenticated; keepalives included).',
      () => [{ value: m().removedRxPackets + sum(m().peers.map((p) => p.rxPackets)) }]);
    counter('tundra_sent_packets_total', 'Transport messages sent to all peers (keepalives included).',
      () => [{ value: m().removedTxPackets + sum(m().peers.map((p) => p.txPackets)) }]);
    if (perPeer) {
      const peerLabel = (p: DeviceMetrics['peers'][number]): Labels => ({ peer: encodeKey(p.publicKey) });
      counter('tundra_peer_received_bytes_total', 'Bytes received from the peer (wg show transfer, received).',
        () => m().peers.map((p) => ({ value: p.rxBytes, labels: peerLabel(p) })));
      counter('tundra_peer_sent_bytes_total', 'Bytes sent to the peer (wg show transfer, sent).',
        () => m().peers.map((p) => ({ value: p.txBytes, labels: peerLabel(p) })));
      counter('tundra_peer_received_packets_total', 'Transport messages received from the peer (authenticated; keepalives included).',
        () => m().peers.map((p) => ({ value: p.rxPackets, labels: peerLabel(p) })));
      counter('tundra_peer_sent_packets_total', 'Transport messages sent to the peer (keepalives included).',
        () => m().peers.map((p) => ({ value: p.txPackets, labels: peerLabel(p) })));
      gauge('tundra_peer_last_handshake_seconds', 'Seconds since the peer\'s last completed handshake (absent before the first).',
        () => m().peers.filter((p) => p.lastHandshakeWallMs > 0).map((p) => ({ value: (Date.now() - p.lastHandshakeWallMs) / 1000, labels: peerLabel(p) })));
      gauge('tundra_peer_keypairs', 'Keypairs the peer has now (current, previous, next).',
        () => m().peers.map((p) => ({ value: p.keypairs, labels: peerLabel(p) })));
    }
    gauge('tundra_peers', 'Peers configured.', () => [{ value: m().peers.length }]);
    counter('tundra_tun_read_packets_total', 'Packets read from the TUN (outbound, after splitting super-packets), per queue.', () => perQueue('tun_read_packets'));
    counter('tundra_udp_sent_datagrams_total', 'Transport datagrams sent by the data path, per queue.', () => perQueue('udp_sent_datagrams'));
    counter('tundra_udp_received_datagrams_total', 'Datagrams received by the data path (inbound, after splitting GRO), per queue.', () => perQueue('udp_received_datagrams'));
    counter('tundra_tun_written_packets_total', 'Packets written to the TUN (inbound, before coalescing), per queue.', () => perQueue('tun_written_packets'));
    counter('tundra_icmp_unreachable_sent_total', 'ICMP/ICMPv6 destination-unreachable errors written to the TUN for packets no peer could take (no allowed IPs cover them, or the peer has no endpoint), per queue.',
      () => perQueue('icmp_unreachable_sent'));
    counter('tundra_icmp_unreachable_rate_limited_total', 'Such errors the rate limit held back (1000 a second, bursts of 50, per queue), per queue.',
      () => perQueue('icmp_unreachable_rate_limited'));

    // Drops.
    counter('tundra_dropped_packets_total', 'Packets dropped, by direction (inbound: from peers; outbound: to peers; unknown) and reason.',
      () => Object.entries(m().drops).map(([reason, value]) => ({ value, labels: { direction: directionOf(reason), reason } })));
    counter('tundra_aqm_ce_marked_total', 'Datagrams the AQM marked CE for a standing socket queue (the ones it dropped are reason="queue_delay"), per queue.',
      () => perQueue('aqm_ce_marked'));
    counter('tundra_udp_receive_sojourn_batches_total', 'Received batches whose wait in the socket\'s queue is known (SO_TIMESTAMPNS), per queue.',
      () => perQueue('socket_sojourn_batches'));
    counter('tundra_udp_receive_sojourn_seconds_total', 'The wait of each such batch\'s oldest datagram in the socket\'s queue, summed (divide by the batches for the mean), per queue.',
      () => perQueue('socket_sojourn_seconds_sum'));
    counter('tundra_udp_receive_queue_overflows_total', 'Datagrams the kernel dropped for a full socket receive queue (SO_RXQ_OVFL).',
      () => [{ value: offload('udp_rxq_overflows') }]);
    gauge('tundra_tun_tx_dropped_packets', 'The kernel\'s tx_dropped of the TUN interface: packets it dropped before tundra read them.',
      () => (m().tunTxDropped === undefined ? [] : [{ value: m().tunTxDropped! }]));
    gauge('tundra_udp_socket_buffer_bytes', 'Socket buffer sizes the kernel granted the listen socket (SO_RCVBUF / SO_SNDBUF, as getsockopt reports them).',
      () => [{ value: m().socketBuffers.receive, labels: { buffer: 'receive' } }, { value: m().socketBuffers.send, labels: { buffer: 'send' } }]);

    // Offloads.
    gauge('tundra_offload_enabled', '1 when the offload is on, 0 when off (the start-up log line says why).',
      () => Object.entries(m().offloads).map(([name, on]) => ({ value: on ? 1 : 0, labels: { offload: name } })));
    counter('tundra_tun_reads_total', 'read() calls on the TUN that returned a packet or super-packet.', () => [{ value: offload('tun_packets_read') }]);
    counter('tundra_tun_super_packets_read_total', 'TSO/USO super-packets read from the TUN.', () => [{ value: offload('tun_super_packets') }]);
    counter('tundra_tun_coalesced_writes_total', 'GRO super-packets written to the TUN (more than one packet each).', () => [{ value: offload('coalesced_items') }]);
    counter('tundra_udp_gso_sends_total', 'UDP GSO messages sent (more than one datagram each).', () => [{ value: offload('gso_sends') }]);
    counter('tundra_udp_gso_datagrams_total', 'Datagrams inside UDP GSO messages.', () => [{ value: offload('gso_datagrams') }]);
    counter('tundra_udp_gro_receives_total', 'UDP GRO messages received (more than one datagram each).', () => [{ value: offload('gro_receives') }]);
    counter('tundra_udp_gro_datagrams_total', 'Datagrams inside UDP GRO messages.', () => [{ value: offload('gro_datagrams') }]);
    counter('tundra_offload_fallbacks_total', 'Times an offload was turned off or a batch was sent another way, by reason.',
      () => Object.entries((m().offload.fallbacks ?? {}) as Record<string, number>).map(([reason, value]) => ({ value, labels: { reason } })));
    this.histogram('tundra_tun_read_segments', 'Packets per TUN read: 1 for a plain packet, the segment count for a super-packet.',
      () => m().histograms.tun_read_segments);
    this.histogram('tundra_tun_write_segments', 'Packets per TUN write: 1 for a plain packet, the packets merged into a GRO super-packet.',
      () => m().histograms.tun_write_segments);
    this.histogram('tundra_udp_send_segments', 'Datagrams per UDP message sent: 1 for a plain datagram, the segments of a GSO message.',
      () => m().histograms.udp_send_segments);
    this.histogram('tundra_udp_receive_segments', 'Datagrams per UDP message received: 1 for a plain datagram, the segments of a GRO message.',
      () => m().histograms.udp_recv_segments);

    // Handshakes.
    const hs = (): HandshakeStats => m().handshakes;
    counter('tundra_handshake_initiations_sent_total', 'Handshake initiations sent (retries included).', () => [{ value: hs().initiationsSent }]);
    counter('tundra_handshake_initiations_received_total', 'Valid handshake initiations received.', () => [{ value: hs().initiationsReceived }]);
    counter('tundra_handshake_responses_sent_total', 'Handshake responses sent.', () => [{ value: hs().responsesSent }]);
    counter('tundra_handshake_responses_received_total', 'Valid handshake responses received (handshakes completed as initiator).', () => [{ value: hs().responsesReceived }]);
    counter('tundra_handshake_failures_total', 'Handshake messages refused, by reason, and attempts given up (reason="timeout").',
      () => [...hs().failures].map(([reason, value]) => ({ value, labels: { reason } })));
    counter('tundra_cookie_replies_sent_total', 'Cookie replies sent (under load, to handshakes without a valid MAC2).', () => [{ value: hs().cookieRepliesSent }]);
    counter('tundra_cookie_replies_received_total', 'Valid cookie replies received.', () => [{ value: hs().cookieRepliesReceived }]);
    this.add('tundra_handshake_duration_seconds', 'From an attempt\'s first initiation to its response.', 'histogram', () => {
      const h = hs();
      return histogramSamples('tundra_handshake_duration_seconds', HANDSHAKE_DURATION_BOUNDS, h.durationBuckets, h.durationSum);
    });

    // Threads.
    gauge('tundra_queue_packets_in_hand', 'Packets a queue has read and not yet sent or written.', () => perQueue('in_hand'));
    const ifDefined = (name: string): Sample[] => perQueue(name).filter((_, i) => m().queues[i]?.[name] !== undefined);
    gauge('tundra_queue_flights_out', 'Batches a queue has in the crypto pool now.', () => ifDefined('flights_out'));
    gauge('tundra_control_ring_records', 'Records waiting in a queue worker\'s control channel, by ring (tallies, messages, handshakes).',
      () => m().queues.flatMap((q, i) => (q.ring_tallies === undefined ? [] : [
        { value: q.ring_tallies, labels: { queue: i, ring: 'tallies' } }, { value: q.ring_messages ?? 0, labels: { queue: i, ring: 'messages' } },
        { value: q.ring_handshakes ?? 0, labels: { queue: i, ring: 'handshakes' } },
      ])));
    counter('tundra_worker_restarts_total', 'Times a queue worker was started again after it died, per queue.', () => ifDefined('restarts'));
    counter('tundra_crypto_worker_restarts_total', 'Times a crypto pool thread was started again after it died.',
      () => (m().pool === undefined ? [] : [{ value: m().pool!.restarts ?? 0 }]));
    gauge('tundra_crypto_workers', 'Crypto pool threads (0: none).', () => [{ value: m().pool?.workers ?? 0 }]);
  }

  /** The text exposition, every metric read from one snapshot. */
  async metrics(): Promise<string> {
    this.current = this.snapshot();
    try {
      return await this.registry.metrics();
    } finally {
      this.current = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private histogram(name: string, help: string, read: () => HistogramValue | undefined): void {
    this.add(name, help, 'histogram', () => {
      const h = read();
      return h === undefined ? [] : histogramSamples(name, HISTOGRAM_BOUNDS, h.buckets, h.sum);
    });
  }

  /** A metric whose samples are computed at scrape time (prom-client takes any object with get()). */
  private add(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', read: () => Sample[]): void {
    const metric = {
      name, help, type, aggregator: 'sum',
      get: async () => ({ name, help, type, aggregator: 'sum', values: read() }),
      reset: () => {},
    };
    this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  }
}

/**
 * Cumulative `_bucket`, `_sum` and `_count` samples from per-bucket counts (the last bucket is +Inf).
 * Bounds: b < buckets.length, the loop's condition.
 */
function histogramSamples(name: string, bounds: readonly number[], buckets: ArrayLike<number>, total: number): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  for (let b = 0; b < buckets.length; b++) {
    cumulative += buckets[b]!;
    out.push({ metricName: `${name}_bucket`, labels: { le: bounds[b] ?? '+Inf' }, value: cumulative });
  }
  out.push({ metricName: `${name}_sum`, value: total }, { metricName: `${name}_count`, value: cumulative });
  return out;
}
