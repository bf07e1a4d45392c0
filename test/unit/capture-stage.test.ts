// The example capture tap (examples/capture), loaded through the user-stage host as tundra
// loads it: packets of both directions across several batches and file rotations; every
// file stays within maxBytes, at most K files are kept, `tcpdump -r` reads each with the
// right packet count (tcpdump is required: CI installs it), and the test's own pcapng
// parser checks every block's lengths and that the packets are the ones sent, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserStages } from '../../src/stages/user-host.js';
import { buildPacket, ipv4, ipv6, TCP_ACK, TCP_PSH } from '../helpers/offload-packets.js';
import { prng } from '../helpers/prng.js';

const CAPTURE = fileURLToPath(new URL('../../examples/capture/capture.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'tundra-capture-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `d${dirs++}`);

interface Sent {
  /** epb_flags direction: 2 outbound, 1 inbound. */
  flags: number;
  bytes: Uint8Array;
}

/** n packets, IPv4 and IPv6, TCP and UDP, 60..700 bytes, with a sequence number in the payload. */
function packets(n: number, seed: number): Uint8Array[] {
  const rand = prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const payload = new Uint8Array(20 + Math.floor(rand() * 640)).map((_, k) => (k * 7 + i) & 0xff);
    payload[0] = i >> 8;
    payload[1] = i & 0xff;
    const v6 = rand() < 0.4;
    const ip = v6
      ? { family: 6 as const, src: ipv6('fd7a:7d0::1'), dst: ipv6('fd7a:7d0::2') }
      : { family: 4 as const, src: ipv4('100.96.0.1'), dst: ipv4('100.96.0.2') };
    const l4 = rand() < 0.5
      ? { proto: 'tcp' as const, sport: 40000, dport: 5201, seq: i * 1000, ack: 1, flags: TCP_ACK | TCP_PSH }
      : { proto: 'udp' as const, sport: 40001, dport: 5201 };
    return buildPacket(ip, l4, payload);
  });
}

/** Runs the packets through the stages in batches of 1..40, alternating directions; returns what was sent. */
function feed(stages: UserStages, all: Uint8Array[], seed: number): Sent[] {
  const rand = prng(seed);
  const data = new Uint8Array(40 * 2048);
  const offsets = new Uint32Array(40);
  const lengths = new Uint32Array(40);
  const peers = new Int32Array(40);
  const sent: Sent[] = [];
  let direction: 'outbound' | 'inbound' = 'outbound';
  for (let at = 0; at < all.length; ) {
    const n = Math.min(all.length - at, 1 + Math.floor(rand() * 40));
    for (let i = 0; i < n; i++) {
      offsets[i] = 2048 * i + 16;
      lengths[i] = all[at + i]!.length;
      data.set(all[at + i]!, offsets[i]!);
      sent.push({ flags: direction === 'outbound' ? 2 : 1, bytes: all[at + i]! });
    }
    assert.equal(stages.run(direction, data, offsets, lengths, peers, n), n, 'the tap drops nothing');
    data.fill(0xee); // the files must hold copies, not what the slots hold later
    at += n;
    direction = direction === 'outbound' ? 'inbound' : 'outbound';
  }
  return sent;
}

interface Epb {
  flags: number;
  timestamp: number;
  captured: Uint8Array;
  length: number;
}

