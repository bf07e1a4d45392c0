// The soak's traffic, run inside a namespace by bench/soak/run.ts: repeated byte-exact
// TCP transfers of random data, hashed at both ends, and a UDP stream whose datagrams
// say what they must contain. Each prints JSON lines, one an event, for the runner to
// match up; a failure prints {"event":"error"} and exits 1.
//   node traffic.js tcp-sink ADDRESS PORT                         per connection: {"event":"tcp-received","id","bytes","sha256"}
//   node traffic.js tcp-source ADDRESS PORT BYTES MBITS SECONDS   transfer after transfer at MBITS for SECONDS:
//                                                                 {"event":"tcp-sent","id","bytes","sha256"} each, then {"event":"done"}
//   node traffic.js udp-sink ADDRESS PORT                         every second something came: {"event":"udp-received","received","corrupt","duplicates"}
//   node traffic.js udp-source ADDRESS PORT MBITS SECONDS         {"event":"udp-sent","sent"} at the end
// A TCP transfer starts with its id (4 bytes, not hashed); the sink closes once it has
// read to the end, and the source reports only after that clean close.
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const CHUNK = 1 << 16;
const DATAGRAM = 1200;
/** A transfer slower than this many times its paced length has stalled. */
const STALL_FACTOR = 4;
const MIN_TRANSFER_MS = 60_000;
const UDP_TICK_MS = 10;
const RECV_BUFFER = 4 << 20;

const emit = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
};

function fail(message: string): never {
  emit('error', { message });
  process.exit(1);
}

/** Datagram `seq`'s bytes after its sequence number. */
function fill(buf: Buffer, seq: number): void {
  buf.writeUInt32BE(seq, 0);
  for (let k = 4; k < DATAGRAM; k++) buf[k] = (seq * 31 + k * 7) & 0xff;
}

function intact(buf: Buffer): boolean {
  if (buf.length !== DATAGRAM) return false;
  const seq = buf.readUInt32BE(0);
  for (let k = 4; k < DATAGRAM; k++) if (buf[k] !== ((seq * 31 + k * 7) & 0xff)) return false;
  return true;
}

function tcpSink(address: string, port: number): void {
  const server = createServer((socket) => {
    const hash = createHash('sha256');
    let header = Buffer.alloc(0);
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      if (header.length < 4) {
        const need = 4 - header.length;
        header = Buffer.concat([header, chunk.subarray(0, need)]);
        chunk = chunk.subarray(need);
      }
      hash.update(chunk);
      bytes += chunk.length;
    });
    socket.on('end', () => {
      if (header.length < 4) fail('a connection ended before its transfer id');
      emit('tcp-received', { id: header.readUInt32BE(0), bytes, sha256: hash.digest('hex') });
      socket.end();
    });
    socket.on('error', (err) => fail(`tcp-sink: ${err.message}`));
  });
  server.on('error', (err) => fail(`tcp-sink: ${err.message}`));
  server.listen(port, address, () => emit('listening'));
}

/** One transfer of `total` random bytes at `mbits`; resolves with its hash once the sink closed the connection. */
function transfer(address: string, port: number, id: number, total: number, mbits: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const socket: Socket = createConnection({ host: address, port });
    const limitMs = Math.max(MIN_TRANSFER_MS, STALL_FACTOR * (total * 8) / (mbits * 1000));
    const timer = setTimeout(() => socket.destroy(new Error(`transfer ${id} took over ${Math.round(limitMs / 1000)} s`)), limitMs);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(hash.digest('hex'));
    });
    socket.once('connect', async () => {
      const id4 = Buffer.alloc(4);
      id4.writeUInt32BE(id);
      socket.write(id4);
      const start = performance.now();
      let sent = 0;
      while (sent < total && !socket.destroyed) {
        const chunk = randomBytes(Math.min(CHUNK, total - sent));
        hash.update(chunk);
        sent += chunk.length;
        socket.write(chunk);
        // Paced: sent bytes at `mbits` are due at this time.
        const ahead = start + (sent * 8) / (mbits * 1000) - performance.now();
        if (ahead > 0) await sleep(ahead);
        if (socket.writableNeedDrain && !socket.destroyed) await new Promise((ok) => socket.once('drain', ok));
      }
      socket.end();
    });
  });
}

async function tcpSource(address: string, port: number, bytes: number, mbits: number, seconds: number): Promise<void> {
  const end = performance.now() + seconds * 1000;
  let id = 0;
  while (performance.now() < end) {
    id++;
    try {
      emit('tcp-sent', { id, bytes, sha256: await transfer(address, port, id, bytes, mbits) });
    } catch (err) {
      fail(`tcp-source: transfer ${id}: ${(err as Error).message}`);
    }
  }
  emit('done', { transfers: id });
}

function udpSink(address: string, port: number): void {
  // A deep queue (up to net.core.rmem_max) for when this process is not scheduled for a while.
  const socket = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER });
  let seen = new Uint8Array(1 << 16);
  const counts = { received: 0, corrupt: 0, duplicates: 0 };
  let changed = false;
  socket.on('message', (msg) => {
    changed = true;
    if (!intact(msg)) {
      counts.corrupt++;
      return;
    }
    const seq = msg.readUInt32BE(0);
    if (seq >= seen.length) {
      const grown = new Uint8Array(Math.max(seen.length * 2, seq + 1));
      grown.set(seen);
      seen = grown;
    }
    if (seen[seq] === 1) {
      counts.duplicates++;
      return;
    }
    seen[seq] = 1;
    counts.received++;
  });
  socket.on('error', (err) => fail(`udp-sink: ${err.message}`));
  socket.bind(port, address, () => emit('listening'));
  setInterval(() => {
    if (!changed) return;
    changed = false;
    emit('udp-received', counts);
  }, 1000);
}

async function udpSource(address: string, port: number, mbits: number, seconds: number): Promise<void> {
  const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  socket.on('error', (err) => fail(`udp-source: ${err.message}`));
  await new Promise<void>((ok) => socket.connect(port, address, ok));
  const perMs = (mbits * 1000) / (DATAGRAM * 8);
  const start = performance.now();
  let next = 0;
  let sent = 0;
  while (performance.now() - start < seconds * 1000) {
    // The datagrams due by now, each a buffer of its own: send() holds it until it is out.
    const due = Math.floor((performance.now() - start) * perMs);
    const sends: Promise<void>[] = [];
    for (; next < due; next++) {
      const buf = Buffer.allocUnsafe(DATAGRAM);
      fill(buf, next);
      sends.push(new Promise((ok) => socket.send(buf, (err) => {
        if (err === null) sent++;
        ok();
      })));
    }
    await Promise.all(sends);
    await sleep(UDP_TICK_MS);
  }
  emit('udp-sent', { sent, attempted: next });
  socket.close();
}

const [mode, address, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const n = rest.map(Number);
if (address === undefined || !(port > 0)) fail('usage: traffic.js tcp-sink|tcp-source|udp-sink|udp-source ADDRESS PORT …');
switch (mode) {
  case 'tcp-sink': tcpSink(address, port); break;
  case 'tcp-source': await tcpSource(address, port, n[0]!, n[1]!, n[2]!); break;
  case 'udp-sink': udpSink(address, port); break;
  case 'udp-source': await udpSource(address, port, n[0]!, n[1]!); break;
  default: fail(`unknown mode ${mode}`);
}
