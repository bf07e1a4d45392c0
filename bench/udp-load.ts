// A QUIC-like UDP load generator on src/conn/udp.ts, with UDP GSO on send and GRO on
// receive (iperf3 cannot use UDP GSO):
//
//   node dist/bench/udp-load.js send (--to ADDR:PORT | --reply-to ADDR:PORT) --seconds S [--size 1200] [--rate-mbit R] [--gso 1|0]
//   node dist/bench/udp-load.js recv --listen ADDR:PORT --seconds S [--gro 1|0] [--hello ADDR:PORT]
//
// IPv6 addresses go in brackets ([::1]:9000). Every datagram starts with a u64
// sequence number and a u32 run id (big-endian); the sender sends runs of 64 equal
// datagrams to one peer (fewer when 64 would exceed a GSO message's 65507 / 65527
// bytes: 54 of 1200), two runs per udpSend call, at full speed unless a rate
// is given (waiting for writability on EAGAIN). The receiver counts datagrams, bytes,
// lost, reordered and duplicates (bench/e2e/sequence.ts).
// For a download through a NAT (an exit node), `send --reply-to` binds ADDR:PORT and
// waits (at most 10 s) for a hello, then sends to where it came from; `recv --hello`
// sends that hello (12 bytes, HELLO below, never data) to ADDR:PORT every 200 ms from
// its listening socket until the first datagram arrives.
// Both stop by themselves: the sender after S seconds, the receiver S + 2 s after its
// first datagram, or after S + 10 s without any. Each prints one JSON line:
//   { role, seconds, datagrams, bytes, mbit_per_s, lost, reordered, duplicates,
//     gso_sends, gro_receives, errors }
// (null where a figure does not apply to the role; `errors`: datagrams the kernel
// refused, sender only). A GSO message the kernel refuses (EIO, EINVAL, EMSGSIZE)
// turns GSO off for the rest of the run, as a device would.
import { performance } from 'node:perf_hooks';
import { ADDR_STRIDE, readAddr, writeAddr } from '../src/pipeline/address.js';
import { UDP_GSO_IPV4, UDP_GSO_IPV6, UDP_GSO_MAX_SEGMENTS, udpGroBuffers, udpGroStashed, udpOpen, udpRecv, udpSend, type UdpFamily, type UdpSocket } from '../src/conn/udp.js';
import { UDP_RECV_STAT_NAMES, UDP_SEND_STAT_NAMES, udpRecvStats, udpSendStats } from '../src/offload/udp-stats.js';
import { closeFd } from '../src/io/fd.js';
import { FdWatcher } from '../src/io/watch.js';
import { SequenceTracker } from './e2e/sequence.js';

const HEADER = 12; // u64 sequence + u32 run id
/** What `recv --hello` sends: 12 bytes no data datagram has (its run id does not match its sequence number). */
const HELLO = new TextEncoder().encode('udp-load:hi!');
const HELLO_WAIT_MS = 10_000;
const HELLO_EVERY_MS = 200;
const RUNS_PER_CALL = 2;
const GSO_SENDS = UDP_SEND_STAT_NAMES.indexOf('gso_sends');
const GRO_RECEIVES = UDP_RECV_STAT_NAMES.indexOf('gro_receives');

interface Result {
  role: 'send' | 'recv';
  seconds: number;
  datagrams: number;
  bytes: number;
  mbit_per_s: number;
  lost: number | null;
  reordered: number | null;
  duplicates: number | null;
  gso_sends: number | null;
  gro_receives: number | null;
  errors: number | null;
}

function usage(message: string): never {
  process.stderr.write(`udp-load: ${message}\n` +
    'usage: udp-load send (--to ADDR:PORT | --reply-to ADDR:PORT) --seconds S [--size 1200] [--rate-mbit R] [--gso 1|0]\n' +
    '       udp-load recv --listen ADDR:PORT --seconds S [--gro 1|0] [--hello ADDR:PORT]\n');
  process.exit(2);
}

function parseArgs(argv: string[]): { role: string; opts: Map<string, string> } {
  const [role, ...rest] = argv;
  if (role !== 'send' && role !== 'recv') usage('first argument must be send or recv');
  const opts = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i]!;
    const value = rest[i + 1];
    if (!key.startsWith('--') || value === undefined) usage(`bad argument ${key}`);
    opts.set(key.slice(2), value);
  }
  return { role, opts };
}

