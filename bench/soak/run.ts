// `npm run bench:soak` (as root): two tundra daemons in bench/e2e's p2p topology with keys
// rotated every few seconds (--rekey-after-seconds at both ends), byte-exact TCP
// transfers and a checked UDP stream both ways at once for --minutes, and each daemon's
// RSS, open fds, threads and libuv handles sampled all along. See plan.ts's USAGE.
//
// Exit status: 0 every transfer matched, keys rotated and nothing grew past its bound;
// 1 something did not (the report says what); 2 bad usage, not root or a missing tool;
// 130/143 interrupted (namespaces and processes removed).
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { runInfo } from '../report-schema.js';
import { ImplFailed, Unavailable } from '../e2e/errors.js';
import { builtinImpl } from '../e2e/impls.js';
import { downAllSync, Topology } from '../e2e/topology.js';
import { parseVmRss } from '../peers/peers.js';
import { newRun, planOrStatus } from '../cli.js';
import { parseSoakPlan, USAGE, type SoakPlan } from './plan.js';
import { rotations, soakMarkdown, verdict, type Direction, type Proc, type Sample, type SoakResult } from './report.js';

const TRAFFIC = fileURLToPath(new URL('./traffic.js', import.meta.url));
const SCRAPE = fileURLToPath(new URL('./scrape.js', import.meta.url));
/** Each daemon's /metrics, on the loopback of its own namespace. */
const METRICS = '127.0.0.1:9587';
const TCP_PORT = 5301;
const UDP_PORT = 5302;
/** After the last planned second, how long the traffic has to end by itself (a stalled transfer times out in 60 s). */
const END_GRACE_MS = 90_000;
/** Time for the UDP sinks' last report (they report every second). */
const SETTLE_MS = 2_500;
/** For the daemons to start and handshake, the sinks to listen and the scrapers' first figures: a Node.js start can take long on a busy machine. */
const START_TIMEOUT_MS = 60_000;

type Side = 'a' | 'b';
const other = (side: Side): Side => (side === 'a' ? 'b' : 'a');

const say = (line: string): void => { process.stderr.write(`${line}\n`); };

/** The JSON lines a traffic or scrape process wrote to its log. */
function eventsOf(file: string): { event: string; [k: string]: unknown }[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
    try {
      return [JSON.parse(l) as { event: string }];
    } catch {
      return []; // a line cut short by the end of the process
    }
  });
}

type Scraped = Omit<Proc, 'rssBytes' | 'fds' | 'threads' | 'udpRcvbufErrors'>;

class Soak {
  readonly samples: Sample[] = [];
  readonly errors: string[] = [];
  private readonly ns: Record<Side, string>;
  private readonly addr: Record<Side, string>;
  private readonly pid: Record<Side, number>;
  private readonly sources: { name: string; child: ChildProcess }[] = [];
  private t0 = 0;

  constructor(private readonly plan: SoakPlan, private readonly topology: Topology, private readonly logDir: string) {
    this.ns = { a: topology.client.ns, b: topology.server.ns };
    this.addr = { a: topology.client.v4, b: topology.server.v4 };
    const pids = topology.daemonPids();
    if (pids.client === null || pids.peer === null) throw new ImplFailed('tundra: a daemon has no process');
    this.pid = { a: pids.client, b: pids.peer };
  }

  private log(name: string): string {
    return join(this.logDir, `${name}.log`);
  }

  private traffic(side: Side, name: string, args: (string | number)[]): { name: string; child: ChildProcess } {
    return { name, child: this.topology.spawn(this.ns[side], [process.execPath, TRAFFIC, ...args.map(String)], this.log(name)) };
  }

