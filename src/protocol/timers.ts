// Per-peer timers of the WireGuard whitepaper §6, as wireguard-go's device/timers.go
// runs them, but as a pure state machine: no real timers, only deadlines on an
// injected clock.
//
// Contract with the device:
// - Call the event methods when the events happen (names mirror wireguard-go's timers*).
// - Keep one real timer armed for nextDeadline(); when it fires, call poll() and carry
//   out the returned actions in order. Events run per packet, so re-arming only when
//   nextDeadline() moved earlier is enough: a poll() with nothing due returns [].
//   With many peers, the `wake` option tells a TimerQueue (timer-queue.ts) each new
//   deadline instead, so the device need not ask every peer.
// - Every handshake initiation, including those poll() asks for, first asks
//   wantInitiation(isRetry) (wireguard-go's SendHandshakeInitiation prologue: rate limit
//   and attempt count); after sending one, call handshakeInitiated().
// - After sending a handshake response, call handshakeResponseSent(): the same rate limit.
// - Device down / up: stop() / start(). Timers arm only while started (wireguard-go's
//   timersActive()); a new PeerTimers is started.

import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  ZERO_KEYS_AFTER,
} from './constants.js';

/** What poll() asks the device to do; one per expired timer. */
export const TimerAction = {
  /** No response to our initiation: send it again via wantInitiation(true). */
  RetransmitHandshake: 'retransmit-handshake',
  /** Data sent but nothing authenticated heard back: new handshake via wantInitiation(false). */
  NewHandshake: 'new-handshake',
  /** Data received and nothing sent since: send a keepalive. */
  SendKeepalive: 'send-keepalive',
  /** Nothing authenticated sent or received for the persistent keepalive interval: send a keepalive. */
  SendPersistentKeepalive: 'send-persistent-keepalive',
  /** MAX_TIMER_HANDSHAKES + 2 initiations went unanswered: drop the staged packets, stop retrying. */
  GiveUpHandshake: 'give-up-handshake',
  /** No new session for 3 × REJECT_AFTER_TIME: drop all keypairs and handshake state, flush staged packets. */
  ZeroKeyMaterial: 'zero-key-material',
} as const;
export type TimerAction = (typeof TimerAction)[keyof typeof TimerAction];

export interface PeerTimersOptions {
  /** Milliseconds, monotonic. */
  now: () => number;
  /** Uniform in [0, 1); draws the jitter. Defaults to Math.random. */
  random?: () => number;
  /** Seconds, 0 = off. */
  persistentKeepaliveInterval?: number;
  /** Told every deadline a timer is armed at (ms), as it is armed. */
  wake?: (deadline: number) => void;
}

/** The parts of a keypair the rekey decisions look at. */
export interface KeypairAge {
  readonly isInitiator: boolean;
  /** Clock time (ms) the keypair was derived. */
  readonly createdAt: number;
}

/** Age past which the initiator re-handshakes on receive, so the new session lands before REJECT_AFTER_TIME. */
export const REKEY_ON_RECEIVE_AGE = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;

/**
 * The time (ms) after which an initiator rekeys: REKEY_AFTER_TIME, unless a test or soak
 * shortens it (--rekey-after-seconds). Not below REKEY_TIMEOUT, the least time between
 * two initiations, which would set the pace instead; not above REKEY_AFTER_TIME, so
 * REJECT_AFTER_TIME and the rekey on receive still come after it, as they do by default.
 */
export function rekeyAfterTimeOf(ms: number | undefined): number {
  if (ms === undefined) return REKEY_AFTER_TIME;
  if (!(ms >= REKEY_TIMEOUT && ms <= REKEY_AFTER_TIME)) {
    throw new RangeError(`rekeyAfterTime must be ${REKEY_TIMEOUT} to ${REKEY_AFTER_TIME} ms, not ${ms}`);
  }
  return ms;
}

/**
 * keepKeyFreshSending: after sending with the current keypair, whether to start a new
 * handshake (then call wantInitiation(false)). `sendCounter` is the next counter to send;
 * only the initiator rekeys by age, after `rekeyAfterTime` ms (see rekeyAfterTimeOf).
 */
export function shouldRekeyOnSend(keypair: KeypairAge & { readonly sendCounter: bigint }, now: number, rekeyAfterTime = REKEY_AFTER_TIME): boolean {
  return keypair.sendCounter > REKEY_AFTER_MESSAGES
    || (keypair.isInitiator && now - keypair.createdAt > rekeyAfterTime);
}

