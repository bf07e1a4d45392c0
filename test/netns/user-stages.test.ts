// The example stages in a real tunnel: tundra on side a runs the allow-list filter and
// then the capture tap on every batch. b sends what the rules allow and what they do
// not; the tap, after the filter at the receiver, must hold exactly the allowed packets
// (read back with tcpdump -r), and the filter's drop counter exactly the others.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { OVERLAY, Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping', 'tcpdump', 'bash']);
const FILTER = fileURLToPath(new URL('../../examples/filter/filter.js', import.meta.url));
const CAPTURE = fileURLToPath(new URL('../../examples/capture/capture.js', import.meta.url));
const ALLOWED = 20;
const DENIED = 30;

describe('example stages: filter then capture tap on the receiver', { skip, timeout: 120_000 }, () => {
  let tunnel: Tunnel;
  const dir = mkdtempSync(join(tmpdir(), 'tundra-stages-'));
  const captures = join(dir, 'pcap');
  before(async () => {
    const rules = join(dir, 'rules.json');
    writeFileSync(rules, JSON.stringify({ inbound: [{ protocol: 'icmp' }, { protocol: 'udp', dstPorts: '7000' }] }));
    const stages = `${FILTER}=${rules},${CAPTURE}=dir=${captures}\\,maxBytes=1000000\\,files=3`;
    tunnel = new Tunnel('stg', { a: 'tundra', b: 'tundra', env: { a: { TUNDRA_STAGES: stages } } });
    await tunnel.start();
  });
  after(() => {
    tunnel?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the filter drops exactly what its rules do not allow, and the tap holds exactly what passed', async () => {
    assert.equal(tunnel.ping('b', 4), 3, 'pings are allowed');
    const send = (port: number, count: number): void => {
      tunnel.hosts.exec(tunnel.ns('b'), 'bash', ['-c', `for i in $(seq ${count}); do echo tundra > /dev/udp/${OVERLAY.a.v4}/${port}; done`]);
    };
    send(7000, ALLOWED);
    send(7001, DENIED);
    // The datagrams cross asynchronously: look until all are counted (bounded), then check exactly.
    let drops: Record<string, number> = {};
    for (const giveUp = Date.now() + 30_000; Date.now() < giveUp && (drops.stage_filter_no_rule_matched ?? 0) < DENIED;) {
      await new Promise((r) => setTimeout(r, 100));
      drops = (await tunnel.counters('a')).drops;
    }
    assert.equal(drops.stage_filter_no_rule_matched, DENIED);

    const files = readdirSync(captures).filter((f) => f.endsWith('.pcapng'));
    assert.equal(files.length, 1, `one capture file: ${files.join(' ')}`);
    const count = (expression: string): number => {
      const r = spawnSync('tcpdump', ['-r', join(captures, files[0]!), '-n', expression], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
    };
    assert.equal(count(`udp and dst port 7000 and dst host ${OVERLAY.a.v4}`), ALLOWED, 'every allowed datagram, once');
    assert.equal(count('udp and dst port 7001'), 0, 'no denied datagram');
    assert.equal(count('icmp[icmptype] == icmp-echo'), 3, 'the echo requests');
    assert.equal(count('icmp[icmptype] == icmp-echoreply'), 3, 'and the replies, outbound');
  });
});
