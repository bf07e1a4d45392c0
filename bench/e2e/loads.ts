// The loads of the end-to-end benchmark: each runs its server end in hosts.server.ns and
// its client program in hosts.client.ns, takes the daemons' and the machine's CPU
// around the client, and turns the tools' output into Measurements. The parsers are
// pure, for unit tests on captured output (test/fixtures/bench/).
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { machineBusySeconds, processCpuSeconds, threadCpuSeconds } from './cpu.js';
import { missingToolMessage, requireTool, which } from './tools.js';
import type { Endpoint } from './topology.js';

export interface Measurement {
  /** 'tcp1', 'tcp4', 'udp', 'udp-gso', 'secnetperf'; the latency load's 'ping-idle', 'sockperf-idle', 'ping-load' and
   *  'sockperf-load' (under a TCP stream), 'ping-udp-load' and 'sockperf-udp-load' (under a UDP GSO stream) */
  test: string;
  params?: { [k: string]: string | number };
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
  value: number;
}

/** What a load needs of the topology it runs on (bench/e2e/topology.ts's Topology has these). */
export interface LoadHosts {
  client: Endpoint;
  server: Endpoint;
  daemonPids(): { client: number | null; peer: number | null };
  spawn(ns: string, argv: string[], logFile: string, env?: Record<string, string>): ChildProcess;
  exec(ns: string, argv: string[], timeoutMs?: number): string;
  tunDrops(): number;
  check(): void;
}

export type LoadName = 'tcp1' | 'tcp4' | 'udp' | 'udp-gso' | 'secnetperf' | 'latency';
export const LOADS: readonly LoadName[] = ['tcp1', 'tcp4', 'udp', 'udp-gso', 'secnetperf', 'latency'];

export interface LoadOptions {
  /** Length of the load in whole seconds (>= 1). */
  seconds: number;
  /** Data flows server → client (a download: router and exit-node). */
  reverse: boolean;
  /** Where each program's output goes (LOGDIR/<program>.log). */
  logDir: string;
}

export interface LoadResult {
  measurements: Measurement[];
  skipped: { test: string; reason: string }[];
}

// ---- metrics ----

const METRICS = {
  throughput_bps: ['bit/s', 'higher'],
  cpu_ns_per_byte: ['ns/B', 'lower'],
  machine_ns_per_byte: ['ns/B', 'lower'],
  retransmits: ['', 'lower'],
  loss_ratio: ['', 'lower'],
  reorder_ratio: ['', 'lower'],
  rtt_ms: ['ms', 'lower'],
  rtt_p50_ms: ['ms', 'lower'],
  rtt_p99_ms: ['ms', 'lower'],
  tun_drops: ['', 'lower'],
  sender_cpu_ns_per_byte: ['ns/B', 'lower'],
  sender_main_ns_per_byte: ['ns/B', 'lower'],
} as const satisfies Record<string, readonly [string, 'higher' | 'lower']>;
type Metric = keyof typeof METRICS;

function measurement(test: string, metric: Metric, value: number): Measurement {
  const [unit, better] = METRICS[metric];
  return { test, metric, unit, better, value };
}

// ---- parsers ----

interface Iperf3Sum { bytes?: unknown; bits_per_second?: unknown; retransmits?: unknown; packets?: unknown; lost_packets?: unknown }
interface Iperf3Json {
  error?: unknown;
  end?: { sum?: Iperf3Sum; sum_sent?: Iperf3Sum; sum_received?: Iperf3Sum; streams?: { udp?: { out_of_order?: unknown } }[] };
}

const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * The receiver's figures from `iperf3 -J` output (anything around the JSON document,
 * such as stderr lines in the same log, is ignored). Throws an Error with iperf3's own
 * message when the test failed. UDP: lostRatio = lost / sent datagrams, reorderRatio =
 * out-of-order / received datagrams.
 */
