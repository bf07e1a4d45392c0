// Message decode (src/protocol/messages.ts): classifying a datagram and decoding each
// of the four WireGuard messages, as the inbound path does on every datagram.
// Run: node dist/bench/micro/messages.bench.js
import { cpus } from 'node:os';
import { Bench } from 'tinybench';
import {
  classifyMessage, decodeCookieReply, decodeInitiation, decodeResponse, decodeTransportHeader,
  encodeCookieReply, encodeInitiation, encodeResponse, writeTransportHeader,
} from '../../src/protocol/messages.js';
import { fillRandom, prng } from '../../test/helpers/prng.js';
import { emit, taskResult, type Result } from './report.js';

const rand = prng(4);
const bytes = (n: number): Uint8Array => fillRandom(new Uint8Array(n), rand);
const initiation = encodeInitiation({
  sender: 1, ephemeral: bytes(32), encryptedStatic: bytes(48), encryptedTimestamp: bytes(28), mac1: bytes(16), mac2: bytes(16),
});
const response = encodeResponse({ sender: 2, receiver: 1, ephemeral: bytes(32), encryptedNothing: bytes(16), mac1: bytes(16), mac2: bytes(16) });
const cookie = encodeCookieReply({ receiver: 1, nonce: bytes(24), encryptedCookie: bytes(32) });
const transport = bytes(16 + 1420 + 16);
writeTransportHeader(transport, 0, 7, 123456, 0);

const PER_ITERATION = 256;
const ok = (x: object): void => {
  if ('drop' in x) throw new Error('bench: a valid message was dropped');
};
ok(decodeInitiation(initiation));
ok(decodeResponse(response));
ok(decodeCookieReply(cookie));
ok(decodeTransportHeader(transport));
for (const m of [initiation, response, cookie, transport]) {
  if (typeof classifyMessage(m, 0, m.length) !== 'number') throw new Error('bench: a valid message was not classified');
}

let sink = 0;
const bench = new Bench({ time: 500, warmupTime: 100, warmupIterations: 8, retainSamples: true });
const add = (name: string, decode: () => object): void => {
  bench.add(name, () => {
    for (let i = 0; i < PER_ITERATION; i++) if ('drop' in decode()) sink++;
  });
};
add('decode initiation', () => decodeInitiation(initiation));
add('decode response', () => decodeResponse(response));
add('decode cookie reply', () => decodeCookieReply(cookie));
add('decode transport header', () => decodeTransportHeader(transport));
bench.add('classify transport datagram', () => {
  for (let i = 0; i < PER_ITERATION; i++) {
    const c = classifyMessage(transport, 0, transport.length);
    if (typeof c !== 'number') sink++;
  }
});
bench.runSync();
if (sink !== 0) throw new Error('bench: valid messages were dropped');

console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; ${PER_ITERATION} decodes per iteration`);
const results: Result[] = [];
for (const task of bench.tasks) {
  const res = taskResult(task, {
    group: 'messages', impl: 'tundra', test: task.name, metric: 'ops_per_s', unit: 'ops/s', perIteration: PER_ITERATION,
  });
  if (res === undefined) throw new Error(`${task.name} did not complete`);
  results.push(res);
}
emit('messages', results);
