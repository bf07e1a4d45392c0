// Handshake messages under a flood: admitted per source where they are read, the
// priority lane for peers that answered a cookie, and the control plane taking them a
// bounded slice at a time, judging the load by the backlog (depth and age).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey } from '../../src/crypto/keys.js';
import { writeAddr } from '../../src/pipeline/address.js';
import { PacketBatch, SLOT_SIZE } from '../../src/pipeline/batch.js';
import { REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX } from '../../src/protocol/constants.js';
import { Drop, DropCounters } from '../../src/protocol/drop-reasons.js';
import { Engine } from '../../src/protocol/engine.js';
import { RateLimiter } from '../../src/protocol/ratelimiter.js';
import { HandshakeScheduler } from '../../src/device/handshake-scheduler.js';
import { createHandshakeLanes, HandshakeGate, LaneReader, LaneWriter } from '../../src/dataplane/handshake-lanes.js';
import { floodInitiations } from '../../bench/flood/sender.js';

/** One batch holding `datagrams`, each from its source. */
function batchOf(datagrams: Uint8Array[], from: (i: number) => { address: string; port: number }): { batch: PacketBatch; indices: Int32Array } {
  const batch = new PacketBatch(datagrams.length, SLOT_SIZE);
  batch.resetOffsets(0);
  datagrams.forEach((d, i) => {
    batch.data.set(d, batch.offsets[i]!);
    batch.lengths[i] = d.length;
    const { address, port } = from(i);
    writeAddr(batch.addrs, i, address, port);
  });
  batch.count = datagrams.length;
  return { batch, indices: Int32Array.from(datagrams.keys()) };
}

const initiation = (mac2: boolean): Uint8Array => {
  const msg = new Uint8Array(148);
  msg[0] = 1;
  if (mac2) msg[147] = 1;
  return msg;
};

function lanesOnClock() {
  const clock = { t: 5_000 };
  const gate = new HandshakeGate();
  const shared = createHandshakeLanes(gate);
  const drops = new DropCounters();
  const writer = new LaneWriter(shared, drops, () => clock.t);
  const reader = new LaneReader(shared);
  const admit = (datagrams: Uint8Array[], from: (i: number) => { address: string; port: number }): void => {
    const { batch, indices } = batchOf(datagrams, from);
    writer.handshakes(batch, indices, indices.length);
  };
  const drain = (lane: 'priority' | 'bulk'): number => {
    let n = 0;
    while (reader.pop(lane)) n++;
    return n;
  };
  return { clock, gate, drops, admit, drain, reader };
}

test('not under load, every handshake message goes to the bulk lane, whatever its source sends', () => {
  const { admit, drain, drops } = lanesOnClock();
  admit(Array.from({ length: 100 }, () => initiation(true)), () => ({ address: '198.18.0.3', port: 1 }));
  assert.equal(drain('priority'), 0);
  assert.equal(drain('bulk'), 100);
  assert.deepEqual(drops.snapshot(), {});
});

test('under load, a source gets 5 + 20/s handshakes with a MAC2 into the priority lane and 100 + 100/s cookie replies; an IPv6 /64 is one source', () => {
  const { clock, gate, admit, drain, drops } = lanesOnClock();
  gate.set(clock.t + 10_000);
  const from = (address: string) => () => ({ address, port: 40000 });
  admit(Array.from({ length: 50 }, () => initiation(true)), from('198.18.0.3'));
  assert.equal(drain('priority'), 5, 'the burst');
  assert.equal(drops.get(Drop.RateLimited), 45);
  assert.ok(gate.cutting(clock.t), 'the writer says it is cutting a flood');
  assert.equal(gate.cutting(clock.t + 1000), false, 'for a second');
  clock.t += 1000;
  admit(Array.from({ length: 50 }, () => initiation(true)), from('198.18.0.3'));
  assert.equal(drain('priority'), 5, 'a second later: 20 more tokens, but the bucket holds 5');
  clock.t += 150;
  admit(Array.from({ length: 50 }, () => initiation(true)), from('198.18.0.3'));
  assert.equal(drain('priority'), 3, '150 ms at 20/s');
  admit([initiation(true)], from('198.18.0.4'));
  assert.equal(drain('priority'), 1, 'another source has its own bucket');

  admit(Array.from({ length: 300 }, () => initiation(false)), from('198.18.0.3'));
  assert.equal(drain('bulk'), 100, 'without a MAC2: the cookie replies\' burst');
  assert.equal(drops.get(Drop.CookieRateLimited), 200);

  admit(Array.from({ length: 10 }, () => initiation(true)), (i) => ({ address: `fd7a:7d0:1:2::${i + 1}`, port: 40000 }));
  assert.equal(drain('priority'), 5, 'ten addresses of one /64 share a bucket');
  admit(Array.from({ length: 10 }, () => initiation(true)), (i) => ({ address: `fd7a:7d0:1:${i + 3}::1`, port: 40000 }));
  assert.equal(drain('priority'), 10, 'ten /64s have ten');
});

