// The allowed-IPs table (cryptokey routing): longest-prefix match from an address to the
// peer that owns it. One path-compressed binary trie per family, as in Linux's allowedips.c:
// every node holds a prefix; a node without a peer exists only to fork two subtrees.
// Lookups read the address straight from the packet buffer as 32-bit words and allocate nothing.

import { type AddressFamily, type Prefix, addressLength, maxBits } from './prefix.js';
import { RouteTable } from './route-table.js';

/** A key: the address as four int32 words, big-endian, IPv4 in the first. */
type Key = readonly [number, number, number, number];

class TrieNode<T> {
  // Key words (int32, big-endian order of the address) with the host bits cleared, and
  // per-word masks of the prefix bits: a key matches when ((key ^ k) & m) is 0 in every word.
  readonly k0: number;
  readonly k1: number;
  readonly k2: number;
  readonly k3: number;
  readonly m0: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
  /** Which word and shift give bit number `bits` of a key, the bit that picks the child. */
  readonly bitWord: number;
  readonly bitShift: number;
  c0: TrieNode<T> | null = null;
  c1: TrieNode<T> | null = null;
  parent: TrieNode<T> | null = null;
  peer: T | undefined = undefined;

  constructor(
    readonly family: AddressFamily,
    words: Key,
    readonly bits: number,
  ) {
    this.m0 = wordMask(bits, 0);
    this.m1 = wordMask(bits, 1);
    this.m2 = wordMask(bits, 2);
    this.m3 = wordMask(bits, 3);
    this.k0 = words[0] & this.m0;
    this.k1 = words[1] & this.m1;
    this.k2 = words[2] & this.m2;
    this.k3 = words[3] & this.m3;
    this.bitWord = bits >>> 5;
    this.bitShift = 31 - (bits & 31);
  }

  word(i: number): number {
    return i === 0 ? this.k0 : i === 1 ? this.k1 : i === 2 ? this.k2 : this.k3;
  }

  matches(words: Key): boolean {
    return (
      (((words[0] ^ this.k0) & this.m0) |
        ((words[1] ^ this.k1) & this.m1) |
        ((words[2] ^ this.k2) & this.m2) |
        ((words[3] ^ this.k3) & this.m3)) ===
      0
    );
  }

  /**
   * The child on the side of `words`' bit number `bits`.
   * Bounds: bitWord = bits >>> 5 ≤ 3 as callers only descend from a node shorter than the
   * prefix sought (node.bits < prefix.bits ≤ 128, checked in keyWords).
   */
  childFor(words: Key): TrieNode<T> | null {
    return ((words[this.bitWord]! >>> this.bitShift) & 1) === 0 ? this.c0 : this.c1;
  }

  prefix(): Prefix {
    const address = new Uint8Array(addressLength(this.family));
    for (let i = 0; i < address.length; i += 4) {
      const w = this.word(i >>> 2);
      address[i] = w >>> 24;
      address[i + 1] = w >>> 16;
      address[i + 2] = w >>> 8;
      address[i + 3] = w;
    }
    return { family: this.family, address, bits: this.bits };
  }
}

/** The mask of a prefix of `bits` bits within 32-bit word number `index`, as an int32. */
function wordMask(bits: number, index: number): number {
  const inWord = Math.min(Math.max(bits - 32 * index, 0), 32);
  return inWord === 0 ? 0 : (-1 << (32 - inWord)) | 0;
}

// Bounds: index < 128 (so index >>> 5 ≤ 3): callers pass the bit after a prefix shorter than another, ≤ 128 (keyWords).
function bitAt(words: Key, index: number): 0 | 1 {
  return ((words[index >>> 5]! >>> (31 - (index & 31))) & 1) as 0 | 1;
}

