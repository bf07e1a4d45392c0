// bench/peers: what a command line asks the many-peers runner to measure, the idle peers'
// configuration and `wg show dump` read back, /proc's VmRSS, and the report as Markdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TUNDRA_MAIN } from '../../bench/e2e/impls.js';
import { peersMarkdown } from '../../bench/peers/markdown.js';
import { checkDump, confPeerKeys, dumpPeerKeys, makePeers, parseVmRss, peerConf, peersConf } from '../../bench/peers/peers.js';
import { parsePeersPlan, peerSteps, UsageError, type PeersPlan } from '../../bench/peers/plan.js';
import { parseReport, SCHEMA, summarize, type Report, type Result } from '../../bench/report-schema.js';

const UPSTREAM = { TUNDRA_UPSTREAM_WIREGUARD_GO: '/opt/wg-go' };

const plan = (argv: string[], env: NodeJS.ProcessEnv = {}): PeersPlan => {
  const p = parsePeersPlan(argv, env);
  assert.notEqual(p, 'help');
  return p as PeersPlan;
};

test('the default run: tundra and upstream wireguard-go (the reference), every measure, 3 rounds, 2,000 idle peers', () => {
  const p = plan([], UPSTREAM);
  assert.deepEqual(p.impls.map((i) => [i.label, i.argv]), [
    ['tundra', [process.execPath, TUNDRA_MAIN, '-f', '%IF%']], ['wireguard-go-upstream', ['/opt/wg-go', '-f', '%IF%']]]);
  assert.deepEqual(p.unavailable, []);
  assert.deepEqual([p.measures, p.rounds, p.peers, p.rssPeers, p.settleSeconds, p.idleSeconds, p.seconds, p.reference, p.startTimeoutMs, p.out],
    [['idle', 'tcp', 'rss', 'wg'], 3, 2000, [1000, 10_000], 12, 5, 5, 'wireguard-go-upstream', 10_000, undefined]);
});

test('without TUNDRA_UPSTREAM_WIREGUARD_GO the default upstream is skipped, saying how to name it; asked for by name it is a usage error', () => {
  const p = plan([]);
  assert.deepEqual(p.impls.map((i) => i.label), ['tundra']);
  assert.deepEqual(p.unavailable, [{
    label: 'wireguard-go-upstream', reason: 'wireguard-go-upstream: not measured: name its binary with TUNDRA_UPSTREAM_WIREGUARD_GO=PATH',
  }]);
  assert.equal(p.reference, undefined);
  assert.throws(() => parsePeersPlan(['--impl', 'wireguard-go-upstream'], {}), (e: unknown) => e instanceof UsageError && /TUNDRA_UPSTREAM_WIREGUARD_GO=PATH/.test(e.message));
});

test('options: --impl as npm run bench, --only in a fixed order, --skip-tcp, the counts and windows, --reference, --out', () => {
  const p = plan(['--impl', 'tundra', '--impl', 'wg-new=env GOGC=50 /opt/wg -f %IF%', '--only', 'wg,idle', '--rounds', '5', '--peers', '200',
    '--rss-peers', '10000, 500,500', '--settle-seconds', '1', '--idle-seconds', '2', '--seconds', '3', '--reference', 'wg-new',
    '--start-timeout', '4', '--out', '/tmp/x']);
  assert.deepEqual(p.impls.map((i) => [i.label, i.argv, i.env]), [
    ['tundra', [process.execPath, TUNDRA_MAIN, '-f', '%IF%'], {}], ['wg-new', ['/opt/wg', '-f', '%IF%'], { GOGC: '50' }]]);
  assert.deepEqual([p.measures, p.rounds, p.peers, p.rssPeers, p.settleSeconds, p.idleSeconds, p.seconds, p.reference, p.startTimeoutMs, p.out],
    [['idle', 'wg'], 5, 200, [500, 10_000], 1, 2, 3, 'wg-new', 4000, '/tmp/x']);
  assert.deepEqual(plan(['--skip-tcp']).measures, ['idle', 'rss', 'wg']);
  assert.equal(plan(['--impl', 'tundra', '--impl', 'wireguard-go']).reference, undefined, 'no upstream, no reference unless named');
  assert.equal(parsePeersPlan(['--help'], {}), 'help');
});

