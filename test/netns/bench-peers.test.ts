// The many-peers benchmark (bench/peers/run.ts) as a user runs it, small: tundra, 200 idle
// peers, one round, one-second windows. Its report is valid and has every measure, and
// nothing of the run is left; SIGTERM in the middle removes everything and keeps what was
// measured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { leftovers } from '../../bench/e2e/topology.js';
import { parseReport, type Report } from '../../bench/report-schema.js';
import { processesOf, withDir } from '../helpers/bench-run.js';
import { networkTestsUnavailable, waitFor } from '../helpers/netns.js';

const RUN = fileURLToPath(new URL('../../bench/peers/run.js', import.meta.url));
const skip = networkTestsUnavailable(['ip', 'wg', 'ping', 'iperf3', 'ss']);
// --start-timeout: a bound for a hang, which a busy machine's tundra needs.
const SMALL = ['--impl', 'tundra', '--start-timeout', '60', '--rounds', '1', '--peers', '200', '--rss-peers', '200', '--settle-seconds', '1', '--idle-seconds', '1', '--seconds', '1'];

test('a small run measures idle CPU, TCP, RSS and the wg commands with 1 and 201 peers, and leaves nothing', { skip, timeout: 300_000 }, withDir('bench-peers', async (dir) => {
  const r = spawnSync(process.execPath, [RUN, ...SMALL, '--out', dir], { encoding: 'utf8', timeout: 290_000 });
  assert.equal(r.status, 0, `exit 0\n${r.stderr}`);
  const report: Report = parseReport(readFileSync(join(dir, 'report.json'), 'utf8'), 'report.json');
  assert.equal(report.kind, 'e2e');
  assert.equal(report.skipped, undefined, 'nothing skipped');
  const cell = (test: string, peers: number, metric: string) => {
    const found = report.results.filter((x) => x.group === 'peers' && x.impl === 'tundra' && x.test === test && x.params?.['peers'] === peers && x.metric === metric);
    assert.equal(found.length, 1, `${test} with ${peers} peers, ${metric}: ${JSON.stringify(report.results)}`);
    assert.equal(found[0]!.samples.length, 1, 'one round, one sample');
    return found[0]!.median;
  };
  for (const peers of [1, 201]) {
    assert.ok(cell('idle', peers, 'cpu_ticks') >= 0);
    assert.ok(cell('idle', peers, 'cpu_core_pct') >= 0);
    // Measured, not fast: speeds are the benchmark's business, not the suite's.
    assert.ok(cell('tcp1', peers, 'throughput_bps') > 0, `tcp1 with ${peers} peers`);
    assert.ok(cell('tcp1', peers, 'cpu_ns_per_byte') > 0);
    assert.ok(cell('rss', peers, 'rss_bytes') > 10 * 2 ** 20, `a Node.js daemon's RSS with ${peers} peers`);
  }
  for (const test of ['wg-addconf', 'wg-syncconf', 'wg-show-dump']) assert.ok(cell(test, 200, 'seconds') > 0, test);
  assert.equal(report.results.length, 2 * 5 + 3, 'no other cells');

  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  for (const title of ['Idle CPU', 'TCP of the active peer', 'Memory, VmRSS, MiB', 'wg command times, s']) assert.match(md, new RegExp(`^## ${title}$`, 'm'));
  assert.match(md, /^\| 201 \/ 1 \| throughput, ratio \| ×\d+\.\d\d \|$/m);
  assert.ok(r.stdout.startsWith(md), 'the Markdown is printed at the end');
  // The configs it loaded: 200 idle peers with keepalive for the load step, without for the scale step.
  const conf = readFileSync(join(dir, 'logs', 'r1-load-tundra', 'idle-peers.conf'), 'utf8');
  assert.equal(conf.match(/^PersistentKeepalive = 25$/gm)?.length, 200);
  assert.doesNotMatch(readFileSync(join(dir, 'logs', 'r1-scale-200-tundra', 'addconf-200.conf'), 'utf8'), /PersistentKeepalive/);

  assert.deepEqual(leftovers(report.run.id), []);
  assert.deepEqual(processesOf(report.run.id), []);
}));

test('SIGTERM during a step: exit 143, its namespaces and daemons removed, the partial report written', { skip, timeout: 240_000 }, withDir('bench-peers', async (dir) => {
  const child = spawn(process.execPath, [RUN, ...SMALL, '--settle-seconds', '30', '--out', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let runId = '';
  try {
    // Up, and waiting out the settle time before the first idle window.
    await waitFor('the p2p topology to be up', () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${err}`);
      runId = /p2p up with tundra \(run (\w{4})\)/.exec(err)?.[1] ?? '';
      return runId !== '';
    }, 150_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  assert.equal(leftovers(runId).length, 2, 'its two namespaces while up');
  child.kill('SIGTERM');
  assert.equal(await exit, 143, err);
  assert.match(err, new RegExp(`interrupted; run ${runId}'s namespaces and daemons are removed`));
  assert.deepEqual(leftovers(runId), []);
  assert.deepEqual(processesOf(runId), []);
  assert.ok(existsSync(join(dir, 'report.json')));
  assert.deepEqual(parseReport(readFileSync(join(dir, 'report.json'), 'utf8'), 'report.json').results, []);
}));
