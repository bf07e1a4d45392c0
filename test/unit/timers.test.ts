import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX, ZERO_KEYS_AFTER,
} from '../../src/protocol/constants.js';
import {
  PeerTimers, rekeyAfterTimeOf, REKEY_ON_RECEIVE_AGE, shouldRekeyOnReceive, shouldRekeyOnSend, TimerAction,
} from '../../src/protocol/timers.js';

/** A fake clock, the timers, and a device that acts on poll() as wireguard-go's send paths do. */
class Harness {
  t = 0;
  jitterDraw = 0;
  readonly timers: PeerTimers;
  readonly initiations: number[] = [];
  readonly keepalives: number[] = [];
  readonly actions: Array<[number, TimerAction]> = [];

  constructor(persistentKeepaliveInterval?: number) {
    this.timers = new PeerTimers({ now: () => this.t, random: () => this.jitterDraw, persistentKeepaliveInterval });
  }

  /** SendHandshakeInitiation(isRetry). */
  initiate(isRetry: boolean): boolean {
    if (!this.timers.wantInitiation(isRetry)) return false;
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    this.initiations.push(this.t);
    this.timers.handshakeInitiated();
    return true;
  }

  keepalive(): void {
    this.timers.anyAuthenticatedPacketTraversal();
    this.timers.anyAuthenticatedPacketSent();
    this.keepalives.push(this.t);
  }

  /** Advances the clock to `until`, firing the device's one timer at each deadline on the way. */
  runUntil(until: number): void {
    for (;;) {
      const deadline = this.timers.nextDeadline();
      if (deadline === undefined || deadline > until) break;
      this.t = Math.max(this.t, deadline);
      for (const action of this.timers.poll()) {
        this.actions.push([this.t, action]);
        if (action === TimerAction.RetransmitHandshake) this.initiate(true);
        else if (action === TimerAction.NewHandshake) this.initiate(false);
        else if (action === TimerAction.SendKeepalive || action === TimerAction.SendPersistentKeepalive) this.keepalive();
      }
    }
    this.t = until;
  }

  actionsOf(kind: TimerAction): number[] {
    return this.actions.filter(([, action]) => action === kind).map(([t]) => t);
  }
}

/** Bare timers on a fake clock, for checking poll() without a device reacting. */
function bare(persistentKeepaliveInterval = 0): { clock: { t: number }; timers: PeerTimers } {
  const clock = { t: 0 };
  return { clock, timers: new PeerTimers({ now: () => clock.t, random: () => 0, persistentKeepaliveInterval }) };
}

function pollAt(setup: { clock: { t: number }; timers: PeerTimers }, t: number): TimerAction[] {
  setup.clock.t = t;
  return setup.timers.poll();
}

const JITTER_TOP = 1 - Number.EPSILON;

test('an idle peer has no deadline', () => {
  const h = bare();
  assert.equal(h.timers.nextDeadline(), undefined);
  assert.deepEqual(pollAt(h, 1e9), []);
});

test('retransmits every REKEY_TIMEOUT and gives up after MAX_TIMER_HANDSHAKES + 2 initiations', () => {
  const h = new Harness();
  assert.equal(h.initiate(false), true);
  h.runUntil(1_000_000);
  assert.equal(MAX_TIMER_HANDSHAKES + 2, 20);
  assert.deepEqual(h.initiations, Array.from({ length: 20 }, (_, i) => i * REKEY_TIMEOUT));
  assert.equal(h.actionsOf(TimerAction.RetransmitHandshake).length, 19);
  assert.deepEqual(h.actionsOf(TimerAction.GiveUpHandshake), [20 * REKEY_TIMEOUT]);
  // Giving up arms the zero-key timer when no session had.
  assert.deepEqual(h.actionsOf(TimerAction.ZeroKeyMaterial), [20 * REKEY_TIMEOUT + ZERO_KEYS_AFTER]);
  assert.equal(h.timers.nextDeadline(), undefined);
});

test('jitter stays within 0..REKEY_TIMEOUT_JITTER_MAX − 1 ms', () => {
  for (const [draw, jitter] of [[0, 0], [0.5, 167], [JITTER_TOP, REKEY_TIMEOUT_JITTER_MAX - 1]] as const) {
    const retransmit = new Harness();
    retransmit.jitterDraw = draw;
    retransmit.timers.handshakeInitiated();
    assert.equal(retransmit.timers.nextDeadline(), REKEY_TIMEOUT + jitter);

    const newHandshake = new Harness();
    newHandshake.jitterDraw = draw;
    newHandshake.timers.dataSent();
    assert.equal(newHandshake.timers.nextDeadline(), KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter);
  }
  assert.equal(REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX - 1, 5333);
});