test('bad command lines are refused, naming the flag and what would do', () => {
  const refused: [string[], RegExp][] = [
    [['--only', 'idle,cpu'], /^--only: cpu is not one of idle, tcp, rss, wg$/],
    [['--only', ','], /^--only: empty list/],
    [['--only', 'idle', '--skip-tcp'], /^--only and --skip-tcp: give one of them$/],
    [['--peers', '0'], /^--peers 0: a whole number from 1 to 20000$/],
    [['--peers', '20001'], /^--peers 20001: a whole number from 1 to 20000$/],
    [['--rss-peers', '1000,x'], /^--rss-peers x: a whole number/],
    [['--rss-peers', ''], /^--rss-peers: empty list/],
    [['--rounds', '0'], /^--rounds 0: a whole number from 1 to 100$/],
    [['--idle-seconds', '0.5'], /^--idle-seconds 0\.5: a whole number/],
    [['--settle-seconds', '0'], /^--settle-seconds 0: a whole number from 1 to 600$/],
    [['--impl', 'kernel'], /^--impl kernel: the kernel has no daemon/],
    [['--impl', 'tundra', '--impl', 'tundra'], /tundra is given twice/],
    [['--impl', 'tundra', '--reference', 'wireguard-go'], /^--reference wireguard-go: not one of the implementations \(tundra\)$/],
    [['--impl', 'wg=wireguard-go -f'], /the command has no %IF%/],
    [['--topology', 'p2p'], /Unknown option '--topology'/],
  ];
  for (const [argv, message] of refused) {
    assert.throws(() => parsePeersPlan(argv, {}), (e: unknown) => e instanceof UsageError && message.test(e.message), argv.join(' '));
  }
});

test('steps: per round the load step and a scale step per --rss-peers count, the implementations alternating in each', () => {
  const name = (p: PeersPlan): string[] => peerSteps(p).map((s) => `${s.index}:${s.round}:${s.step.kind === 'load' ? 'load' : s.step.peers}:${s.impl.label}`);
  assert.deepEqual(name(plan(['--rounds', '2', '--rss-peers', '10,20'], UPSTREAM)), [
    '1:1:load:tundra', '2:1:load:wireguard-go-upstream', '3:1:10:tundra', '4:1:10:wireguard-go-upstream', '5:1:20:tundra', '6:1:20:wireguard-go-upstream',
    '7:2:load:tundra', '8:2:load:wireguard-go-upstream', '9:2:10:tundra', '10:2:10:wireguard-go-upstream', '11:2:20:tundra', '12:2:20:wireguard-go-upstream',
  ]);
  assert.deepEqual(name(plan(['--only', 'tcp', '--rounds', '1'])), ['1:1:load:tundra']);
  assert.deepEqual(name(plan(['--only', 'wg', '--rounds', '1', '--rss-peers', '5'])), ['1:1:5:tundra']);
});

test('idle peers: a random key each, an endpoint and a /32 of their own, keepalive only when asked', () => {
  const peers = makePeers(1, 600);
  assert.equal(new Set(peers.map((p) => p.publicKey)).size, 600);
  for (const p of peers) assert.equal(Buffer.from(p.publicKey, 'base64').length, 32);
  assert.equal(peerConf({ publicKey: 'K=', k: 258 }, 25),
    '[Peer]\nPublicKey = K=\nEndpoint = 198.19.1.2:51820\nAllowedIPs = 100.96.129.2/32\nPersistentKeepalive = 25\n');
  const text = peersConf(peers);
  assert.doesNotMatch(text, /PersistentKeepalive/);
  const endpoints = [...text.matchAll(/^Endpoint = (198\.19\.\d+\.\d+):51820$/gm)].map((m) => m[1]);
  const allowed = [...text.matchAll(/^AllowedIPs = (100\.96\.(\d+)\.\d+)\/32$/gm)];
  assert.equal(new Set(endpoints).size, 600);
  assert.equal(new Set(allowed.map((m) => m[1])).size, 600);
  assert.ok(allowed.every((m) => Number(m[2]) >= 128), 'in 100.96.128.0/17');
  assert.deepEqual(confPeerKeys(`[Interface]\nPrivateKey = P=\nListenPort = 1\n\n[Peer]\nPublicKey = A=\n\n${text}`),
    ['A=', ...peers.map((p) => p.publicKey)]);
  assert.throws(() => peerConf({ publicKey: 'K=', k: 0 }, undefined), RangeError);
  assert.throws(() => peerConf({ publicKey: 'K=', k: 32_767 }, undefined), RangeError);
});

