// A byte-exact TCP transfer for tunnel and router tests, run inside a namespace. Both
// ends hash what they saw, so the test compares the two lines.
//   node tcp-transfer.js sink ADDRESS PORT          listens, reads to the end, prints {"bytes":N,"sha256":"…"}
//   node tcp-transfer.js source ADDRESS PORT BYTES  connects, sends BYTES pseudo-random bytes, prints the same
// The other way round, for a download through a masquerade (which only lets the inside
// open connections); the listener also reports the source address it saw:
//   node tcp-transfer.js serve ADDRESS PORT BYTES   listens, sends BYTES to the first connection,
//                                                   prints {"remote":"…","bytes":N,"sha256":"…"}
//   node tcp-transfer.js fetch ADDRESS PORT         connects, reads to the end, prints {"bytes":N,"sha256":"…"}
import { createHash, randomBytes } from 'node:crypto';
import { createConnection, createServer, type Socket } from 'node:net';

const [mode, address, portText, bytesText] = process.argv.slice(2);
const port = Number(portText);
const TIMEOUT_MS = mode === 'serve' || mode === 'fetch' ? 60_000 : 120_000;

setTimeout(() => {
  process.stderr.write(`tcp-transfer ${mode}: timed out\n`);
  process.exit(2);
}, TIMEOUT_MS).unref();

/** Sends `total` pseudo-random bytes and ends; prints the report (with `extra`) once the socket closed cleanly. */
function send(socket: Socket, total: number, extra: Record<string, string> = {}): void {
  const hash = createHash('sha256');
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const chunk = randomBytes(Math.min(1 << 16, total - sent));
      hash.update(chunk);
      sent += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  socket.on('close', (hadError) => {
    if (hadError) process.exit(1);
    process.stdout.write(`${JSON.stringify({ ...extra, bytes: sent, sha256: hash.digest('hex') })}\n`);
  });
  pump();
}

/** Reads to the end; prints the report, then calls `done`. */
function receive(socket: Socket, done: () => void = () => {}): void {
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  socket.on('end', () => {
    process.stdout.write(`${JSON.stringify({ bytes, sha256: hash.digest('hex') })}\n`);
    socket.end();
    done();
  });
}

function failOn(socket: Socket): void {
  socket.on('error', (err) => {
    process.stderr.write(`tcp-transfer ${mode}: ${err.message}\n`);
    process.exit(1);
  });
}

if (mode === 'sink') {
  const server = createServer((socket) => receive(socket, () => server.close()));
  server.listen(port, address, () => process.stderr.write('listening\n'));
} else if (mode === 'source') {
  const socket = createConnection({ host: address, port }, () => send(socket, Number(bytesText)));
  failOn(socket);
} else if (mode === 'serve') {
  const server = createServer((socket) => {
    server.close();
    socket.on('error', (err) => process.stderr.write(`tcp-transfer serve: ${err.message}\n`));
    send(socket, Number(bytesText), { remote: socket.remoteAddress ?? '' });
  });
  server.listen(port, address, () => process.stderr.write('listening\n'));
} else if (mode === 'fetch') {
  const socket = createConnection({ host: address, port });
  receive(socket);
  failOn(socket);
} else {
  process.stderr.write('usage: tcp-transfer sink|source|serve|fetch ADDRESS PORT [BYTES]\n');
  process.exit(2);
}