  async run(): Promise<void> {
    const { plan } = this;
    const udp = plan.udpMbits > 0;
    const sinks: string[] = [];
    const scrapeSeconds = Math.min(5, plan.sampleSeconds);
    for (const side of ['a', 'b'] as const) {
      const url = `http://${METRICS}/metrics`;
      this.topology.spawn(this.ns[side], [process.execPath, SCRAPE, url, String(scrapeSeconds), join(this.logDir, `metrics-${side}.txt`)], this.log(`scrape-${side}`));
      this.traffic(side, `tcp-sink-${side}`, ['tcp-sink', this.addr[side], TCP_PORT]);
      sinks.push(`tcp-sink-${side}`);
      if (!udp) continue;
      this.traffic(side, `udp-sink-${side}`, ['udp-sink', this.addr[side], UDP_PORT]);
      sinks.push(`udp-sink-${side}`);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!sinks.every((s) => eventsOf(this.log(s)).some((e) => e.event === 'listening')) || this.scraped('a') === undefined || this.scraped('b') === undefined) {
      if (Date.now() > deadline) throw new Error(`the traffic sinks did not listen or the metrics did not come within ${START_TIMEOUT_MS / 1000} s (logs in ${this.logDir})`);
      await sleep(100);
    }
    this.t0 = performance.now();
    for (const from of ['a', 'b'] as const) {
      const to = this.addr[other(from)];
      this.sources.push(this.traffic(from, `tcp-${from}-to-${other(from)}`, ['tcp-source', to, TCP_PORT, plan.transferBytes, plan.tcpMbits, plan.seconds]));
      if (udp) this.sources.push(this.traffic(from, `udp-${from}-to-${other(from)}`, ['udp-source', to, UDP_PORT, plan.udpMbits, plan.seconds]));
    }
    say(`bench:soak: traffic runs for ${plan.seconds} s; a sample every ${plan.sampleSeconds} s`);
    const endBy = this.t0 + plan.seconds * 1000 + END_GRACE_MS;
    for (let next = this.t0; ; next += plan.sampleSeconds * 1000) {
      try {
        this.sample();
        this.topology.check();
      } catch (e) {
        this.errors.push((e as Error).message);
        return;
      }
      while (performance.now() < next + plan.sampleSeconds * 1000 && !this.trafficDone()) await sleep(250);
      if (this.trafficDone()) break;
      if (performance.now() > endBy) {
        this.errors.push(`the traffic had not ended ${END_GRACE_MS / 1000} s after the planned ${plan.seconds} s`);
        break;
      }
    }
    // The last sample with figures scraped after the traffic ended.
    const seen = { a: this.scrapes('a'), b: this.scrapes('b') };
    await sleep(SETTLE_MS);
    const settled = Date.now() + 3 * scrapeSeconds * 1000;
    while ((this.scrapes('a') === seen.a || this.scrapes('b') === seen.b) && Date.now() < settled) await sleep(250);
    for (const side of ['a', 'b'] as const) {
      if (this.scrapes(side) === seen[side]) this.errors.push(`daemon ${side}: no metrics came after the traffic ended (see logs/scrape-${side}.log)`);
    }
    this.sample();
  }

  /** How many scrapes brought figures so far. */
  private scrapes(side: Side): number {
    return eventsOf(this.log(`scrape-${side}`)).filter((e) => e.event === 'metrics').length;
  }

  /** The daemon's figures from its last scrape. */
  private scraped(side: Side): Scraped | undefined {
    return eventsOf(this.log(`scrape-${side}`)).filter((e) => e.event === 'metrics').at(-1) as Scraped | undefined;
  }

  private trafficDone(): boolean {
    return this.sources.every(({ child }) => child.exitCode !== null || child.signalCode !== null);
  }

  private sample(): void {
    const t = (performance.now() - this.t0) / 1000;
    const scraped = (side: Side): Scraped => {
      const { handles, initiated, answered, handshakeFailures, drops, tunDrops } = this.scraped(side)!;
      return { handles, initiated, answered, handshakeFailures, drops, tunDrops };
    };
    const s: Sample = { t, a: { ...this.procFigures('a'), ...scraped('a') }, b: { ...this.procFigures('b'), ...scraped('b') } };
    this.samples.push(s);
    const mib = (p: Proc): string => (p.rssBytes / 2 ** 20).toFixed(1);
    const sent = (['a', 'b'] as const).map((side) => eventsOf(this.log(`tcp-${side}-to-${other(side)}`)).filter((e) => e.event === 'tcp-sent').length);
    say(`[${Math.round(t)}/${this.plan.seconds} s] RSS ${mib(s.a)} / ${mib(s.b)} MiB, fds ${s.a.fds} / ${s.b.fds}, threads ${s.a.threads} / ${s.b.threads}, `
      + `handles ${s.a.handles} / ${s.b.handles}, rotations ${rotations(this.samples)}, TCP transfers a→b ${sent[0]}, b→a ${sent[1]}`);
  }

  private procFigures(side: Side): Pick<Proc, 'rssBytes' | 'fds' | 'threads' | 'udpRcvbufErrors'> {
    const pid = this.pid[side];
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    // Read through the daemon: /proc/PID/net is its network namespace's.
    const udp = /^Udp: (.*)\nUdp: (.*)$/m.exec(readFileSync(`/proc/${pid}/net/snmp`, 'utf8'));
    return {
      rssBytes: parseVmRss(status),
      fds: readdirSync(`/proc/${pid}/fd`).length,
      threads: Number(/^Threads:\s+(\d+)$/m.exec(status)?.[1] ?? NaN),
      udpRcvbufErrors: udp === null ? NaN : Number(udp[2]!.split(' ')[udp[1]!.split(' ').indexOf('RcvbufErrors')]),
    };
  }

