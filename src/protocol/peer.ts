// A remote peer as the protocol core sees it: handshake, keypairs, cookies, timers,
// endpoint and counters. The engine (engine.ts) drives it.
import type { StaticKey } from '../crypto/x25519.js';
import { CookieGenerator } from './cookie.js';
import { Keypairs, type KeypairRetired } from './keypair.js';
import { Handshake } from './noise.js';
import type { TimerQueue, Wakeable } from './timer-queue.js';
import { PeerTimers } from './timers.js';

/**
 * A UDP endpoint: an IP literal (v4 or v6, no brackets) and a port, and the local
 * address the peer last sent to (learnt from its last authenticated packet): what
 * replies leave from. One set by the user (UAPI, config) has none.
 */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly local?: { readonly address: string; readonly ifindex: number };
}

export function sameEndpoint(a: Endpoint | undefined, b: Endpoint): boolean {
  if (a === undefined || a.address !== b.address || a.port !== b.port) return false;
  if (a.local === undefined || b.local === undefined) return a.local === b.local;
  return a.local.address === b.local.address && a.local.ifindex === b.local.ifindex;
}

export interface PeerOptions {
  presharedKey?: Uint8Array;
  endpoint?: Endpoint;
  /** Seconds; 0 or absent = off. */
  persistentKeepalive?: number;
}

/** Packets waiting for a handshake; wireguard-go keeps 128 (QueueStagedSize). */
export const MAX_STAGED_PACKETS = 128;

export class Peer implements Wakeable {
  /** When the engine's timer queue wakes this peer to run its timers (timer-queue.ts). */
  wakeAt = Infinity;
  queueIndex = -1;
  readonly handshake: Handshake;
  readonly keypairs: Keypairs;
  readonly cookies: CookieGenerator;
  readonly timers: PeerTimers;
  private currentEndpoint: Endpoint | undefined;
  persistentKeepalive = 0;
  /** Wall-clock ms of the last completed handshake, 0 = never (UAPI last_handshake_time). */
  lastHandshakeWallMs = 0;
  rxBytes = 0;
  txBytes = 0;
  /** Transport messages received (authenticated, keepalives included) and sent. */
  rxPackets = 0;
  txPackets = 0;
  /** When the handshake attempt in progress sent its first initiation (monotonic ms), for its duration. */
  handshakeStartedAt: number | undefined;
  /** Plaintext packets waiting for a keypair, oldest first. */
  readonly staged: Uint8Array[] = [];

  constructor(
    readonly publicKey: Uint8Array,
    /** The peer's number in the shared peer table (what the data path calls it). */
    readonly id: number,
    /** Its place in the order peers were added: breaks ties between timers due at once. */
    readonly order: number,
    timerQueue: TimerQueue<Peer>,
    local: StaticKey | undefined,
    now: () => number,
    random: () => number,
    retired: KeypairRetired,
    private readonly endpointChanged: (peer: Peer) => void,
    options: PeerOptions = {},
  ) {
    this.handshake = new Handshake(publicKey, local);
    this.keypairs = new Keypairs(retired);
    this.cookies = new CookieGenerator(publicKey, now);
    this.timers = new PeerTimers({ now, random, wake: (deadline) => timerQueue.wakeBy(this, deadline) });
    this.update(options);
  }

  get endpoint(): Endpoint | undefined {
    return this.currentEndpoint;
  }

  set endpoint(endpoint: Endpoint | undefined) {
    if (endpoint !== undefined && sameEndpoint(this.currentEndpoint, endpoint)) return;
    this.currentEndpoint = endpoint;
    this.endpointChanged(this);
  }

  update(options: PeerOptions): void {
    if (options.presharedKey !== undefined) this.handshake.setPresharedKey(options.presharedKey);
    if (options.endpoint !== undefined) this.endpoint = options.endpoint;
    if (options.persistentKeepalive !== undefined) {
      this.persistentKeepalive = options.persistentKeepalive;
      this.timers.setPersistentKeepalive(options.persistentKeepalive);
    }
  }
}
