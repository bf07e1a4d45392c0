// Runs inside a test namespace (see test/netns/interop-wireguard-go.test.ts): drives tundra's
// protocol engine over a plain UDP socket against a real WireGuard peer, sends
// ICMP echo requests through the tunnel and reports what came back as JSON.
import { createSocket } from 'node:dgram';
import { Engine } from '../../src/protocol/engine.js';
import { parsePrefix } from '../../src/routing/prefix.js';
import { icmpEcho, parseIcmpEcho } from './packets.js';
import { receive } from './engines.js';

interface DriverConfig {
  privateKey: string;
  peerPublicKey: string;
  presharedKey?: string;
  listen: { address: string; port: number };
  /** Where the peer listens; absent when it is expected to initiate. */
  peerEndpoint?: { address: string; port: number };
  localTunnelAddress: string;
  peerTunnelAddress: string;
  /** 'initiate': we start the handshake; 'respond': wait for the peer's initiation first. */
  mode: 'initiate' | 'respond';
  echoes: number;
  timeoutMs: number;
}

const config = JSON.parse(process.argv[2]!) as DriverConfig;
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

const engine = new Engine({ privateKey: b64(config.privateKey) });
const peer = engine.addPeer(b64(config.peerPublicKey), {
  ...(config.presharedKey === undefined ? {} : { presharedKey: b64(config.presharedKey) }),
  ...(config.peerEndpoint === undefined ? {} : { endpoint: config.peerEndpoint }),
});
engine.allowedIPs.insert(parsePrefix(`${config.peerTunnelAddress}/32`), peer);

const socket = createSocket('udp4');
const report = {
  handshakes: 0,
  keepalivesReceived: 0,
  firstMessageType: 0,
  echoReplies: [] as { seq: number; payloadMatches: boolean; checksumsValid: boolean; src: string; dst: string }[],
  drops: {} as Record<string, number>,
};
const payloadFor = (seq: number): Uint8Array => new TextEncoder().encode(`tundra interop echo ${seq} `.repeat(8));

function flush(): void {
  for (const out of engine.outbox.splice(0)) socket.send(out.packet, out.endpoint.port, out.endpoint.address);
}

let sentEchoes = 0;
function sendEcho(): void {
  sentEchoes += 1;
  engine.send(peer, icmpEcho(8, config.localTunnelAddress, config.peerTunnelAddress, 0x7d0, sentEchoes, payloadFor(sentEchoes)));
  flush();
}

function finish(code: number, error?: string): void {
  report.drops = engine.drops.snapshot();
  process.stdout.write(`${JSON.stringify({ ...report, error })}\n`);
  socket.close();
  process.exit(code);
}

socket.on('message', (msg, rinfo) => {
  if (report.firstMessageType === 0) report.firstMessageType = msg[0]!;
  const result = receive(engine, new Uint8Array(msg), { address: rinfo.address, port: rinfo.port });
  flush();
  if (result.kind === 'handshake') {
    report.handshakes += 1;
  } else if (result.kind === 'keepalive') {
    report.keepalivesReceived += 1;
    // As responder, the initiator's first keepalive confirms the session: now ping.
    if (config.mode === 'respond' && sentEchoes === 0) sendEcho();
  } else if (result.kind === 'data') {
    const echo = parseIcmpEcho(result.packet);
    if (echo?.type !== 0) return;
    report.echoReplies.push({
      seq: echo.seq,
      payloadMatches: Buffer.from(echo.payload).equals(Buffer.from(payloadFor(echo.seq))),
      checksumsValid: echo.checksumsValid,
      src: echo.src,
      dst: echo.dst,
    });
    if (sentEchoes < config.echoes) sendEcho();
    else finish(0);
  }
});

socket.bind(config.listen.port, config.listen.address, () => {
  const timers = setInterval(() => { engine.poll(); flush(); }, 50);
  timers.unref();
  setTimeout(() => finish(1, 'timed out'), config.timeoutMs).unref();
  // Keep the process alive until finish().
  setInterval(() => {}, 1000);
  process.stderr.write('ready\n');
  if (config.mode === 'initiate') sendEcho();
});
