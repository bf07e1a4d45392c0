// A capture tap, as a tundra user stage (see examples/README.md): writes the plaintext
// packets of both directions to pcapng files that Wireshark and tcpdump read.
//
//   --stage './dist/examples/capture/capture.js=dir=/var/tmp/tundra\,maxBytes=64M\,files=8'
//   (in --stage / TUNDRA_STAGES a comma inside the config is written \,)
//
// Config: dir=PATH (required; made if missing, 0700), maxBytes=N (default 64M; K/M/G = 1024^n),
// files=K (default 8), snaplen=S (default 65535; bytes kept of each packet).
// Files: DIR/tundra-<thread>-<n>.pcapng, mode 0600 (they hold plaintext). One section per
// file: a Section Header Block, one Interface Description Block (LINKTYPE_RAW: each packet
// starts with its IPv4 or IPv6 header), then an Enhanced Packet Block per packet with
// microsecond timestamps (one per batch: its packets came together) and the direction in
// its epb_flags (Wireshark shows it; `tcpdump -Q in|out` does not apply to files). One
// interface, not one per direction: libpcap 1.10 (tcpdump 4.99) refuses a file whose
// second LINKTYPE_RAW interface "has a type different from the first".

// A file is rotated before it would pass maxBytes; numbering goes on after the highest
// file of this thread already in DIR, and at most K files of this thread are kept (the
// oldest are deleted, also those of an earlier run).
// Writes: the blocks of a batch are built in a buffer made at start and written with one
// writeSync per batch (more only if a batch overflows the buffer or a file rotates).
// An I/O error never reaches the data path: it is counted in write_errors, logged once,
// and capturing stops. Counters: packets, bytes (written to files, headers included),
// files (opened), write_errors.
import { closeSync, mkdirSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Stage, StageBatch, StageInit } from '../../src/stages/user-stage.js';

export class CaptureConfigError extends Error {}

export interface CaptureConfig {
  dir: string;
  maxBytes: number;
  files: number;
  snaplen: number;
}

const LINKTYPE_RAW = 101;
const BLOCK_SHB = 0x0a0d0d0a;
const BLOCK_IDB = 0x00000001;
const BLOCK_EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT_END = 0;
const OPT_SHB_USERAPPL = 4;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_EPB_FLAGS = 2;
/** epb_flags bits 0-1: the direction. */
const FLAGS_INBOUND = 1;
const FLAGS_OUTBOUND = 2;
/** Enhanced Packet Block: 7 words, the padded data, epb_flags (8 bytes), end of options, trailing length. */
const EPB_OVERHEAD = 32 + 12;
const BUFFER_SIZE = 1 << 20;

const pad4 = (n: number): number => (n + 3) & ~3;

/** Parses `dir=PATH,maxBytes=N,files=K[,snaplen=S]`. */
export function parseCaptureConfig(text: string | undefined): CaptureConfig {
  const usage = 'the capture stage takes dir=PATH[,maxBytes=N][,files=K][,snaplen=S] (in --stage and TUNDRA_STAGES write each comma as \\,)';
  if (text === undefined || text.trim() === '') throw new CaptureConfigError(`capture: no config; ${usage}`);
  const values = new Map<string, string>();
  for (const item of text.split(',')) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item.trim() : item.slice(0, eq).trim();
    if (eq < 0 || !['dir', 'maxBytes', 'files', 'snaplen'].includes(key)) {
      throw new CaptureConfigError(`capture: "${item}" is not one of dir=, maxBytes=, files=, snaplen=; ${usage}`);
    }
    if (values.has(key)) throw new CaptureConfigError(`capture: ${key} is given twice`);
    values.set(key, item.slice(eq + 1).trim());
  }
  const dir = values.get('dir');
  if (!dir) throw new CaptureConfigError(`capture: dir= is missing or empty; ${usage}`);
  const number = (key: string, fallback: number, min: number, max: number): number => {
    const v = values.get(key);
    if (v === undefined) return fallback;
    const m = /^([0-9]+)([KMG]?)$/i.exec(v);
    const n = m ? Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase()) : NaN;
    if (!(n >= min && n <= max)) throw new CaptureConfigError(`capture: ${key}=${v} is not a whole number from ${min} to ${max}`);
    return n;
  };
  const config = {
    dir: resolve(dir),
    maxBytes: number('maxBytes', 64 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
    files: number('files', 8, 1, 1_000_000),
    snaplen: number('snaplen', 65535, 1, 65535),
  };
  const least = HEADER_BYTES + EPB_OVERHEAD + pad4(config.snaplen);
  if (config.maxBytes < least) {
    throw new CaptureConfigError(`capture: maxBytes=${config.maxBytes} cannot hold the file headers and one packet of snaplen ${config.snaplen}; give at least ${least}`);
  }
  return config;
}

// ---- pcapng blocks ----------------------------------------------------------------------------

const encoder = new TextEncoder();
const APPLICATION = encoder.encode('tundra');
const IF_NAME = encoder.encode('tundra');

const TSRESOL_MICRO = Uint8Array.of(6); // if_tsresol: 10^-6 s

const optionBytes = (value: Uint8Array): number => 4 + pad4(value.length);
const shbBytes = 28 + optionBytes(APPLICATION) + 4;
const idbBytes = 20 + optionBytes(IF_NAME) + optionBytes(TSRESOL_MICRO) + 4;
/** Bytes of the blocks that start every file. */
const HEADER_BYTES = shbBytes + idbBytes;

class BlockWriter {
  readonly buf = new Uint8Array(BUFFER_SIZE);
  private readonly view = new DataView(this.buf.buffer);
  pos = 0;

