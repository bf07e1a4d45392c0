// A queue worker: the data path of one TUN queue and one UDP socket of the group,
// on this thread's own event loop (src/dataplane/queue-loop.ts), over the tables the
// main thread shares. What the control plane needs goes back over the control
// channel; counters are in shared memory the main thread made. The fds are the main
// thread's: they outlive this worker, so a restarted worker takes them up again.
import { parentPort, workerData } from 'node:worker_threads';
import { aeadBackend } from '../crypto/backends.js';
import { Logger } from '../log.js';
import { OffloadCounters } from '../offload/counters.js';
import { KeyTable, queueLockOwner } from '../protocol/key-table.js';
import { PeerTable } from '../protocol/peer-table.js';
import { QueueLoop, QueueStats } from './queue-loop.js';
import { DropCounters } from '../protocol/drop-reasons.js';
import { RouteTable } from '../routing/route-table.js';
import type { InboundContext } from '../stages/inbound.js';
import type { OutboundContext } from '../stages/outbound.js';
import { UserStages } from '../stages/user-host.js';
import { ChannelWriter } from './control-channel.js';
import { setThreadNice } from './priority.js';
import type { QueueWorkerData, ToQueueWorker, FromQueueWorker } from './queue-workers.js';

const data = workerData as QueueWorkerData;
setThreadNice(data.nice);
const port = parentPort!;
const log = new Logger(data.name, data.logLevel);
const thread = `queue-${data.index}`;

// The control plane's clock: this thread's performance.now() runs from its own origin.
const clockShift = performance.timeOrigin - data.timeOrigin;
const now = (): number => performance.now() + clockShift;

const stages = data.stages.length === 0 ? undefined : await UserStages.load(data.stages, thread, (line) => log.error(line));
const keys = KeyTable.attach(data.keys, queueLockOwner(data.index));
const peers = PeerTable.attach(data.peers);
const drops = new DropCounters(data.drops);
const aead = aeadBackend(data.crypto);
let routes = new RouteTable(data.routes);
let mtu = data.mtu;

const outbound: OutboundContext = { keys, peers, routes, mtu, now: now(), drops, seal: aead.seal, stages };
const inbound: InboundContext = { keys, routes, now: now(), drops, open: aead.open, stages, aqmSignals: 0, aqmMarked: 0 };

const control = new ChannelWriter(data.channel, peers, drops, now);
const loop = new QueueLoop({
  tun: data.tun, udp: data.udp, settings: data.settings, aqm: data.aqm, counters: new OffloadCounters(data.offload), stats: new QueueStats(data.stats), log,
  outbound, inbound, control,
  tables: { now, routes: () => routes, mtu: () => mtu },
  afterWork: () => control.ring(),
  ...(data.flights === undefined ? {} : { flights: data.flights }),
  ...(data.pool === undefined ? {} : { pool: data.pool }),
});

port.on('message', (message: ToQueueWorker) => {
  if (message.type === 'routes') routes = new RouteTable(message.routes);
  else if (message.type === 'mtu') mtu = message.mtu;
  else if (message.type === 'udp') {
    loop.useSocket(message.udp);
    port.postMessage({ type: 'udp-moved' } satisfies FromQueueWorker);
  }
  else if (message.type === 'stop') {
    loop.close();
    stages?.close();
    port.close();
  }
});

const ready: FromQueueWorker = { type: 'ready', ...(stages === undefined ? {} : { stages: stages.share() }) };
port.postMessage(ready);
