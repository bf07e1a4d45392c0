// 5,000 peers' timers under one TimerQueue on a fake clock, over 700 simulated seconds:
// each peer's timers must fire exactly as they do when that peer runs alone (the old
// engine polled every peer at every deadline, which is the same thing), in one global
// order by time (ties in the order peers were added), and at the protocol's times:
// handshake retries, give-ups, persistent and passive keepalives, new handshakes and
// key zeroing. Each peer acts on its timers as the engine does (engine.ts expireTimers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, ZERO_KEYS_AFTER,
} from '../../src/protocol/constants.js';
import { TimerQueue, type Wakeable } from '../../src/protocol/timer-queue.js';
import { PeerTimers, TimerAction } from '../../src/protocol/timers.js';
import { prng, randInt } from '../helpers/prng.js';

const END = 700_000;
const RTT = 10;
const PERSISTENT = 25;

/**
 * What a peer is: unanswered with persistent keepalive; unanswered, started by data to
 * send; answered, started by data (then data received, and for half of them data sent
 * that nobody answers); answered with persistent keepalive.
 */
type Kind = 'unanswered-pk' | 'unanswered-data' | 'answered-data' | 'answered-pk';

interface Script { at: number; what: 'send-data' | 'response' | 'data-received' }

/** A peer and the part of a device that acts on its timers, on a shared fake clock. */
class SimPeer implements Wakeable {
  wakeAt = Infinity;
  queueIndex = -1;
  readonly timers: PeerTimers;
  /** [time, action] of every timer that expired, in order. */
  readonly actions: Array<[number, TimerAction]> = [];
  readonly initiations: number[] = [];
  readonly sessions: number[] = [];
  private session = false;
  private readonly scripts: Script[] = [];

  constructor(readonly order: number, readonly kind: Kind, private readonly clock: { t: number }, queue?: TimerQueue<SimPeer>) {
    const rnd = prng(1000 + order);
    this.timers = new PeerTimers({
      now: () => clock.t, random: rnd,
      ...(queue === undefined ? {} : { wake: (d: number) => queue.wakeBy(this, d) }),
    });
    if (kind === 'unanswered-pk' || kind === 'answered-pk') this.timers.setPersistentKeepalive(PERSISTENT);
    else this.script(randInt(prng(order), 10_000), 'send-data');
  }

  get nextScript(): number | undefined {
    return this.scripts[0]?.at;
  }

  /** Runs the scripted events due now. */
  runScripts(): void {
    while (this.scripts.length > 0 && this.scripts[0]!.at <= this.clock.t) {
      const { what } = this.scripts.shift()!;
      if (what === 'send-data') this.send(true);
      else if (what === 'response') this.responseReceived();
      else this.dataReceived();
    }
  }

  /** Acts on each expired timer as Engine.expireTimers does. */
  expire(): void {
    for (const action of this.timers.poll()) {
      this.actions.push([this.clock.t, action]);
      if (action === TimerAction.RetransmitHandshake) this.initiate(true);
      else if (action === TimerAction.NewHandshake) this.initiate(false);
      else if (action === TimerAction.SendKeepalive || action === TimerAction.SendPersistentKeepalive) this.send(false);
      else if (action === TimerAction.ZeroKeyMaterial) this.session = false;
    }
  }

  private get answered(): boolean {
    return this.kind === 'answered-data' || this.kind === 'answered-pk';
  }

  private script(at: number, what: Script['what']): void {
    this.scripts.push({ at, what });
    this.scripts.sort((a, b) => a.at - b.at);
  }

  private initiate(isRetry: boolean): void {
    if (!this.timers.wantInitiation(isRetry)) return;
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    this.initiations.push(this.clock.t);
    this.timers.handshakeInitiated();
    if (this.answered) this.script(this.clock.t + RTT, 'response');
  }

  /** Engine.sendKeepalive and send: with a session the packet goes, else a handshake starts. */
  private send(carriesData: boolean): void {
    if (!this.session) {
      this.initiate(false);
      return;
    }
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    if (carriesData) this.timers.dataSent();
  }

  /** Engine.receiveResponse: session, handshake done, a keepalive back. */
  private responseReceived(): void {
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketReceived();
    this.session = true;
    this.sessions.push(this.clock.t);
    this.timers.sessionDerived();
    this.timers.handshakeComplete();
    this.send(false);
    if (this.kind === 'answered-data' && this.sessions.length === 1) {
      this.script(this.clock.t + 1000, 'data-received');
      if (this.order % 2 === 0) this.script(this.clock.t + 20_000, 'send-data');
    }
  }