test('wg show dump: the peers after the interface line; checkDump says what is missing or extra', () => {
  const dump = 'priv\tpub\t51820\toff\nA=\t(none)\t198.18.0.2:51821\t100.96.0.2/32\t0\t0\t0\toff\nB=\t(none)\t(none)\t100.96.128.1/32\t0\t0\t0\t25\n';
  assert.deepEqual(dumpPeerKeys(dump), ['A=', 'B=']);
  assert.doesNotThrow(() => checkDump(dump, ['B=', 'A=']));
  assert.throws(() => checkDump(dump, ['A=', 'B=', 'C=']), /^Error: wg show dump lists 2 peers, expected 3 \(1 missing, 0 not configured\)$/);
  assert.throws(() => checkDump(dump, ['A=', 'C=']), /lists 2 peers, expected 2 \(1 missing, 1 not configured\)/);
  assert.throws(() => checkDump('', []), /printed nothing/);
});

test('VmRSS from /proc/PID/status, in bytes', () => {
  assert.equal(parseVmRss('Name:\tnode\nVmHWM:\t  90000 kB\nVmRSS:\t   81234 kB\nRssAnon:\t 1 kB\n'), 81234 * 1024);
  assert.throws(() => parseVmRss('Name:\tkthreadd\n'), /no VmRSS/);
});

function r(impl: string, test: string, peers: number, metric: string, unit: string, samples: number[], extra: { [k: string]: number } = {}): Result {
  return { group: 'peers', impl, test, params: { peers, ...extra }, metric, unit, better: metric === 'throughput_bps' ? 'higher' : 'lower', samples, ...summarize(samples) };
}

function report(results: Result[], reference?: string): Report {
  return {
    schema: SCHEMA, kind: 'e2e',
    run: { id: 'ab12', started: '2025-05-01T12:00:00.000Z', command: 'npm run bench:peers', host: { kernel: '6.1.0', cpus: 2, node: 'v20.19.0' } },
    ...(reference === undefined ? {} : { reference }),
    results,
    skipped: [{ group: 'peers', impl: 'wg-go', test: 'load', reason: 'round 2: wg-go: the daemon of tdrbab12a exited (status 2)\n(log: boom)' }],
  };
}