  /** Each direction's transfers, source against sink; errors any traffic process reported. */
  directions(): Direction[] {
    for (const file of readdirSync(this.logDir).filter((f) => /^(tcp|udp)-.*\.log$/.test(f))) {
      for (const e of eventsOf(join(this.logDir, file))) if (e.event === 'error') this.errors.push(`${file}: ${String(e.message)}`);
    }
    for (const { name, child } of this.sources) {
      if (child.exitCode !== 0 && child.exitCode !== null) this.errors.push(`${name}: exited ${child.exitCode}`);
    }
    return (['a', 'b'] as const).map((from) => {
      const to = other(from);
      const by = (name: string, event: string): Map<number, string> =>
        new Map(eventsOf(this.log(name)).filter((e) => e.event === event).map((e) => [Number(e.id), `${e.bytes} ${e.sha256}`]));
      const sent = by(`tcp-${from}-to-${to}`, 'tcp-sent');
      const received = by(`tcp-sink-${to}`, 'tcp-received');
      const ids = new Set([...sent.keys(), ...received.keys()]);
      const d: Direction = {
        label: `${from} → ${to}`,
        tcpSent: sent.size,
        tcpReceived: received.size,
        tcpBytes: sent.size * this.plan.transferBytes,
        tcpMismatched: [...ids].filter((id) => sent.get(id) !== received.get(id)).sort((x, y) => x - y),
      };
      if (this.plan.udpMbits > 0) {
        const last = (name: string, event: string): Record<string, unknown> => eventsOf(this.log(name)).filter((e) => e.event === event).at(-1) ?? {};
        const out = last(`udp-${from}-to-${to}`, 'udp-sent');
        const got = last(`udp-sink-${to}`, 'udp-received');
        d.udp = { sent: Number(out.sent ?? 0), received: Number(got.received ?? 0), corrupt: Number(got.corrupt ?? 0), duplicates: Number(got.duplicates ?? 0) };
      }
      return d;
    });
  }
}

async function main(argv: string[]): Promise<number> {
  const plan = planOrStatus(argv, parseSoakPlan, USAGE, 'bench:soak', 'it makes network namespaces and needs root: run it with sudo');
  if (typeof plan === 'number') return plan;
  const { runId, started, dir } = newRun('soak', plan.out);
  const logDir = join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const command = argv.length === 0 ? 'npm run bench:soak' : ['npm run bench:soak --', ...argv].join(' ');
  const info = runInfo(runId, command);

  process.on('exit', downAllSync);
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      downAllSync();
      say(`bench:soak: interrupted; run ${runId}'s namespaces and processes are removed (logs in ${logDir})`);
      process.exit(status);
    });
  }
  const impl = builtinImpl('tundra')!;
  impl.env = { TUNDRA_REKEY_AFTER_SECONDS: String(plan.rekeySeconds), TUNDRA_METRICS_LISTEN: METRICS };
  let topology: Topology;
  try {
    topology = await Topology.up({ name: 'p2p', runId, impl, logDir, log: say, startTimeoutMs: START_TIMEOUT_MS, handshakeTimeoutMs: START_TIMEOUT_MS });
  } catch (e) {
    if (!(e instanceof Unavailable || e instanceof ImplFailed)) throw e;
    say(`bench:soak: ${e.message}`);
    return e instanceof Unavailable ? 2 : 1;
  }
  let result: SoakResult;
  try {
    const soak = new Soak(plan, topology, logDir);
    try {
      await soak.run();
    } catch (e) {
      soak.errors.push((e as Error).message);
    }
    result = {
      plan, command, runId, started: started.toISOString(), samples: soak.samples, directions: soak.directions(), errors: soak.errors,
      host: `${info.host.cpus} CPUs, kernel ${info.host.kernel}, Node ${info.host.node}${info.revision === undefined ? '' : `, revision ${info.revision}`}`,
    };
  } finally {
    await topology.down();
  }
  const md = soakMarkdown(result);
  writeFileSync(join(dir, 'report.md'), md);
  writeFileSync(join(dir, 'samples.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${md}\nreport: ${join(dir, 'report.md')} (samples.json and logs beside it)\n`);
  const v = verdict(result);
  return v.correct && v.flat ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