/** Parses a pcapng file, checking each block's leading and trailing lengths; returns its packets. */
function parsePcapng(file: string): Epb[] {
  const buf = readFileSync(file);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Epb[] = [];
  let at = 0;
  let blocks = 0;
  while (at < buf.length) {
    assert.ok(at + 12 <= buf.length, `${file}: a block header is cut at ${at}`);
    const type = v.getUint32(at, true);
    const len = v.getUint32(at + 4, true);
    assert.ok(len >= 12 && len % 4 === 0 && at + len <= buf.length, `${file}: bad block length ${len} at ${at}`);
    assert.equal(v.getUint32(at + len - 4, true), len, `${file}: trailing length of the block at ${at}`);
    if (blocks === 0) {
      assert.equal(type, 0x0a0d0d0a, 'the file starts with a Section Header Block');
      assert.equal(v.getUint32(at + 8, true), 0x1a2b3c4d, 'byte-order magic');
      assert.deepEqual([v.getUint16(at + 12, true), v.getUint16(at + 14, true)], [1, 0], 'version 1.0');
    } else if (blocks === 1) {
      assert.equal(type, 1, 'then an Interface Description Block');
      assert.equal(v.getUint16(at + 8, true), 101, 'LINKTYPE_RAW');
    } else {
      assert.equal(type, 6, 'then Enhanced Packet Blocks');
      assert.equal(v.getUint32(at + 8, true), 0, 'interface 0');
      const caplen = v.getUint32(at + 20, true);
      const opts = at + 28 + ((caplen + 3) & ~3);
      assert.equal(len, opts - at + 16, 'EPB length = 28 + padded data + epb_flags + end of options + 4');
      assert.deepEqual([v.getUint16(opts, true), v.getUint16(opts + 2, true)], [2, 4], 'epb_flags');
      assert.equal(v.getUint32(opts + 8, true), 0, 'end of options');
      out.push({
        flags: v.getUint32(opts + 4, true),
        timestamp: v.getUint32(at + 12, true) * 2 ** 32 + v.getUint32(at + 16, true),
        captured: new Uint8Array(buf.subarray(at + 28, at + 28 + caplen)),
        length: v.getUint32(at + 24, true),
      });
    }
    at += len;
    blocks++;
  }
  assert.ok(blocks >= 2, `${file}: has its header blocks`);
  return out;
}