  private u16(v: number): void {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }
  private u32(v: number): void {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  private option(code: number, value: Uint8Array): void {
    this.u16(code);
    this.u16(value.length);
    this.buf.set(value, this.pos);
    this.buf.fill(0, this.pos + value.length, this.pos + pad4(value.length));
    this.pos += pad4(value.length);
  }

  header(snaplen: number): void {
    this.u32(BLOCK_SHB);
    this.u32(shbBytes);
    this.u32(BYTE_ORDER_MAGIC);
    this.u16(1); // version 1.0
    this.u16(0);
    this.u32(0xffffffff); // section length -1: not given
    this.u32(0xffffffff);
    this.option(OPT_SHB_USERAPPL, APPLICATION);
    this.u32(OPT_END);
    this.u32(shbBytes);
    this.u32(BLOCK_IDB);
    this.u32(idbBytes);
    this.u16(LINKTYPE_RAW);
    this.u16(0);
    this.u32(snaplen);
    this.option(OPT_IF_NAME, IF_NAME);
    this.option(OPT_IF_TSRESOL, TSRESOL_MICRO);
    this.u32(OPT_END);
    this.u32(idbBytes);
  }

  /** `data` is a Buffer over the batch's arena (Buffer.copy copies without making a view per packet). */
  packet(flags: number, tsHigh: number, tsLow: number, data: Buffer, at: number, length: number, captured: number): void {
    const size = EPB_OVERHEAD + pad4(captured);
    this.u32(BLOCK_EPB);
    this.u32(size);
    this.u32(0); // interface 0
    this.u32(tsHigh);
    this.u32(tsLow);
    this.u32(captured);
    this.u32(length);
    data.copy(this.buf, this.pos, at, at + captured);
    this.buf.fill(0, this.pos + captured, this.pos + pad4(captured));
    this.pos += pad4(captured);
    this.u16(OPT_EPB_FLAGS);
    this.u16(4);
    this.u32(flags);
    this.u32(OPT_END);
    this.u32(size);
  }
}

// ---- the stage --------------------------------------------------------------------------------

export function createStage(init: StageInit): Stage {
  const config = parseCaptureConfig(init.config);
  const counters = init.counters(['packets', 'bytes', 'files', 'write_errors']);
  const counter = (k: number): Float64Array => counters.subarray(k, k + 1);
  const [packets, bytes, files, writeErrors] = [counter(0), counter(1), counter(2), counter(3)];
  const thread = init.thread.replace(/[^A-Za-z0-9_-]/g, '_');
  const pattern = new RegExp(`^tundra-${thread}-([0-9]+)\\.pcapng$`);
  mkdirSync(config.dir, { recursive: true, mode: 0o700 });
  const kept = readdirSync(config.dir)
    .map((name) => pattern.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  let next = kept.length > 0 ? kept[kept.length - 1]! + 1 : 0;
  const fileName = (n: number): string => join(config.dir, `tundra-${thread}-${n}.pcapng`);

  const out = new BlockWriter();
  let fd = -1;
  let fileBytes = 0; // written to the current file
  let pendingPackets = 0; // in out.buf, not yet written
  let stopped = false;

  const flush = (): void => {
    let at = 0;
    while (at < out.pos) at += writeSync(fd, out.buf, at, out.pos - at);
    fileBytes += out.pos;
    bytes[0]! += out.pos;
    packets[0]! += pendingPackets;
    out.pos = 0;
    pendingPackets = 0;
  };
  const openNext = (): void => {
    if (fd >= 0) closeSync(fd);
    fd = -1;
    const n = next++;
    fd = openSync(fileName(n), 'w', 0o600);
    files[0]! += 1;
    fileBytes = 0;
    kept.push(n);
    while (kept.length > config.files) {
      try {
        unlinkSync(fileName(kept[0]!));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      kept.shift();
    }
    out.header(config.snaplen);
  };
  const fail = (err: unknown): void => {
    writeErrors[0]! += 1;
    stopped = true;
    out.pos = 0;
    console.error(`capture (${init.thread}): capturing stopped after an I/O error in ${config.dir}: ${(err as Error).message}`);
    try {
      if (fd >= 0) closeSync(fd);
    } catch {
      // already reported; the descriptor is gone either way
    }
    fd = -1;
  };

  openNext(); // at create, so that a bad dir is a start-up error, not a data-path one
  flush();

  // A Buffer over the arena, made again only if the arena changes (it is fixed at start).
  let arena: Uint8Array | undefined;
  let arenaBuffer: Buffer = Buffer.alloc(0);
  const tap = (flags: number) => (batch: StageBatch): void => {
    if (stopped) return;
    const { data, offsets, lengths, count } = batch;
    if (data !== arena) {
      arena = data;
      arenaBuffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    }
    const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
    const tsHigh = Math.floor(us / 2 ** 32);
    const tsLow = us >>> 0;
    try {
      for (let i = 0; i < count; i++) {
        const length = lengths[i]!;
        const captured = length < config.snaplen ? length : config.snaplen;
        const size = EPB_OVERHEAD + pad4(captured);
        if (fileBytes + out.pos + size > config.maxBytes) {
          flush();
          openNext();
        } else if (out.pos + size > out.buf.length) {
          flush();
        }
        out.packet(flags, tsHigh, tsLow, arenaBuffer, offsets[i]!, length, captured);
        pendingPackets++;
      }
      flush();
    } catch (err) {
      fail(err);
    }
  };

  return {
    name: 'capture',
    outbound: tap(FLAGS_OUTBOUND),
    inbound: tap(FLAGS_INBOUND),
    close(): void {
      if (stopped) return;
      stopped = true;
      try {
        flush();
        closeSync(fd);
        fd = -1;
      } catch (err) {
        fail(err);
      }
    },
  };
}
