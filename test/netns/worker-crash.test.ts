// A queue worker that dies mid-transfer (a stage ends its thread): the supervisor
// starts it again on the same TUN queue and socket, counts the restart and the
// packets it had in hand, and TCP recovers: the transfer completes byte for byte.
// With a crypto pool too: the flights the dead worker left in the pool come back to
// its successor, which takes them up again once they are home.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
const CRASH_STAGE = fileURLToPath(new URL('../helpers/crash-stage.js', import.meta.url));
const BYTES = 32 * 1024 * 1024;
/** Outbound packets into the transfer when the worker dies (~3 MB of 32). */
const CRASH_AFTER = 2000;

for (const [i, workers] of ['0', '2'].entries()) {
  describe(`a queue worker killed mid-transfer (TUNDRA_WORKERS=${workers})`, { skip, timeout: 120_000 }, () => {
    let tunnel: Tunnel;
    const dir = mkdtempSync(join(tmpdir(), 'tundra-crash-'));
    const marker = join(dir, 'crash-now');
    before(async () => {
      tunnel = new Tunnel(`crash${i}`, {
        a: 'tundra', b: 'wireguard-go', env: { a: { TUNDRA_QUEUES: '1', TUNDRA_WORKERS: workers, TUNDRA_STAGES: `${CRASH_STAGE}=${marker}` } },
      });
      await tunnel.start();
    });
    after(() => {
      tunnel?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    test('is started again and counted; the transfer completes byte for byte', async () => {
      assert.equal(tunnel.ping('a', 4), 3);
      writeFileSync(marker, String(CRASH_AFTER));
      const { sent, received } = await tunnel.transfer('a', BYTES);
      assert.equal(received.bytes, BYTES);
      assert.equal(received.sha256, sent.sha256);
      const { drops, queues } = await tunnel.counters('a');
      assert.equal(queues[0]!.restarts, 1, 'the worker was started again once');
      assert.ok((drops.worker_batch_lost ?? 0) > 0, `the packets in hand were counted as lost: ${JSON.stringify(drops)}`);
      assert.match(tunnel.output.a(), /queue-0 worker exited \(code 70\) with \d+ packets in hand/);
      assert.equal(tunnel.ping('a', 4), 3, 'the tunnel goes on');
      const again = await tunnel.transfer('a', BYTES);
      assert.equal(again.received.sha256, again.sent.sha256, 'and carries byte for byte after the restart');
      // Idle now: nothing is left in any thread's hands or out in the pool (no flight leaked).
      const idle = (await tunnel.counters('a')).queues[0]!;
      assert.equal(idle.in_hand, 0, 'no packets in hand');
      if (workers !== '0') assert.equal(idle.flights_out, 0, 'every flight came back from the pool');
    });
  });
}
