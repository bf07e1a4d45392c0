// Runs inside a test namespace against a tundra daemon (see test/netns/garbage.test.ts):
// sends random and malformed datagrams, then completes a real handshake as a third
// peer, pings through the tunnel, and replays that transport message. Prints a JSON report.
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { Engine } from '../../src/protocol/engine.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import { icmpEcho, parseIcmpEcho } from './packets.js';
import { receive } from './engines.js';

interface GarbageConfig {
  target: { address: string; port: number };
  privateKey: string;
  peerPublicKey: string;
  localTunnelAddress: string;
  peerTunnelAddress: string;
  randomDatagrams: number;
  replays: number;
}

const config = JSON.parse(process.argv[2]!) as GarbageConfig;
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const socket = createSocket('udp4');
const report = { randomSent: 0, malformedSent: 0, echoReplies: 0, replaysSent: 0 };

function send(packet: Uint8Array): Promise<void> {
  return new Promise((resolve) => socket.send(packet, config.target.port, config.target.address, () => resolve()));
}

async function sendGarbage(): Promise<void> {
  for (let i = 0; i < config.randomDatagrams; i++) {
    const packet = randomBytes(Math.floor(Math.random() * 200));
    if (packet.length > 3 && i % 2 === 0) {
      packet[0] = i % 6;
      packet.fill(0, 1, 4);
    }
    await send(packet);
    report.randomSent++;
  }
  // Truncated, oversized, and right-sized but forged handshake messages (bad mac1).
  for (const [type, size] of [[1, 147], [2, 91], [3, 63], [4, 31], [1, 149], [1, 148], [2, 92], [3, 64]] as const) {
    const packet = randomBytes(size);
    packet[0] = type;
    packet.fill(0, 1, 4);
    await send(packet);
    report.malformedSent++;
  }
}

const engine = new Engine({ privateKey: b64(config.privateKey) });
const peer = engine.addPeer(b64(config.peerPublicKey), { endpoint: config.target });
engine.allowedIPs.insert(parsePrefix(`${config.peerTunnelAddress}/32`), peer);
let echoDatagram: Uint8Array | undefined;

socket.on('message', (msg, rinfo) => {
  const result = receive(engine, new Uint8Array(msg), { address: rinfo.address, port: rinfo.port });
  for (const out of engine.outbox.splice(0)) {
    if (out.packet[0] === 4 && out.packet.length > 32 && echoDatagram === undefined) echoDatagram = out.packet;
    void send(out.packet);
  }
  if (result.kind === 'data' && parseIcmpEcho(result.packet)?.type === 0) {
    report.echoReplies++;
    void replayAndFinish();
  }
});

async function replayAndFinish(): Promise<void> {
  for (let i = 0; i < config.replays && echoDatagram !== undefined; i++) {
    await send(echoDatagram);
    report.replaysSent++;
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

socket.bind(0, async () => {
  setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ ...report, error: 'timed out' })}\n`);
    process.exit(1);
  }, 20_000).unref();
  await sendGarbage();
  engine.send(peer, icmpEcho(8, config.localTunnelAddress, config.peerTunnelAddress, 7, 1, new TextEncoder().encode('garbage test')));
  for (const out of engine.outbox.splice(0)) await send(out.packet);
  setInterval(() => {
    engine.poll();
    for (const out of engine.outbox.splice(0)) void send(out.packet);
  }, 100).unref();
});