export function parseIperf3(json: string, udp: boolean): { bytes: number; bps: number; retransmits?: number; lostRatio?: number; reorderRatio?: number } {
  const open = json.indexOf('{');
  const close = json.lastIndexOf('}');
  if (open < 0 || close < open) throw new Error('iperf3 printed no JSON');
  const doc = JSON.parse(json.slice(open, close + 1)) as Iperf3Json;
  if (typeof doc.error === 'string') throw new Error(`iperf3: ${doc.error}`);
  // iperf3 3.x: UDP has sum_received from 3.7 on, only sum before.
  const sum = udp ? doc.end?.sum_received ?? doc.end?.sum : doc.end?.sum_received;
  if (!isNumber(sum?.bytes) || !isNumber(sum.bits_per_second)) throw new Error('iperf3: its JSON has no end.sum_received');
  if (!udp) {
    const retransmits = doc.end?.sum_sent?.retransmits;
    return isNumber(retransmits) ? { bytes: sum.bytes, bps: sum.bits_per_second, retransmits } : { bytes: sum.bytes, bps: sum.bits_per_second };
  }
  if (!isNumber(sum.packets) || !isNumber(sum.lost_packets)) throw new Error('iperf3: its UDP summary has no packets/lost_packets');
  // out_of_order is only per stream in 3.x summaries.
  let outOfOrder = 0;
  for (const stream of doc.end?.streams ?? []) if (isNumber(stream.udp?.out_of_order)) outOfOrder += stream.udp.out_of_order;
  const received = sum.packets - sum.lost_packets;
  return {
    bytes: sum.bytes,
    bps: sum.bits_per_second,
    lostRatio: sum.packets > 0 ? sum.lost_packets / sum.packets : 0,
    reorderRatio: received > 0 ? outOfOrder / received : 0,
  };
}

/** The nearest-rank percentile p (0–100] of values sorted ascending. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

/**
 * ping's summary and, when it printed a line per reply (no -q), the replies' median and
 * 99th percentile (duplicates left out); null when there were no replies.
 */