  private dataReceived(): void {
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketReceived();
    this.timers.dataReceived();
  }

  actionTimes(kind: TimerAction): number[] {
    return this.actions.filter(([, a]) => a === kind).map(([t]) => t);
  }
}

const KINDS: Kind[] = ['unanswered-pk', 'unanswered-data', 'answered-data', 'answered-pk'];
const PEERS = 5_000;
const kindOf = (i: number): Kind => KINDS[i % KINDS.length]!;

/** Each peer alone on its own clock: the reference. */
function runAlone(order: number): SimPeer {
  const clock = { t: 0 };
  const peer = new SimPeer(order, kindOf(order), clock);
  for (;;) {
    const t = Math.min(peer.timers.nextDeadline() ?? Infinity, peer.nextScript ?? Infinity);
    if (t > END) return peer;
    clock.t = t;
    peer.runScripts();
    peer.expire();
  }
}

/** Every peer on one clock, woken by the queue (and scripted events by a second queue). */
function runQueued(): { peers: SimPeer[]; trace: Array<[number, number]>; wakeups: number } {
  const clock = { t: 0 };
  const queue = new TimerQueue<SimPeer>();
  const peers = Array.from({ length: PEERS }, (_, i) => new SimPeer(i, kindOf(i), clock, queue));
  const scripts = new TimerQueue<{ wakeAt: number; queueIndex: number; order: number; peer: SimPeer }>();
  const scriptOf = peers.map((peer) => ({ wakeAt: Infinity, queueIndex: -1, order: peer.order, peer }));
  const queueScript = (s: (typeof scriptOf)[number]): void => {
    const at = s.peer.nextScript;
    if (at !== undefined) scripts.wakeBy(s, at);
  };
  scriptOf.forEach(queueScript);
  const trace: Array<[number, number]> = [];
  let wakeups = 0;
  for (;;) {
    const t = Math.min(queue.peek()?.wakeAt ?? Infinity, scripts.peek()?.wakeAt ?? Infinity);
    if (t > END) break;
    clock.t = t;
    scripts.runDue(t, Infinity, (s) => { s.peer.runScripts(); return s.peer.nextScript; });
    // Scripted events may have queued a response: every peer's script queue entry follows.
    queue.runDue(t, Infinity, (peer) => {
      wakeups++;
      const before = peer.actions.length;
      peer.expire();
      for (let k = before; k < peer.actions.length; k++) trace.push([t, peer.order]);
      queueScript(scriptOf[peer.order]!);
      return peer.timers.nextDeadline();
    });
  }
  return { peers, trace, wakeups };
}

test('5,000 peers under one timer queue fire exactly what each fires alone, in time order', () => {
  const { peers, trace, wakeups } = runQueued();
  let actions = 0;
  for (const peer of peers) {
    const alone = runAlone(peer.order);
    assert.deepEqual(peer.actions, alone.actions, `peer ${peer.order} (${peer.kind})`);
    assert.deepEqual(peer.initiations, alone.initiations, `peer ${peer.order} initiations`);
    actions += peer.actions.length;
  }
  assert.equal(trace.length, actions);
  for (let k = 1; k < trace.length; k++) {
    const [t0, p0] = trace[k - 1]!;
    const [t1, p1] = trace[k]!;
    assert.ok(t0 < t1 || (t0 === t1 && p0 <= p1), `event ${k}: (${t1}, peer ${p1}) after (${t0}, peer ${p0})`);
  }
  // A wakeup that finds nothing due (a timer pushed later or cancelled) is the price of not
  // touching the queue per packet; it must stay well below the work done.
  assert.ok(wakeups < 1.5 * actions, `${wakeups} wakeups for ${actions} expired timers`);
  assert.ok(actions > 100_000, `only ${actions} timers expired`);
});

const inRetryGap = (gap: number): boolean => gap >= REKEY_TIMEOUT && gap < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
const INITIATIONS_PER_ATTEMPT = MAX_TIMER_HANDSHAKES + 2;

