// A byte-exact TCP download for the router tests, run inside a namespace: the client
// connects and the listener sends, so it works through a masquerade (which only lets
// the inside open connections), and the listener reports the source address it saw.
//   node download.js serve ADDRESS PORT BYTES  accepts one connection, sends BYTES pseudo-random
//                                              bytes, prints {"remote":"…","bytes":N,"sha256":"…"}
//   node download.js fetch ADDRESS PORT        connects, reads to the end, prints {"bytes":N,"sha256":"…"}
import { createHash, randomBytes } from 'node:crypto';
import { createConnection, createServer } from 'node:net';

const [mode, address, portText, bytesText] = process.argv.slice(2);
const port = Number(portText);

setTimeout(() => {
  process.stderr.write(`download ${mode}: timed out\n`);
  process.exit(2);
}, 60_000).unref();

if (mode === 'serve') {
  const total = Number(bytesText);
  const server = createServer((socket) => {
    server.close();
    const remote = socket.remoteAddress ?? '';
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
      process.stdout.write(`${JSON.stringify({ remote, bytes: sent, sha256: hash.digest('hex') })}\n`);
    });
    socket.on('error', (err) => process.stderr.write(`download serve: ${err.message}\n`));
    pump();
  });
  server.listen(port, address, () => process.stderr.write('listening\n'));
} else if (mode === 'fetch') {
  const hash = createHash('sha256');
  let bytes = 0;
  const socket = createConnection({ host: address, port });
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  socket.on('end', () => {
    process.stdout.write(`${JSON.stringify({ bytes, sha256: hash.digest('hex') })}\n`);
    socket.end();
  });
  socket.on('error', (err) => {
    process.stderr.write(`download fetch: ${err.message}\n`);
    process.exit(1);
  });
} else {
  process.stderr.write('usage: download serve ADDRESS PORT BYTES | fetch ADDRESS PORT\n');
  process.exit(2);
}
