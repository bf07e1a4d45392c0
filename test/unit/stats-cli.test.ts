// `tundra stats`: the client's side of `tundra-stats=1` against servers on a temporary
// directory (a tundra-like one, one that closes as wireguard-go does, none), the
// errors' wording, and the table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchStats, formatStats, socketError } from '../../src/cli/stats.js';
import type { DeviceStats } from '../../src/device/device.js';

const SAMPLE: DeviceStats = {
  interface: 'wg0',
  drops: { too_short: 3, replay: 0 },
  offload: { tun_packets_read: 10, gso_sends: 2, fallbacks: { udp_gso_resent: 1 } },
  stages: {},
  queues: [{ tun_read_packets: 5, in_hand: 0 }, { tun_read_packets: 12345, in_hand: 7 }],
};

async function withServer(answer: (request: string) => string | undefined, run: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tundra-stats-'));
  const server = createServer((socket) => {
    socket.setEncoding('utf8');
    let request = '';
    socket.on('data', (chunk: string) => {
      request += chunk;
      if (!request.endsWith('\n\n')) return;
      const reply = answer(request);
      if (reply === undefined) socket.destroy();
      else socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(join(dir, 'wg0.sock'), resolve));
  try {
    await run(dir);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

test('fetchStats asks with tundra-stats=1 and returns the JSON the daemon answers', async () => {
  let asked = '';
  await withServer((request) => {
    asked = request;
    return `stats=${JSON.stringify(SAMPLE)}\nerrno=0\n\n`;
  }, async (dir) => {
    assert.deepEqual(await fetchStats('wg0', dir), SAMPLE);
  });
  assert.equal(asked, 'tundra-stats=1\n\n');
});

test('a socket that closes on the operation is not tundra\'s; an errno is reported; a missing socket says how to start one', async () => {
  await withServer(() => undefined, async (dir) => {
    await assert.rejects(fetchStats('wg0', dir), /wg0 is not a tundra interface: whatever serves .*wg0\.sock closed the connection on "tundra-stats"/);
  });
  await withServer(() => 'errno=22\n\n', async (dir) => {
    await assert.rejects(fetchStats('wg0', dir), /wg0: the daemon answered errno=22/);
  });
  const empty = mkdtempSync(join(tmpdir(), 'tundra-stats-'));
  try {
    await assert.rejects(fetchStats('wg0', empty), /wg0: no UAPI socket at .*wg0\.sock: is the interface running\? \(start it with: tundra wg0\)/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
  await assert.rejects(fetchStats('a/b'), /"a\/b" is not a valid interface name/);
});

test('socket errors say what to do', () => {
  const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });
  assert.match(socketError('wg0', '/run/wireguard/wg0.sock', err('EACCES')), /permission denied on \/run\/wireguard\/wg0\.sock: run as root/);
  assert.match(socketError('wg0', '/run/wireguard/wg0.sock', err('ECONNREFUSED')), /nothing listens on \/run\/wireguard\/wg0\.sock \(a daemon that ended without removing it\)/);
});

test('the table: non-zero drops, the offload counters and fallbacks, one row per queue, right-aligned', () => {
  assert.equal(formatStats(SAMPLE), [
    'interface: wg0',
    'drops:',
    '  too_short  3',
    'offload:',
    '  tun_packets_read  10',
    '  gso_sends         2',
    'offload fallbacks:',
    '  udp_gso_resent  1',
    'queues:',
    '  queue  tun_read_packets  in_hand',
    '  0                     5        0',
    '  1                 12345        7',
    '',
  ].join('\n'));
});