export function parsePing(text: string): { sent: number; received: number; avgMs: number; p50Ms?: number; p99Ms?: number } | null {
  const counts = /(\d+) packets transmitted, (\d+) received/.exec(text);
  const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(text);
  if (counts === null || rtt === null) return null;
  const received = Number(counts[2]);
  if (received === 0) return null;
  const summary = { sent: Number(counts[1]), received, avgMs: Number(rtt[1]) };
  const times = [...text.matchAll(/^\d+ bytes from .* time=([\d.]+) ms$/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
  return times.length === 0 ? summary : { ...summary, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99) };
}

/**
 * The summary of `sockperf ping-pong --full-rtt` or `sockperf under-load --full-rtt`:
 * mean, median and 99th percentile round trip, in ms (it prints µs), and the messages
 * sent and answered in the measured part of the run (after its warm-up).
 */
export function parseSockperf(text: string): { avgMs: number; p50Ms: number; p99Ms: number; sent: number; received: number } | null {
  const plain = text.replace(/\x1b\[[0-9;]*m/g, ''); // its summary is coloured with ANSI escapes
  const avg = /avg-rtt=([\d.]+)/.exec(plain);
  const p50 = /percentile 50\.000 =\s*([\d.]+)/.exec(plain);
  const p99 = /percentile 99\.000 =\s*([\d.]+)/.exec(plain);
  const valid = /\[Valid Duration\].*SentMessages=(\d+); ReceivedMessages=(\d+)/.exec(plain);
  if (avg === null || p50 === null || p99 === null || valid === null) return null;
  return {
    avgMs: Number(avg[1]) / 1000, p50Ms: Number(p50[1]) / 1000, p99Ms: Number(p99[1]) / 1000,
    sent: Number(valid[1]), received: Number(valid[2]),
  };
}

/**
 * secnetperf's result lines. msquic v2.6.0 prints the total for `-ptput:1`
 * (`Result: Upload 7403128 kbps.`) and, with `-pctput:1`, one line per stream before it
 * (`Result: Upload 4730912768 bytes @ 7529457 kbps (5026.564 ms).`); msquic's
 * src/perf/readme.md shows the per-stream lines as `Upload: N bytes @ K kbps (T ms).`.
 * The rate is the total line's, else the streams' sum; the bytes are the streams' sum,
 * null when no stream line was printed.
 */
export function parseSecnetperf(text: string): { bps: number; bytes: number | null } | null {
  let streamBps = 0;
  let bytes = 0;
  let streams = 0;
  for (const m of text.matchAll(/(?:Result: )?(?:Upload|Download):? (\d+) bytes @ (\d+) kbps/g)) {
    bytes += Number(m[1]);
    streamBps += Number(m[2]) * 1000;
    streams++;
  }
  const total = /Result: (?:Upload|Download) (\d+) kbps\./.exec(text);
  if (total !== null) return { bps: Number(total[1]) * 1000, bytes: streams > 0 ? bytes : null };
  return streams > 0 ? { bps: streamBps, bytes } : null;
}

interface UdpLoadReport { seconds: number; datagrams: number; bytes: number; reordered: number | null }

/** The JSON line bench/udp-load.ts prints last. */
function parseUdpLoad(text: string): UdpLoadReport | null {
  const line = text.split('\n').filter((l) => l.startsWith('{')).pop();
  if (line === undefined) return null;
  const r = JSON.parse(line) as Partial<UdpLoadReport>;
  return isNumber(r.seconds) && isNumber(r.datagrams) && isNumber(r.bytes)
    ? { seconds: r.seconds, datagrams: r.datagrams, bytes: r.bytes, reordered: isNumber(r.reordered) ? r.reordered : null }
    : null;
}

// ---- what each load needs ----

/** Fixed per load: a run's topology has namespaces of its own, so no other run shares these. */
const PORT = { tcp1: 5201, tcp4: 5202, udp: 5203, latency: 5204, udpGso: 5205, latencyUdpGso: 5206, sockperf: 11111, secnetperf: 4433 } as const;
/** Idle pings: 100 (5 s). Of 20, the 99th percentile was the slowest reply and a few slow ones moved the median. */
const PING_COUNT = 100;
const PING_INTERVAL = 0.05;
const SOCKPERF_IDLE_SECONDS = 2;
/**
 * Under the UDP stream sockperf sends on a clock (`under-load`, every message answered)
 * rather than ping-pong: ping-pong waits for each reply, so the first message the flood
 * loses stops it for the rest of the run.
 */
const SOCKPERF_PACED_PER_SECOND = 100;
const UDP_LOAD = fileURLToPath(new URL('../udp-load.js', import.meta.url));

/** The commands a load needs (the runner checks them first). sockperf is optional for latency. */
export function loadTools(load: LoadName): string[] {
  switch (load) {
    case 'tcp1':
    case 'tcp4':
    case 'udp': return ['iperf3', 'ss'];
    case 'udp-gso': return ['ss'];
    case 'secnetperf': return ['secnetperf', 'ss'];
    case 'latency': return ['ping', 'iperf3', 'ss'];
  }
}

const latencyLoadSeconds = (seconds: number): number => Math.max(seconds, 4);

/** Wall time of a load including its set-up, for the ETA. */
export function expectedSeconds(load: LoadName, seconds: number): number {
  switch (load) {
    case 'tcp1':
    case 'tcp4':
    case 'udp': return seconds + 2;
    case 'udp-gso': return seconds + 3; // the receiver waits 2 s past the sender
    case 'secnetperf': return seconds + 4;
    case 'latency': return PING_COUNT * PING_INTERVAL + 1 + SOCKPERF_IDLE_SECONDS + 1 + 2 * (latencyLoadSeconds(seconds) + 3);
  }
}

// ---- running programs ----

interface Exit { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }

interface Program {
  name: string;
  log: string;
  process: ChildProcess;
  exited: Promise<Exit>;
  exit?: Exit;
}

function tail(path: string): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text.length > 600 ? `…${text.slice(-600)}` : text;
  } catch {
    return '';
  }
}

/** The programs of one load: each bounded by a kill timer, all ended when the load is over. */
class Session {
  private readonly programs: Program[] = [];

  constructor(readonly hosts: LoadHosts, readonly opts: LoadOptions) {}

