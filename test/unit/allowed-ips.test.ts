import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllowedIPs } from '../../src/routing/allowed-ips.js';
import { PrefixError } from '../../src/errors.js';
import {
  type AddressFamily,
  type Prefix,
  formatAddress,
  formatPrefix,
  maskPrefix,
  parseAddress,
  parseInterfaceAddress,
  parsePrefix,
} from '../../src/routing/prefix.js';
import { pick } from '../helpers/offload-packets.js';

/** mulberry32: a small seeded generator so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('prefix: parse and canonical format', () => {
  const cases: [string, string][] = [
    ['1.2.3.4/24', '1.2.3.0/24'],
    ['10.0.0.1', '10.0.0.1/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255/32', '255.255.255.255/32'],
    ['192.168.1.77/0', '0.0.0.0/0'],
    ['10.1.2.3/9', '10.0.0.0/9'],
    ['fd7a:7d0::1/64', 'fd7a:7d0::/64'],
    ['fd7a:7d0::1', 'fd7a:7d0::1/128'],
    ['::', '::/128'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['1::', '1::/128'],
    ['FD7A:07D0:0000:0000:0000:0000:0000:0001', 'fd7a:7d0::1/128'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1/128'], // first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1/128'], // a single zero group stays
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1/128'], // the longest run wins
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0/128'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8/128'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4/128'],
    ['::ffff:102:304/120', '::ffff:1.2.3.0/120'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304/128'],
    ['fe80::1/10', 'fe80::/10'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127'],
  ];
  for (const [input, canonical] of cases) {
    const p = parsePrefix(input);
    assert.equal(formatPrefix(p), canonical, input);
    assert.deepEqual(parsePrefix(canonical), p, canonical);
  }
  assert.deepEqual(parseInterfaceAddress('10.0.0.1/24'), { family: 4, address: Uint8Array.of(10, 0, 0, 1), bits: 24 });
  assert.equal(formatAddress(6, parseAddress('2001:db8::').address), '2001:db8::');
  assert.equal(formatAddress(4, Uint8Array.of(100, 96, 0, 1)), '100.96.0.1');
});

test('prefix: rejections', () => {
  const bad = [
    '', '/', '/24', '1.2.3.4/', '1.2.3.4/33', '::/129', '1.2.3.256', '1.2.3', '1.2.3.4.5', '01.2.3.4', ' 1.2.3.4',
    '1.2.3.4 ', 'x1.2.3.4', '1.2.3.4/24x', '1.2.3.4/-1', '1.2.3.4/+8', '1.2.3.4/2 4', '1.2.3.4/1000', '1..2.3',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1::2::3', ':::', ':1::', '1:::2', '::1:', '12345::', 'g::', 'fe80::1%eth0',
    '1.2.3.4::', '::1.2.3.4:1', '::ffff:1.2.3', '1:2:3:4:5:6:7:1.2.3.4', '[::1]', '::1/64/64', '0x1.2.3.4',
  ];
  for (const text of bad) {
    assert.throws(() => parsePrefix(text), PrefixError, JSON.stringify(text));
  }
  assert.throws(() => parsePrefix('10.0.0.0/33'), /"10\.0\.0\.0\/33": prefix length 33 is out of range 0\.\.32/);
  assert.throws(() => parsePrefix('1.2.3.256'), /octet 256 is greater than 255/);
});

test('prefix: random IPv6 round trips', () => {
  const random = rng(7);
  for (let i = 0; i < 2000; i++) {
    const address = new Uint8Array(16);
    for (let j = 0; j < 16; j += 2) {
      if (random() < 0.5) continue; // zero groups, so runs of them are common
      address[j] = random() < 0.5 ? 0 : (random() * 256) | 0;
      address[j + 1] = (random() * 256) | 0;
    }
    const text = formatAddress(6, address);
    assert.deepEqual(parseAddress(text), { family: 6, address }, text);
    assert.equal(text, text.toLowerCase());
    assert.ok(!/(^|:)0[0-9a-f]/.test(text), `leading zero in ${text}`);
  }
});

/** A brute-force table: linear scan for the longest matching prefix. */
class Oracle {
  readonly entries = new Map<string, { prefix: Prefix; peer: number }>();
  readonly order = new Map<number, string[]>();

