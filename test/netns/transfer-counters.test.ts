// `wg show transfer` counts what the kernel's WireGuard counts: every WireGuard
// message sent to and received from the peer (handshake initiations and responses,
// data, keepalives), by its UDP payload size. A tundra side a and a Debian wireguard-go
// side b: after a handshake and 10 pings, each side's received bytes are the other's
// sent bytes, and they are the sizes of the messages that crossed: an initiation (148
// bytes), a response (92), 20 pings of 84 bytes padded to 96 and sealed (128 each), and
// any keepalives (32). Before the fix tundra left out the handshake messages it sent.
// Once with tundra initiating, once with wireguard-go initiating; --queues 0, 1 and 2.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel, type Side } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);
const INITIATION = 148;
const RESPONSE = 92;
const PING = 128;
const KEEPALIVE = 32;
const PINGS = 10;

/** `wg show IF transfer` of the one peer: [received, sent]. */
function transfer(tunnel: Tunnel, side: Side): [number, number] {
  const [, rx, tx] = tunnel.wg(side, ['show', tunnel.ifName[side], 'transfer']).trim().split('\t');
  return [Number(rx), Number(tx)];
}

/** Both sides' counters, read until a's are the same before and after b's (a keepalive may cross meanwhile). */
function settled(tunnel: Tunnel): { a: [number, number]; b: [number, number] } {
  for (let attempt = 0; ; attempt++) {
    const a = transfer(tunnel, 'a');
    const b = transfer(tunnel, 'b');
    const again = transfer(tunnel, 'a');
    if ((a[0] === again[0] && a[1] === again[1]) || attempt === 4) return { a, b };
  }
}

/** Whether `bytes` is `base` and PINGS pings plus any number of keepalives. */
function isPingsPlus(bytes: number, base: number): boolean {
  const rest = bytes - base - PINGS * PING;
  return rest >= 0 && rest % KEEPALIVE === 0;
}

const VARIANTS: { name: string; env: NodeJS.ProcessEnv }[] = [
  { name: 'queues 0', env: { TUNDRA_QUEUES: '0' } },
  { name: 'queues 1', env: { TUNDRA_QUEUES: '1' } },
  { name: 'queues 2, offloads off', env: { TUNDRA_QUEUES: '2', TUNDRA_OFFLOAD: 'none' } },
];

VARIANTS.forEach((variant, k) => {
  for (const initiator of ['a', 'b'] as const) {
    const who = initiator === 'a' ? 'tundra' : 'wireguard-go';
    describe(`transfer counters (${variant.name}), ${who} initiates`, { skip, timeout: 180_000 }, () => {
      let tunnel: Tunnel;
      before(async () => {
        // Only the initiator knows an endpoint, so the handshake goes its way.
        const endpoints = { a: initiator === 'a', b: initiator === 'b' };
        tunnel = new Tunnel(`tc${k}${initiator}`, { a: 'tundra', b: 'wireguard-go', endpoints, env: { a: variant.env } });
        await tunnel.start();
      });
      after(() => tunnel?.destroy());

      test(`after a handshake and ${PINGS} pings, each side received what the other sent, handshake messages included`, () => {
        assert.equal(tunnel.ping(initiator, 4, PINGS), PINGS);
        const { a, b } = settled(tunnel);
        assert.deepEqual({ aReceived: a[0], aSent: a[1] }, { aReceived: b[1], aSent: b[0] }, `a (tundra) ${a}, b (wireguard-go) ${b}`);
        const [sentByInitiator, sentByResponder] = initiator === 'a' ? [a[1], a[0]] : [a[0], a[1]];
        assert.ok(isPingsPlus(sentByInitiator, INITIATION), `the initiator sent an initiation, ${PINGS} pings and keepalives: ${sentByInitiator}`);
        assert.ok(isPingsPlus(sentByResponder, RESPONSE), `the responder sent a response, ${PINGS} replies and keepalives: ${sentByResponder}`);
      });
    });
  }
});