  /** Starts argv in ns, writing to LOGDIR/name.log; SIGTERM after limitSeconds, SIGKILL 2 s later. */
  start(name: string, ns: string, argv: string[], limitSeconds: number): Program {
    const log = join(this.opts.logDir, `${name}.log`);
    const child = this.hosts.spawn(ns, argv, log);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    }, limitSeconds * 1000);
    const program: Program = {
      name, log, process: child,
      exited: new Promise<Exit>((resolve) => {
        const done = (code: number | null, signal: NodeJS.Signals | null): void => {
          clearTimeout(timer);
          program.exit = { code, signal, timedOut };
          resolve(program.exit);
        };
        if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode, child.signalCode);
        else {
          child.once('exit', done);
          child.once('error', () => done(null, null));
        }
      }),
    };
    this.programs.push(program);
    return program;
  }

  /** Waits for a program to end; an Error if it ran out of time. */
  async finish(p: Program): Promise<Exit> {
    const exit = await p.exited;
    if (exit.timedOut) throw this.failure(p, 'did not end in time');
    return exit;
  }

  /** finish(), and an Error unless it exited with status 0. */
  async succeed(p: Program): Promise<void> {
    const exit = await this.finish(p);
    if (exit.code !== 0) throw this.failure(p, `exited with ${exit.code === null ? `signal ${exit.signal ?? '?'}` : `status ${exit.code}`}`);
  }

  failure(p: Program, what: string): Error {
    return new Error(`${p.name} (${p.process.spawnargs.join(' ')}): ${what} (log ${p.log}: ${tail(p.log) || 'empty'})`);
  }

  output(p: Program): string {
    return readFileSync(p.log, 'utf8');
  }

  /** Waits (at most 10 s) until something listens on port in ns, failing early if p exits. */
  async listening(p: Program, ns: string, proto: 'tcp' | 'udp', port: number): Promise<void> {
    const argv = ['ss', '-H', proto === 'tcp' ? '-ltn' : '-lun', `sport = :${port}`];
    for (let i = 0; i < 200; i++) {
      if (this.hosts.exec(ns, argv, 5000).trim() !== '') return;
      if (p.exit !== undefined) throw this.failure(p, 'exited before it listened');
      await sleep(50);
    }
    throw this.failure(p, `was not listening on ${proto} port ${port} after 10 s`);
  }

  /** Ends every program still running: SIGTERM, SIGKILL after 2 s. */
  async stopAll(): Promise<void> {
    await Promise.all(this.programs.map(async (p) => {
      if (p.exit !== undefined) return;
      p.process.kill('SIGTERM');
      const killer = setTimeout(() => p.process.kill('SIGKILL'), 2000);
      await p.exited;
      clearTimeout(killer);
    }));
  }
}

// ---- CPU and drops around a load ----

interface Sample { daemons?: number; sender?: number; senderMain?: number; machine: number; drops: number }

/** The sending daemon is the client's for an upload, the peer's for a download. */
function sample(hosts: LoadHosts, reverse: boolean): Sample {
  const pids = hosts.daemonPids();
  const sender = reverse ? pids.peer : pids.client;
  const s: Sample = { machine: machineBusySeconds(), drops: hosts.tunDrops() };
  if (pids.client !== null && pids.peer !== null) s.daemons = processCpuSeconds([pids.client, pids.peer]);
  if (sender !== null) {
    s.sender = processCpuSeconds([sender]);
    s.senderMain = threadCpuSeconds(sender, sender);
  }
  return s;
}

/** cpu_ns_per_byte … tun_drops of the bytes received between two samples (the kernel implementation has no daemon: no per-daemon figures). */
function costs(test: string, before: Sample, after: Sample, bytes: number): Measurement[] {
  const perByte = (seconds: number): number => (seconds * 1e9) / bytes;
  const out: Measurement[] = [];
  if (before.daemons !== undefined && after.daemons !== undefined) out.push(measurement(test, 'cpu_ns_per_byte', perByte(after.daemons - before.daemons)));
  out.push(measurement(test, 'machine_ns_per_byte', perByte(after.machine - before.machine)));
  if (before.sender !== undefined && after.sender !== undefined) out.push(measurement(test, 'sender_cpu_ns_per_byte', perByte(after.sender - before.sender)));
  if (before.senderMain !== undefined && after.senderMain !== undefined) out.push(measurement(test, 'sender_main_ns_per_byte', perByte(after.senderMain - before.senderMain)));
  out.push(measurement(test, 'tun_drops', after.drops - before.drops));
  return out;
}

// ---- the loads ----

function iperf3Server(s: Session, name: string, port: number, limitSeconds: number): Program {
  return s.start(name, s.hosts.server.ns, ['iperf3', '-s', '-1', '-B', s.hosts.server.v4, '-p', String(port)], limitSeconds);
}

function iperf3Client(s: Session, name: string, port: number, seconds: number, extra: string[]): Program {
  const argv = ['iperf3', '-c', s.hosts.server.v4, '-p', String(port), '-t', String(seconds), '-J', '--connect-timeout', '3000', ...extra];
  if (s.opts.reverse) argv.push('-R');
  return s.start(name, s.hosts.client.ns, argv, seconds + 15);
}

/** parseIperf3 of a finished client, its log's tail on failure. */
function iperf3Result(s: Session, p: Program, udp: boolean): ReturnType<typeof parseIperf3> {
  let r: ReturnType<typeof parseIperf3>;
  try {
    r = parseIperf3(s.output(p), udp);
  } catch (err) {
    throw s.failure(p, (err as Error).message);
  }
  if (r.bytes <= 0) throw s.failure(p, 'no data arrived');
  return r;
}

