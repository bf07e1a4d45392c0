// ChaCha20-Poly1305 seal/open throughput of each AEAD backend (src/crypto/backends.ts):
// native (batched in the addon, its fastest way), native-plain-xor (the same with the
// keystream XOR in the compiler's plain loop, as on a CPU without AVX2), native-evp (the
// addon's EVP way, which a node on a shared libcrypto gets), node (node:crypto per packet), noble
// (@noble/ciphers per packet). Run: node dist/bench/micro/aead.bench.js
//
// Every task is one backend call on a whole batch, so the rows compare the same
// work: 64 × 1420 B (MTU-sized traffic) and 16 × 64 KiB (super-packets).
// MB/s is 10^6 plaintext bytes per second, on one thread.
import { cpus } from 'node:os';
import { Bench, type Task } from 'tinybench';
import { aeadBackend, CRYPTO_BACKENDS, type AeadBackend } from '../../src/crypto/backends.js';
import { AEAD_DIRECT_AVAILABLE, AEAD_VARIANT, DESC_STRIDE, openBatch, sealBatch, type AeadVariant } from '../../src/crypto/native-aead.js';
import { setDescriptor } from '../../test/helpers/aead.js';
import { AEAD_TAG_SIZE, KEY_SIZE } from '../../src/crypto/sizes.js';
import { emit, taskResult, type Result } from './report.js';

const SHAPES = [
  { size: 1420, count: 64 },
  { size: 65536, count: 16 },
];

/** A backend, or one of the addon's ways (AEAD_VARIANT). */
type Way = Pick<AeadBackend, 'seal' | 'open'>;

interface Row {
  size: number;
  count: number;
  backend: string;
  op: 'seal' | 'open';
}

const keys = new Uint8Array(2 * KEY_SIZE).map((_, i) => i * 7 + 1);
const bench = new Bench({ time: 700, warmupTime: 400, warmupIterations: 4, iterations: 8, retainSamples: true });
const rows = new Map<string, Row>();

for (const { size, count } of SHAPES) {
  const slot = size + AEAD_TAG_SIZE;
  const sealDesc = new Uint32Array(count * DESC_STRIDE);
  const openDesc = new Uint32Array(count * DESC_STRIDE);
  for (let i = 0; i < count; i++) {
    // Two peers' keys in runs, as a batch from two flows would have them.
    const keyIndex = i < count / 2 ? 0 : 1;
    setDescriptor(sealDesc, i, i * slot, size, keyIndex, 1000 + i);
    setDescriptor(openDesc, i, i * slot, slot, keyIndex, 1000 + i);
  }
  const plain = new Uint8Array(count * slot).fill(0xab);
  const sealed = plain.slice();
  aeadBackend('native').seal(sealed, keys, sealDesc, count);

  const way = (variant: AeadVariant): Way => ({
    seal: (d, k, desc, n) => sealBatch(d, k, desc, n, undefined, variant),
    open: (d, k, desc, n, ok) => openBatch(d, k, desc, n, ok, variant),
  });
  const ways: [string, Way][] = [
    ...CRYPTO_BACKENDS.map((name): [string, Way] => [name, aeadBackend(name)]),
    ...(AEAD_DIRECT_AVAILABLE ? [['native-plain-xor', way(AEAD_VARIANT.directPortable)] satisfies [string, Way]] : []),
    ['native-evp', way(AEAD_VARIANT.evp)],
  ];
  for (const [name, { seal, open }] of ways) {
    const data = plain.slice();
    const ok = new Uint8Array(count);
    const sealRow: Row = { size, count, backend: name, op: 'seal' };
    rows.set(`${size} ${name} seal`, sealRow);
    // Sealing ciphertext again costs the same as sealing plaintext: no reset needed.
    bench.add(`${size} ${name} seal`, () => {
      if (seal(data, keys, sealDesc, count) !== count) throw new Error('seal failed');
    });
    rows.set(`${size} ${name} open`, { size, count, backend: name, op: 'open' });
    // Open works in place, so each iteration restores the sealed batch first
    // (beforeEach runs outside tinybench's timed window).
    bench.add(
      `${size} ${name} open`,
      () => {
        if (open(data, keys, openDesc, count, ok) !== count) throw new Error('open failed');
      },
      { beforeEach: () => data.set(sealed) },
    );
  }
}

const started = performance.now();
const tasks: Task[] = bench.runSync();
const elapsed = (performance.now() - started) / 1000;

const table: string[][] = [['size', 'batch', 'backend', 'op', 'MB/s', 'packets/s', 'µs/batch']];
const results: Result[] = [];
for (const task of tasks) {
  const row = rows.get(task.name)!;
  const r = task.result;
  const res = taskResult(task, {
    group: 'aead', impl: row.backend, test: row.op, params: { size: row.size, batch: row.count },
    metric: 'bytes_per_s', unit: 'B/s', perIteration: row.size * row.count,
  });
  if (res !== undefined) results.push(res);
  const head = [String(row.size), `×${row.count}`, row.backend, row.op];
  if (r.state !== 'completed') {
    table.push([...head, r.state, r.state === 'errored' ? r.error.message : '', '']);
    continue;
  }
  // period = totalTime / runs in ms: the mean time of one iteration. (throughput.mean
  // is a mean of per-sample rates, which overweights the fast samples.)
  const packetsPerSec = (1000 / r.period) * row.count;
  table.push([
    ...head,
    ((packetsPerSec * row.size) / 1e6).toFixed(1),
    Math.round(packetsPerSec).toLocaleString('en-US'),
    (r.period * 1000).toFixed(1),
  ]);
}

const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
const numeric = [true, false, false, false, true, true, true];
const line = (r: string[]): string =>
  r.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}, ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log(line(table[0]!));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of table.slice(1)) console.log(line(r));
console.log(`(${elapsed.toFixed(1)} s)`);
emit('aead', results);
