// `sudo node dist/bench/rss/run.js [SECS] [TEMPLATE]` (npm run bench:rss -- …): the
// resident memory of both daemons of a tunnel (scripts/lib/pair.ts) before, during and
// after an iperf3 TCP transfer of SECS seconds (default 60), sampled every SECS/6
// seconds from /proc/PID/status (VmRSS), as TSV. A data path that allocates nothing per
// packet stays flat. TEMPLATE is the daemon command with %IF% (default: tundra with its
// defaults).
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad } from '../e2e/loads.js';
import { daemonImpl, hostProblems, pairUp } from '../../scripts/lib/pair.js';

const HANDSHAKE_MS = 10_000;

function rssMib(pid: number | null): string {
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kib === undefined ? '?' : (Number(kib) / 1024).toFixed(1);
}

async function main(): Promise<number> {
  const secs = Number(process.argv[2] ?? '60');
  if (!Number.isInteger(secs) || secs < 1) {
    console.error(`rss: SECS must be a whole number of seconds >= 1, not '${process.argv[2]}'\nusage: node dist/bench/rss/run.js [SECS] [TEMPLATE]`);
    return 2;
  }
  const impl = daemonImpl(process.argv[3]);
  const problems = hostProblems(impl, ['iperf3']);
  if (problems.length > 0) {
    for (const p of problems) console.error(`rss: ${p}`);
    return 1;
  }
  const pair = await pairUp(impl, HANDSHAKE_MS, (line) => console.error(`rss: ${line}`));
  try {
    const { client, peer } = pair.topology.daemonPids();
    const sample = (when: string): void => console.log(`${when}\t${rssMib(client)}\t${rssMib(peer)}`);
    console.log('when\ta_rss_mib\tb_rss_mib');
    sample('start');
    const load = runLoad('tcp1', pair.topology, { seconds: secs, reverse: false, logDir: pair.logDir });
    load.catch(() => undefined); // a failure is thrown by the await below, not as unhandled while sampling
    const step = Math.max(1, Math.floor(secs / 6));
    for (let t = step; t < secs; t += step) {
      await sleep(step * 1000);
      sample(`${t}s`);
    }
    const { measurements } = await load;
    sample('end');
    const bps = measurements.find((m) => m.metric === 'throughput_bps')!.value; // tcp1 always measures it
    console.log(`transfer\t${Math.floor(bps / 1e6)} Mbit/s`);
    return 0;
  } finally {
    await pair.close();
  }
}

process.exitCode = await main();