function numberOpt(opts: Map<string, string>, key: string, fallback: number | undefined, min: number, max: number): number {
  const text = opts.get(key);
  if (text === undefined) {
    if (fallback === undefined) usage(`--${key} is required`);
    return fallback;
  }
  const v = Number(text);
  if (!Number.isFinite(v) || v < min || v > max) usage(`--${key} ${text} is not in [${min}, ${max}]`);
  return v;
}

function flagOpt(opts: Map<string, string>, key: string): boolean {
  const text = opts.get(key) ?? '1';
  if (text !== '0' && text !== '1') usage(`--${key} must be 0 or 1`);
  return text === '1';
}

/** "198.18.0.1:9000" or "[fd00::1]:9000". */
function parseEndpoint(text: string | undefined, what: string): { address: string; port: number; family: 4 | 6 } {
  const m = text === undefined ? null : /^(?:\[([0-9a-fA-F:.]+)\]|(\d+\.\d+\.\d+\.\d+)):(\d+)$/.exec(text);
  if (m === null) usage(`${what} must be ADDR:PORT or [ADDR]:PORT`);
  const port = Number(m[3]);
  if (port > 65535) usage(`${what}: port ${port} is out of range`);
  return m[1] !== undefined ? { address: m[1], port, family: 6 } : { address: m[2]!, port, family: 4 };
}

function finish(result: Result): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

// ---- sender ----

type Endpoint = ReturnType<typeof parseEndpoint>;

function isHello(data: Uint8Array, at: number, length: number): boolean {
  if (length !== HELLO.length) return false;
  for (let k = 0; k < length; k++) if (data[at + k] !== HELLO[k]) return false;
  return true;
}

function send(opts: Map<string, string>): void {
  const replyTo = opts.get('reply-to');
  if ((replyTo === undefined) === (opts.get('to') === undefined)) usage('give one of --to and --reply-to');
  const seconds = numberOpt(opts, 'seconds', undefined, 0.1, 86_400);
  const rateMbit = opts.has('rate-mbit') ? numberOpt(opts, 'rate-mbit', undefined, 0.001, 1e6) : 0;
  const wantGso = flagOpt(opts, 'gso');
  if (replyTo === undefined) {
    const to = parseEndpoint(opts.get('to'), '--to');
    const size = numberOpt(opts, 'size', 1200, HEADER, to.family === 4 ? 65507 : 65527);
    const socket = udpOpen({ port: 0, family: to.family });
    const watcher = new FdWatcher(socket.fd, () => onWritable());
    const onWritable = sendTo(socket, watcher, to, { seconds, size, rateMbit, wantGso });
    return;
  }
  const local = parseEndpoint(replyTo, '--reply-to');
  const size = numberOpt(opts, 'size', 1200, HEADER, local.family === 4 ? 65507 : 65527);
  const socket = udpOpen({ port: local.port, family: local.family, bindAddress: local.address });
  // One watcher per fd: it serves the wait for the hello, then the sending.
  let handler = (): void => {};
  const watcher = new FdWatcher(socket.fd, () => handler());
  const slots = 8;
  const capacity = 2048;
  const data = new Uint8Array(slots * capacity);
  const offsets = new Uint32Array(slots).map((_, i) => i * capacity);
  const lengths = new Uint32Array(slots);
  const addrs = new Uint8Array(slots * ADDR_STRIDE);
  const timer = setTimeout(() => {
    process.stderr.write(`udp-load: no hello on ${replyTo} within ${HELLO_WAIT_MS / 1000} s (is \`recv --hello ${replyTo}\` running?)\n`);
    process.exit(1);
  }, HELLO_WAIT_MS);
  handler = (): void => {
    for (let round = 0; round < 16; round++) {
      const n = udpRecv(socket.fd, data, offsets, lengths, addrs, slots, capacity);
      for (let i = 0; i < n; i++) {
        if (!isHello(data, offsets[i]!, lengths[i]!)) continue;
        clearTimeout(timer);
        const { address, port } = readAddr(addrs, i);
        handler = sendTo(socket, watcher, { address, port, family: local.family }, { seconds, size, rateMbit, wantGso });
        return;
      }
      if (n < slots) return;
    }
  };
  watcher.watch(true, false);
}