// Bounds: offset + 4 ≤ buf.length: lookupV4 and lookupV6 check it, keyWords reads inside an address whose length it checks.
function read32(buf: Uint8Array, offset: number): number {
  return (buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!;
}

/**
 * Maps IPv4 and IPv6 prefixes to peers with longest-prefix lookup. A prefix belongs to
 * exactly one peer: inserting it for another peer moves it. `T` excludes undefined,
 * which marks a node without a peer.
 */
export class AllowedIPs<T extends {}> {
  private root4: TrieNode<T> | null = null;
  private root6: TrieNode<T> | null = null;
  /** Each peer's nodes, in the order the prefixes were given to that peer. */
  private readonly byPeer = new Map<T, Set<TrieNode<T>>>();
  private prefixCount = 0;
  private nodes = 0;
  private changes = 0;

  /** Number of prefixes in the table. */
  get size(): number {
    return this.prefixCount;
  }

  /** Number of trie nodes, forks included (at most 2 × size − 1 per family); 0 when empty. */
  get nodeCount(): number {
    return this.nodes;
  }

  /** Changes with every insert and removal that changed the table (so a compiled table knows it is stale). */
  get version(): number {
    return this.changes;
  }

  insert(prefix: Prefix, peer: T): void {
    this.insertNode(prefix, peer);
  }

  /** Inserts and returns the prefix's node. */
  private insertNode(prefix: Prefix, peer: T): TrieNode<T> {
    const words = keyWords(prefix);
    const { family, bits } = prefix;
    let parent: TrieNode<T> | null = null;
    let node = family === 4 ? this.root4 : this.root6;
    while (node !== null && node.bits <= bits && node.matches(words)) {
      if (node.bits === bits) {
        this.assign(node, peer);
        return node;
      }
      parent = node;
      node = node.childFor(words);
    }
    const leaf = new TrieNode<T>(family, words, bits);
    this.nodes++;
    let top = leaf;
    if (node !== null) {
      // `node` sits where the new prefix belongs but is not inside it: either the new
      // prefix contains `node`, or the two part at some bit and need a fork node there.
      const nodeWords: Key = [node.k0, node.k1, node.k2, node.k3];
      const common = commonBits(nodeWords, words, Math.min(node.bits, bits));
      if (common === bits) {
        this.setChild(leaf, bitAt(nodeWords, bits), node);
      } else {
        top = new TrieNode<T>(family, words, common);
        this.nodes++;
        this.setChild(top, bitAt(nodeWords, common), node);
        this.setChild(top, bitAt(words, common), leaf);
      }
    }
    if (parent === null) this.setRoot(family, top);
    else this.setChild(parent, bitAt(words, parent.bits), top);
    this.assign(leaf, peer);
    return leaf;
  }

  /** Removes a prefix (only if owned by `peer` when given). Returns whether it was removed. */
  remove(prefix: Prefix, peer?: T): boolean {
    const node = this.find(prefix);
    if (node === null || node.peer === undefined) return false;
    if (peer !== undefined && node.peer !== peer) return false;
    this.changes++;
    this.unlink(node, node.peer);
    this.release(node);
    return true;
  }

  removePeer(peer: T): void {
    const nodes = this.byPeer.get(peer);
    if (nodes === undefined) return;
    this.changes++;
    this.byPeer.delete(peer);
    // Pruning only removes nodes without a peer, so the rest of this set stays valid.
    for (const node of nodes) this.release(node);
  }

  /**
   * Gives `peer` exactly `prefixes`, in that order, as removePeer and then insert of each
   * would; but prefixes it keeps stay in the trie, so setting what a peer has already
   * (`wg syncconf` sends every peer's whole list) changes nothing and needs no new compile.
   */
  replacePeer(peer: T, prefixes: readonly Prefix[]): void {
    const old = this.byPeer.get(peer);
    // In the order given, each prefix once: the order prefixesOf reports, as after a fresh insert of each.
    const kept = new Set<TrieNode<T>>();
    for (const prefix of prefixes) {
      const node = this.find(prefix);
      kept.add(node !== null && node.peer === peer ? node : this.insertNode(prefix, peer));
    }
    if (old !== undefined) {
      for (const node of old) {
        if (kept.has(node)) continue;
        this.changes++;
        this.release(node);
      }
    }
    if (kept.size === 0) this.byPeer.delete(peer);
    else this.byPeer.set(peer, kept);
  }

  /** The peer's prefixes in the order they were given to it (a prefix moved back goes last). */
  prefixesOf(peer: T): Prefix[] {
    const nodes = this.byPeer.get(peer);
    const prefixes: Prefix[] = [];
    if (nodes !== undefined) for (const node of nodes) prefixes.push(node.prefix());
    return prefixes;
  }

  /** The table flattened for the data path, with each peer as `idOf(peer)` (a number ≥ 0). */
  compile(idOf: (peer: T) => number): RouteTable {
    return RouteTable.build<TrieNode<T>>([this.root4, this.root6], this.nodes, (node) => (node.peer === undefined ? -1 : idOf(node.peer)));
  }

  /** Longest-prefix match on the IPv4 address at buf[offset..offset+4]. */
  lookupV4(buf: Uint8Array, offset: number): T | undefined {
    if (offset < 0 || offset + 4 > buf.length) return undefined;
    const w = read32(buf, offset);
    let found: T | undefined;
    let node = this.root4;
    while (node !== null) {
      if (((w ^ node.k0) & node.m0) !== 0) break;
      if (node.peer !== undefined) found = node.peer;
      node = ((w >>> node.bitShift) & 1) === 0 ? node.c0 : node.c1;
    }
    return found;
  }

  /** Longest-prefix match on the IPv6 address at buf[offset..offset+16]. */
  lookupV6(buf: Uint8Array, offset: number): T | undefined {
    if (offset < 0 || offset + 16 > buf.length) return undefined;
    const w0 = read32(buf, offset);
    const w1 = read32(buf, offset + 4);
    const w2 = read32(buf, offset + 8);
    const w3 = read32(buf, offset + 12);
    let found: T | undefined;
    let node = this.root6;
    while (node !== null) {
      const differs =
        ((w0 ^ node.k0) & node.m0) | ((w1 ^ node.k1) & node.m1) | ((w2 ^ node.k2) & node.m2) | ((w3 ^ node.k3) & node.m3);
      if (differs !== 0) break;
      if (node.peer !== undefined) found = node.peer;
      const w = node.bitWord === 0 ? w0 : node.bitWord === 1 ? w1 : node.bitWord === 2 ? w2 : w3;
      node = ((w >>> node.bitShift) & 1) === 0 ? node.c0 : node.c1;
    }
    return found;
  }

  /** The peer for an outbound IP packet at packet[offset..offset+length], by destination. */
  lookupPacketDestination(packet: Uint8Array, offset: number, length: number): T | undefined {
    return this.lookupPacket(packet, offset, length, 16, 24);
  }

  /** The peer allowed to send an inbound IP packet, by source. */
  lookupPacketSource(packet: Uint8Array, offset: number, length: number): T | undefined {
    return this.lookupPacket(packet, offset, length, 12, 8);
  }

  // Bounds: offset ≥ 0 and offset + length ≤ packet.length with length ≥ 1, checked first.
  private lookupPacket(packet: Uint8Array, offset: number, length: number, at4: number, at6: number): T | undefined {
    if (length < 1 || offset < 0 || offset + length > packet.length) return undefined;
    const version = packet[offset]! >>> 4;
    if (version === 4) return length >= 20 ? this.lookupV4(packet, offset + at4) : undefined;
    if (version === 6) return length >= 40 ? this.lookupV6(packet, offset + at6) : undefined;
    return undefined;
  }

  private find(prefix: Prefix): TrieNode<T> | null {
    const words = keyWords(prefix);
    let node = prefix.family === 4 ? this.root4 : this.root6;
    while (node !== null && node.bits <= prefix.bits && node.matches(words)) {
      if (node.bits === prefix.bits) return node;
      node = node.childFor(words);
    }
    return null;
  }

  private assign(node: TrieNode<T>, peer: T): void {
    if (node.peer === peer) return;
    this.changes++;
    if (node.peer === undefined) {
      this.prefixCount++;
    } else {
      this.unlink(node, node.peer);
    }
    node.peer = peer;
    let nodes = this.byPeer.get(peer);
    if (nodes === undefined) {
      nodes = new Set();
      this.byPeer.set(peer, nodes);
    }
    nodes.add(node);
  }

  private unlink(node: TrieNode<T>, peer: T): void {
    const nodes = this.byPeer.get(peer);
    nodes?.delete(node);
    if (nodes?.size === 0) this.byPeer.delete(peer);
  }

  /** Clears a node's peer (already unlinked from byPeer) and prunes nodes that became useless. */
  private release(node: TrieNode<T>): void {
    node.peer = undefined;
    this.prefixCount--;
    let current: TrieNode<T> | null = node;
    while (current !== null && current.peer === undefined) {
      if (current.c0 !== null && current.c1 !== null) return;
      const only: TrieNode<T> | null = current.c0 ?? current.c1;
      const parent: TrieNode<T> | null = current.parent;
      if (parent === null) this.setRoot(current.family, only);
      else if (parent.c0 === current) this.setChild(parent, 0, only);
      else this.setChild(parent, 1, only);
      current.parent = current.c0 = current.c1 = null;
      this.nodes--;
      // Splicing in the only child leaves the parent's shape intact; a removed leaf may
      // leave a peerless parent with one child, which goes next.
      if (only !== null) return;
      current = parent;
    }
  }

  private setRoot(family: AddressFamily, node: TrieNode<T> | null): void {
    if (family === 4) this.root4 = node;
    else this.root6 = node;
    if (node !== null) node.parent = null;
  }

  private setChild(parent: TrieNode<T>, side: 0 | 1, child: TrieNode<T> | null): void {
    if (side === 0) parent.c0 = child;
    else parent.c1 = child;
    if (child !== null) child.parent = parent;
  }
}

/** The prefix's address as four int32 words (IPv4 in the first), host bits cleared. */
function keyWords(prefix: Prefix): Key {
  if (prefix.address.length !== addressLength(prefix.family) || !Number.isInteger(prefix.bits) || prefix.bits < 0 || prefix.bits > maxBits(prefix.family)) {
    throw new RangeError(`not an IPv${prefix.family} prefix: ${prefix.address.length} bytes /${prefix.bits}`);
  }
  const { address, bits } = prefix;
  const words: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < address.length / 4; i++) words[i] = read32(address, 4 * i) & wordMask(bits, i);
  return words;
}

/** Number of leading bits two keys share, at most `limit`. Bounds: i < 4, a Key's length. */
function commonBits(a: Key, b: Key, limit: number): number {
  for (let i = 0; i < 4; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return Math.min(32 * i + Math.clz32(x), limit);
  }
  return limit;
}