/**
 * keepKeyFreshReceiving: after receiving with the current keypair, whether to start a new
 * handshake (then call wantInitiation(false)). True at most once until handshakeComplete().
 */
export function shouldRekeyOnReceive(timers: PeerTimers, keypair: KeypairAge, now: number): boolean {
  if (timers.sentLastMinuteHandshake) return false;
  if (!keypair.isInitiator || now - keypair.createdAt <= REKEY_ON_RECEIVE_AGE) return false;
  timers.sentLastMinuteHandshake = true;
  return true;
}

// Indices into PeerTimers.deadlines; on equal deadlines, poll() expires them in this order.
const RETRANSMIT_HANDSHAKE = 0;
const SEND_KEEPALIVE = 1;
const NEW_HANDSHAKE = 2;
const ZERO_KEY_MATERIAL = 3;
const PERSISTENT_KEEPALIVE = 4;

const MAX_PERSISTENT_KEEPALIVE = 65535;

export class PeerTimers {
  /** Set by shouldRekeyOnReceive(), cleared by handshakeComplete() (wireguard-go's field of that name). */
  sentLastMinuteHandshake = false;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly wake: ((deadline: number) => void) | undefined;
  /** Deadline of each timer in ms; Infinity = not pending. A plain array: no buffer per peer. */
  private readonly deadlines: number[] = [Infinity, Infinity, Infinity, Infinity, Infinity];
  private persistentKeepaliveInterval = 0;
  private running = true;
  /** Retransmissions of the current initiation so far. */
  private handshakeAttempts = 0;
  private needAnotherKeepalive = false;
  /** When the last initiation or response was sent; -Infinity lets the first one through. */
  private lastSentHandshake = -Infinity;

  constructor(options: PeerTimersOptions) {
    this.now = options.now;
    this.random = options.random ?? Math.random;
    this.wake = options.wake;
    this.setPersistentKeepalive(options.persistentKeepaliveInterval ?? 0);
  }