/** Packets tcpdump reads from the file (one line each, starting with the time). */
function tcpdumpCount(file: string): number {
  const text = execFileSync('tcpdump', ['-r', file, '-n'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  return text.split('\n').filter((line) => /^\d\d:\d\d:\d\d\.\d{6} IP6? /.test(line)).length;
}

function captureFiles(dir: string, thread: string): { n: number; path: string }[] {
  return readdirSync(dir)
    .map((name) => ({ m: new RegExp(`^tundra-${thread}-([0-9]+)\\.pcapng$`).exec(name), name }))
    .filter((x) => x.m !== null)
    .map((x) => ({ n: Number(x.m![1]), path: join(dir, x.name) }))
    .sort((a, b) => a.n - b.n);
}

const MAX = 8192;
const SNAP = 300;

test('capture: packets across rotations, every file within maxBytes, read by tcpdump and by the parser', async () => {
  const dir = freshDir();
  const stages = await UserStages.load([{ module: CAPTURE, config: `dir=${dir},maxBytes=${MAX},files=1000,snaplen=${SNAP}` }], 'main');
  const t0 = Date.now() * 1000;
  const sent = feed(stages, packets(300, 1), 2);
  const t1 = Date.now() * 1000;
  stages.close();

  const files = captureFiles(dir, 'main');
  assert.ok(files.length > 5, `rotated (${files.length} files)`);
  assert.deepEqual(files.map((f) => f.n), files.map((_, i) => i), 'numbered from 0');
  const got: Epb[] = [];
  let total = 0;
  files.forEach((f, k) => {
    const size = statSync(f.path).size;
    total += size;
    assert.ok(size <= MAX, `${f.path}: ${size} > maxBytes`);
    assert.equal(statSync(f.path).mode & 0o777, 0o600, 'capture files are private');
    const epbs = parsePcapng(f.path);
    assert.equal(tcpdumpCount(f.path), epbs.length, `tcpdump reads every packet of ${f.path}`);
    if (k + 1 < files.length) {
      // Rotated only when needed: the next file's first packet did not fit in this one.
      const next = parsePcapng(files[k + 1]!.path)[0]!;
      assert.ok(size + 44 + ((next.captured.length + 3) & ~3) > MAX, `${f.path} was rotated early`);
    }
    got.push(...epbs);
  });
  assert.equal(got.length, sent.length);
  got.forEach((epb, i) => {
    assert.equal(epb.flags, sent[i]!.flags, `packet ${i}: direction in epb_flags`);
    assert.equal(epb.length, sent[i]!.bytes.length, `packet ${i}: original length`);
    assert.deepEqual(epb.captured, sent[i]!.bytes.subarray(0, SNAP), `packet ${i}: bytes (cut at snaplen)`);
    assert.ok(epb.timestamp >= t0 - 1000 && epb.timestamp <= t1 + 1000, `packet ${i}: timestamp in microseconds`);
  });
  assert.ok(sent.some((s) => s.bytes.length > SNAP) && sent.some((s) => s.flags === 1) && sent.some((s) => s.flags === 2));
  assert.deepEqual(stages.snapshot().counters, {
    stage_capture_packets: 300,
    stage_capture_bytes: total,
    stage_capture_files: files.length,
    stage_capture_write_errors: 0,
  });
});

test('capture: at most K files are kept, the newest; numbering goes on after an earlier run', async () => {
  const dir = freshDir();
  mkdirSync(dir);
  writeFileSync(join(dir, 'tundra-udp-0-7.pcapng'), 'an earlier run');
  writeFileSync(join(dir, 'tundra-udp-1-3.pcapng'), 'another thread');
  const stages = await UserStages.load([{ module: CAPTURE, config: `dir=${dir},maxBytes=${MAX},files=3,snaplen=${SNAP}` }], 'udp-0');
  const sent = feed(stages, packets(400, 3), 4);
  stages.close();

  const files = captureFiles(dir, 'udp-0');
  const opened = stages.snapshot().counters.stage_capture_files!;
  assert.ok(opened > 5);
  assert.deepEqual(files.map((f) => f.n), [opened + 5, opened + 6, opened + 7], 'the 3 newest, numbered after the earlier run');
  assert.ok(readdirSync(dir).includes('tundra-udp-1-3.pcapng'), "another thread's file is left alone");
  const got = files.flatMap((f) => {
    assert.ok(statSync(f.path).size <= MAX);
    const epbs = parsePcapng(f.path);
    assert.equal(tcpdumpCount(f.path), epbs.length);
    return epbs;
  });
  const tail = sent.slice(sent.length - got.length);
  got.forEach((epb, i) => assert.deepEqual(epb.captured, tail[i]!.bytes.subarray(0, SNAP), `kept packet ${i} is the sent one`));
  assert.ok(got.length > 0);
  assert.equal(stages.snapshot().counters.stage_capture_packets, 400);
});

test('capture: an I/O error is counted, stops the capture, and never reaches the data path', async () => {
  const dir = freshDir();
  const stages = await UserStages.load([{ module: CAPTURE, config: `dir=${dir},maxBytes=${MAX},files=2,snaplen=${SNAP}` }], 'tun-0');
  rmSync(dir, { recursive: true }); // the next rotation cannot open its file
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    feed(stages, packets(200, 5), 6);
    feed(stages, packets(50, 7), 8);
  } finally {
    console.error = original;
  }
  stages.close();
  const { counters, drops } = stages.snapshot();
  assert.equal(counters.stage_capture_write_errors, 1);
  assert.equal(errors.length, 1, 'one line logged');
  assert.match(String((errors[0] as unknown[])[0]), /capture \(tun-0\): capturing stopped after an I\/O error in .*ENOENT/);
  assert.ok(counters.stage_capture_packets! > 0 && counters.stage_capture_packets! < 200, 'what was written before the error is counted');
  assert.equal(drops.stage_capture_error, 0, 'the stage never threw');
});

test('capture: config errors say what is wrong', async () => {
  const bad = async (config: string | undefined, pattern: RegExp) =>
    assert.rejects(UserStages.load([{ module: CAPTURE, config }], 'main'), pattern, String(config));
  await bad(undefined, /capture: no config; the capture stage takes dir=PATH/);
  await bad('maxBytes=100000', /capture: dir= is missing or empty/);
  await bad(`dir=${freshDir()},maxbytes=1`, /capture: "maxbytes=1" is not one of dir=, maxBytes=, files=, snaplen=/);
  await bad(`dir=${freshDir()},files=0`, /capture: files=0 is not a whole number from 1 to/);
  await bad(`dir=${freshDir()},files=2x`, /capture: files=2x is not a whole number/);
  await bad(`dir=${freshDir()},snaplen=70000`, /capture: snaplen=70000 is not a whole number from 1 to 65535/);
  await bad(`dir=${freshDir()},dir=/tmp`, /capture: dir is given twice/);
  await bad(`dir=${freshDir()},maxBytes=1000`, /capture: maxBytes=1000 cannot hold the file headers and one packet of snaplen 65535; give at least 65668/);
  // Sizes take K/M/G.
  const ok = await UserStages.load([{ module: CAPTURE, config: `dir=${freshDir()},maxBytes=1M,files=2` }], 'main');
  ok.close();
});
