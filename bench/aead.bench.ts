// ChaCha20-Poly1305 seal/open throughput: native batched EVP vs per-packet
// @noble/ciphers and node:crypto. Run: node dist/bench/aead.bench.js
//
// Every task processes a whole batch per iteration, so the rows compare the
// same work; MB/s is 10^6 plaintext bytes per second.
import { createCipheriv } from 'node:crypto';
import { cpus } from 'node:os';
import { Bench, type Task } from 'tinybench';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { AEAD_TAG_SIZE, DESC_STRIDE, KEY_SIZE, openBatch, sealBatch, setDescriptor } from '../src/crypto/native-aead.js';

const SIZES = [64, 1420, 65535];
// ~64 packets per call for MTU-sized traffic; 16 × 64 KB (1 MB) for super-packets.
const batchFor = (size: number): number => (size <= 1420 ? 64 : 16);

interface Row {
  size: number;
  impl: string;
  packets: number; // packets per iteration
}

const key = new Uint8Array(KEY_SIZE).map((_, i) => i * 7 + 1);
const nonceView = (n: Uint8Array): DataView => new DataView(n.buffer, n.byteOffset, n.byteLength);

const bench = new Bench({ time: 700, warmupTime: 150, warmupIterations: 8, iterations: 16 });
const rows = new Map<string, Row>();

function add(row: Row, fn: () => unknown, opts?: { beforeEach?: () => void }): void {
  const name = `${row.size} ${row.impl}`;
  rows.set(name, row);
  bench.add(name, fn, opts);
}

for (const size of SIZES) {
  const count = batchFor(size);
  const slot = size + AEAD_TAG_SIZE;
  const data = new Uint8Array(count * slot).fill(0xab);
  const sealDesc = new Uint32Array(count * DESC_STRIDE);
  const openDesc = new Uint32Array(count * DESC_STRIDE);
  for (let i = 0; i < count; i++) {
    setDescriptor(sealDesc, i, i * slot, size, 0, 1000 + i);
    setDescriptor(openDesc, i, i * slot, slot, 0, 1000 + i);
  }
  const ok = new Uint8Array(count);

  // Sealing ciphertext again costs the same as sealing plaintext: no reset needed.
  add({ size, impl: `native sealBatch ×${count}`, packets: count }, () => {
    if (sealBatch(data, key, sealDesc, count) !== count) throw new Error('seal failed');
  });

  // The per-call cost on its own: one packet per call.
  const one = new Uint8Array(slot);
  const oneDesc = sealDesc.slice(0, DESC_STRIDE);
  oneDesc[0] = 0;
  add({ size, impl: 'native sealBatch ×1', packets: 1 }, () => {
    if (sealBatch(one, key, oneDesc, 1) !== 1) throw new Error('seal failed');
  });

  // Open works in place, so every iteration restores the sealed batch first
  // (beforeEach runs outside tinybench's timed window).
  const sealed = new Uint8Array(data.length).fill(0xab);
  sealBatch(sealed, key, sealDesc, count);
  add(
    { size, impl: `native openBatch ×${count}`, packets: count },
    () => {
      if (openBatch(data, key, openDesc, count, ok) !== count) throw new Error('open failed');
    },
    { beforeEach: () => data.set(sealed) },
  );

  const pt = new Uint8Array(size).fill(0xab);
  const nonce = new Uint8Array(12);
  const nv = nonceView(nonce);
  add({ size, impl: '@noble/ciphers per packet', packets: count }, () => {
    for (let i = 0; i < count; i++) {
      nv.setUint32(4, 1000 + i, true);
      chacha20poly1305(key, nonce).encrypt(pt);
    }
  });

  const nodeNonce = Buffer.alloc(12);
  const nodePt = Buffer.alloc(size, 0xab);
  add({ size, impl: 'node:crypto per packet', packets: count }, () => {
    for (let i = 0; i < count; i++) {
      nodeNonce.writeUInt32LE(1000 + i, 4);
      const c = createCipheriv('chacha20-poly1305', key, nodeNonce, { authTagLength: AEAD_TAG_SIZE });
      c.update(nodePt);
      c.final();
      c.getAuthTag();
    }
  });
}

const started = performance.now();
const tasks: Task[] = bench.runSync();
const elapsed = (performance.now() - started) / 1000;

const table: string[][] = [['size', 'implementation', 'MB/s', 'packets/s']];
for (const task of tasks) {
  const row = rows.get(task.name)!;
  const r = task.result;
  if (r.state !== 'completed') {
    table.push([String(row.size), row.impl, r.state, r.state === 'errored' ? r.error.message : '']);
    continue;
  }
  // period = totalTime / runs in ms: the mean time of one iteration. (throughput.mean
  // is a mean of per-sample rates, which overweights the fast samples.)
  const iterationsPerSec = 1000 / r.period;
  const packetsPerSec = iterationsPerSec * row.packets;
  table.push([
    String(row.size),
    row.impl,
    ((packetsPerSec * row.size) / 1e6).toFixed(1),
    Math.round(packetsPerSec).toLocaleString('en-US'),
  ]);
}

const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
const numeric = [false, false, true, true];
const line = (r: string[]): string =>
  r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}, ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log(line(table[0]!));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of table.slice(1)) console.log(line(r));
console.log(`(${elapsed.toFixed(1)} s)`);