async function iperf3Load(s: Session, test: 'tcp1' | 'tcp4' | 'udp', extra: string[]): Promise<LoadResult> {
  const { hosts, opts } = s;
  const udp = test === 'udp';
  const server = iperf3Server(s, `${test}-server`, PORT[test], opts.seconds + 20);
  await s.listening(server, hosts.server.ns, 'tcp', PORT[test]);
  const before = sample(hosts, opts.reverse);
  const client = iperf3Client(s, `${test}-client`, PORT[test], opts.seconds, extra);
  await s.finish(client); // judged by its JSON, which carries iperf3's error
  const after = sample(hosts, opts.reverse);
  const r = iperf3Result(s, client, udp);
  const measurements = [measurement(test, 'throughput_bps', r.bps)];
  if (r.retransmits !== undefined) measurements.push(measurement(test, 'retransmits', r.retransmits));
  if (r.lostRatio !== undefined) measurements.push(measurement(test, 'loss_ratio', r.lostRatio));
  if (r.reorderRatio !== undefined) measurements.push(measurement(test, 'reorder_ratio', r.reorderRatio));
  measurements.push(...costs(test, before, after, r.bytes));
  return { measurements, skipped: [] };
}

/**
 * A UDP GSO stream of `seconds` in the load's direction (bench/udp-load.ts): 1200-byte
 * datagrams sent with GSO, received with GRO. `before` is the CPU sample taken once the
 * receiving end listens, just before the stream starts.
 */
async function startUdpGsoStream(s: Session, name: string, port: number, seconds: number): Promise<{ sender: Program; receiver: Program; before: Sample }> {
  const { hosts, opts } = s;
  const serverAt = `${hosts.server.v4}:${port}`;
  const node = process.execPath;
  const sendArgs = ['--seconds', String(seconds), '--size', '1200', '--gso', '1'];
  const recvArgs = ['--seconds', String(seconds), '--gro', '1'];
  if (!opts.reverse) {
    const receiver = s.start(`${name}-recv`, hosts.server.ns, [node, UDP_LOAD, 'recv', '--listen', serverAt, ...recvArgs], seconds + 20);
    await s.listening(receiver, hosts.server.ns, 'udp', port);
    const before = sample(hosts, opts.reverse);
    return { receiver, before, sender: s.start(`${name}-send`, hosts.client.ns, [node, UDP_LOAD, 'send', '--to', serverAt, ...sendArgs], seconds + 15) };
  }
  // The sender waits for the receiver's hello, which opens the way back through a NAT.
  const sender = s.start(`${name}-send`, hosts.server.ns, [node, UDP_LOAD, 'send', '--reply-to', serverAt, ...sendArgs], seconds + 25);
  await s.listening(sender, hosts.server.ns, 'udp', port);
  const before = sample(hosts, opts.reverse);
  const receiver = s.start(`${name}-recv`, hosts.client.ns,
    [node, UDP_LOAD, 'recv', '--listen', `${hosts.client.v4}:${port}`, '--hello', serverAt, ...recvArgs], seconds + 20);
  return { sender, receiver, before };
}

async function udpGsoLoad(s: Session): Promise<LoadResult> {
  const { hosts, opts } = s;
  const { sender, receiver, before } = await startUdpGsoStream(s, 'udp-gso', PORT.udpGso, opts.seconds);
  await s.succeed(sender);
  const after = sample(hosts, opts.reverse);
  await s.succeed(receiver);
  const sent = parseUdpLoad(s.output(sender));
  if (sent === null || sent.datagrams === 0) throw s.failure(sender, 'sent nothing');
  const got = parseUdpLoad(s.output(receiver));
  if (got === null || got.bytes === 0) throw s.failure(receiver, 'received nothing');
  const test = 'udp-gso';
  return {
    measurements: [
      // over the sender's seconds: the receiver listens longer than it is sent to
      measurement(test, 'throughput_bps', (got.bytes * 8) / sent.seconds),
      measurement(test, 'loss_ratio', Math.max(0, sent.datagrams - got.datagrams) / sent.datagrams),
      measurement(test, 'reorder_ratio', (got.reordered ?? 0) / got.datagrams),
      ...costs(test, before, after, got.bytes),
    ],
    skipped: [],
  };
}

