// A byte-exact TCP transfer for tunnel tests, run inside a namespace:
//   node tcp-transfer.js sink ADDRESS PORT          prints {"bytes":N,"sha256":"…"} when the sender closes
//   node tcp-transfer.js source ADDRESS PORT BYTES  sends BYTES pseudo-random bytes, prints the same
// Both ends hash what they saw, so the test compares the two lines.
import { createHash, randomBytes } from 'node:crypto';
import { createConnection, createServer } from 'node:net';

const [mode, address, portText, bytesText] = process.argv.slice(2);
const port = Number(portText);
const TIMEOUT_MS = 120_000;

setTimeout(() => {
  process.stderr.write(`tcp-transfer ${mode}: timed out\n`);
  process.exit(2);
}, TIMEOUT_MS).unref();

if (mode === 'sink') {
  const server = createServer((socket) => {
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (chunk) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    socket.on('end', () => {
      process.stdout.write(`${JSON.stringify({ bytes, sha256: hash.digest('hex') })}\n`);
      socket.end();
      server.close();
    });
  });
  server.listen(port, address, () => process.stderr.write('listening\n'));
} else if (mode === 'source') {
  const total = Number(bytesText);
  const hash = createHash('sha256');
  const socket = createConnection({ host: address, port }, () => {
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
    pump();
  });
  socket.on('close', (hadError) => {
    if (hadError) process.exit(1);
    process.stdout.write(`${JSON.stringify({ bytes: total, sha256: hash.digest('hex') })}\n`);
  });
  socket.on('error', (err) => {
    process.stderr.write(`tcp-transfer source: ${err.message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: tcp-transfer sink|source ADDRESS PORT [BYTES]\n');
  process.exit(2);
}
