// Groups a batch's packets by keypair, so each keypair costs one key copy, one
// counter reservation and one round of timer bookkeeping per batch, not per packet.
import type { Keypair } from '../protocol/keypair.js';
import type { Peer } from '../protocol/peer.js';
import { KEY_SIZE } from '../protocol/constants.js';

export class KeypairGroups {
  /** Keys of the groups, k × 32 bytes, in the layout the native AEAD batch takes. */
  readonly keys: Uint8Array;
  readonly peers: (Peer | undefined)[];
  readonly keypairs: (Keypair | undefined)[];
  /** Per-group scratch numbers for the stage using it. */
  readonly counts: Float64Array;
  readonly bytes: Float64Array;
  readonly counterLo: Float64Array;
  readonly counterHi: Float64Array;
  /** Per group: the last packet's index (inbound: whose source address roams the endpoint). */
  readonly lastPacket: Int32Array;
  readonly carriedData: Uint8Array;
  /** Per group: the next output position (outbound: each group's datagrams together). */
  readonly cursor: Int32Array;
  size = 0;

  constructor(readonly capacity: number) {
    this.keys = new Uint8Array(capacity * KEY_SIZE);
    this.peers = new Array<Peer | undefined>(capacity).fill(undefined);
    this.keypairs = new Array<Keypair | undefined>(capacity).fill(undefined);
    this.counts = new Float64Array(capacity);
    this.bytes = new Float64Array(capacity);
    this.counterLo = new Float64Array(capacity);
    this.counterHi = new Float64Array(capacity);
    this.lastPacket = new Int32Array(capacity);
    this.carriedData = new Uint8Array(capacity);
    this.cursor = new Int32Array(capacity);
  }

  /** Forgets the groups of the last batch (and the references they held). */
  clear(): void {
    for (let g = 0; g < this.size; g++) {
      this.peers[g] = undefined;
      this.keypairs[g] = undefined;
    }
    this.size = 0;
  }

  /** The group of `keypair`, made on first sight with `key` copied in. */
  groupOf(peer: Peer, keypair: Keypair, key: Uint8Array): number {
    // Newest first: consecutive packets mostly share a keypair.
    for (let g = this.size - 1; g >= 0; g--) if (this.keypairs[g] === keypair) return g;
    const g = this.size++;
    this.peers[g] = peer;
    this.keypairs[g] = keypair;
    this.keys.set(key, g * KEY_SIZE);
    this.counts[g] = 0;
    this.bytes[g] = 0;
    this.lastPacket[g] = -1;
    this.carriedData[g] = 0;
    return g;
  }
}