  /**
   * Sets the persistent keepalive interval (seconds, 0 = off). As wireguard-go's UAPI,
   * turning it on from off asks for a keepalive at once (so does the constructor);
   * changing a non-zero interval keeps the pending deadline, and the new interval
   * applies from the next traversal.
   */
  setPersistentKeepalive(seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_PERSISTENT_KEEPALIVE) {
      throw new RangeError(`persistent keepalive must be an integer 0..${MAX_PERSISTENT_KEEPALIVE} seconds`);
    }
    const wasOff = this.persistentKeepaliveInterval === 0;
    this.persistentKeepaliveInterval = seconds;
    if (seconds === 0) {
      // wireguard-go lets the timer expire into a no-op; cancelling saves the wakeup.
      this.cancel(PERSISTENT_KEEPALIVE);
    } else if (wasOff) {
      this.arm(PERSISTENT_KEEPALIVE, 0);
    }
  }

  /** After an authenticated data packet (not a keepalive) is sent. */
  dataSent(): void {
    if (!this.isPending(NEW_HANDSHAKE)) {
      this.arm(NEW_HANDSHAKE, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter());
    }
  }

  /** After an authenticated data packet (not a keepalive) is received. */
  dataReceived(): void {
    if (!this.isPending(SEND_KEEPALIVE)) {
      this.arm(SEND_KEEPALIVE, KEEPALIVE_TIMEOUT);
    } else {
      this.needAnotherKeepalive = true;
    }
  }

  /** After any authenticated packet is sent: keepalive, data or handshake. */
  anyAuthenticatedPacketSent(): void {
    this.cancel(SEND_KEEPALIVE);
  }

  /** After any authenticated packet is received: keepalive, data or handshake. */
  anyAuthenticatedPacketReceived(): void {
    this.cancel(NEW_HANDSHAKE);
  }

  /** Before an authenticated packet is sent, or after one is received. */
  anyAuthenticatedPacketTraversal(): void {
    if (this.persistentKeepaliveInterval > 0) {
      this.arm(PERSISTENT_KEEPALIVE, this.persistentKeepaliveInterval * 1000);
    }
  }

  /** After a handshake initiation is sent. */
  handshakeInitiated(): void {
    this.arm(RETRANSMIT_HANDSHAKE, REKEY_TIMEOUT + this.jitter());
  }

  /** After a handshake response is received, or the first transport message confirms our response. */
  handshakeComplete(): void {
    this.cancel(RETRANSMIT_HANDSHAKE);
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  /** After session keys are derived: before sending a response, or on receiving one. */
  sessionDerived(): void {
    this.arm(ZERO_KEY_MATERIAL, ZERO_KEYS_AFTER);
  }

  /** After a handshake response is sent; like wireguard-go it holds back our own initiations too. */
  handshakeResponseSent(): void {
    this.lastSentHandshake = this.now();
  }

  /**
   * Whether to send a handshake initiation now. A non-retry restarts the attempt count,
   * even when refused. Refused while the last initiation or response is younger than
   * REKEY_TIMEOUT; a true answer records now as the last send.
   */
  wantInitiation(isRetry: boolean): boolean {
    if (!isRetry) this.handshakeAttempts = 0;
    const now = this.now();
    if (now - this.lastSentHandshake < REKEY_TIMEOUT) return false;
    this.lastSentHandshake = now;
    return true;
  }

  /** The earliest pending deadline, for the device's one real timer; undefined when none. */
  nextDeadline(): number | undefined {
    let next = Infinity;
    for (const deadline of this.deadlines) next = Math.min(next, deadline);
    return next === Infinity ? undefined : next;
  }

  /** Expires every timer due at now(), earliest first, and returns what the device should do, in order. */
  poll(): TimerAction[] {
    const now = this.now();
    const actions: TimerAction[] = [];
    for (;;) {
      let due = -1;
      let dueAt = Infinity;
      for (const [timer, deadline] of this.deadlines.entries()) {
        if (deadline <= now && (due < 0 || deadline < dueAt)) [due, dueAt] = [timer, deadline];
      }
      if (due < 0) return actions;
      this.cancel(due);
      actions.push(this.expire(due));
    }
  }

  /** Device down or peer removed: cancels every timer; events arm none until start(). */
  stop(): void {
    this.running = false;
    this.deadlines.fill(Infinity);
  }

  /**
   * Device up again (wireguard-go's Peer.Start and upLocked): clears the attempt count,
   * flags and rate limit, and with persistent keepalive on asks for a keepalive at once.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.handshakeAttempts = 0;
    this.needAnotherKeepalive = false;
    this.sentLastMinuteHandshake = false;
    this.lastSentHandshake = -Infinity;
    if (this.persistentKeepaliveInterval > 0) this.arm(PERSISTENT_KEEPALIVE, 0);
  }

  private expire(timer: number): TimerAction {
    switch (timer) {
      case RETRANSMIT_HANDSHAKE:
        // wireguard-go compares before counting: MAX_TIMER_HANDSHAKES + 1 retries, + 2 initiations in all.
        if (this.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
          this.cancel(SEND_KEEPALIVE);
          // Destroy any residue of the partial exchange, unless already scheduled.
          if (!this.isPending(ZERO_KEY_MATERIAL)) this.arm(ZERO_KEY_MATERIAL, ZERO_KEYS_AFTER);
          return TimerAction.GiveUpHandshake;
        }
        this.handshakeAttempts++;
        return TimerAction.RetransmitHandshake;
      case SEND_KEEPALIVE:
        if (this.needAnotherKeepalive) {
          this.needAnotherKeepalive = false;
          this.arm(SEND_KEEPALIVE, KEEPALIVE_TIMEOUT);
        }
        return TimerAction.SendKeepalive;
      case NEW_HANDSHAKE:
        return TimerAction.NewHandshake;
      case ZERO_KEY_MATERIAL:
        return TimerAction.ZeroKeyMaterial;
      default: // PERSISTENT_KEEPALIVE, only pending while the interval is non-zero
        return TimerAction.SendPersistentKeepalive;
    }
  }

  /** 0..REKEY_TIMEOUT_JITTER_MAX − 1 whole ms, as wireguard-go's rand.Int31n. */
  private jitter(): number {
    return Math.floor(this.random() * REKEY_TIMEOUT_JITTER_MAX);
  }

  private arm(timer: number, delay: number): void {
    if (!this.running) return;
    const deadline = this.now() + delay;
    this.deadlines[timer] = deadline;
    this.wake?.(deadline);
  }

  private cancel(timer: number): void {
    this.deadlines[timer] = Infinity;
  }

  private isPending(timer: number): boolean {
    return this.deadlines[timer] !== Infinity;
  }
}
