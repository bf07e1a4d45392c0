// The soak (bench/soak/run.ts) as a user runs it, short: 30 s of TCP transfers and UDP
// both ways with keys rotated every 5 s. Every transfer arrives byte-exact, the keys
// rotate, each daemon is sampled, and nothing of the run is left. No speed is judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { leftovers } from '../../bench/e2e/topology.js';
import { rotations, type SoakResult } from '../../bench/soak/report.js';
import { processesOf, withDir } from '../helpers/bench-run.js';
import { networkTestsUnavailable } from '../helpers/netns.js';

const RUN = fileURLToPath(new URL('../../bench/soak/run.js', import.meta.url));
const skip = networkTestsUnavailable(['ip', 'wg', 'ping']);
// RSS is left out of the verdict (a short run on a busy machine is all warm-up); fds, threads and handles are not.
const SHORT = ['--minutes', '0.5', '--rekey-seconds', '5', '--sample-seconds', '5', '--warmup-seconds', '10',
  '--tcp-mbits', '40', '--transfer-mib', '4', '--udp-mbits', '2', '--rss-bound-mib', '1024'];

test('a short soak: transfers both ways byte-exact across key rotations, the daemons sampled, nothing left', { skip, timeout: 180_000 }, withDir('bench-soak', async (dir) => {
  const r = spawnSync(process.execPath, [RUN, ...SHORT, '--out', dir], { encoding: 'utf8', timeout: 170_000 });
  assert.equal(r.status, 0, `exit 0\n${r.stdout}\n${r.stderr}`);
  const result = JSON.parse(readFileSync(join(dir, 'samples.json'), 'utf8')) as SoakResult;
  assert.deepEqual(result.errors, []);
  assert.deepEqual(result.directions.map((d) => d.label), ['a → b', 'b → a']);
  for (const d of result.directions) {
    assert.ok(d.tcpSent >= 1, `${d.label}: TCP transfers completed`);
    assert.equal(d.tcpReceived, d.tcpSent, `${d.label}: every transfer arrived`);
    assert.deepEqual(d.tcpMismatched, [], `${d.label}: same size and SHA-256 at both ends`);
    assert.ok(d.udp !== undefined && d.udp.received > 0 && d.udp.corrupt === 0, `${d.label}: UDP ${JSON.stringify(d.udp)}`);
  }
  // Keys rotate every 5 s by the knob; the default (120 s) would give none in 30 s.
  assert.ok(rotations(result.samples) >= 3, `rotations: ${rotations(result.samples)}`);
  assert.ok(result.samples.length >= 4, `${result.samples.length} samples`);
  for (const s of result.samples) {
    for (const p of [s.a, s.b]) {
      assert.ok(p.rssBytes > 10 * 2 ** 20 && p.fds > 0 && p.threads > 1 && p.handles > 0, JSON.stringify(p));
    }
  }
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  assert.match(md, /^\*\*Verdict: PASS\*\*/m);
  for (const title of ['Transfers', 'Key rotation', 'Daemons']) assert.match(md, new RegExp(`^## ${title}$`, 'm'));
  assert.match(md, /^\| a \| open fds \| \d+ \| \d+ \| \d+ \| \d+ \| 0 \| 0 \|$/m);
  assert.ok(r.stdout.startsWith(md), 'the report is printed');
  assert.match(readFileSync(join(dir, 'logs', 'metrics-a.txt'), 'utf8'), /^tundra_handshake_responses_received_total \d+$/m, 'the last metrics kept');
  assert.deepEqual(leftovers(result.runId), []);
  assert.deepEqual(processesOf(result.runId), []);
}));
