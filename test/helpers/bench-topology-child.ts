// For test/netns/bench-topology.test.ts: brings a p2p topology up with tundra, prints
// READY and the daemon pids, then waits; SIGINT makes it call downAllSync, as the
// benchmark runner's handler does, and exit.
//   node bench-topology-child.js RUNID LOGDIR
import { downAllSync, Topology } from '../../bench/e2e/topology.js';
import { TUNDRA_MAIN } from './tunnel.js';

const [runId = '', logDir = ''] = process.argv.slice(2);

process.once('SIGINT', () => {
  downAllSync();
  process.exit(130);
});
// Bounded: it never outlives a test that forgot it.
setTimeout(() => {
  downAllSync();
  process.exit(2);
}, 180_000);

const topology = await Topology.up({
  name: 'p2p', runId, logDir, startTimeoutMs: 60_000, impl: { label: 'tundra', kind: 'userspace', argv: [process.execPath, TUNDRA_MAIN, '-f', '%IF%'], env: {} },
});
process.stdout.write(`READY ${JSON.stringify(topology.daemonPids())}\n`);
