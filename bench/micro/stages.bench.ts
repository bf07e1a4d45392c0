// Per-batch cost of each phase of the outbound and inbound stages on one thread,
// the inputs of the pipeline's cost model (bench/model.ts): what a batch costs
// to prepare, seal and finish (outbound) and to classify, open and accept
// (inbound), apart from the system calls, and a whole batch through each stage (run). Run: node dist/bench/micro/stages.bench.js
//
// A batch is N IPv4 packets of 1420 bytes for one peer (one keypair), as a TCP
// transfer makes them; every iteration restores the batch (and the replay window)
// outside tinybench's timed window.
import { cpus } from 'node:os';
import { Bench } from 'tinybench';
import { openBatch, sealBatch } from '../../src/crypto/native-aead.js';
import { writeAddr } from '../../src/pipeline/address.js';
import { HEADROOM, PacketBatch, SLOT_SIZE } from '../../src/pipeline/batch.js';
import { REPLAY_STATE_WORDS } from '../../src/protocol/replay.js';
import { EngineControl, inboundContextOf, outboundContextOf } from '../../src/stages/engine-control.js';
import { InboundStage } from '../../src/stages/inbound.js';
import { OutboundStage } from '../../src/stages/outbound.js';
import { icmpEcho } from '../../test/helpers/packets.js';
import { A, connectedEngines } from '../../test/helpers/engines.js';
import { emit, taskResult, type Result } from './report.js';

const SIZES = [64, 128];
const PACKET = 1420;

const { a, b, bPeer } = connectedEngines();
const packet = icmpEcho(8, '100.96.0.1', '100.96.0.2', 1, 1, new Uint8Array(PACKET - 28).fill(7));

const bench = new Bench({ time: 500, warmupTime: 100, warmupIterations: 8, retainSamples: true });

for (const n of SIZES) {
  const out = new PacketBatch(n, SLOT_SIZE);
  const plain = () => {
    out.resetOffsets(HEADROOM);
    for (let i = 0; i < n; i++) {
      out.data.set(packet, out.offsets[i]!);
      out.lengths[i] = packet.length;
    }
    out.count = n;
  };
  const outStage = new OutboundStage(n);
  const outCtx = outboundContextOf(a, sealBatch);
  const aControl = new EngineControl(a);
  bench.add(`outbound prepare ×${n}`, () => { outStage.prepare(out, outCtx, aControl); }, { beforeEach: plain });
  bench.add(`outbound seal ×${n}`, () => outStage.seal(out.data, outCtx), {
    beforeEach: () => { plain(); outStage.prepare(out, outCtx, aControl); },
  });
  bench.add(`outbound finish ×${n}`, () => { outStage.finish(out, outCtx, aControl); }, {
    beforeEach: () => { plain(); outStage.prepare(out, outCtx, aControl); outStage.seal(out.data, outCtx); },
  });
  bench.add(`outbound whole batch ×${n}`, () => {
    if (outStage.run(out, outCtx, aControl) !== n) throw new Error('outbound dropped packets');
  }, { beforeEach: plain });

  // The sealed datagrams, once, as the socket would deliver them to b.
  plain();
  outStage.run(out, outCtx, aControl);
  const datagrams = Array.from({ length: n }, (_, i) => out.data.slice(out.offsets[i]!, out.offsets[i]! + out.lengths[i]!));
  const inb = new PacketBatch(n, SLOT_SIZE);
  const received = () => {
    inb.resetOffsets(0);
    datagrams.forEach((d, i) => {
      inb.data.set(d, inb.offsets[i]!);
      inb.lengths[i] = d.length;
      writeAddr(inb.addrs, i, A.address, A.port);
    });
    inb.count = n;
    const slot = bPeer.keypairs.current!.slot;
    b.keyTable.replay.fill(0, slot * REPLAY_STATE_WORDS, (slot + 1) * REPLAY_STATE_WORDS);
  };
  const inStage = new InboundStage(n);
  const inCtx = inboundContextOf(b, openBatch);
  const bControl = new EngineControl(b);
  bench.add(`inbound classify ×${n}`, () => { inStage.classify(inb, inCtx, bControl); }, { beforeEach: received });
  bench.add(`inbound open ×${n}`, () => inStage.open(inb.data, inCtx), {
    beforeEach: () => { received(); inStage.classify(inb, inCtx, bControl); },
  });
  bench.add(`inbound accept ×${n}`, () => {
    if (inStage.accept(inb, inCtx, bControl) !== n) throw new Error('accept dropped packets');
  }, {
    beforeEach: () => { received(); inStage.classify(inb, inCtx, bControl); inStage.open(inb.data, inCtx); },
  });
  bench.add(`inbound whole batch ×${n}`, () => {
    if (inStage.run(inb, inCtx, bControl) !== n) throw new Error('inbound dropped packets');
  }, { beforeEach: received });
}

bench.runSync();
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; packets of ${PACKET} B, one peer`);
console.log('phase                      µs/batch   ns/packet');
const results: Result[] = [];
for (const task of bench.tasks) {
  const r = task.result;
  const [phase, batch] = task.name.split(' ×');
  const res = taskResult(task, {
    group: 'stages', impl: 'native', test: phase!, params: { batch: Number(batch), size: PACKET },
    metric: 'packets_per_s', unit: 'packets/s', perIteration: Number(batch),
  });
  if (res !== undefined) results.push(res);
  if (r.state !== 'completed') {
    console.log(`${task.name.padEnd(26)} ${r.state}${r.state === 'errored' ? `: ${r.error.message}` : ''}`);
    continue;
  }
  const n = Number(task.name.split('×')[1]);
  const us = r.period * 1000;
  console.log(`${task.name.padEnd(26)} ${us.toFixed(1).padStart(8)}   ${((us * 1000) / n).toFixed(0).padStart(9)}`);
}
emit('stages', results);