async function secnetperfLoad(s: Session): Promise<LoadResult> {
  const { hosts, opts } = s;
  const server = s.start('secnetperf-server', hosts.server.ns, ['secnetperf', '-exec:maxtput'], opts.seconds + 30);
  await s.listening(server, hosts.server.ns, 'udp', PORT.secnetperf);
  const before = sample(hosts, opts.reverse);
  const client = s.start('secnetperf-client', hosts.client.ns,
    ['secnetperf', `-target:${hosts.server.v4}`, '-exec:maxtput', `${opts.reverse ? '-down' : '-up'}:${opts.seconds}s`, '-ptput:1', '-pctput:1'],
    opts.seconds + 20);
  await s.succeed(client);
  const after = sample(hosts, opts.reverse);
  const r = parseSecnetperf(s.output(client));
  if (r === null || r.bps === 0) throw s.failure(client, 'printed no throughput');
  // -pctput:1 asks for the per-stream lines: the CPU cost per byte needs their bytes.
  if (r.bytes === null || r.bytes === 0) throw s.failure(client, 'printed no per-stream byte counts');
  const test = 'secnetperf';
  return { measurements: [measurement(test, 'throughput_bps', r.bps), ...costs(test, before, after, r.bytes)], skipped: [] };
}

async function ping(s: Session, test: string, count: number): Promise<Measurement[]> {
  const p = s.start(test, s.hosts.client.ns,
    ['ping', '-c', String(count), '-i', String(PING_INTERVAL), '-W', '1', s.hosts.server.v4], count * PING_INTERVAL + 10);
  await s.finish(p); // judged by its summary (status 1 for any loss)
  const r = parsePing(s.output(p));
  if (r === null) throw s.failure(p, 'no replies');
  if (r.p50Ms === undefined || r.p99Ms === undefined) throw s.failure(p, 'printed no line per reply');
  return [
    measurement(test, 'rtt_ms', r.avgMs), measurement(test, 'rtt_p50_ms', r.p50Ms), measurement(test, 'rtt_p99_ms', r.p99Ms),
    measurement(test, 'loss_ratio', (r.sent - r.received) / r.sent),
  ];
}

/** sockperf ping-pong, or with `paced` sockperf under-load at SOCKPERF_PACED_PER_SECOND (with the share of messages not answered). */
async function sockperf(s: Session, test: string, seconds: number, paced = false): Promise<Measurement[]> {
  const mode = paced ? ['under-load', '--mps', String(SOCKPERF_PACED_PER_SECOND), '--reply-every', '1'] : ['ping-pong'];
  const p = s.start(test, s.hosts.client.ns,
    ['sockperf', ...mode, '-i', s.hosts.server.v4, '-p', String(PORT.sockperf), '-t', String(seconds), '--full-rtt'], seconds + 10);
  await s.succeed(p);
  const out = s.output(p);
  const r = parseSockperf(out);
  if (r === null) {
    // It keeps no observation when too few replies come back in the time (a loaded tunnel
    // that queues for tens of milliseconds): say how slow they were instead.
    const run = /RunTime=([\d.]+) sec.*SentMessages=(\d+); ReceivedMessages=(\d+)/.exec(out);
    if (run !== null && /No valid observations/.test(out)) {
      const [secs, sent, got] = [Number(run[1]), Number(run[2]), Number(run[3])];
      const each = got > 0 ? `, about ${Math.round((secs * 1000) / got)} ms each` : '';
      throw new Error(`${test}: sockperf kept no valid observation: ${got} replies to ${sent} messages in ${secs} s${each}`);
    }
    throw s.failure(p, 'printed no round-trip summary');
  }
  const rtts = [measurement(test, 'rtt_ms', r.avgMs), measurement(test, 'rtt_p50_ms', r.p50Ms), measurement(test, 'rtt_p99_ms', r.p99Ms)];
  return paced ? [...rtts, measurement(test, 'loss_ratio', (r.sent - r.received) / r.sent)] : rtts;
}

/**
 * ping and sockperf on the idle tunnel, then again during an iperf3 TCP stream and
 * during a UDP GSO stream (bench/udp-load.ts), each in the load's direction: from the
 * stream's 2nd second (past slow start) to its last but one, both probes at once
 * (sockperf's small datagrams hardly add to the stream's load). sockperf runs
 * ping-pong, and under the UDP stream paced (SOCKPERF_PACED_PER_SECOND).
 */
