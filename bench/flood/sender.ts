// A handshake flood, as anyone who knows a WireGuard interface's public key can send
// it: initiations with a valid MAC1 and random contents (the responder learns they are
// worthless only after a Diffie-Hellman), no MAC2, from one socket, paced to a rate or
// as fast as one core sends them. With --with-cookie it first asks for a cookie (the
// responder must be under load to give one) and then sends initiations with a valid
// MAC2 too, as an attacker that can receive at its address would: those the per-source
// rate limit is for. Prints one JSON line when it ends (after --seconds or --count, or
// on SIGTERM/SIGINT): datagrams sent, and the cookie replies that came back.
//
//   node dist/bench/flood/sender.js --to 198.18.0.2:51821 --public-key B64 [--from ADDR]
//        [--rate N | --unpaced] [--seconds S] [--count N] [--with-cookie]
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CookieGenerator, mac1Key } from '../../src/protocol/cookie.js';
import { decodeCookieReply } from '../../src/protocol/messages.js';
import { mac } from '../../src/crypto/blake2s.js';
import { MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE } from '../../src/protocol/constants.js';
import { INITIATION_MAC1_OFFSET } from '../../src/protocol/messages.js';
import { udpOpen, udpRecv, udpSend } from '../../src/conn/udp.js';
import { writeAddr } from '../../src/pipeline/address.js';
import { closeFd } from '../../src/io/fd.js';

/** Distinct initiations sent in turn (the responder cannot recognise a repeat before its DH). */
const POOL = 4096;
/** Datagrams per sendmmsg. */
const BURST = 64;
/** How often a paced flood tops up to its rate. */
const TICK_MS = 1;

export interface FloodOptions {
  to: { address: string; port: number };
  publicKey: Uint8Array;
  /** Source address to bind (default: the routing table's choice). */
  from?: string;
  /** Initiations per second; 0 sends as fast as the socket takes them. */
  rate: number;
  seconds: number;
  /** Stop after this many (default: none). */
  count?: number;
  /** Get a cookie first and send a valid MAC2 with every initiation. */
  withCookie?: boolean;
}

export interface FloodResult {
  sent: number;
  seconds: number;
  /** Initiations per second actually sent. */
  rate: number;
  cookieReplies: number;
}

/**
 * `count` initiations with a valid MAC1 for `publicKey`, each in its own slot of the
 * result; with `cookies`, the MACs it adds (a valid MAC2 once it holds a cookie).
 */
export function floodInitiations(publicKey: Uint8Array, count = POOL, cookies?: CookieGenerator): Uint8Array {
  const key = mac1Key(publicKey);
  const data = new Uint8Array(randomBytes(count * MESSAGE_INITIATION_SIZE));
  for (let i = 0; i < count; i++) {
    const msg = data.subarray(i * MESSAGE_INITIATION_SIZE, (i + 1) * MESSAGE_INITIATION_SIZE);
    new DataView(msg.buffer, msg.byteOffset).setUint32(0, MESSAGE_INITIATION, true);
    if (cookies !== undefined) {
      cookies.addMacs(msg);
      continue;
    }
    msg.set(mac(key, msg.subarray(0, INITIATION_MAC1_OFFSET)), INITIATION_MAC1_OFFSET);
    msg.fill(0, INITIATION_MAC1_OFFSET + 16);
  }
  return data;
}