test('5,000 peers: retries, give-ups, keepalives and key zeroing at the protocol\'s times', () => {
  const { peers } = runQueued();
  for (const peer of peers) {
    const name = `peer ${peer.order} (${peer.kind})`;
    const giveUps = peer.actionTimes(TimerAction.GiveUpHandshake);
    const zeroes = peer.actionTimes(TimerAction.ZeroKeyMaterial);
    const init = peer.initiations;
    switch (peer.kind) {
      case 'unanswered-pk': {
        // Cycles of 20 initiations 5 s + jitter apart, a give-up one retry later, and the
        // persistent keepalive 25 s after the last initiation starting the next cycle.
        assert.equal(init[0], 0, name);
        assert.ok(init.length >= 4 * INITIATIONS_PER_ATTEMPT, `${name}: ${init.length} initiations`);
        for (let k = 1; k < init.length; k++) {
          const gap = init[k]! - init[k - 1]!;
          if (k % INITIATIONS_PER_ATTEMPT === 0) assert.equal(gap, PERSISTENT * 1000, `${name}: gap before initiation ${k}`);
          else assert.ok(inRetryGap(gap), `${name}: retry gap ${gap} before initiation ${k}`);
        }
        giveUps.forEach((t, c) => {
          const last = init[(c + 1) * INITIATIONS_PER_ATTEMPT - 1]!;
          assert.ok(inRetryGap(t - last), `${name}: give-up ${c} ${t - last} ms after the last initiation`);
        });
        // Every finished attempt gave up, unless the run ended before its last retry was due.
        const attempts = Math.floor(init.length / INITIATIONS_PER_ATTEMPT);
        const lastDueBy = init[attempts * INITIATIONS_PER_ATTEMPT - 1]! + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX;
        assert.ok(giveUps.length === attempts || (giveUps.length === attempts - 1 && lastDueBy > END), `${name}: ${giveUps.length} give-ups`);
        break;
      }
      case 'unanswered-data':
        // One attempt: 20 initiations, a give-up, and its residue zeroed 540 s later.
        assert.equal(init.length, INITIATIONS_PER_ATTEMPT, name);
        for (let k = 1; k < init.length; k++) assert.ok(inRetryGap(init[k]! - init[k - 1]!), name);
        assert.equal(giveUps.length, 1, name);
        assert.ok(inRetryGap(giveUps[0]! - init.at(-1)!), name);
        assert.deepEqual(zeroes, [giveUps[0]! + ZERO_KEYS_AFTER], name);
        assert.equal(peer.actions.length, INITIATIONS_PER_ATTEMPT - 1 + 2, `${name}: retries, give-up, zeroing and nothing else`);
        break;
      case 'answered-data': {
        const first = peer.sessions[0]!;
        assert.equal(first, init[0]! + RTT, name);
        // Data received 1 s into the session, nothing sent since: a keepalive 10 s later.
        assert.deepEqual(peer.actionTimes(TimerAction.SendKeepalive), [first + 1000 + KEEPALIVE_TIMEOUT], name);
        const newHandshakes = peer.actionTimes(TimerAction.NewHandshake);
        if (peer.order % 2 === 0) {
          // Data sent 20 s in and never answered: a new handshake 15 s + jitter later.
          assert.equal(newHandshakes.length, 1, name);
          const wait = newHandshakes[0]! - (first + 20_000);
          assert.ok(wait >= KEEPALIVE_TIMEOUT + REKEY_TIMEOUT && wait < KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX, `${name}: ${wait}`);
          assert.deepEqual(peer.sessions, [first, newHandshakes[0]! + RTT], name);
        } else {
          assert.deepEqual(newHandshakes, [], name);
          assert.deepEqual(peer.sessions, [first], name);
        }
        assert.deepEqual(zeroes, [peer.sessions.at(-1)! + ZERO_KEYS_AFTER], name);
        assert.deepEqual(peer.actionTimes(TimerAction.RetransmitHandshake), [], name);
        break;
      }
      case 'answered-pk': {
        // A session at 10 ms; persistent keepalives every 25 s from the last packet sent;
        // keys zeroed 540 s after the session, the next keepalive makes a new one.
        assert.equal(peer.sessions[0], RTT, name);
        assert.deepEqual(zeroes, [RTT + ZERO_KEYS_AFTER], name);
        const keepalives = peer.actionTimes(TimerAction.SendPersistentKeepalive);
        assert.equal(keepalives[0], 0, name);
        for (let k = 1; k < keepalives.length; k++) {
          // A keepalive without a session handshakes first (the first one, and the first
          // after the zeroing): the next is 25 s from the keepalive after the response.
          const handshook = k === 1 || (keepalives[k - 1]! > zeroes[0]! && keepalives[k - 2]! < zeroes[0]!);
          assert.equal(keepalives[k]! - keepalives[k - 1]!, PERSISTENT * 1000 + (handshook ? RTT : 0), `${name}: keepalive ${k}`);
        }
        const afterZeroing = keepalives.find((t) => t > zeroes[0]!)!;
        assert.deepEqual(peer.sessions, [RTT, afterZeroing + RTT], name);
        assert.deepEqual(giveUps, [], name);
        break;
      }
    }
  }
});