  insert(prefix: Prefix, peer: number): void {
    const key = formatPrefix(prefix);
    const old = this.entries.get(key);
    if (old?.peer === peer) return;
    if (old) this.unlist(old.peer, key);
    this.entries.set(key, { prefix, peer });
    this.order.set(peer, [...(this.order.get(peer) ?? []), key]);
  }

  remove(prefix: Prefix, peer?: number): boolean {
    const key = formatPrefix(prefix);
    const old = this.entries.get(key);
    if (!old || (peer !== undefined && old.peer !== peer)) return false;
    this.entries.delete(key);
    this.unlist(old.peer, key);
    return true;
  }

  removePeer(peer: number): void {
    for (const key of this.order.get(peer) ?? []) this.entries.delete(key);
    this.order.delete(peer);
  }

  lookup(family: AddressFamily, address: Uint8Array): number | undefined {
    let best: { prefix: Prefix; peer: number } | undefined;
    for (const entry of this.entries.values()) {
      if (entry.prefix.family !== family) continue;
      if (best && best.prefix.bits >= entry.prefix.bits) continue;
      if (formatPrefix(maskPrefix({ family, address, bits: entry.prefix.bits })) === formatPrefix(entry.prefix)) best = entry;
    }
    return best?.peer;
  }

  private unlist(peer: number, key: string): void {
    const keys = (this.order.get(peer) ?? []).filter((k) => k !== key);
    if (keys.length === 0) this.order.delete(peer);
    else this.order.set(peer, keys);
  }
}

/** Which peer has which prefix, as one comparable string. */
function ownersOf(oracle: Oracle): string {
  return [...oracle.entries].map(([key, { peer }]) => `${key}=${peer}`).sort().join(',');
}

