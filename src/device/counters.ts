// What the device counts, read when asked (`tundra stats`, `kill -USR1`, a metrics
// scrape): the engine's drops and peers, every queue's counters (in shared memory,
// also a dead worker's), the offload paths', the user stages' and the crypto pool's.
import type { QueueWorkers } from '../dataplane/queue-workers.js';
import { QueueStats } from '../dataplane/queue-loop.js';
import type { DeviceMetrics } from '../metrics/metrics.js';
import { OffloadCounters } from '../offload/counters.js';
import { DropCounters } from '../protocol/drop-reasons.js';
import type { Engine } from '../protocol/engine.js';
import { UserStages, type StageSnapshot } from '../stages/user-host.js';
import type { OffloadOn } from '../tun/tun-offloads.js';

/** What `tundra stats` shows. */
export interface DeviceStats {
  interface: string;
  drops: Record<string, number>;
  offload: Record<string, number | Record<string, number>>;
  stages: Record<string, number>;
  queues: Record<string, number>[];
  pool?: Record<string, number>;
}

/** Every offload the metrics report on or off. */
const OFFLOAD_NAMES = ['tun-tso4', 'tun-tso6', 'tun-uso', 'tun-gro-tcp', 'tun-gro-udp', 'udp-gso', 'udp-gro'];

/** What only the device can read for a scrape: its sockets and TUN. */
export type DeviceIoMetrics = Pick<DeviceMetrics, 'socketBuffers' | 'tunTxDropped'> & { readonly offloadsOn: readonly OffloadOn[] };

export class DeviceCounters {
  /** This thread's offload counters (the inline queue's, or the control plane's sends). */
  readonly offload = new OffloadCounters();
  /** The inline queue's counters. */
  readonly inline = new QueueStats();

  /** `inlineStages`: the inline queue's user stages, once loaded. */
  constructor(
    private readonly engine: Engine,
    private readonly workers: QueueWorkers | undefined,
    private readonly inlineStages: () => UserStages | undefined,
  ) {}

  /** The user stages' counters summed over every thread's instances. */
  stages(): StageSnapshot {
    if (this.workers !== undefined) return UserStages.snapshotOf(this.workers.stageCounters);
    return this.inlineStages()?.snapshot() ?? { drops: {}, counters: {} };
  }

  /** Per queue: packets through it, and (pipeline) how often its worker was started again. */
  queues(): Record<string, number>[] {
    return this.workers?.snapshot() ?? [this.inline.snapshot()];
  }

  /** The crypto pool's size, restarts and lost batches, if there is one. */
  pool(): Record<string, number> | undefined {
    return this.workers?.poolSnapshot();
  }

  /** The counters of `tundra stats` and `kill -USR1`: drops, offloads, user stages, queues, the pool. */
  stats(name: string): DeviceStats {
    const pool = this.pool();
    const offload = this.offloadSum();
    return {
      interface: name, drops: this.drops(offload.drops), offload: offload.counters,
      stages: this.stages().counters, queues: this.queues(), ...(pool === undefined ? {} : { pool }),
    };
  }

  /** Everything the metrics report, read now (one scrape). */
  metrics(io: DeviceIoMetrics): DeviceMetrics {
    const engine = this.engine;
    const offload = this.offloadSum();
    const on = new Set(io.offloadsOn.map((o) => o.name));
    return {
      peers: [...engine.peers].map((peer) => {
        const { current, previous, next } = peer.keypairs;
        return {
          publicKey: peer.publicKey, rxBytes: peer.rxBytes, txBytes: peer.txBytes, rxPackets: peer.rxPackets, txPackets: peer.txPackets,
          lastHandshakeWallMs: peer.lastHandshakeWallMs,
          keypairs: [current, previous, next].filter((k) => k !== undefined).length,
        };
      }),
      removedRxBytes: engine.removedRxBytes,
      removedTxBytes: engine.removedTxBytes,
      removedRxPackets: engine.removedRxPackets,
      removedTxPackets: engine.removedTxPackets,
      drops: this.drops(offload.drops),
      offload: offload.counters,
      histograms: offload.histograms,
      queues: this.queues(),
      pool: this.pool(),
      handshakes: engine.handshakes,
      offloads: Object.fromEntries(OFFLOAD_NAMES.map((name) => [name, on.has(name)])),
      socketBuffers: io.socketBuffers,
      tunTxDropped: io.tunTxDropped,
    };
  }

  /** Every drop so far, by reason: the engine's, every queue's, the offload paths' (summed by the caller) and the user stages'. */
  private drops(offloadDrops: Record<string, number>): Record<string, number> {
    const drops = [this.engine.drops, ...(this.workers?.drops ?? [])];
    return { ...DropCounters.sum(drops), ...offloadDrops, ...this.stages().drops };
  }

  private offloadSum(): ReturnType<typeof OffloadCounters.sum> {
    return OffloadCounters.sum([this.offload, ...(this.workers?.offload ?? [])]);
  }
}
