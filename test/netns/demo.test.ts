// `npm run demo` (scripts/demo.ts) end to end, as a user runs it: with tundra every check
// of its table passes and it exits 0; with a daemon that exits at once it says FAIL and
// exits 1. Either way the namespaces it made are gone afterwards.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { captureOutput, networkTestsUnavailable, run } from '../helpers/netns.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping', 'iperf3', 'ss', 'sysctl']);
const DEMO = fileURLToPath(new URL('../../scripts/demo.js', import.meta.url));
/** A bound for a hang, not a speed: set-up, four pings and 3 s of iperf3 on a busy machine. */
const DEMO_LIMIT_MS = 150_000;

async function demo(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [DEMO], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = captureOutput(child);
  const limit = setTimeout(() => child.kill('SIGTERM'), DEMO_LIMIT_MS);
  const [code] = await once(child, 'exit') as [number | null];
  clearTimeout(limit);
  return { code, output: output() };
}

/** The namespaces the demo said it makes must not exist any more. */
function assertRemoved(output: string): void {
  const made = /namespaces (tdr-b[a-z0-9]{4}-a) and (tdr-b[a-z0-9]{4}-b)/.exec(output);
  assert.ok(made !== null, `the demo names its namespaces: ${output}`);
  const left = run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]);
  for (const ns of made.slice(1)) assert.ok(!left.includes(ns), `${ns} was removed`);
}

describe('npm run demo', { skip, timeout: 2 * DEMO_LIMIT_MS }, () => {
  test('tundra at both ends: every check ok, exit 0, nothing left behind', async () => {
    const { code, output } = await demo({});
    assert.equal(code, 0, output);
    for (const check of ['handshake', 'ping v4 a->b', 'ping v4 b->a', 'ping v6 a->b', 'ping v6 b->a', 'iperf3 tcp a->b', 'daemon cpu']) {
      assert.match(output, new RegExp(`^${check} +ok\\b`, 'm'), `${check} ok`);
    }
    assert.doesNotMatch(output, /\bFAIL\b/);
    assert.match(output, /^iperf3 tcp a->b +ok +\d+\.\d Mbit\/s \(3 s\)$/m);
    assert.match(output, /^  latest handshake: /m, 'wg show of side a');
    assertRemoved(output);
  });

  test('a daemon that exits at once: a FAIL row, exit 1, nothing left behind', async () => {
    const { code, output } = await demo({ DAEMON: 'false %IF%' });
    assert.equal(code, 1, output);
    assert.match(output, /^handshake +FAIL +daemon: exited \(status 1\) before it served/m);
    assertRemoved(output);
  });
});