test('each timer arming draws fresh jitter', () => {
  const draws = [0.1, 0.9];
  const timers = new PeerTimers({ now: () => 0, random: () => draws.shift()! });
  timers.handshakeInitiated();
  assert.equal(timers.nextDeadline(), REKEY_TIMEOUT + 33);
  timers.handshakeInitiated();
  assert.equal(timers.nextDeadline(), REKEY_TIMEOUT + 300);
});

test('handshake completion cancels the retransmission and restarts the attempt count', () => {
  const h = new Harness();
  h.initiate(false);
  h.runUntil(12_000);
  assert.deepEqual(h.initiations, [0, 5000, 10_000]);
  h.timers.handshakeComplete();
  assert.equal(h.timers.nextDeadline(), undefined);

  h.runUntil(30_000);
  h.initiate(false);
  h.runUntil(1_000_000);
  assert.equal(h.initiations.length, 3 + 20);
  assert.deepEqual(h.actionsOf(TimerAction.GiveUpHandshake), [30_000 + 20 * REKEY_TIMEOUT]);
});

test('a non-retry initiation request restarts the attempt count even when rate-limited', () => {
  const h = new Harness();
  h.initiate(false);
  h.runUntil(52_000); // initiations at 0..50000: attempts = 10
  assert.equal(h.initiations.length, 11);
  assert.equal(h.initiate(false), false); // 2 s after the last one
  h.runUntil(1_000_000);
  // 19 more retransmissions from the timer armed at 50000, then give up.
  assert.equal(h.initiations.length, 11 + 19);
  assert.deepEqual(h.actionsOf(TimerAction.GiveUpHandshake), [150_000]);
});

test('initiations are rate-limited to one per REKEY_TIMEOUT, responses included', () => {
  const h = new Harness();
  assert.equal(h.timers.wantInitiation(false), true);
  h.t = REKEY_TIMEOUT - 1;
  assert.equal(h.timers.wantInitiation(false), false);
  assert.equal(h.timers.wantInitiation(true), false);
  h.t = REKEY_TIMEOUT;
  assert.equal(h.timers.wantInitiation(true), true);

  h.t = 6000;
  h.timers.handshakeResponseSent();
  h.t = 6000 + REKEY_TIMEOUT - 1;
  assert.equal(h.timers.wantInitiation(false), false);
  h.t = 6000 + REKEY_TIMEOUT;
  assert.equal(h.timers.wantInitiation(false), true);
});

test('a refused retransmission ends the retry chain, as in wireguard-go', () => {
  const h = new Harness();
  h.initiate(false);
  h.t = 3000;
  h.timers.handshakeResponseSent(); // we answered the peer's own initiation meanwhile
  h.runUntil(100_000);
  assert.deepEqual(h.actionsOf(TimerAction.RetransmitHandshake), [5000]);
  assert.deepEqual(h.initiations, [0]);
  assert.equal(h.timers.nextDeadline(), undefined);
});