interface SendOptions { seconds: number; size: number; rateMbit: number; wantGso: boolean }

/** Starts sending to `to` on the socket's watcher; returns its handler for writability. */
function sendTo(socket: UdpSocket, watcher: FdWatcher, to: Endpoint, o: SendOptions): () => void {
  const { seconds, size, rateMbit } = o;
  const run = Math.min(UDP_GSO_MAX_SEGMENTS, Math.floor((to.family === 4 ? 65507 : 65527) / size));
  const BATCH = run * RUNS_PER_CALL;
  let gso = o.wantGso ? (to.family === 4 ? UDP_GSO_IPV4 : UDP_GSO_IPV6) : 0;
  if (gso !== 0 && !socket.offloads.gso) {
    process.stderr.write('udp-load: this kernel has no UDP GSO; sending without it\n');
    gso = 0;
  }

  const data = new Uint8Array(BATCH * size);
  const view = new DataView(data.buffer);
  const offsets = new Uint32Array(BATCH);
  const lengths = new Uint32Array(BATCH).fill(size);
  const addrs = new Uint8Array(BATCH * ADDR_STRIDE);
  for (let i = 0; i < BATCH; i++) {
    offsets[i] = i * size;
    writeAddr(addrs, i, to.address, to.port);
    for (let k = HEADER; k < size; k++) data[i * size + k] = (i + k) & 0xff;
  }
  const status = new Int32Array(BATCH);
  const stats = udpSendStats();

  let seq = 0; // next sequence number to write
  let start = 0; // first datagram of the batch not yet consumed
  let filled = false;
  let datagrams = 0;
  let errors = 0;
  const began = performance.now();
  const deadline = began + seconds * 1000;
  // Rate: a token bucket holding at most 2 ms of sending (or two batches), so a late
  // timer does not turn into a burst that overflows the receiver's queue.
  const bytesPerMs = (rateMbit * 1e6) / 8 / 1000;
  const maxBurst = Math.max(2 * BATCH * size, 2 * bytesPerMs);
  let tokens = BATCH * size;
  let refilled = began;

  const fill = (): void => {
    for (let i = 0; i < BATCH; i++, seq++) {
      const at = i * size;
      view.setUint32(at, Math.floor(seq / 0x1_0000_0000));
      view.setUint32(at + 4, seq >>> 0);
      view.setUint32(at + 8, Math.floor(seq / run) >>> 0);
    }
    filled = true;
    start = 0;
  };

  let timer: NodeJS.Timeout | undefined;
  const done = (): void => {
    watcher.close();
    if (timer !== undefined) clearTimeout(timer);
    closeFd(socket.fd);
    const elapsed = (performance.now() - began) / 1000;
    finish({
      role: 'send', seconds: round3(elapsed), datagrams, bytes: datagrams * size,
      mbit_per_s: round3((datagrams * size * 8) / elapsed / 1e6),
      lost: null, reordered: null, duplicates: null, gso_sends: stats[GSO_SENDS]!, gro_receives: null, errors,
    });
  };

  const onWritable = (): void => {
    // A bounded amount per wakeup, so timers (and the deadline) get their turn.
    for (let call = 0; call < 64; call++) {
      const now = performance.now();
      if (now >= deadline) return done();
      if (bytesPerMs > 0) {
        tokens = Math.min(maxBurst, tokens + (now - refilled) * bytesPerMs);
        refilled = now;
        const short = (BATCH - start) * size - tokens;
        if (short > 0) {
          watcher.watch(false, false);
          timer = setTimeout(() => { timer = undefined; watcher.watch(false, true); }, Math.max(1, short / bytesPerMs));
          return;
        }
      }
      if (!filled) fill();
      const count = BATCH - start;
      const n = start === 0
        ? udpSend(socket.fd, data, offsets, lengths, addrs, count, status, gso, stats)
        : udpSend(socket.fd, data, offsets.subarray(start), lengths.subarray(start), addrs.subarray(start * ADDR_STRIDE), count, status, gso, stats);
      let refused = 0;
      for (let i = 0; i < n; i++) if (status[i]! < 0) refused++;
      if (refused > 0 && gso !== 0) {
        process.stderr.write(`udp-load: the kernel refused a GSO message (errno ${-status.find((s) => s < 0)!}); sending without GSO\n`);
        gso = 0;
      }
      errors += refused;
      datagrams += n - refused;
      tokens -= n * size;
      start += n;
      if (start === BATCH) filled = false;
      else return; // EAGAIN or ENOBUFS: wait for the socket to drain
    }
  };
  watcher.watch(false, true);
  return onWritable;
}

