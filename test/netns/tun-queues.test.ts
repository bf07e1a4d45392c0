// TUN queues (IFF_MULTI_QUEUE) and the kernel's flow steering, in a tdr- namespace.
// This file is also the fixture: run inside the namespace with TUNDRA_TUN_QUEUES_FIXTURE
// set, it opens the queues with openTunQueues and does the experiment (local UDP
// sockets and ICMP echo through the TUN, 100.96.0.0/24 only) and prints one JSON line;
// the test in the root namespace asserts on it.
//
// What the design relies on (drivers/net/tun.c): a packet written through queue k
// records its flow's symmetric hash -> k (tun_flow_update), and the kernel's packets
// of a flow with such an entry are sent to that queue (tun_automq_select_queue);
// without an entry, by the hash itself. The entry ages out TUN_FLOW_EXPIRE (3 s)
// after the flow's last write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { closeFd } from '../../src/io/fd.js';
import { openTunQueues, tunRead, tunWrite } from '../../src/tun/tun.js';
import { ADDR_STRIDE, writeAddr } from '../../src/pipeline/address.js';
import { udpOpen, udpRecv, udpSend } from '../../src/conn/udp.js';
import { networkTestsUnavailable, TwoHosts } from '../helpers/netns.js';

const SELF = fileURLToPath(import.meta.url);
const FLOWS = 32; // 2 queues: all 32 flows hashed to one queue by chance is 2^-31
const LOCAL = '100.96.0.1';
const REMOTE = '100.96.0.2';
const REMOTE_PORT = 9000;
/** Bounds for a packet that never comes and an entry that never ages out: hangs, not speeds. */
const READ_LIMIT_MS = 10_000;
const LIFETIME_LIMIT_MS = 30_000;

/** What the fixture reports. Queues are 0 or 1; -1 = the packet was not read. */
interface Report {
  queues: number;
  /** Per flow: the queue its first and its second datagram were read on (no write yet). */
  hashed: [number, number][];
  /** Per flow: datagrams delivered to its socket after a write through queue (hashed[0] ^ 1), then back through hashed[0]. */
  delivered: number;
  /** Per flow: read queue after a write through the other queue, then after a write through its own again. */
  steered: number[];
  steeredBack: number[];
  /**
   * Per flow: the lifetime of its entry after its last write (through the other queue), as
   * an interval (lo, hi] of ms that holds it however late the fixture ran (see the fixture);
   * [-1, -1]: its packets were not read from its hash queue again within the limit.
   */
  lifetimeMs: [number, number][];
  /** ICMP echo requests written through these queues, in order; the queue each reply was read on. */
  icmpWrittenOn: number[];
  icmpReplyOn: number[];
  /** openTunQueues(name, 257): the error's code, fds left open by it, whether the interface was left behind. */
  tooMany: { code: string; leakedFds: number; linkLeft: boolean };
}

if (process.env.TUNDRA_TUN_QUEUES_FIXTURE !== undefined) {
  await fixture(process.env.TUNDRA_TUN_QUEUES_FIXTURE);
} else {
  test('openTunQueues refuses a count below 1 before opening anything', () => {
    for (const count of [0, -1, 1.5, NaN]) {
      assert.throws(() => openTunQueues('tdr-never', count), { name: 'RangeError', message: `openTunQueues: count ${count} is not an integer >= 1` });
    }
  });

  const skip = networkTestsUnavailable(['ip']);
  for (const vnet of [false, true]) {
    test(`TUN multi-queue${vnet ? ' with IFF_VNET_HDR' : ''}: flows spread over 2 queues; a flow written through queue k is read from queue k until its entry ages out`, { timeout: 120_000, skip }, () => {
      steeringTest(vnet);
    });
  }
}