test('a backlog of an eighth of the lanes puts the writer under load by itself, before the control plane says so', () => {
  const { admit, drain } = lanesOnClock();
  admit(Array.from({ length: 200 }, () => initiation(false)), (i) => ({ address: `198.18.1.${i}`, port: 1 }));
  admit([initiation(true)], () => ({ address: '198.18.0.9', port: 1 }));
  assert.equal(drain('priority'), 1, 'the MAC2 one jumped the queue');
  assert.equal(drain('bulk'), 200);
});

test('a full lane drops and counts', () => {
  const { admit, drops, reader } = lanesOnClock();
  // 16 sources of 100: the cookie-reply buckets let them all in, the lane holds 1024.
  for (let s = 0; s < 16; s++) admit(Array.from({ length: 100 }, () => initiation(false)), () => ({ address: `198.18.2.${s}`, port: 1 }));
  assert.equal(reader.waiting, 1024);
  assert.equal(drops.get(Drop.HandshakeQueueFull), 1600 - 1024);
});

/** b with a as its peer, a's initiations to b, and b's scheduler over one queue's lanes. */
function floodedResponder(tick = 0) {
  const clock = { t: 1_000_000 };
  // `tick`: how far each look at the clock moves it (0: it stands still).
  const now = (): number => (clock.t += tick);
  const a = new Engine({ privateKey: generatePrivateKey(), now });
  const b = new Engine({ privateKey: generatePrivateKey(), now });
  const aPeer = a.addPeer(b.publicKey!, { endpoint: { address: '198.18.0.2', port: 51821 } });
  b.addPeer(a.publicKey!);
  const gate = new HandshakeGate();
  const shared = createHandshakeLanes(gate);
  const writer = new LaneWriter(shared, b.drops, now);
  const sent: { packet: Uint8Array; to: string }[] = [];
  const scheduler = new HandshakeScheduler(b, gate, () => {
    for (const o of b.outbox.splice(0)) sent.push({ packet: o.packet, to: o.endpoint.address });
  });
  scheduler.add(new LaneReader(shared));
  const admit = (datagrams: Uint8Array[], address: string): void => {
    const { batch, indices } = batchOf(datagrams, () => ({ address, port: 40000 }));
    writer.handshakes(batch, indices, indices.length);
  };
  const flood = floodInitiations(b.publicKey!, 1000);
  const floodMessages = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => flood.slice(i * 148, i * 148 + 148));
  return { a, b, aPeer, clock, gate, scheduler, admit, floodMessages, sent };
}