async function latencyLoad(s: Session): Promise<LoadResult> {
  const { hosts, opts } = s;
  const measurements: Measurement[] = [];
  const skipped: LoadResult['skipped'] = [];
  // A probe that gets no answer (sockperf finds no valid observation when a loaded tunnel
  // holds its few messages for longer than its warm-up) is a cell that could not be
  // measured, said with its reason; the other probes still count.
  const probe = async (test: string, take: () => Promise<Measurement[]>): Promise<void> => {
    try {
      measurements.push(...await take());
    } catch (err) {
      skipped.push({ test, reason: (err as Error).message }); // a dead daemon: runLoad's check() says so
    }
  };
  const withSockperf = which('sockperf') !== null;
  const loadSeconds = latencyLoadSeconds(opts.seconds);
  await probe('ping-idle', () => ping(s, 'ping-idle', PING_COUNT));
  if (withSockperf) {
    const server = s.start('sockperf-server', hosts.server.ns, ['sockperf', 'server', '-i', hosts.server.v4, '-p', String(PORT.sockperf)],
      expectedSeconds('latency', opts.seconds) + 20);
    await s.listening(server, hosts.server.ns, 'udp', PORT.sockperf);
    await probe('sockperf-idle', () => sockperf(s, 'sockperf-idle', SOCKPERF_IDLE_SECONDS));
  } else {
    const reason = missingToolMessage('sockperf');
    for (const test of ['sockperf-idle', 'sockperf-load', 'sockperf-udp-load']) skipped.push({ test, reason });
  }
  const underLoad = async (suffix: string, pacedSockperf: boolean): Promise<void> => {
    await sleep(1000);
    const probes = [probe(`ping-${suffix}`, () => ping(s, `ping-${suffix}`, Math.round((loadSeconds - 2) / PING_INTERVAL)))];
    if (withSockperf) probes.push(probe(`sockperf-${suffix}`, () => sockperf(s, `sockperf-${suffix}`, loadSeconds - 2, pacedSockperf)));
    await Promise.all(probes);
  };
  const server = iperf3Server(s, 'latency-iperf3-server', PORT.latency, loadSeconds + 20);
  await s.listening(server, hosts.server.ns, 'tcp', PORT.latency);
  const tcp = iperf3Client(s, 'latency-iperf3-client', PORT.latency, loadSeconds, []);
  await underLoad('load', false);
  await s.finish(tcp);
  iperf3Result(s, tcp, false); // the probes under load only count if the stream really ran
  const udp = await startUdpGsoStream(s, 'latency-udp-gso', PORT.latencyUdpGso, loadSeconds);
  await underLoad('udp-load', true);
  await s.succeed(udp.sender);
  await s.succeed(udp.receiver);
  const got = parseUdpLoad(s.output(udp.receiver));
  if (got === null || got.bytes === 0) throw s.failure(udp.receiver, 'received nothing');
  return { measurements, skipped };
}

/**
 * Runs one load on the hosts. Throws Unavailable (a tool is missing), ImplFailed (from
 * hosts.check(): a daemon died, which explains a failing load best), or an Error naming
 * the program that failed, with its log's tail. Every program it started has ended
 * when it returns or throws.
 */
export async function runLoad(load: LoadName, hosts: LoadHosts, opts: LoadOptions): Promise<LoadResult> {
  if (!Number.isInteger(opts.seconds) || opts.seconds < 1) throw new RangeError(`runLoad: seconds must be a whole number >= 1, not ${opts.seconds}`);
  for (const tool of loadTools(load)) requireTool(tool);
  mkdirSync(opts.logDir, { recursive: true });
  hosts.check();
  const session = new Session(hosts, opts);
  try {
    let result: LoadResult;
    switch (load) {
      case 'tcp1': result = await iperf3Load(session, load, []); break;
      case 'tcp4': result = await iperf3Load(session, load, ['-P', '4']); break;
      case 'udp': result = await iperf3Load(session, load, ['-u', '-b', '0', '-l', '1380']); break; // 1408 B with headers: fits MTU 1420
      case 'udp-gso': result = await udpGsoLoad(session); break;
      case 'secnetperf': result = await secnetperfLoad(session); break;
      case 'latency': result = await latencyLoad(session); break;
    }
    hosts.check();
    return result;
  } catch (err) {
    hosts.check();
    throw err;
  } finally {
    await session.stopAll();
  }
}