test('allowed-ips: matches a brute-force oracle under random inserts, removals, moves and replacements', () => {
  const random = rng(12345);
  const int = (n: number) => Math.floor(random() * n);
  // A few base addresses per family; prefixes and lookups cluster around them so they nest and overlap.
  const bases = { 4: [] as Uint8Array[], 6: [] as Uint8Array[] };
  for (let i = 0; i < 3; i++) {
    bases[4].push(Uint8Array.from({ length: 4 }, () => int(256)));
    bases[6].push(Uint8Array.from({ length: 16 }, () => int(256)));
  }
  const nearAddress = (family: AddressFamily): Uint8Array => {
    const pool = bases[family];
    const address = new Uint8Array(pick(random, pool));
    if (random() < 0.1) return address.map(() => int(256));
    const flips = int(4);
    for (let i = 0; i < flips; i++) {
      // Mostly low-order bits, so the results stay near the base.
      const bit = address.length * 8 - 1 - Math.min(int(address.length * 8), int(address.length * 8));
      address[bit >>> 3]! ^= 0x80 >>> (bit & 7); // bit < address.length × 8
    }
    return address;
  };
  const randomPrefix = (): Prefix => {
    const family: AddressFamily = random() < 0.5 ? 4 : 6;
    const max = family === 4 ? 32 : 128;
    const roll = random();
    const bits = roll < 0.05 ? 0 : roll < 0.15 ? max : int(max + 1);
    return maskPrefix({ family, address: nearAddress(family), bits });
  };

  const table = new AllowedIPs<number>();
  const oracle = new Oracle();
  const inserted: Prefix[] = [];
  const packet = new Uint8Array(64);
  let version = table.version;
  let lastOwners = ownersOf(oracle);

  for (let step = 0; step < 3000; step++) {
    const op = random();
    if (op < 0.6 || inserted.length === 0) {
      const prefix = random() < 0.2 && inserted.length > 0 ? pick(random, inserted) : randomPrefix();
      const peer = 1 + int(6);
      table.insert(prefix, peer);
      oracle.insert(prefix, peer);
      inserted.push(prefix);
    } else if (op < 0.9) {
      const prefix = random() < 0.8 ? pick(random, inserted) : randomPrefix();
      const peer = random() < 0.5 ? undefined : 1 + int(6);
      assert.equal(table.remove(prefix, peer), oracle.remove(prefix, peer), `remove ${formatPrefix(prefix)} ${peer}`);
    } else if (op < 0.93) {
      const peer = 1 + int(6);
      table.removePeer(peer);
      oracle.removePeer(peer);
    } else if (op < 0.97) {
      // As removePeer and then insert of each, prefixes it has, others' and new ones mixed, some twice.
      const peer = 1 + int(6);
      const own = (oracle.order.get(peer) ?? []).map(parsePrefix);
      const prefixes = Array.from({ length: int(5) }, () => {
        const roll = random();
        return roll < 0.5 && own.length > 0 ? own[int(own.length)]! : roll < 0.8 ? inserted[int(inserted.length)]! : randomPrefix();
      });
      if (random() < 0.3) prefixes.splice(0, prefixes.length, ...own);
      table.replacePeer(peer, prefixes);
      oracle.removePeer(peer);
      for (const prefix of prefixes) oracle.insert(prefix, peer);
      inserted.push(...prefixes);
    }
    const owners = ownersOf(oracle);
    // The version moves exactly when a prefix changed hands: a compiled table is stale then, and only then.
    assert.equal(table.version !== version, owners !== lastOwners, `version at step ${step}`);
    version = table.version;
    lastOwners = owners;
    assert.equal(table.size, oracle.entries.size);
    assert.ok(table.nodeCount <= 2 * table.size, `${table.nodeCount} nodes for ${table.size} prefixes`);

    // The compiled table the data path uses must answer as the trie does (peer numbers, -1 for none).
    const compiled = step % 20 === 0 ? table.compile((peer) => peer * 10) : undefined;
    for (let i = 0; i < 10; i++) {
      const family: AddressFamily = random() < 0.5 ? 4 : 6;
      const address = nearAddress(family);
      const expected = oracle.lookup(family, address);
      const offset = int(64 - address.length + 1);
      packet.fill(0xee);
      packet.set(address, offset);
      const got = family === 4 ? table.lookupV4(packet, offset) : table.lookupV6(packet, offset);
      assert.equal(got, expected, `lookup ${formatAddress(family, address)} at step ${step}`);
      if (compiled !== undefined) {
        const flat = family === 4 ? compiled.lookupV4(packet, offset) : compiled.lookupV6(packet, offset);
        assert.equal(flat, expected === undefined ? -1 : expected * 10, `compiled lookup ${formatAddress(family, address)} at step ${step}`);
      }
    }
    if (step % 100 === 0) {
      for (let peer = 1; peer <= 6; peer++) {
        assert.deepEqual(table.prefixesOf(peer).map(formatPrefix), oracle.order.get(peer) ?? [], `prefixesOf(${peer})`);
      }
    }
  }

  for (const { prefix } of [...oracle.entries.values()]) assert.ok(table.remove(prefix));
  assert.equal(table.size, 0);
  assert.equal(table.nodeCount, 0);
  assert.equal(table.lookupV4(Uint8Array.of(1, 2, 3, 4), 0), undefined);
});

test('allowed-ips: inserting then removing everything leaves the trie empty', () => {
  const table = new AllowedIPs<string>();
  const prefixes = ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.3/32', '10.128.0.0/9', '::/0', 'fd7a:7d0::/48', 'fd7a:7d0::1/128'];
  for (let round = 0; round < 50; round++) {
    prefixes.forEach((p, i) => table.insert(parsePrefix(p), `peer${i % 3}`));
    assert.equal(table.size, prefixes.length);
    if (round % 2 === 0) for (const p of [...prefixes].reverse()) assert.ok(table.remove(parsePrefix(p)));
    else for (let i = 0; i < 3; i++) table.removePeer(`peer${i}`);
    assert.equal(table.size, 0);
    assert.equal(table.nodeCount, 0);
  }
});