// ---- receiver ----

function recv(opts: Map<string, string>): void {
  const listen = parseEndpoint(opts.get('listen'), '--listen');
  const seconds = numberOpt(opts, 'seconds', undefined, 0.1, 86_400);
  const wantGro = flagOpt(opts, 'gro');
  const hello = opts.has('hello') ? parseEndpoint(opts.get('hello'), '--hello') : undefined;
  // "::" (any) takes IPv4 peers too.
  const family: UdpFamily = listen.family === 4 ? 4 : listen.address === '::' ? 'dual' : 6;
  const socket = udpOpen({ port: listen.port, family, bindAddress: listen.address, gro: wantGro });
  if (wantGro && !socket.offloads.gro) process.stderr.write('udp-load: this kernel has no UDP GRO; receiving without it\n');
  const gro = socket.offloads.gro ? udpGroBuffers(64) : undefined;
  const stats = udpRecvStats();
  const options = gro === undefined ? { stats } : { gro, stats };

  const slots = 128;
  const capacity = 65535;
  const data = new Uint8Array(slots * 65536);
  const view = new DataView(data.buffer);
  const offsets = new Uint32Array(slots).map((_, i) => i * 65536);
  const lengths = new Uint32Array(slots);
  const addrs = new Uint8Array(slots * ADDR_STRIDE);

  const sequence = new SequenceTracker();
  let bytes = 0;
  let first = 0, last = 0;
  const began = performance.now();

  // Until the first datagram: the hello, so the sender learns where to send (through a NAT).
  let helloTimer: NodeJS.Timeout | undefined;
  if (hello !== undefined) {
    const helloAddr = new Uint8Array(ADDR_STRIDE);
    writeAddr(helloAddr, 0, hello.address, hello.port);
    const helloOffset = new Uint32Array([0]);
    const helloLength = new Uint32Array([HELLO.length]);
    // A hello the kernel refuses or has no room for is simply sent again at the next tick.
    const sayHello = (): void => { udpSend(socket.fd, HELLO, helloOffset, helloLength, helloAddr, 1); };
    sayHello();
    helloTimer = setInterval(sayHello, HELLO_EVERY_MS);
  }

  const drain = (): void => {
    for (let round = 0; round < 256; round++) {
      const n = udpRecv(socket.fd, data, offsets, lengths, addrs, slots, capacity, options);
      if (n > 0) {
        last = performance.now();
        if (first === 0) {
          first = last;
          clearInterval(helloTimer);
        }
      }
      for (let i = 0; i < n; i++) {
        const len = lengths[i]!;
        if (len < HEADER) continue; // dropped (truncated) or not ours
        const at = offsets[i]!;
        bytes += len;
        sequence.account(view.getUint32(at) * 0x1_0000_0000 + view.getUint32(at + 4));
      }
      if (n < slots) return;
    }
    // Still busy: a GRO stash does not make the fd readable, so come back.
    if (gro !== undefined && udpGroStashed(gro)) setImmediate(drain);
  };

  const watcher = new FdWatcher(socket.fd, drain);
  watcher.watch(true, false);
  const ticker = setInterval(() => {
    const now = performance.now();
    const busyOver = first !== 0 && now - first >= (seconds + 2) * 1000;
    const idleOver = now - (last || began) >= (seconds + 10) * 1000;
    if (!busyOver && !idleOver) return;
    clearInterval(ticker);
    clearInterval(helloTimer);
    watcher.close();
    closeFd(socket.fd);
    const active = first === 0 ? 0 : (last - first) / 1000;
    finish({
      role: 'recv', seconds: round3(active), datagrams: sequence.received, bytes,
      mbit_per_s: active > 0 ? round3((bytes * 8) / active / 1e6) : 0,
      lost: sequence.lost, reordered: sequence.reordered, duplicates: sequence.duplicates, gso_sends: null, gro_receives: stats[GRO_RECEIVES]!, errors: null,
    });
  }, 100);
}

const { role, opts } = parseArgs(process.argv.slice(2));
if (role === 'send') send(opts);
else recv(opts);
