// A worker for test/unit/peer-table.test.ts: rewrites one peer's endpoint, alternating
// between two records, until told to stop; posts how many writes it made.
import { parentPort, workerData } from 'node:worker_threads';
import { PeerTable, type PeerTableShared } from '../../src/protocol/peer-table.js';

const { shared, records, stop, peer } = workerData as { shared: PeerTableShared; records: SharedArrayBuffer; stop: SharedArrayBuffer; peer: number };
const peers = PeerTable.attach(shared);
const addrs = new Uint8Array(records);
const stopped = new Int32Array(stop);
let writes = 0;
while (Atomics.load(stopped, 0) === 0) peers.learnEndpoint(peer, addrs, writes++ & 1);
parentPort!.postMessage(writes);
