// Test fixture, run inside a test namespace (`ip netns exec tdr-… node tun-echo.js IFNAME`):
// opens TUN IFNAME and answers ICMP/ICMPv6 echo requests read from it, in batches
// driven by an FdWatcher, with replies written back by tunWrite. Reports events as
// JSON lines on stdout and takes commands, one per line, on stdin:
//   mtu N | read-mtu | malformed | capacity N | open-long | open-again | exit
// It exits by itself when stdin closes (the test ended) or after 60 s.
import { createInterface } from 'node:readline';
import { closeFd } from '../../src/io/fd.js';
import { linkMtu, openTun, setLinkMtu, tunRead, tunWrite } from '../../src/tun/tun.js';
import { FdWatcher } from '../../src/io/watch.js';
import { icmpEcho, internetChecksum } from './packets.js';

const name = process.argv[2];
if (name === undefined) throw new Error('usage: tun-echo IFNAME');

function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function errorFields(err: unknown): Record<string, unknown> {
  const e = err as NodeJS.ErrnoException;
  return { code: e.code, message: e.message, errno: e.errno, type: e.constructor.name };
}

const tun = openTun(name);
report('opened', { name: tun.name, fd: tun.fd });

// The batch arena: SharedArrayBuffer-backed at a non-zero byteOffset, as the device's.
const SLOTS = 16;
const SLOT = 2048;
const data = new Uint8Array(new SharedArrayBuffer(64 + SLOTS * SLOT), 64);
const offsets = new Uint32Array(SLOTS);
const lengths = new Uint32Array(SLOTS);
for (let i = 0; i < SLOTS; i++) offsets[i] = i * SLOT + 8;
const replyOffsets = new Uint32Array(SLOTS);
const replyLengths = new Uint32Array(SLOTS);
const status = new Int32Array(SLOTS);
let capacity = SLOT - 8;
const freshStats = () => ({ batches: 0, requests: 0, replies: 0, maxBatch: 0, truncated: 0, other: 0, pollerrs: 0, readErrors: 0 });
let stats = freshStats();

/** Turns an echo request at data[off, off+len) into its reply in place; false if it is none. */
function makeReply(off: number, len: number): boolean {
  const p = data.subarray(off, off + len);
  const version = p[0]! >> 4;
  if (version === 4 && len >= 28 && p[9] === 1) {
    const ihl = (p[0]! & 0x0f) * 4;
    if (p[ihl] !== 8) return false;
    swap(p, 12, 16, 4);
    p[ihl] = 0;
    p[ihl + 2] = p[ihl + 3] = 0;
    const sum = internetChecksum(p, ihl, len);
    p[ihl + 2] = sum >> 8;
    p[ihl + 3] = sum & 0xff;
    return true; // the IPv4 header checksum does not change when the addresses swap
  }
  if (version === 6 && len >= 48 && p[6] === 58 && p[40] === 128) {
    swap(p, 8, 24, 16);
    p[40] = 129;
    p[42] = p[43] = 0;
    // Pseudo-header (addresses, upper-layer length, next header 58) + the message.
    const pseudo = new Uint8Array(40 + len - 40);
    pseudo.set(p.subarray(8, 40), 0);
    new DataView(pseudo.buffer).setUint32(32, len - 40);
    pseudo[39] = 58;
    pseudo.set(p.subarray(40), 40);
    const sum = internetChecksum(pseudo);
    p[42] = sum >> 8;
    p[43] = sum & 0xff;
    return true;
  }
  return false;
}

function swap(p: Uint8Array, a: number, b: number, n: number): void {
  for (let k = 0; k < n; k++) {
    const t = p[a + k]!;
    p[a + k] = p[b + k]!;
    p[b + k] = t;
  }
}

const watcher = new FdWatcher(tun.fd, (readable, _writable, error) => {
  if (error) {
    stats.pollerrs++;
    report('pollerr', { readable });
  }
  for (let round = 0; round < 8; round++) {
    let n: number;
    try {
      n = tunRead(tun.fd, data, offsets, lengths, SLOTS, capacity);
    } catch (err) {
      // Left watching on purpose: the watcher itself must not call again for
      // a permanent error (the test counts the calls).
      stats.readErrors++;
      report('readError', errorFields(err));
      return;
    }
    if (n === 0) break;
    stats.batches++;
    stats.maxBatch = Math.max(stats.maxBatch, n);
    let replies = 0;
    for (let i = 0; i < n; i++) {
      const len = lengths[i]!;
      if (len === 0) {
        stats.truncated++;
        continue;
      }
      if (makeReply(offsets[i]!, len)) {
        stats.requests++;
        replyOffsets[replies] = offsets[i]!;
        replyLengths[replies] = len;
        replies++;
      } else {
        stats.other++;
      }
    }
    if (replies > 0) {
      status.fill(1);
      const written = tunWrite(tun.fd, data, replyOffsets, replyLengths, replies, status);
      for (let i = 0; i < written; i++) if (status[i] === 0) stats.replies++;
      if (written !== replies || status.subarray(0, replies).some((s) => s !== 0)) {
        report('writeProblem', { written, replies, status: [...status.subarray(0, replies)] });
      }
    }
    if (n < SLOTS) break;
  }
});
watcher.watch(true, false);

function command(line: string): void {
  const [cmd, arg] = line.trim().split(/\s+/);
  try {
    switch (cmd) {
      case 'mtu':
        setLinkMtu(name!, Number(arg));
        report('ok');
        break;
      case 'read-mtu':
        report('mtu', { mtu: linkMtu(name!) });
        break;
      case 'stats':
        report('stats', stats);
        stats = freshStats();
        break;
      case 'capacity':
        capacity = Number(arg);
        report('ok');
        break;
      case 'malformed': {
        // [bad version nibble, empty, valid echo reply to 100.96.0.1, 3 bytes of version 1]
        const packets = [
          Uint8Array.of(0x10, 0, 0),
          new Uint8Array(0),
          icmpEcho(0, '100.96.0.2', '100.96.0.1', 0x7d0, 1, new Uint8Array(8)),
          Uint8Array.of(0x15, 0xff, 0xff),
        ];
        const buf = new Uint8Array(256);
        const offs = new Uint32Array(packets.length);
        const lens = new Uint32Array(packets.length);
        let at = 5;
        packets.forEach((p, i) => {
          buf.set(p, at);
          offs[i] = at;
          lens[i] = p.length;
          at += p.length + 7;
        });
        const st = new Int32Array(packets.length).fill(99);
        const written = tunWrite(tun.fd, buf, offs, lens, packets.length, st);
        report('malformed', { written, status: [...st] });
        break;
      }
      case 'open-long':
      case 'open-again':
        try {
          const t = openTun(cmd === 'open-long' ? 'tdr-name-too-long' : name!);
          closeFd(t.fd);
          report('opened-unexpectedly', { name: t.name });
        } catch (err) {
          report('openError', errorFields(err));
        }
        break;
      case 'exit':
        shutdown();
        break;
      default:
        report('error', { message: `unknown command ${line}` });
    }
  } catch (err) {
    report('error', errorFields(err));
  }
}

function shutdown(): void {
  watcher.close();
  closeFd(tun.fd);
  report('closed');
  process.exit(0);
}

createInterface({ input: process.stdin }).on('line', command).on('close', shutdown);
setTimeout(shutdown, 60_000).unref();
report('ready');