test('a slice judges the backlog: a deep one means cookies for all without MAC2, and a peer that answers one gets through first', () => {
  const { a, b, aPeer, clock, gate, scheduler, admit, floodMessages, sent } = floodedResponder();
  try {
    // Half the lanes' worth from 10 sources: not yet under load when admitted, but deep.
    for (let s = 0; s < 5; s++) admit(floodMessages(100), `198.18.3.${s}`);
    a.initiateHandshake(aPeer, false);
    admit(a.outbox.splice(0).map((o) => o.packet), '198.18.0.1');
    while (scheduler.slice());
    assert.ok(b.isUnderLoad(), 'the backlog of 501 out of 1152 put b under load');
    assert.ok(gate.underLoad(clock.t), 'and the gate tells the writers');
    assert.equal(b.handshakes.initiationsReceived, 0);
    assert.equal(sent.filter((o) => o.packet[0] === 3).length, 501, 'every initiation got a cookie reply, at once');
    assert.equal(b.drops.get(Drop.CookieSent), 501);

    // a takes its cookie reply and retries while the flood goes on.
    const reply = sent.find((o) => o.to === '198.18.0.1')!;
    assert.equal(a.receive(reply.packet, { address: '198.18.0.2', port: 51821 }).kind, 'cookie');
    clock.t += REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
    for (let s = 0; s < 5; s++) admit(floodMessages(100), `198.18.4.${s}`);
    a.poll();
    admit(a.outbox.splice(0).map((o) => o.packet), '198.18.0.1');
    sent.length = 0;
    scheduler.slice();
    assert.equal(sent[0]?.packet[0], 2, 'the first thing b sent in the next slice is its response to a');
    assert.equal(sent[0]?.to, '198.18.0.1');
    assert.equal(b.handshakes.initiationsReceived, 1);
  } finally {
    scheduler.close();
  }
});

test('a slice is bounded in time, and the event loop runs between slices', async () => {
  // A clock that moves 0.1 ms at every look: a slice (2 ms) ends after a few messages.
  const { scheduler, admit, floodMessages } = floodedResponder(0.1);
  try {
    admit(floodMessages(100), '198.18.5.1');
    assert.equal(scheduler.waiting, 100);
    assert.ok(scheduler.slice(), 'messages still wait after one slice');
    const left = scheduler.waiting;
    assert.ok(left > 0 && left < 100, `one slice took ${100 - left}`);
    // The lanes' watcher runs the rest, a slice per turn of the event loop: timers get theirs.
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    for (let turn = 0; scheduler.waiting > 0 && turn < 10_000; turn++) await new Promise((resolve) => setImmediate(resolve));
    clearInterval(ticker);
    assert.equal(scheduler.waiting, 0);
    assert.ok(ticks > 0, 'a timer ran while the backlog was worked off');
  } finally {
    scheduler.close();
  }
});

test('a writer cutting a flood keeps the control plane under load, though the backlog it lets through is short', () => {
  const { b, clock, gate, scheduler, admit, floodMessages } = floodedResponder();
  try {
    admit(floodMessages(10), '198.18.6.1');
    scheduler.slice();
    assert.equal(b.isUnderLoad(), false, '10 messages are no load');
    gate.cut(clock.t);
    admit(floodMessages(10), '198.18.6.1');
    scheduler.slice();
    assert.ok(b.isUnderLoad());
    assert.ok(gate.underLoad(clock.t));
  } finally {
    scheduler.close();
  }
});

test('an old backlog head means under load even when the backlog is short', () => {
  const b = new Engine({ privateKey: generatePrivateKey() });
  b.noteHandshakeBacklog(1, 1024, 200);
  assert.equal(b.isUnderLoad(), false, 'a lone message held up by a busy event loop is no load');
  b.noteHandshakeBacklog(1, 1024, 1000);
  assert.ok(b.isUnderLoad(), 'a backlog that has not moved for a second is');
});

test('the engine\'s rate limiter: 5 at once, then 20 a second, per IPv4 address and per IPv6 /64', () => {
  const clock = { t: 0 };
  const limiter = new RateLimiter(() => clock.t);
  const allowed = (address: string, n: number): number => Array.from({ length: n }, () => limiter.allow(address)).filter(Boolean).length;
  assert.equal(allowed('198.18.0.3', 20), 5);
  clock.t += 100;
  assert.equal(allowed('198.18.0.3', 20), 2, '100 ms at 20/s');
  assert.equal(allowed('198.18.0.4', 20), 5, 'another address');
  assert.equal(allowed('fd7a:7d0:1:2::1', 3) + allowed('fd7a:7d0:1:2:ffff::9', 3), 5, 'one /64');
  assert.equal(allowed('fd7a:7d0:1:3::1', 20), 5, 'the next /64');
  clock.t += 10_000;
  assert.equal(allowed('198.18.0.3', 20), 5, 'idle buckets fill again (and are forgotten)');
});
