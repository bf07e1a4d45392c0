// `npm run bench:peers` (as root): what thousands of configured peers cost a WireGuard
// daemon, tundra beside upstream wireguard-go, in the p2p topology of bench/e2e (two
// namespaces, one tunnel, the implementation at both ends). Side a (the client) gets the
// extra idle peers; its daemon is the one measured. See plan.ts's USAGE for the measures.
//
// Exit status as npm run bench: 0 every cell ran or was skipped for a reason outside the
// implementations; 1 an implementation or a measure failed (said, and in the report's
// skipped list); 2 bad usage or not root; 130/143 interrupted (namespaces and daemons
// removed, the partial reports written).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { newRun, planOrStatus } from '../cli.js';
import { cellKey, runInfo, SCHEMA, summarize, type Report, type Result, type Skipped } from '../report-schema.js';
import { ImplFailed, Unavailable } from '../e2e/errors.js';
import { implProblem } from '../e2e/impls.js';
import { runLoad } from '../e2e/loads.js';
import { missingToolMessage, which } from '../e2e/tools.js';
import { downAllSync, Topology } from '../e2e/topology.js';
import { GROUP, peersMarkdown } from './markdown.js';
import { checkDump, confPeerKeys, idleCpu, idleEndpointRoutes, makePeers, peersConf, rssBytes, timed } from './peers.js';
import { parsePeersPlan, peerSteps, USAGE, type PeersPlan, type PeersStep } from './plan.js';

const BASE_TOOLS = ['ip', 'wg', 'ping'];
/** Seconds RSS is read after the peers are added (no keepalive: nothing else is going on). */
const RSS_SETTLE_SECONDS = 3;
/** The idle peers' persistent keepalive in the load step: each sends an initiation at once. */
const KEEPALIVE = 25;
/**
 * How long one `wg` call may take: 20 s and 10 ms a peer of the plan (50× upstream
 * wireguard-go's addconf), so a stuck call fails the run with its command line well
 * before a caller's own timeout, and 10,000 slow peers still fit.
 */
const wgTimeoutMs = (plan: PeersPlan): number => 20_000 + 10 * Math.max(plan.peers, ...plan.rssPeers);

interface Value { test: string; params: { [k: string]: number }; metric: string; unit: string; better: 'higher' | 'lower'; value: number }

/** The samples of every (cell, impl), in the order first measured. */
class Results {
  private readonly cells = new Map<string, Omit<Result, 'median' | 'min' | 'max'>>();
  readonly skipped: Skipped[] = [];
  failures = 0;

  add(impl: string, v: Value): void {
    const key = `${cellKey({ group: GROUP, ...v })}\0${impl}`;
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = { group: GROUP, impl, test: v.test, params: v.params, metric: v.metric, unit: v.unit, better: v.better, samples: [] };
      this.cells.set(key, cell);
    }
    cell.samples.push(v.value);
  }

  /** Said once per (impl, test, reason). */
  skip(s: Skipped): boolean {
    if (this.skipped.some((o) => o.impl === s.impl && o.test === s.test && o.reason === s.reason)) return false;
    this.skipped.push(s);
    return true;
  }

  list(): Result[] {
    return [...this.cells.values()].map((c) => ({ ...c, ...summarize(c.samples) }));
  }
}

const say = (line: string): void => { process.stderr.write(`${line}\n`); };

function writeReports(dir: string, report: Report): void {
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, 'report.md'), peersMarkdown(report));
}

/** One step: its topology, side a's daemon and interface, and where its files go. */
interface Ctx {
  plan: PeersPlan;
  step: PeersStep;
  results: Results;
  topology: Topology;
  pid: number;
  ns: string;
  dev: string;
  logDir: string;
}

function wg(ctx: Ctx, args: string[]): string {
  return ctx.topology.exec(ctx.ns, ['wg', ...args], wgTimeoutMs(ctx.plan));
}

function routeIdleEndpoints(ctx: Ctx): void {
  const routes = idleEndpointRoutes();
  ctx.topology.exec(ctx.ns, routes.client);
  ctx.topology.exec(ctx.topology.server.ns, routes.peer);
}

/** wg show dump lists the active peer and these, and nothing else. */
function expectPeers(ctx: Ctx, keys: readonly string[]): void {
  checkDump(wg(ctx, ['show', ctx.dev, 'dump']), keys);
}

async function measureIdle(ctx: Ctx, peers: number): Promise<void> {
  const { ticks, corePct } = await idleCpu(ctx.pid, ctx.plan.idleSeconds);
  ctx.topology.check(); // a daemon that died in the window used no CPU: not a result
  const params = { peers, seconds: ctx.plan.idleSeconds };
  ctx.results.add(ctx.step.impl.label, { test: 'idle', params, metric: 'cpu_ticks', unit: 'ticks', better: 'lower', value: ticks });
  ctx.results.add(ctx.step.impl.label, { test: 'idle', params, metric: 'cpu_core_pct', unit: '%', better: 'lower', value: corePct });
}