test('Markdown: a table per measure, implementations as columns, ratios to the reference and of 2,001 to 1 peer', () => {
  const results = [
    r('tundra', 'idle', 1, 'cpu_ticks', 'ticks', [4, 2, 3], { seconds: 5 }),
    r('tundra', 'idle', 2001, 'cpu_ticks', 'ticks', [80, 90, 83], { seconds: 5 }),
    r('tundra', 'idle', 2001, 'cpu_core_pct', '%', [16, 18, 16.6], { seconds: 5 }),
    r('wg-go', 'idle', 2001, 'cpu_ticks', 'ticks', [30, 32, 40], { seconds: 5 }),
    r('tundra', 'tcp1', 1, 'throughput_bps', 'bit/s', [1000e6, 1019e6, 1100e6]),
    r('tundra', 'tcp1', 2001, 'throughput_bps', 'bit/s', [751e6, 700e6, 800e6]),
    r('wg-go', 'tcp1', 1, 'throughput_bps', 'bit/s', [1590e6]),
    r('wg-go', 'tcp1', 2001, 'throughput_bps', 'bit/s', [1625e6]),
    r('tundra', 'rss', 10_001, 'rss_bytes', 'B', [200 * 2 ** 20]),
    r('tundra', 'rss', 1, 'rss_bytes', 'B', [80 * 2 ** 20]),
    r('tundra', 'wg-syncconf', 1000, 'seconds', 's', [0.5]),
    r('tundra', 'wg-addconf', 1000, 'seconds', 's', [0.29]),
    r('wg-go', 'wg-addconf', 1000, 'seconds', 's', [0.55]),
    r('tundra', 'wg-addconf', 10_000, 'seconds', 's', [12.34]),
  ];
  const md = peersMarkdown(report(results, 'wg-go'));
  // The report the runner writes is a valid tundra-bench/1 report.
  assert.equal(parseReport(JSON.stringify(report(results, 'wg-go')), 'test').results.length, results.length);
  assert.match(md, /^# tundra with many peers\n\n2025-05-01 12:00 UTC · Linux 6\.1\.0, 2 CPUs, Node v20\.19\.0 · 1–3 rounds · run ab12: `npm run bench:peers`\n/);
  assert.match(md, /× is its ratio to the reference's \(wg-go\)/);
  const table = (title: string): string => {
    const at = md.indexOf(`## ${title}\n`);
    assert.ok(at >= 0, `section ${title} in\n${md}`);
    const rest = md.slice(at + 1);
    const end = rest.indexOf('\n## ');
    return end < 0 ? rest : rest.slice(0, end);
  };
  assert.match(table('Idle CPU'), /Window 5 s\.\n\n\| peers \| metric \| tundra \| wg-go \(ref\) \|\n\| --- \| --- \| ---: \| ---: \|\n/);
  assert.match(table('Idle CPU'), /\| 1 \| CPU, ticks \| 3 \(2–4\) \| – \|\n\| 2,001 \| CPU, ticks \| 83 \(80–90\) ×2\.59 \| 32 \(30–40\) \|\n\| 2,001 \| CPU, % of a core \| 16\.6 \(16\.0–18\.0\) \| – \|\n/);
  assert.match(table('TCP of the active peer'),
    /\| 1 \| throughput, Mbit\/s \| 1,019 \(1,000–1,100\) ×0\.64 \| 1,590 \|\n\| 2,001 \| throughput, Mbit\/s \| 751 \(700–800\) ×0\.46 \| 1,625 \|\n\| 2,001 \/ 1 \| throughput, ratio \| ×0\.74 \| ×1\.02 \|\n/);
  assert.match(table('Memory, VmRSS, MiB'), /\| peers \| tundra \|\n\| --- \| ---: \|\n\| 1 \| 80\.0 \|\n\| 10,001 \| 200\.0 \|\n/);
  assert.match(table('wg command times, s'),
    /\| command \| peers \| tundra \| wg-go \(ref\) \|\n\| --- \| --- \| ---: \| ---: \|\n\| wg addconf \| 1,000 \| 0\.290 ×0\.53 \| 0\.550 \|\n\| wg addconf \| 10,000 \| 12\.3 \| – \|\n\| wg syncconf \| 1,000 \| 0\.500 \| – \|\n/);
  assert.match(md, /## Skipped\n\n- wg-go, load: round 2: wg-go: the daemon of tdrbab12a exited \(status 2\) \/ \(log: boom\)\n$/);
});

test('Markdown: no reference, no ratios; a measure with no results has no table', () => {
  const md = peersMarkdown(report([r('tundra', 'rss', 1, 'rss_bytes', 'B', [2 ** 20]), r('x', 'rss', 1, 'rss_bytes', 'B', [2 ** 21])]));
  assert.doesNotMatch(md, /×/);
  assert.match(md, /\| 1 \| 1\.0 \| 2\.0 \|/);
  for (const title of ['Idle CPU', 'TCP of the active peer', 'wg command times']) assert.doesNotMatch(md, new RegExp(`## ${title}`));
  assert.match(peersMarkdown(report([])), /\n\nNo results\.\n/);
});
