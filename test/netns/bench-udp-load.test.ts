// bench/udp-load.ts between two namespaces: its loss accounting against an nftables
// rule that drops exactly every 10th datagram of the flow (and counts them), and a
// download started by the receiver's hello (--reply-to / --hello).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { captureOutput, networkTestsUnavailable, TwoHosts, waitFor } from '../helpers/netns.js';

const skip = networkTestsUnavailable(['ip', 'nft', 'ss']);
const UDP_LOAD = fileURLToPath(new URL('../../bench/udp-load.js', import.meta.url));
const TABLE = 'tdrbul';
const PORT = 9300;
const HELLO_PORT = 9301;

interface Report { role: string; datagrams: number; bytes: number; lost: number | null; reordered: number | null; duplicates: number | null; errors: number | null }

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

async function report(child: ChildProcess, output: () => string): Promise<Report> {
  const code = await exited(child);
  assert.equal(code, 0, output());
  const line = output().split('\n').filter((l) => l.startsWith('{')).pop();
  assert.ok(line !== undefined, output());
  return JSON.parse(line) as Report;
}

describe('udp-load between namespaces', { skip, timeout: 30_000 }, () => {
  let hosts: TwoHosts;
  before(() => {
    hosts = new TwoHosts('bul');
  });
  after(() => hosts?.destroy());

  const listening = (ns: string, port: number): Promise<void> =>
    waitFor(`a UDP socket on port ${port}`, () => hosts.exec(ns, 'ss', ['-Hlun', `sport = :${port}`]).trim() !== '');

  function start(ns: string, args: string[]): { child: ChildProcess; output: () => string } {
    const child = hosts.spawn(ns, process.execPath, [UDP_LOAD, ...args]);
    return { child, output: captureOutput(child) };
  }

  test('every 10th datagram dropped by nftables: lost is exactly its drop counter, nothing reordered or duplicated', async () => {
    hosts.exec(hosts.b, 'nft', ['-f', '-'], `table inet ${TABLE} {
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport ${PORT} numgen inc mod 10 == 0 counter drop
  }
}
`);
    const recv = start(hosts.b, ['recv', '--listen', `${hosts.underlayB}:${PORT}`, '--seconds', '1', '--gro', '1']);
    await listening(hosts.b, PORT);
    // Without GSO, so that each datagram is its own packet for the rule; at a rate nothing else drops.
    const send = start(hosts.a, ['send', '--to', `${hosts.underlayB}:${PORT}`, '--seconds', '1', '--rate-mbit', '40', '--gso', '0']);
    const sent = await report(send.child, send.output);
    const got = await report(recv.child, recv.output);
    const dropped = Number(/counter packets (\d+)/.exec(hosts.exec(hosts.b, 'nft', ['list', 'table', 'inet', TABLE]))?.[1]);
    assert.ok(sent.datagrams > 1000 && sent.errors === 0, JSON.stringify(sent));
    // numgen counts from 0: datagrams 0, 10, 20, … went
    assert.equal(dropped, Math.ceil(sent.datagrams / 10), 'the rule dropped every 10th');
    const lastDropped = (sent.datagrams - 1) % 10 === 0; // no later arrival shows that one missing
    assert.deepEqual(
      { datagrams: got.datagrams, lost: got.lost, reordered: got.reordered, duplicates: got.duplicates },
      { datagrams: sent.datagrams - dropped, lost: dropped - (lastDropped ? 1 : 0), reordered: 0, duplicates: 0 },
    );
  });

  test('--reply-to waits for the hello of recv --hello, then sends to where it came from', async () => {
    const send = start(hosts.b, ['send', '--reply-to', `${hosts.underlayB}:${HELLO_PORT}`, '--seconds', '1', '--rate-mbit', '40']);
    await listening(hosts.b, HELLO_PORT);
    const recv = start(hosts.a, ['recv', '--listen', `${hosts.underlayA}:${HELLO_PORT}`, '--hello', `${hosts.underlayB}:${HELLO_PORT}`, '--seconds', '1']);
    const sent = await report(send.child, send.output);
    const got = await report(recv.child, recv.output);
    assert.ok(sent.datagrams > 1000, JSON.stringify(sent));
    assert.deepEqual(
      { datagrams: got.datagrams, bytes: got.bytes, lost: got.lost, reordered: got.reordered, duplicates: got.duplicates },
      { datagrams: sent.datagrams, bytes: sent.bytes, lost: 0, reordered: 0, duplicates: 0 },
    );
  });
});
