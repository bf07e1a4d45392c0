// A UDP transfer with sequence checks for tunnel tests, run inside a namespace. The
// sender uses UDP GSO (runs of 64 datagrams per send, so the TUN gets USO super-
// packets), the receiver UDP GRO, both through tundra's own socket calls:
//   node udp-transfer.js sink ADDRESS PORT COUNT          prints the report when done
//   node udp-transfer.js source ADDRESS PORT COUNT MBITS  sends COUNT datagrams at MBITS
// Datagram i is SIZE bytes: i as a u32, then bytes that depend on i and their place,
// so the sink checks each one's content, order, loss and duplicates.
import { udpGroBuffers, udpGroStashed, udpOpen, udpRecv, udpSend, UDP_GSO_IPV4, UDP_GSO_IPV6 } from '../../src/conn/udp.js';
import { udpRecvStats, UDP_RECV_STAT_NAMES } from '../../src/offload/udp-stats.js';
import { writeAddr, ADDR_STRIDE } from '../../src/pipeline/address.js';
import { FdWatcher } from '../../src/io/watch.js';

const SIZE = 1200;
/** Datagrams per GSO send: short bursts, so a peer without offloads keeps up at a moderate rate. */
const RUN = 16;
const IDLE_MS = 3000;
const TIMEOUT_MS = 60_000;

export interface UdpTransferReport {
  received: number;
  lost: number;
  reordered: number;
  duplicates: number;
  corrupt: number;
  groReceives: number;
}

function fill(buf: Uint8Array, at: number, seq: number): void {
  new DataView(buf.buffer, buf.byteOffset).setUint32(at, seq);
  for (let k = 4; k < SIZE; k++) buf[at + k] = (seq * 31 + k * 7) & 0xff;
}

function intact(buf: Uint8Array, at: number, length: number, seq: number): boolean {
  if (length !== SIZE) return false;
  for (let k = 4; k < SIZE; k++) if (buf[at + k] !== ((seq * 31 + k * 7) & 0xff)) return false;
  return true;
}

const [mode, address, portText, countText, mbitText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const family = address!.includes(':') ? 6 : 4;
setTimeout(() => {
  process.stderr.write(`udp-transfer ${mode}: timed out\n`);
  process.exit(2);
}, TIMEOUT_MS).unref();

if (mode === 'sink') {
  const socket = udpOpen({ port, family, bindAddress: address, gro: true });
  const slots = 128;
  const data = new Uint8Array(slots * 2048);
  const offsets = Uint32Array.from({ length: slots }, (_, i) => i * 2048);
  const lengths = new Uint32Array(slots);
  const addrs = new Uint8Array(slots * ADDR_STRIDE);
  const stats = udpRecvStats();
  const gro = udpGroBuffers(8);
  const seen = new Uint8Array(count);
  const report: UdpTransferReport = { received: 0, lost: 0, reordered: 0, duplicates: 0, corrupt: 0, groReceives: 0 };
  let highest = -1;
  let idle: NodeJS.Timeout | undefined;
  const finish = (): void => {
    watcher.close();
    for (let i = 0; i < count; i++) if (seen[i] === 0) report.lost++;
    report.groReceives = stats[UDP_RECV_STAT_NAMES.indexOf('gro_receives')]!;
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(0);
  };
  const watcher = new FdWatcher(socket.fd, () => {
    let n: number;
    do {
      n = udpRecv(socket.fd, data, offsets, lengths, addrs, slots, 2048, { gro, stats });
      for (let i = 0; i < n; i++) {
        const seq = new DataView(data.buffer).getUint32(offsets[i]!);
        if (seq >= count || !intact(data, offsets[i]!, lengths[i]!, seq)) {
          report.corrupt++;
          continue;
        }
        report.received++;
        if (seen[seq] === 1) report.duplicates++;
        seen[seq] = 1;
        if (seq < highest) report.reordered++;
        else highest = seq;
      }
    } while (n === slots || udpGroStashed(gro));
    clearTimeout(idle);
    if (highest === count - 1) finish();
    else idle = setTimeout(finish, IDLE_MS);
  });
  watcher.watch(true, false);
  process.stderr.write('listening\n');
} else if (mode === 'source') {
  const socket = udpOpen({ port: 0, family });
  const data = new Uint8Array(RUN * SIZE);
  const offsets = Uint32Array.from({ length: RUN }, (_, i) => i * SIZE);
  const lengths = new Uint32Array(RUN).fill(SIZE);
  const addrs = new Uint8Array(RUN * ADDR_STRIDE);
  for (let i = 0; i < RUN; i++) writeAddr(addrs, i, address!, port);
  const status = new Int32Array(RUN);
  const intervalMs = (RUN * SIZE * 8) / (Number(mbitText) * 1000);
  let next = 0;
  const started = performance.now();
  const tick = (): void => {
    const n = Math.min(RUN, count - next);
    for (let i = 0; i < n; i++) fill(data, offsets[i]!, next + i);
    let sent = 0;
    while (sent < n) {
      status.fill(0);
      const k = udpSend(socket.fd, data, offsets.subarray(sent), lengths.subarray(sent), addrs.subarray(sent * ADDR_STRIDE), n - sent, status, UDP_GSO_IPV4 | UDP_GSO_IPV6);
      for (let j = 0; j < k; j++) if (status[j]! < 0) throw new Error(`udp-transfer source: the kernel refused datagram ${next + sent + j} (errno ${-status[j]!})`);
      sent += k;
    }
    next += n;
    if (next >= count) {
      process.stdout.write(`${JSON.stringify({ sent: next })}\n`);
      process.exit(0);
    }
    setTimeout(tick, Math.max(0, started + (next / RUN) * intervalMs - performance.now()));
  };
  tick();
} else {
  process.stderr.write('usage: udp-transfer sink|source ADDRESS PORT COUNT [MBITS]\n');
  process.exit(2);
}
