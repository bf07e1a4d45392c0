// The data path's threads at another priority (src/dataplane/priority.ts): in a running
// daemon with TUNDRA_NICE=-10 the queue and crypto workers have nice -10 and the main
// thread, the control plane, keeps the process's; without it, no thread is raised.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel, type Side } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'ping']);

/** Nice value of each thread of process `pid` (field 19 of /proc/…/stat, after the command's parentheses). */
function threadNices(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}

describe('the data path threads\' priority', { skip, timeout: 120_000 }, () => {
  let tunnel: Tunnel;
  before(async () => {
    tunnel = new Tunnel('nice', {
      a: 'tundra', b: 'tundra', env: { a: { TUNDRA_NICE: '-10', TUNDRA_QUEUES: '2', TUNDRA_WORKERS: '1' }, b: { TUNDRA_WORKERS: '1' } },
    });
    await tunnel.start();
    assert.ok(tunnel.pingUntilReply('a'), 'the tunnel works');
  });
  after(() => tunnel?.destroy());

  const pid = (side: Side): number => tunnel.daemons[side].pid!;

  test('queue and crypto workers at nice -10, the main thread at the process\'s', () => {
    const nices = threadNices(pid('a'));
    assert.equal(nices.get(pid('a')), getPriority(0), 'the main thread: as the test\'s, which started it');
    const raised = [...nices.values()].filter((n) => n === -10).length;
    assert.ok(raised >= 3, `2 queue workers and 1 crypto worker at -10: ${raised} threads are (${JSON.stringify([...nices])})`);
  });

  test('without TUNDRA_NICE: no thread raised', () => {
    const nices = threadNices(pid('b'));
    assert.equal(nices.get(pid('b')), getPriority(0));
    assert.deepEqual([...nices.values()].filter((n) => n < 0), []);
  });
});