test('new handshake after data sent without an authenticated reply', () => {
  const h = bare();
  h.timers.dataSent();
  assert.equal(h.timers.nextDeadline(), KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
  h.clock.t = 5000;
  h.timers.dataSent(); // already pending: not pushed back
  assert.equal(h.timers.nextDeadline(), 15_000);
  assert.deepEqual(pollAt(h, 14_999), []);
  assert.deepEqual(pollAt(h, 15_000), [TimerAction.NewHandshake]);
  assert.equal(h.timers.nextDeadline(), undefined);

  const device = new Harness();
  device.timers.dataSent();
  device.runUntil(19_999);
  assert.deepEqual(device.initiations, [15_000]);
  assert.deepEqual(device.actions, [[15_000, TimerAction.NewHandshake]]);
});

test('an authenticated receive cancels the new-handshake timer', () => {
  const h = bare();
  h.timers.dataSent();
  h.clock.t = 14_999;
  h.timers.anyAuthenticatedPacketReceived();
  assert.equal(h.timers.nextDeadline(), undefined);
  assert.deepEqual(pollAt(h, 100_000), []);
});

test('keepalive after data received with nothing sent', () => {
  const h = bare();
  h.timers.dataReceived();
  assert.deepEqual(pollAt(h, KEEPALIVE_TIMEOUT - 1), []);
  assert.deepEqual(pollAt(h, KEEPALIVE_TIMEOUT), [TimerAction.SendKeepalive]);
  assert.equal(h.timers.nextDeadline(), undefined);
});

test('an authenticated send cancels the keepalive timer', () => {
  const h = bare();
  h.timers.dataReceived();
  h.clock.t = 4000;
  h.timers.anyAuthenticatedPacketSent();
  assert.equal(h.timers.nextDeadline(), undefined);
  assert.deepEqual(pollAt(h, 100_000), []);
});

test('data received while the keepalive is pending re-arms it once after it fires', () => {
  const h = bare();
  h.timers.dataReceived();
  h.clock.t = 3000;
  h.timers.dataReceived(); // pending: not pushed back, needs another
  assert.equal(h.timers.nextDeadline(), KEEPALIVE_TIMEOUT);
  assert.deepEqual(pollAt(h, 10_000), [TimerAction.SendKeepalive]);
  assert.equal(h.timers.nextDeadline(), 20_000);
  assert.deepEqual(pollAt(h, 20_000), [TimerAction.SendKeepalive]);
  assert.equal(h.timers.nextDeadline(), undefined);

  // Sending that keepalive counts as an authenticated send and cancels the re-arm,
  // as in wireguard-go and the kernel, where the send path runs after the expiry.
  const device = new Harness();
  device.timers.dataReceived();
  device.t = 3000;
  device.timers.dataReceived();
  device.runUntil(100_000);
  assert.deepEqual(device.keepalives, [10_000]);
});

test('zero-key timer: 3 × REJECT_AFTER_TIME after the last session was derived', () => {
  const h = bare();
  h.timers.sessionDerived();
  assert.deepEqual(pollAt(h, ZERO_KEYS_AFTER - 1), []);
  assert.deepEqual(pollAt(h, ZERO_KEYS_AFTER), [TimerAction.ZeroKeyMaterial]);

  h.timers.sessionDerived(); // at 540000
  h.clock.t = ZERO_KEYS_AFTER + 100_000;
  h.timers.sessionDerived(); // re-derived: pushed back
  assert.equal(h.timers.nextDeadline(), 2 * ZERO_KEYS_AFTER + 100_000);
});

test('giving up keeps a pending zero-key deadline and cancels the keepalive', () => {
  const h = new Harness();
  h.timers.sessionDerived();
  h.t = 1000;
  h.initiate(false);
  h.runUntil(100_000);
  h.timers.dataReceived(); // keepalive due at 110000
  h.runUntil(1_000_000);
  assert.deepEqual(h.actionsOf(TimerAction.GiveUpHandshake), [101_000]);
  assert.deepEqual(h.keepalives, []);
  assert.deepEqual(h.actionsOf(TimerAction.ZeroKeyMaterial), [ZERO_KEYS_AFTER]);
});

test('persistent keepalive: at once when configured, then every interval of silence', () => {
  const h = new Harness(25);
  assert.equal(h.timers.nextDeadline(), 0);
  h.runUntil(100_000);
  assert.deepEqual(h.keepalives, [0, 25_000, 50_000, 75_000, 100_000]);
  // Other authenticated traffic pushes it back.
  h.runUntil(110_000);
  h.timers.anyAuthenticatedPacketTraversal();
  assert.equal(h.timers.nextDeadline(), 135_000);
  assert.deepEqual(h.actionsOf(TimerAction.SendPersistentKeepalive), h.keepalives);
});

test('persistent keepalive off: traversal arms nothing, and turning it off cancels it', () => {
  const off = new Harness();
  off.timers.anyAuthenticatedPacketTraversal();
  assert.equal(off.timers.nextDeadline(), undefined);

  const h = new Harness(25);
  h.runUntil(10_000);
  assert.equal(h.timers.nextDeadline(), 25_000);
  h.timers.setPersistentKeepalive(0);
  assert.equal(h.timers.nextDeadline(), undefined);
  h.timers.anyAuthenticatedPacketTraversal();
  assert.equal(h.timers.nextDeadline(), undefined);
});

test('persistent keepalive changed at run time', () => {
  const h = new Harness();
  h.runUntil(7000);
  h.timers.setPersistentKeepalive(15); // off → on: at once
  h.runUntil(7000);
  assert.deepEqual(h.keepalives, [7000]);
  h.timers.setPersistentKeepalive(15); // unchanged: nothing extra
  assert.equal(h.timers.nextDeadline(), 22_000);

  h.timers.setPersistentKeepalive(40); // on → on: the pending deadline stands
  assert.equal(h.timers.nextDeadline(), 22_000);
  h.runUntil(100_000);
  assert.deepEqual(h.keepalives, [7000, 22_000, 62_000]);

  for (const bad of [-1, 1.5, 65_536, Number.NaN]) {
    assert.throws(() => h.timers.setPersistentKeepalive(bad), RangeError);
  }
});

test('poll expires every due timer, earliest first', () => {
  const h = bare();
  h.timers.handshakeInitiated(); // 5000
  h.timers.dataReceived(); // 10000
  h.timers.dataSent(); // 15000
  assert.deepEqual(pollAt(h, 60_000), [
    TimerAction.RetransmitHandshake,
    TimerAction.SendKeepalive,
    TimerAction.NewHandshake,
  ]);
  assert.equal(h.timers.nextDeadline(), undefined);
});

test('stop cancels every timer and start resets the rate limit and attempts', () => {
  const h = new Harness(25);
  h.runUntil(1000);
  h.initiate(false);
  h.timers.dataReceived();
  h.timers.dataSent();
  h.timers.sessionDerived();
  h.timers.stop();
  assert.equal(h.timers.nextDeadline(), undefined);
  h.timers.dataReceived();
  h.timers.dataSent();
  h.timers.handshakeInitiated();
  h.timers.sessionDerived();
  h.timers.anyAuthenticatedPacketTraversal();
  assert.equal(h.timers.nextDeadline(), undefined);

  h.t = 2000;
  h.timers.start();
  assert.equal(h.timers.nextDeadline(), 2000); // persistent keepalive at once
  assert.equal(h.timers.wantInitiation(false), true); // 1 s after the last: allowed after a restart
  h.timers.start(); // already running: nothing changes
  assert.equal(h.timers.wantInitiation(false), false);
});

test('rekey on send: by age (initiator only) and by counter', () => {
  const initiator = { isInitiator: true, createdAt: 1000, sendCounter: 0n };
  assert.equal(shouldRekeyOnSend(initiator, 1000 + REKEY_AFTER_TIME - 1), false);
  assert.equal(shouldRekeyOnSend(initiator, 1000 + REKEY_AFTER_TIME), false); // wireguard-go: age > REKEY_AFTER_TIME
  assert.equal(shouldRekeyOnSend(initiator, 1000 + REKEY_AFTER_TIME + 1), true);

  const responder = { isInitiator: false, createdAt: 1000, sendCounter: 0n };
  assert.equal(shouldRekeyOnSend(responder, 1e9), false);
  assert.equal(shouldRekeyOnSend({ ...responder, sendCounter: REKEY_AFTER_MESSAGES }, 1000), false);
  assert.equal(shouldRekeyOnSend({ ...responder, sendCounter: REKEY_AFTER_MESSAGES + 1n }, 1000), true);
});

test('rekey on send with a shortened rekey time (the testing knob): still by age of the initiator only', () => {
  const initiator = { isInitiator: true, createdAt: 1000, sendCounter: 0n };
  assert.equal(shouldRekeyOnSend(initiator, 1000 + 5000, 5000), false);
  assert.equal(shouldRekeyOnSend(initiator, 1000 + 5001, 5000), true);
  assert.equal(shouldRekeyOnSend({ ...initiator, isInitiator: false }, 1e9, 5000), false);
  assert.equal(rekeyAfterTimeOf(undefined), REKEY_AFTER_TIME);
  assert.equal(rekeyAfterTimeOf(REKEY_TIMEOUT), REKEY_TIMEOUT);
  for (const bad of [REKEY_TIMEOUT - 1, REKEY_AFTER_TIME + 1, NaN]) {
    assert.throws(() => rekeyAfterTimeOf(bad), /^RangeError: rekeyAfterTime must be 5000 to 120000 ms/, String(bad));
  }
});

test('rekey on receive: initiator keypair older than 165 s, once per session', () => {
  assert.equal(REKEY_ON_RECEIVE_AGE, 165_000);
  const h = bare();
  const initiator = { isInitiator: true, createdAt: 0 };
  assert.equal(shouldRekeyOnReceive(h.timers, initiator, REKEY_ON_RECEIVE_AGE - 1), false);
  assert.equal(shouldRekeyOnReceive(h.timers, initiator, REKEY_ON_RECEIVE_AGE), false);
  assert.equal(shouldRekeyOnReceive(h.timers, { isInitiator: false, createdAt: 0 }, 1e9), false);
  assert.equal(shouldRekeyOnReceive(h.timers, initiator, REKEY_ON_RECEIVE_AGE + 1), true);
  assert.equal(shouldRekeyOnReceive(h.timers, initiator, REKEY_ON_RECEIVE_AGE + 2), false);
  h.timers.handshakeComplete();
  assert.equal(shouldRekeyOnReceive(h.timers, initiator, REKEY_ON_RECEIVE_AGE + 3), true);
});