function steeringTest(vnet: boolean): void {
  const hosts = new TwoHosts(vnet ? 'tv' : 'tq');
  try {
    const ifname = `tdrm${vnet ? 'v' : ''}${process.pid % 100000}`;
    const r = spawnSync('ip', ['netns', 'exec', hosts.a, process.execPath, SELF], {
      encoding: 'utf8', timeout: 90_000, env: { ...process.env, TUNDRA_TUN_QUEUES_FIXTURE: `${ifname}${vnet ? ',vnet' : ''}` },
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as Report;
    const detail = JSON.stringify(report);
    assert.equal(report.queues, 2);

    // Before any write, each flow's reads follow its hash: the same queue every
    // time, and both queues carry some of the 32 flows.
    assert.equal(report.hashed.length, FLOWS);
    for (const [first, second] of report.hashed) {
      assert.ok(first === 0 || first === 1, detail);
      assert.equal(second, first, `a flow's reads stay on one queue: ${detail}`);
    }
    const onQueue1 = report.hashed.filter(([q]) => q === 1).length;
    assert.ok(onQueue1 > 0 && onQueue1 < FLOWS, `both queues read flows: ${onQueue1} of ${FLOWS} on queue 1`);

    // Writes through either queue are delivered; after one through the other queue
    // the flow is read there, and after one through its own queue again, there.
    assert.equal(report.delivered, 2 * FLOWS);
    assert.deepEqual(report.steered, report.hashed.map(([q]) => q ^ 1), `steered to the queue written last: ${detail}`);
    assert.deepEqual(report.steeredBack, report.hashed.map(([q]) => q), `the latest write wins: ${detail}`);

    // No more writes: the entries age out (TUN_FLOW_EXPIRE 3 s, removed by a gc timer
    // rounded up to a whole second), and each flow is read from its hash queue again. Each
    // lifetime lies in its interval, which a busy machine only widens: one that ends before
    // 3 s (less a jiffy) or starts past 5 s holds no lifetime the kernel's timer gives.
    for (const [lo, hi] of report.lifetimeMs) {
      assert.ok(lo !== -1, `every entry aged out: ${detail}`);
      assert.ok(hi >= 2990 && lo <= 5000, `steering entry lifetime in (${lo}, ${hi}] ms, not 3 to 5 s: ${detail}`);
    }

    // A reply the kernel makes while the write that caused it is still being
    // delivered (ICMP echo, in the writer's softirq) is steered before that write
    // updates the entry: it follows the queue of the flow's PREVIOUS write.
    assert.deepEqual(report.icmpWrittenOn, [0, 0, 1, 1, 0, 0]);
    assert.deepEqual(report.icmpReplyOn.slice(1), [0, 0, 1, 1, 0], `ICMP replies follow the previous write: ${detail}`);
  } finally {
    hosts.destroy();
  }
}

// ---- the fixture (runs inside the namespace) ----

async function fixture(arg: string): Promise<void> {
  const [ifname, mode] = arg.split(',') as [string, string | undefined];
  // With IFF_VNET_HDR every read and write starts with a 10-byte virtio_net_hdr
  // (all zero on our writes: no GSO, no checksum offload asked for).
  const vnetHeader = mode === 'vnet';
  const hdr = vnetHeader ? 10 : 0;

  // No IPv6 in this namespace: no router solicitations or MLD reports on the TUN.
  for (const c of ['all', 'default']) writeFileSync(`/proc/sys/net/ipv6/conf/${c}/disable_ipv6`, '1');
  const queues = openTunQueues(ifname, 2, { vnetHeader });
  const ip = (...args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  ip('addr', 'add', `${LOCAL}/24`, 'dev', ifname);
  ip('link', 'set', 'dev', ifname, 'up');

  const sockets = Array.from({ length: FLOWS }, () => udpOpen({ port: 0, family: 4, bindAddress: LOCAL }));
  const portToFlow = new Map(sockets.map((s, f) => [s.port, f]));
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  // Reads both queues until `want` matching packets were read or READ_LIMIT_MS passed (a
  // bound for a packet that never comes); `key` says which packet it is (undefined: not
  // one of ours, ignored).
  const SLOTS = 64, CAP = 2048;
  const rd = { data: new Uint8Array(SLOTS * CAP), offsets: Uint32Array.from({ length: SLOTS }, (_, i) => i * CAP), lengths: new Uint32Array(SLOTS) };
  async function readQueues(want: number, key: (p: Uint8Array) => number | undefined): Promise<Map<number, number[]>> {
    const got = new Map<number, number[]>();
    let n = 0;
    const deadline = Date.now() + READ_LIMIT_MS;
    while (n < want && Date.now() < deadline) {
      for (let q = 0; q < queues.length; q++) {
        const k = tunRead(queues[q]!.fd, rd.data, rd.offsets, rd.lengths, SLOTS, CAP);
        for (let i = 0; i < k; i++) {
          if (rd.lengths[i]! < hdr) continue;
          const id = key(rd.data.subarray(rd.offsets[i]! + hdr, rd.offsets[i]! + rd.lengths[i]!));
          if (id === undefined) continue;
          got.set(id, [...(got.get(id) ?? []), q]);
          n++;
        }
      }
      if (n < want) await sleep(2);
    }
    return got;
  }
  // One of our UDP datagrams to REMOTE:REMOTE_PORT: the flow whose socket sent it.
  const udpFlow = (p: Uint8Array): number | undefined => {
    if (p.length < 28 || p[0] !== 0x45 || p[9] !== 17 || p[16] !== 100 || p[19] !== 2) return undefined;
    if (((p[22]! << 8) | p[23]!) !== REMOTE_PORT) return undefined;
    return portToFlow.get((p[20]! << 8) | p[21]!);
  };

  // Every socket sends one datagram; returns the queue each flow's was read on.
  const tx = { data: new Uint8Array(8), offsets: new Uint32Array(1), lengths: Uint32Array.of(8), addrs: new Uint8Array(ADDR_STRIDE) };
  writeAddr(tx.addrs, 0, REMOTE, REMOTE_PORT);
  async function sendAll(flows: number[]): Promise<number[]> {
    for (const f of flows) udpSend(sockets[f]!.fd, tx.data, tx.offsets, tx.lengths, tx.addrs, 1);
    const got = await readQueues(flows.length, udpFlow);
    return flows.map((f) => (got.get(f)?.length === 1 ? got.get(f)![0]! : -1));
  }

  // A datagram REMOTE:REMOTE_PORT -> LOCAL:port of flow f, written through queue q.
  const wr = { data: new Uint8Array(64), offsets: new Uint32Array(1), lengths: Uint32Array.of(hdr + 36), status: new Int32Array(1) };
  function writeUdp(f: number, q: number): void {
    wr.data.fill(0);
    const p = wr.data.subarray(hdr);
    ipv4Header(p, 36, 17);
    p[20] = REMOTE_PORT >> 8; p[21] = REMOTE_PORT & 0xff;
    p[22] = sockets[f]!.port >> 8; p[23] = sockets[f]!.port & 0xff;
    p[25] = 16; // UDP length 8 + 8; checksum 0: none (IPv4)
    if (tunWrite(queues[q]!.fd, wr.data, wr.offsets, wr.lengths, 1, wr.status) !== 1 || wr.status[0] !== 0) {
      throw new Error(`write through queue ${q}: ${wr.status[0]}`);
    }
  }
  // Datagrams delivered to the flows' sockets (the writes were real packets), polled for
  // until `want` came or READ_LIMIT_MS passed: a busy kernel may deliver them later.
  const rx = { data: new Uint8Array(8 * 64), offsets: Uint32Array.from({ length: 8 }, (_, i) => i * 64), lengths: new Uint32Array(8), addrs: new Uint8Array(8 * ADDR_STRIDE) };
  async function deliveredCount(want: number): Promise<number> {
    const deadline = Date.now() + READ_LIMIT_MS;
    let n = 0;
    for (;;) {
      for (const s of sockets) n += udpRecv(s.fd, rx.data, rx.offsets, rx.lengths, rx.addrs, 8, 64);
      if (n >= want || Date.now() > deadline) return n;
      await sleep(2);
    }
  }

  const all = sockets.map((_, f) => f);
  const first = await sendAll(all);
  const second = await sendAll(all);
  const hashed = all.map((f) => [first[f]!, second[f]!] as [number, number]);
  for (const f of all) writeUdp(f, hashed[f]![0] ^ 1);
  let delivered = await deliveredCount(FLOWS);
  const steered = await sendAll(all);
  for (const f of all) writeUdp(f, hashed[f]![0]);
  delivered += await deliveredCount(FLOWS);
  const steeredBack = await sendAll(all);

  // Lifetime: steer every flow away from its hash queue once more, then only read. Not a
  // stopwatch (the suite passes on a busy machine): the entry went between the last send that still found it and the
  // first that did not, so its lifetime is above (that send's start - the write's end) and
  // below (the finding send's end - the write's start), however late this process ran.
  const wrote = all.map((f) => {
    const start = Date.now();
    writeUdp(f, hashed[f]![0] ^ 1);
    return [start, Date.now()] as const;
  });
  await deliveredCount(FLOWS);
  const stillAt = wrote.map(([, end]) => end);
  const lifetimeMs = all.map((): [number, number] => [-1, -1]);
  while (lifetimeMs.some(([lo]) => lo === -1) && Date.now() - wrote[0]![0] < LIFETIME_LIMIT_MS) {
    await sleep(100);
    const pending = all.filter((f) => lifetimeMs[f]![0] === -1);
    const start = Date.now();
    const now = await sendAll(pending);
    const end = Date.now();
    pending.forEach((f, i) => {
      if (now[i] === hashed[f]![0]) lifetimeMs[f] = [stillAt[f]! - wrote[f]![1], end - wrote[f]![0]];
      else if (now[i] === (hashed[f]![0] ^ 1)) stillAt[f] = start;
    });
  }

  // ICMP echo REMOTE -> LOCAL (one flow), each request through the given queue.
  const icmpWrittenOn = [0, 0, 1, 1, 0, 0];
  const icmpReplyOn: number[] = [];
  for (const [seq, q] of icmpWrittenOn.entries()) {
    wr.data.fill(0);
    const p = wr.data.subarray(hdr);
    ipv4Header(p, 36, 1);
    p[20] = 8; // echo request
    p[24] = 0x7d; p[25] = 0x01; // id
    p[27] = seq;
    const sum = checksum(p.subarray(20, 36));
    p[22] = sum >> 8; p[23] = sum & 0xff;
    if (tunWrite(queues[q]!.fd, wr.data, wr.offsets, wr.lengths, 1, wr.status) !== 1 || wr.status[0] !== 0) {
      throw new Error(`ICMP write through queue ${q}: ${wr.status[0]}`);
    }
    const got = await readQueues(1, (r) => (r.length >= 28 && r[9] === 1 && r[20] === 0 && r[27] === seq ? seq : undefined));
    icmpReplyOn.push(got.get(seq)?.[0] ?? -1);
  }

  for (const s of sockets) closeFd(s.fd);
  for (const q of queues) closeFd(q.fd);

  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  let code = 'none';
  try {
    for (const q of openTunQueues(`${ifname}x`, 257, { vnetHeader })) closeFd(q.fd);
  } catch (err) {
    code = String((err as { code?: unknown }).code);
  }
  const tooMany = { code, leakedFds: fds() - before, linkLeft: spawnSync('ip', ['link', 'show', `${ifname}x`]).status === 0 };

  const report: Report = { queues: queues.length, hashed, delivered, steered, steeredBack, lifetimeMs, icmpWrittenOn, icmpReplyOn, tooMany };
  console.log(JSON.stringify(report));

  // An IPv4 header REMOTE -> LOCAL, no options, DF, TTL 64.
  function ipv4Header(p: Uint8Array, total: number, proto: number): void {
    p[0] = 0x45;
    p[2] = total >> 8; p[3] = total & 0xff;
    p[6] = 0x40;
    p[8] = 64;
    p[9] = proto;
    p.set([100, 96, 0, 2], 12);
    p.set([100, 96, 0, 1], 16);
    const sum = checksum(p.subarray(0, 20));
    p[10] = sum >> 8; p[11] = sum & 0xff;
  }
}

/** The Internet checksum (RFC 1071) of bytes whose checksum field is zero. */
function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}