export async function flood(options: FloodOptions, stop: { stopped: boolean } = { stopped: false }): Promise<FloodResult> {
  const socket = udpOpen({ port: 0, family: options.to.address.includes(':') ? 6 : 4, ...(options.from === undefined ? {} : { bindAddress: options.from }) });
  let data = floodInitiations(options.publicKey);
  const offsets = new Uint32Array(BURST);
  const lengths = new Uint32Array(BURST).fill(MESSAGE_INITIATION_SIZE);
  const addrs = new Uint8Array(BURST * 44);
  for (let i = 0; i < BURST; i++) writeAddr(addrs, i, options.to.address, options.to.port);
  const rx = { data: new Uint8Array(BURST * 256), offsets: Uint32Array.from({ length: BURST }, (_, i) => i * 256), lengths: new Uint32Array(BURST), addrs: new Uint8Array(BURST * 44) };
  let sent = 0;
  let next = 0;
  let cookieReplies = 0;
  const cookies = new CookieGenerator(options.publicKey, () => performance.now());
  let cookieTaken = false;
  const drainReplies = (): void => {
    for (;;) {
      const n = udpRecv(socket.fd, rx.data, rx.offsets, rx.lengths, rx.addrs, BURST, 256);
      for (let i = 0; i < n; i++) {
        if (rx.lengths[i] !== 64 || rx.data[rx.offsets[i]!] !== MESSAGE_COOKIE_REPLY) continue;
        cookieReplies++;
        const reply = decodeCookieReply(rx.data.subarray(rx.offsets[i]!, rx.offsets[i]! + 64));
        if (options.withCookie === true && !('drop' in reply) && cookies.consumeReply(reply)) cookieTaken = true;
      }
      if (n < BURST) return;
    }
  };
  const sendUpTo = (count: number): number => {
    let done = 0;
    while (done < count) {
      const n = Math.min(BURST, count - done);
      for (let i = 0; i < n; i++) offsets[i] = ((next + i) % POOL) * MESSAGE_INITIATION_SIZE;
      const k = udpSend(socket.fd, data, offsets, lengths, addrs, n);
      next = (next + k) % POOL;
      done += k;
      if (k < n) break; // the socket buffer is full: more next turn
    }
    sent += done;
    return done;
  };
  const end = performance.now() + options.seconds * 1000;
  try {
    if (options.withCookie === true) {
      // One initiation at a time until a cookie reply for the last one comes back.
      while (!cookieTaken && !stop.stopped && performance.now() < end) {
        const one = floodInitiations(options.publicKey, 1, cookies);
        udpSend(socket.fd, one, offsets, lengths, addrs, 1);
        await new Promise((resolve) => setTimeout(resolve, 100));
        drainReplies();
      }
      if (!cookieTaken) throw new Error('no cookie reply came back (is the responder under load?)');
      data = floodInitiations(options.publicKey, POOL, cookies);
    }
    return await send();
  } finally {
    closeFd(socket.fd);
  }

  async function send(): Promise<FloodResult> {
    const started = performance.now();
    const limit = options.count ?? Infinity;
    while (!stop.stopped && performance.now() < end && sent < limit) {
      if (options.rate > 0) {
        const due = Math.min(limit, Math.floor(((performance.now() - started) / 1000) * options.rate)) - sent;
        if (due > 0) sendUpTo(due);
        await new Promise((resolve) => setTimeout(resolve, TICK_MS));
      } else {
        sendUpTo(Math.min(BURST * 16, limit - sent));
        await new Promise((resolve) => setImmediate(resolve));
      }
      drainReplies();
    }
    const seconds = (performance.now() - started) / 1000;
    return { sent, seconds, rate: sent / seconds, cookieReplies };
  }
}

function parseEndpoint(text: string): { address: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  if (m === null) throw new Error(`--to must be ADDRESS:PORT or [IPV6]:PORT, not '${text}'`);
  return { address: m[1]!, port: Number(m[2]) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      to: { type: 'string' }, 'public-key': { type: 'string' }, from: { type: 'string' },
      rate: { type: 'string' }, unpaced: { type: 'boolean' }, seconds: { type: 'string', default: '10' },
      count: { type: 'string' }, 'with-cookie': { type: 'boolean' },
    },
  });
  if (values.to === undefined || values['public-key'] === undefined) {
    throw new Error('usage: sender --to ADDRESS:PORT --public-key BASE64 [--from ADDRESS] [--rate N | --unpaced] [--seconds S] [--count N] [--with-cookie]');
  }
  const publicKey = new Uint8Array(Buffer.from(values['public-key'], 'base64'));
  if (publicKey.length !== 32) throw new Error('--public-key must be a base64 WireGuard public key (32 bytes)');
  const rate = values.unpaced === true ? 0 : Number(values.rate ?? '20000');
  if (!Number.isFinite(rate) || rate < 0) throw new Error(`--rate must be a number of initiations per second, not '${values.rate}'`);
  const stop = { stopped: false };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => { stop.stopped = true; });
  const count = values.count === undefined ? undefined : Number(values.count);
  if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new Error(`--count must be a whole number > 0, not '${values.count}'`);
  const result = await flood({
    to: parseEndpoint(values.to), publicKey, ...(values.from === undefined ? {} : { from: values.from }), rate, seconds: Number(values.seconds),
    ...(count === undefined ? {} : { count }), withCookie: values['with-cookie'] === true,
  }, stop);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: Error) => {
    process.stderr.write(`flood: ${err.message}\n`);
    process.exit(1);
  });
}