test('allowed-ips: default routes, host routes and family independence', () => {
  const table = new AllowedIPs<string>();
  table.insert(parsePrefix('0.0.0.0/0'), 'v4-default');
  const v6 = parseAddress('fd7a:7d0::5').address;
  assert.equal(table.lookupV6(v6, 0), undefined, '0.0.0.0/0 must not match IPv6');
  assert.equal(table.lookupV4(Uint8Array.of(8, 8, 8, 8), 0), 'v4-default');

  table.insert(parsePrefix('::/0'), 'v6-default');
  table.insert(parsePrefix('fd7a:7d0::5'), 'host6');
  table.insert(parsePrefix('100.96.0.7/32'), 'host4');
  assert.equal(table.lookupV6(v6, 0), 'host6');
  assert.equal(table.lookupV6(parseAddress('fd7a:7d0::6').address, 0), 'v6-default');
  assert.equal(table.lookupV4(Uint8Array.of(100, 96, 0, 7), 0), 'host4');
  assert.equal(table.lookupV4(Uint8Array.of(100, 96, 0, 6), 0), 'v4-default');

  // A prefix belongs to one peer: inserting it for another moves it.
  table.insert(parsePrefix('100.96.0.7/32'), 'other');
  assert.equal(table.lookupV4(Uint8Array.of(100, 96, 0, 7), 0), 'other');
  assert.deepEqual(table.prefixesOf('host4'), []);
  assert.deepEqual(table.prefixesOf('other').map(formatPrefix), ['100.96.0.7/32']);
  assert.equal(table.remove(parsePrefix('100.96.0.7/32'), 'host4'), false, 'not owned by host4');
  assert.equal(table.remove(parsePrefix('100.96.0.7/32'), 'other'), true);
  assert.equal(table.remove(parsePrefix('100.96.0.7/32')), false);
  assert.equal(table.remove(parsePrefix('100.96.0.0/24')), false, 'never inserted');

  table.removePeer('v4-default');
  assert.equal(table.lookupV4(Uint8Array.of(8, 8, 8, 8), 0), undefined);
  assert.equal(table.lookupV6(v6, 0), 'host6');
  assert.equal(table.lookupV4(Uint8Array.of(1, 2, 3), 0), undefined, 'short buffer');
  assert.equal(table.lookupV6(v6, 1), undefined, 'short buffer');
});

test('allowed-ips: packet lookups read the version nibble and the right address', () => {
  const table = new AllowedIPs<string>();
  table.insert(parsePrefix('100.96.1.0/24'), 'dst4');
  table.insert(parsePrefix('100.96.2.0/24'), 'src4');
  table.insert(parsePrefix('fd7a:7d0:1::/64'), 'dst6');
  table.insert(parsePrefix('fd7a:7d0:2::/64'), 'src6');

  const offset = 10;
  const buf = new Uint8Array(offset + 60);
  buf[offset] = 0x45;
  buf.set([100, 96, 2, 9], offset + 12);
  buf.set([100, 96, 1, 9], offset + 16);
  assert.equal(table.lookupPacketDestination(buf, offset, 20), 'dst4');
  assert.equal(table.lookupPacketSource(buf, offset, 20), 'src4');
  const ids: Record<string, number> = { dst4: 0, src4: 1, dst6: 2, src6: 3 };
  const compiled = table.compile((peer) => ids[peer]!);
  assert.equal(compiled.destination(buf, offset, 20), 0);
  assert.equal(compiled.source(buf, offset, 20), 1);
  assert.equal(compiled.destination(buf, offset, 19), -1, 'compiled: too short for IPv4');
  assert.equal(compiled.destination(buf, buf.length - 10, 20), -1, 'compiled: past the buffer');
  assert.equal(table.lookupPacketDestination(buf, offset, 19), undefined, 'too short for IPv4');
  assert.equal(table.lookupPacketDestination(buf, offset, 0), undefined);
  assert.equal(table.lookupPacketDestination(buf, buf.length - 10, 20), undefined, 'past the buffer');

  buf.fill(0);
  buf[offset] = 0x60;
  buf.set(parseAddress('fd7a:7d0:2::9').address, offset + 8);
  buf.set(parseAddress('fd7a:7d0:1::9').address, offset + 24);
  assert.equal(table.lookupPacketDestination(buf, offset, 40), 'dst6');
  assert.equal(table.lookupPacketSource(buf, offset, 40), 'src6');
  assert.equal(table.lookupPacketSource(buf, offset, 39), undefined, 'too short for IPv6');
  assert.equal(compiled.destination(buf, offset, 40), 2);
  assert.equal(compiled.source(buf, offset, 40), 3);
  assert.equal(compiled.source(buf, offset, 39), -1, 'compiled: too short for IPv6');

  buf[offset] = 0x50;
  assert.equal(table.lookupPacketDestination(buf, offset, 40), undefined, 'not IP');
});
