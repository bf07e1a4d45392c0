// The allowed-IPs table compiled for the data path: the same path-compressed tries
// as allowed-ips.ts, flattened into one Int32Array in a SharedArrayBuffer with peer
// numbers instead of objects, so a kernel on any thread can route a packet (by
// destination) and check its source without the control plane. The control plane
// compiles a new table after each configuration change and hands it on whole.

/** Int32 words per node. */
export const NODE_WORDS = 13;
const N_K = 0; // k0..k3
const N_M = 4; // m0..m3
const N_BIT_WORD = 8;
const N_BIT_SHIFT = 9;
const N_PEER = 10;
const N_C0 = 11;
const N_C1 = 12;
/** Words before the nodes: the IPv4 root and the IPv6 root (-1: empty). */
const HEADER_WORDS = 2;

/** What AllowedIPs.compile reads from each trie node. */
export interface CompilableNode<N> {
  readonly k0: number; readonly k1: number; readonly k2: number; readonly k3: number;
  readonly m0: number; readonly m1: number; readonly m2: number; readonly m3: number;
  readonly bitWord: number; readonly bitShift: number;
  readonly c0: N | null; readonly c1: N | null;
}

export class RouteTable {
  readonly words: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer);
  }

  /** An empty table. */
  static empty(): RouteTable {
    const t = new RouteTable(new SharedArrayBuffer(HEADER_WORDS * 4));
    t.words.fill(-1);
    return t;
  }

  /**
   * Builds the table from two tries of `nodeCount` nodes in all, laid out in preorder;
   * `peer(node)` is -1 for a fork. One pass, no map from nodes to places: each node's
   * place is written into the word that points at it when the node is reached.
   */
  static build<N extends CompilableNode<N>>(roots: readonly [N | null, N | null], nodeCount: number, peer: (node: N) => number): RouteTable {
    const table = new RouteTable(new SharedArrayBuffer((HEADER_WORDS + nodeCount * NODE_WORDS) * 4));
    const w = table.words;
    w[0] = -1;
    w[1] = -1;
    // Nodes still to place, and for each the word to point at it; the top is the next in preorder.
    const pending: N[] = [];
    const pointers: number[] = [];
    const later = (node: N | null, pointer: number): void => {
      if (node === null) return;
      pending.push(node);
      pointers.push(pointer);
    };
    later(roots[1], 1);
    later(roots[0], 0);
    let p = HEADER_WORDS;
    for (let node = pending.pop(); node !== undefined; node = pending.pop(), p += NODE_WORDS) {
      if (p >= w.length) throw new RangeError(`the tries have more than the ${nodeCount} nodes given`);
      w[pointers.pop()!] = p;
      w[p + N_K] = node.k0; w[p + N_K + 1] = node.k1; w[p + N_K + 2] = node.k2; w[p + N_K + 3] = node.k3;
      w[p + N_M] = node.m0; w[p + N_M + 1] = node.m1; w[p + N_M + 2] = node.m2; w[p + N_M + 3] = node.m3;
      w[p + N_BIT_WORD] = node.bitWord;
      w[p + N_BIT_SHIFT] = node.bitShift;
      w[p + N_PEER] = peer(node);
      w[p + N_C0] = -1;
      w[p + N_C1] = -1;
      later(node.c1, p + N_C1);
      later(node.c0, p + N_C0);
    }
    if (p !== w.length) throw new RangeError(`the tries have ${(p - HEADER_WORDS) / NODE_WORDS} nodes, not the ${nodeCount} given`);
    return table;
  }

  /**
   * Longest-prefix match on the IPv4 address at buf[offset..offset+4]; -1 for none.
   * Bounds: offset + 4 ≤ buf.length is the caller's (lookupPacket checks it); t[0] is the header; p is −1 or a node's start with p + NODE_WORDS ≤ words.length: the only pointers build() writes (it checks p < w.length), and a worker's table is one build() made, posted whole.
   */
  lookupV4(buf: Uint8Array, offset: number): number {
    const t = this.words;
    const a = read32(buf, offset);
    let found = -1;
    let p = t[0]!;
    while (p >= 0) {
      if (((a ^ t[p + N_K]!) & t[p + N_M]!) !== 0) break;
      const peer = t[p + N_PEER]!;
      if (peer >= 0) found = peer;
      p = ((a >>> t[p + N_BIT_SHIFT]!) & 1) === 0 ? t[p + N_C0]! : t[p + N_C1]!;
    }
    return found;
  }

  /**
   * Longest-prefix match on the IPv6 address at buf[offset..offset+16]; -1 for none.
   * Bounds: offset + 16 ≤ buf.length is the caller's (lookupPacket checks it); t[1] is the header; p is −1 or a node's start with p + NODE_WORDS ≤ words.length: the only pointers build() writes (it checks p < w.length), and a worker's table is one build() made, posted whole.
   */
  lookupV6(buf: Uint8Array, offset: number): number {
    const t = this.words;
    const a0 = read32(buf, offset);
    const a1 = read32(buf, offset + 4);
    const a2 = read32(buf, offset + 8);
    const a3 = read32(buf, offset + 12);
    let found = -1;
    let p = t[1]!;
    while (p >= 0) {
      const differs = ((a0 ^ t[p]!) & t[p + 4]!) | ((a1 ^ t[p + 1]!) & t[p + 5]!)
        | ((a2 ^ t[p + 2]!) & t[p + 6]!) | ((a3 ^ t[p + 3]!) & t[p + 7]!);
      if (differs !== 0) break;
      const peer = t[p + N_PEER]!;
      if (peer >= 0) found = peer;
      const bw = t[p + N_BIT_WORD]!;
      const a = bw === 0 ? a0 : bw === 1 ? a1 : bw === 2 ? a2 : a3;
      p = ((a >>> t[p + N_BIT_SHIFT]!) & 1) === 0 ? t[p + N_C0]! : t[p + N_C1]!;
    }
    return found;
  }

  /** The peer for an outbound IP packet at packet[offset, offset+length), by destination; -1 for none. */
  destination(packet: Uint8Array, offset: number, length: number): number {
    return this.lookupPacket(packet, offset, length, 16, 24);
  }

  /** The peer allowed to send an inbound IP packet, by source; -1 for none. */
  source(packet: Uint8Array, offset: number, length: number): number {
    return this.lookupPacket(packet, offset, length, 12, 8);
  }

  // Bounds: offset ≥ 0 and offset + length ≤ packet.length with length ≥ 1, checked first.
  private lookupPacket(packet: Uint8Array, offset: number, length: number, at4: number, at6: number): number {
    if (length < 1 || offset < 0 || offset + length > packet.length) return -1;
    const version = packet[offset]! >>> 4;
    if (version === 4) return length >= 20 ? this.lookupV4(packet, offset + at4) : -1;
    if (version === 6) return length >= 40 ? this.lookupV6(packet, offset + at6) : -1;
    return -1;
  }
}

// Bounds: offset + 4 ≤ buf.length: the lookups read an address inside the packet lookupPacket checked (length ≥ 20 or 40).
function read32(buf: Uint8Array, offset: number): number {
  return (buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!;
}
