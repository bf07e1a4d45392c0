// The crypto pool on its own: batches prepared here, sealed by pool workers through
// the rings, come back each once and open at the other engine byte for byte; a task
// that dies with a batch in hand is run again, and that batch comes back as lost,
// so no flight is stranded.
import { test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Logger } from '../../src/log.js';
import { HEADROOM, PacketBatch, SLOT_SIZE } from '../../src/pipeline/batch.js';
import { BATCH_SIZE } from '../../src/pipeline/batch.js';
import { createQueueFlights, DONE_LOST, JOB_EPOCH, JOB_FLIGHT, JOB_USE, JOB_WORDS } from '../../src/dataplane/flights.js';
import { MpmcRing } from '../../src/pipeline/ring.js';
import { EngineControl, inboundContextOf, outboundContextOf } from '../../src/stages/engine-control.js';
import { InboundStage } from '../../src/stages/inbound.js';
import { OutboundStage } from '../../src/stages/outbound.js';
import { aeadBackend } from '../../src/crypto/backends.js';
import { CryptoPool } from '../../src/dataplane/crypto-pool.js';
import { A, connectedEngines } from '../helpers/engines.js';
import { writeAddr } from '../../src/pipeline/address.js';
import { icmpEcho } from '../helpers/packets.js';

const FAILING_TASK = new URL('../helpers/failing-crypto-task.js', import.meta.url).href;
const FLIGHTS = 4;

function setup(filename?: string) {
  const engines = connectedEngines();
  const queue = createQueueFlights(0, FLIGHTS, 2 * FLIGHTS);
  const shared = CryptoPool.share(engines.a.keyTable.share(), 'native', BATCH_SIZE, queue.outbound, 1, 2);
  const pool = new CryptoPool({ workers: 2, shared, log: new Logger('test', 'silent'), ...(filename === undefined ? {} : { filename }) });
  const jobs = MpmcRing.attach(shared.jobs);
  const done = MpmcRing.attach(shared.done[0]!);
  const stages = queue.outbound.map((v) => ({ batch: PacketBatch.fromViews(BATCH_SIZE, SLOT_SIZE, v.batch), stage: new OutboundStage(BATCH_SIZE, v.scratch) }));
  return { ...engines, pool, jobs, done, stages };
}

/** Prepares flight k with `count` pings (distinct payloads per round) and submits it. */
function submit(s: ReturnType<typeof setup>, k: number, round: number, count: number): void {
  const { batch, stage } = s.stages[k]!;
  batch.resetOffsets(HEADROOM);
  for (let i = 0; i < count; i++) {
    const p = icmpEcho(8, '100.96.0.1', '100.96.0.2', k, round * 1000 + i, new Uint8Array(200).fill(round + i));
    batch.data.set(p, batch.offsets[i]!);
    batch.lengths[i] = p.length;
  }
  batch.count = count;
  assert.equal(stage.prepare(batch, outboundContextOf(s.a, aeadBackend('native').seal), new EngineControl(s.a)), count);
  assert.ok(s.jobs.tryPush(Uint32Array.of(k, 1, 0, round)));
}

async function completion(done: MpmcRing): Promise<Uint32Array> {
  const e = new Uint32Array(JOB_WORDS);
  for (let i = 0; i < 200 && !done.tryPop(e); i++) await done.waitNotEmptyAsync(50);
  return e;
}

test('the pool seals what the queue prepared; every flight comes back once, and opens', async () => {
  const s = setup();
  try {
    for (let round = 1; round <= 5; round++) {
      for (let k = 0; k < FLIGHTS; k++) submit(s, k, round, 32);
      const back = new Set<number>();
      for (let k = 0; k < FLIGHTS; k++) {
        const e = await completion(s.done);
        assert.equal(e[DONE_LOST], 0);
        assert.equal(e[JOB_EPOCH], 1);
        assert.equal(e[JOB_USE], round);
        back.add(e[JOB_FLIGHT]!);
      }
      assert.equal(back.size, FLIGHTS, 'each flight once');
      for (const { batch, stage } of s.stages) {
        assert.equal(stage.finish(batch, outboundContextOf(s.a, aeadBackend('native').seal), new EngineControl(s.a)), 32);
        // The other engine opens them: the datagrams as they would leave.
        const inbound = new PacketBatch(BATCH_SIZE, SLOT_SIZE);
        inbound.resetOffsets(0);
        for (let i = 0; i < batch.count; i++) {
          inbound.data.set(batch.data.subarray(batch.offsets[i]!, batch.offsets[i]! + batch.lengths[i]!), inbound.offsets[i]!);
          inbound.lengths[i] = batch.lengths[i]!;
          writeAddr(inbound.addrs, i, A.address, A.port);
        }
        inbound.count = batch.count;
        const control = new EngineControl(s.b);
        assert.equal(new InboundStage(BATCH_SIZE).run(inbound, inboundContextOf(s.b, aeadBackend('native').open), control), 32, 'all open');
      }
    }
    assert.equal(s.pool.restarts, 0);
  } finally {
    await s.pool.close();
  }
});

test('a task that dies with a batch in hand is run again; that batch comes back lost, the others sealed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tundra-pool-'));
  process.env.TUNDRA_TEST_FAIL_ONCE = join(dir, 'fail-once');
  writeFileSync(process.env.TUNDRA_TEST_FAIL_ONCE, '');
  const s = setup(FAILING_TASK);
  try {
    for (let k = 0; k < FLIGHTS; k++) submit(s, k, 1, 8);
    const results = new Map<number, number>();
    for (let k = 0; k < FLIGHTS; k++) {
      const e = await completion(s.done);
      assert.equal(results.has(e[JOB_FLIGHT]!), false, 'no flight twice');
      results.set(e[JOB_FLIGHT]!, e[DONE_LOST]!);
    }
    const lost = [...results.values()].filter((v) => v === 1).length;
    assert.equal(results.size, FLIGHTS, 'every flight came back');
    assert.equal(lost, 1, 'the task that failed had one batch in hand');
    assert.equal(s.pool.restarts, 1);
    assert.equal(s.pool.lostJobs, 1);
    // And the pool goes on.
    submit(s, 0, 2, 8);
    const e = await completion(s.done);
    assert.equal(e[DONE_LOST], 0);
  } finally {
    await s.pool.close();
    delete process.env.TUNDRA_TEST_FAIL_ONCE;
    rmSync(dir, { recursive: true, force: true });
  }
});
