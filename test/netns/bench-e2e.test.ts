// The end-to-end benchmark runner (bench/e2e/run.ts) as a user runs it: a short real run
// with implementations that fail in each way the runner must report (exits with an
// error, never makes its interface, a missing binary, a missing tool), and Ctrl-C in the middle
// of a load. After each, nothing of the run is left: no namespace, link or daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseReport, type Report } from '../../bench/report-schema.js';
import { leftovers } from '../../bench/e2e/topology.js';
import { processesOf, withDir } from '../helpers/bench-run.js';
import { networkTestsUnavailable } from '../helpers/netns.js';

const RUN = fileURLToPath(new URL('../../bench/e2e/run.js', import.meta.url));
const FAKE = fileURLToPath(new URL('../../../test/helpers/bench-fake-impl.sh', import.meta.url));
const skip = networkTestsUnavailable(['ip', 'wg', 'ping', 'iperf3']);

// No timing assertions (the suite passes on a busy machine): --start-timeout 30 is a bound for a hang, which a busy
// machine's tundra needs (the default 10 s was seen to fall short under load); 'never' is
// skipped after it either way, and this test is about why the others are skipped. Throughput only has to be measured, not fast (that is
// the benchmark's business); the other bounds are for hangs.
test('a short run measures tundra and skips, with the reason, an impl that fails, one that never makes its interface, a missing binary and a missing tool', { skip, timeout: 300_000 }, withDir('bench-e2e', async (dir) => {
  const r = spawnSync(process.execPath, [
    RUN, '--topology', 'p2p', '--load', 'tcp1,secnetperf', '--rounds', '1', '--seconds', '2', '--start-timeout', '30',
    '--impl', 'tundra', '--impl', `never=sh ${FAKE} never %IF%`, '--impl', `fail=sh ${FAKE} fail %IF%`,
    '--impl', 'ghost=no-such-wireguard-xyz -f %IF%', '--out', dir,
  ], { encoding: 'utf8', timeout: 290_000 });
  assert.equal(r.status, 1, `exit 1: two implementations failed\n${r.stderr}`);
  const report: Report = parseReport(readFileSync(join(dir, 'report.json'), 'utf8'), 'report.json');
  assert.equal(report.kind, 'e2e');
  const cell = (metric: string) => report.results.find((x) => x.group === 'p2p' && x.impl === 'tundra' && x.test === 'tcp1' && x.metric === metric);
  const tput = cell('throughput_bps');
  assert.ok(tput !== undefined && tput.samples.length === 1 && tput.median > 0, `tundra's tcp1 throughput: ${JSON.stringify(tput)}; skipped: ${JSON.stringify(report.skipped)}`);
  assert.ok((cell('cpu_ns_per_byte')?.median ?? 0) > 0, 'tundra CPU per byte');
  assert.deepEqual(report.results.filter((x) => x.impl !== 'tundra'), [], 'only tundra measured');

  const reason = (impl: string, test?: string) => report.skipped?.find((s) => s.impl === impl && s.test === test)?.reason ?? '';
  assert.match(reason('never'), /^never: did not create tdrb\w{4}a/);
  assert.match(reason('fail'), /^fail: exited \(status 4\).*cannot open \/dev\/net\/tun/s);
  assert.match(reason('ghost'), /no-such-wireguard-xyz is not on PATH/);
  if (spawnSync('sh', ['-c', 'command -v secnetperf']).status !== 0) assert.match(reason('*', 'secnetperf'), /secnetperf is not on PATH: it is not packaged/);
  assert.match(r.stderr, /skipping ghost: no-such-wireguard-xyz is not on PATH/);

  const markdown = readFileSync(join(dir, 'report.md'), 'utf8');
  assert.equal(r.stdout.includes(markdown.trim()), true, 'the Markdown table is printed');
  assert.match(markdown, /tundra/);
  assert.match(readFileSync(join(dir, 'chart.svg'), 'utf8'), /^(<\?xml[^>]*>\s*)?<svg[\s\S]*<\/svg>\s*$/);
  assert.deepEqual(leftovers(report.run.id), []);
  assert.deepEqual(processesOf(report.run.id), []);
}));

test('Ctrl-C during a load: exit 130, the run\'s namespaces and daemons are gone, the partial report is written', { skip, timeout: 300_000 }, withDir('bench-e2e', async (dir) => {
  const child = spawn(process.execPath, [
    RUN, '--topology', 'p2p', '--load', 'tcp1', '--rounds', '1', '--seconds', '30', '--start-timeout', '60', '--impl', 'tundra', '--out', dir,
  ], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const loading = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no tcp1 progress line in 180 s: ${stderr}`)), 180_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const id = /bench: run (\w{4}):/.exec(stderr)?.[1];
      if (id !== undefined && / · tcp1 · /.test(stderr)) {
        clearTimeout(timer);
        resolve(id);
      }
    });
  });
  const runId = await loading;
  await new Promise((r) => setTimeout(r, 2000)); // into the transfer
  assert.ok(processesOf(runId).length >= 2, `both daemons run before the interrupt: ${processesOf(runId).join('; ')}`);
  child.kill('SIGINT');
  const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const status = await exited;
  clearTimeout(timeout);
  assert.equal(status, 130, stderr);
  assert.match(stderr, new RegExp(`interrupted; run ${runId}'s namespaces and daemons are removed`));
  assert.deepEqual(leftovers(runId), []);
  assert.deepEqual(processesOf(runId), []);
  parseReport(readFileSync(join(dir, 'report.json'), 'utf8'), 'report.json');
}));
