// `npm run demo` (as root): two namespaces, a tundra daemon in each, traffic across.
// Waits for the handshake, pings both ways over IPv4 and IPv6, runs a 3 s iperf3 TCP
// test a -> b, shows `wg show` of side a and a table of results, then removes
// everything it made. Exits 1 if any check failed.
//
//   DAEMON='CMD %IF%'   daemon command template (default: this checkout's tundra),
//                       e.g. DAEMON='wireguard-go -f %IF%' npm run demo
import { parsePing, runLoad } from '../bench/e2e/loads.js';
import { processCpuSeconds } from '../bench/e2e/cpu.js';
import { daemonImpl, hostProblems, pairUp, runInPair, type Pair } from './lib/pair.js';

const HANDSHAKE_MS = 5_000;
const IPERF3_SECONDS = 3;

const rows: [check: string, ok: boolean, detail: string][] = [];
const record = (check: string, ok: boolean, detail = ''): void => { rows.push([check, ok, detail]); };
const say = (text: string): void => console.log(`\n== ${text}`);
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function checkPing(pair: Pair, side: 'a' | 'b', address: string, label: string): Promise<void> {
  const ns = side === 'a' ? pair.topology.client.ns : pair.topology.server.ns;
  // -w: ping ends by itself within 10 s whatever happens.
  const out = await runInPair(pair, ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', '-w', '10', '-q', address], `ping-${side}-${address}`);
  const r = parsePing(out);
  const loss = r === null ? 100 : Math.round(100 * (1 - r.received / r.sent));
  record(label, loss === 0, `loss ${loss}%${r === null ? '' : `, rtt avg ${r.avgMs} ms`}`);
}

async function checkIperf3(pair: Pair): Promise<void> {
  try {
    const { measurements } = await runLoad('tcp1', pair.topology, { seconds: IPERF3_SECONDS, reverse: false, logDir: pair.logDir });
    const bps = measurements.find((m) => m.metric === 'throughput_bps')!.value; // tcp1 always measures it
    record('iperf3 tcp a->b', true, `${(bps / 1e6).toFixed(1)} Mbit/s (${IPERF3_SECONDS} s)`);
  } catch (err) {
    record('iperf3 tcp a->b', false, message(err));
  }
}

function checkDaemonCpu(pair: Pair): void {
  const { client, peer } = pair.topology.daemonPids();
  try {
    pair.topology.check();
    record('daemon cpu', true, `a ${processCpuSeconds([client!]).toFixed(2)} s, b ${processCpuSeconds([peer!]).toFixed(2)} s`);
  } catch (err) {
    record('daemon cpu', false, `a daemon exited during the demo: ${message(err)}`);
  }
}

async function main(): Promise<number> {
  const impl = daemonImpl(process.env.DAEMON);
  const template = impl.argv.join(' ');
  const problems = hostProblems(impl, ['iperf3']);
  if (problems.length > 0) {
    for (const p of problems) console.error(`demo: ${p}`);
    console.error('demo: cannot run here (see above)');
    return 1;
  }
  say(`building the pair with: ${template}`);
  let pair: Pair | undefined;
  try {
    pair = await pairUp(impl, HANDSHAKE_MS, (line) => console.error(`demo: ${line}`));
    record('handshake', true);
  } catch (err) {
    record('handshake', false, message(err));
  }
  if (pair !== undefined) {
    const { client, server } = pair.topology;
    say('ping and iperf3 through the tunnel');
    await checkPing(pair, 'a', server.v4, 'ping v4 a->b');
    await checkPing(pair, 'b', client.v4, 'ping v4 b->a');
    await checkPing(pair, 'a', server.v6, 'ping v6 a->b');
    await checkPing(pair, 'b', client.v6, 'ping v6 b->a');
    await checkIperf3(pair);
    checkDaemonCpu(pair);

    const name = pair.topology.interfaceNames().client;
    say(`wg show ${name} (side a)`);
    try {
      console.log(pair.topology.exec(client.ns, ['wg', 'show', name]).trimEnd());
    } catch (err) {
      record('wg show', false, `UAPI get failed: ${message(err)}`);
    }
  }

  const failed = rows.some(([, ok]) => !ok);
  say(`results (${template})`);
  const line = (check: string, status: string, detail: string): void => console.log(`${check.padEnd(20)} ${status.padEnd(5)} ${detail}`.trimEnd());
  line('check', 'status', 'detail');
  for (const [check, ok, detail] of rows) line(check, ok ? 'ok' : 'FAIL', detail);
  if (pair !== undefined) {
    if (failed) console.error(pair.logTails());
    await pair.close();
    say('removed the namespaces and stopped the daemons');
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