async function measureTcp(ctx: Ctx, peers: number): Promise<void> {
  const r = await runLoad('tcp1', ctx.topology, { seconds: ctx.plan.seconds, reverse: false, logDir: join(ctx.logDir, `tcp1-${peers}`) });
  for (const m of r.measurements) {
    if (m.metric !== 'throughput_bps' && m.metric !== 'cpu_ns_per_byte') continue;
    ctx.results.add(ctx.step.impl.label, { test: 'tcp1', params: { peers }, metric: m.metric, unit: m.unit, better: m.better, value: m.value });
  }
}

/** Idle CPU and TCP with the active peer alone, then with plan.peers idle peers beside it. */
async function loadStep(ctx: Ctx): Promise<void> {
  const { plan } = ctx;
  const idle = plan.measures.includes('idle');
  const tcp = plan.measures.includes('tcp');
  // The 1-peer figures after the same wait as the many-peer ones: the first handshake's work is over.
  await sleep(plan.settleSeconds * 1000);
  if (idle) await measureIdle(ctx, 1);
  if (tcp) await measureTcp(ctx, 1);
  const base = confPeerKeys(wg(ctx, ['showconf', ctx.dev]));
  const extra = makePeers(1, plan.peers);
  const file = join(ctx.logDir, 'idle-peers.conf');
  writeFileSync(file, peersConf(extra, KEEPALIVE));
  routeIdleEndpoints(ctx);
  wg(ctx, ['addconf', ctx.dev, file]);
  expectPeers(ctx, [...base, ...extra.map((p) => p.publicKey)]);
  await sleep(plan.settleSeconds * 1000);
  if (idle) await measureIdle(ctx, plan.peers + 1);
  if (tcp) await measureTcp(ctx, plan.peers + 1);
}

/** RSS and wg command times: N idle peers added to the active one, then half replaced. */
async function scaleStep(ctx: Ctx, n: number): Promise<void> {
  const { plan, results } = ctx;
  const impl = ctx.step.impl.label;
  const rss = plan.measures.includes('rss');
  const times = plan.measures.includes('wg');
  const add = (test: string, value: number): void => results.add(impl, { test, params: { peers: n }, metric: 'seconds', unit: 's', better: 'lower', value });
  const rssSettle = Math.min(RSS_SETTLE_SECONDS, plan.settleSeconds) * 1000;
  const baseConf = wg(ctx, ['showconf', ctx.dev]);
  const base = confPeerKeys(baseConf);
  // The 1-peer RSS once a round: in the first (smallest) scale step.
  if (rss && n === plan.rssPeers[0]) {
    await sleep(rssSettle);
    results.add(impl, { test: 'rss', params: { peers: base.length }, metric: 'rss_bytes', unit: 'B', better: 'lower', value: rssBytes(ctx.pid) });
  }
  const peers = makePeers(1, n);
  const addFile = join(ctx.logDir, `addconf-${n}.conf`);
  writeFileSync(addFile, peersConf(peers));
  routeIdleEndpoints(ctx);
  const addconf = timed(() => wg(ctx, ['addconf', ctx.dev, addFile]));
  if (times) add('wg-addconf', addconf);
  await sleep(rssSettle);
  ctx.topology.check();
  if (rss) results.add(impl, { test: 'rss', params: { peers: base.length + n }, metric: 'rss_bytes', unit: 'B', better: 'lower', value: rssBytes(ctx.pid) });
  let dump = '';
  const show = timed(() => { dump = wg(ctx, ['show', ctx.dev, 'dump']); });
  checkDump(dump, [...base, ...peers.map((p) => p.publicKey)]);
  if (!times) return;
  add('wg-show-dump', show);
  // The first half stays as it is, the second half gives way to as many new peers.
  const kept = peers.slice(0, Math.floor(n / 2));
  const fresh = makePeers(n + 1, n - kept.length);
  const syncFile = join(ctx.logDir, `syncconf-${n}.conf`);
  // showconf's text carries the interface's private key.
  writeFileSync(syncFile, `${baseConf.trimEnd()}\n\n${peersConf([...kept, ...fresh])}`, { mode: 0o600 });
  add('wg-syncconf', timed(() => wg(ctx, ['syncconf', ctx.dev, syncFile])));
  expectPeers(ctx, [...base, ...kept.map((p) => p.publicKey), ...fresh.map((p) => p.publicKey)]);
}

function stepName(s: PeersStep): string {
  return s.step.kind === 'load' ? 'load' : `scale-${s.step.peers}`;
}

async function runStep(plan: PeersPlan, step: PeersStep, total: number, runId: string, dir: string, results: Results): Promise<void> {
  const impl = step.impl.label;
  const what = step.step.kind === 'load' ? `idle/tcp, 1 and ${plan.peers + 1} peers` : `rss/wg, ${step.step.peers} peers`;
  say(`[${step.index}/${total}] round ${step.round} · ${impl} · ${what}`);
  const logDir = join(dir, 'logs', `r${step.round}-${stepName(step)}-${impl}`);
  let topology: Topology;
  try {
    topology = await Topology.up({ name: 'p2p', runId, impl: step.impl, logDir, startTimeoutMs: plan.startTimeoutMs, log: say });
  } catch (e) {
    if (!(e instanceof Unavailable || e instanceof ImplFailed)) throw e;
    if (e instanceof ImplFailed) results.failures++;
    if (results.skip({ group: GROUP, impl, reason: e.message })) say(`${impl}: skipped: ${e.message}`);
    return;
  }
  try {
    const pid = topology.daemonPids().client;
    if (pid === null) throw new ImplFailed(`${impl}: no daemon process on side a`);
    const ctx: Ctx = { plan, step, results, topology, pid, ns: topology.client.ns, dev: topology.interfaceNames().client, logDir };
    if (step.step.kind === 'load') await loadStep(ctx);
    else await scaleStep(ctx, step.step.peers);
  } catch (e) {
    // A dead daemon explains a failed measure best.
    let err = e as Error;
    try {
      topology.check();
    } catch (dead) {
      err = dead as Error;
    }
    const test = stepName(step);
    if (err instanceof Unavailable) {
      if (results.skip({ group: GROUP, impl, test, reason: err.message })) say(`${impl} · ${test}: skipped: ${err.message}`);
    } else {
      results.failures++;
      const reason = `round ${step.round}: ${err.message}`;
      results.skip({ group: GROUP, impl, test, reason });
      say(`${impl} · ${test}: FAILED: ${reason}`);
    }
  } finally {
    await topology.down();
  }
}

async function main(argv: string[]): Promise<number> {
  const plan = planOrStatus(argv, parsePeersPlan, USAGE, 'bench:peers', 'it makes network namespaces and needs root: run it with sudo');
  if (typeof plan === 'number') return plan;
  const tools = [...BASE_TOOLS, ...(plan.measures.includes('tcp') ? ['iperf3', 'ss'] : [])];
  const missing = tools.filter((t) => which(t) === null);
  if (missing.length > 0) {
    for (const t of missing) process.stderr.write(`bench:peers: ${missingToolMessage(t)}\n`);
    return 2;
  }

  const { runId, started, dir } = newRun('peers', plan.out);
  const results = new Results();
  const command = argv.length === 0 ? 'npm run bench:peers' : ['npm run bench:peers --', ...argv].join(' ');
  const p = plan;
  const report = (): Report => ({
    schema: SCHEMA,
    kind: 'e2e',
    run: { ...runInfo(runId, command), started: started.toISOString() },
    ...(p.reference === undefined ? {} : { reference: p.reference }),
    results: results.list(),
    ...(results.skipped.length === 0 ? {} : { skipped: results.skipped }),
  });

  for (const u of plan.unavailable) {
    results.skip({ group: GROUP, impl: u.label, reason: u.reason });
    say(`bench:peers: skipping ${u.reason}`);
  }
  const impls = plan.impls.filter((impl) => {
    const problem = implProblem(impl);
    if (problem === undefined) return true;
    results.skip({ group: GROUP, impl: impl.label, reason: problem });
    say(`bench:peers: skipping ${problem}`);
    return false;
  });
  const todo = peerSteps({ ...plan, impls });
  process.on('exit', downAllSync);
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      downAllSync();
      writeReports(dir, report());
      say(`bench:peers: interrupted; run ${runId}'s namespaces and daemons are removed; what was measured so far is in ${dir}`);
      process.exit(status);
    });
  }
  say(`bench:peers: run ${runId}: ${todo.length} steps (${plan.rounds} rounds × ${impls.map((i) => i.label).join(', ') || 'no implementation'}), ` +
    `measures ${plan.measures.join(', ')}; logs in ${dir}`);
  for (const step of todo) await runStep(plan, step, todo.length, runId, dir, results);

  const final = report();
  writeReports(dir, final);
  process.stdout.write(`${peersMarkdown(final)}\n`);
  process.stdout.write(`reports: ${join(dir, 'report.json')}, report.md (logs in ${join(dir, 'logs')})\n`);
  if (results.failures > 0) say(`bench:peers: ${results.failures} failure(s); see the skipped list above and the logs`);
  return results.failures > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
