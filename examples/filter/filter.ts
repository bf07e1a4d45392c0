// An allow-list packet filter, as a tundra user stage (see examples/README.md).
//
//   --stage ./dist/examples/filter/filter.js=RULES.json
//
// RULES.json: { "outbound": [rule, ...], "inbound": [rule, ...] }. A direction left out
// lets everything through (and the stage does not run on it); a direction given is an
// allow-list: a packet passes if any rule matches, else it is dropped (so [] drops all).
// rule = { "src"?: ["prefix", ...], "dst"?: [...], "protocol"?: "tcp"|"udp"|"icmp"|"icmpv6"|0..255,
//          "srcPorts"?: "22,8000-8100", "dstPorts"?: ... }; a key left out matches anything.
//
// Headers: IPv4 with options; IPv6 with the extension headers Hop-by-Hop (0), Routing (43),
// Destination Options (60), Fragment (44) and AH (51) walked to the upper-layer protocol
// (at most 8 of them); any other next header (ESP 50, No Next Header 59, ...) is the protocol.
// Fragments: a first fragment carries the ports and is matched as any packet; a non-first
// fragment has no ports, so it matches only rules without port keys (a stateless filter
// cannot know its flow); one that a port rule would otherwise have let through is dropped
// as `fragment`, so the counter shows it.
//
// Drop reasons: no_rule_matched, malformed (truncated or inconsistent IP/extension
// headers, or a first fragment too short to hold its ports), fragment. Counter: passed.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parsePrefix, type Prefix } from '../../src/routing/prefix.js';
import { PrefixError } from '../../src/errors.js';
import type { Stage, StageBatch, StageInit } from '../../src/stages/user-stage.js';

const PROTOCOLS: Readonly<Record<string, number>> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };
/** Protocols whose first 4 bytes are the source and destination ports: TCP, UDP, DCCP, SCTP, UDP-Lite. */
const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);
const RULE_KEYS = new Set(['src', 'dst', 'protocol', 'srcPorts', 'dstPorts']);
const MAX_EXTENSION_HEADERS = 8;

/** A rule compiled to numbers. A null list matches anything; an empty one (of one family) nothing. */
interface Rule {
  readonly protocol: number; // -1: any
  readonly needsPorts: boolean;
  readonly src4: Uint32Array | null; // [net, mask] pairs
  readonly src6: Uint32Array | null; // [net0..3, mask0..3] per prefix
  readonly dst4: Uint32Array | null;
  readonly dst6: Uint32Array | null;
  readonly srcPorts: Uint16Array | null; // [lo, hi] pairs
  readonly dstPorts: Uint16Array | null;
}

export class FilterConfigError extends Error {}

export function createStage(init: StageInit): Stage {
  if (init.config === undefined || init.config === '') {
    throw new FilterConfigError('the filter needs the path of its JSON rules file: --stage .../filter.js=RULES.json');
  }
  const file = resolve(init.config);
  const rules = loadRules(file);
  const passed = init.counters(['passed']);
  const stage: { -readonly [K in keyof Stage]: Stage[K] } = {
    name: 'filter',
    dropReasons: ['no_rule_matched', 'malformed', 'fragment'],
  };
  if (rules.outbound) stage.outbound = makeFilter(rules.outbound, passed);
  if (rules.inbound) stage.inbound = makeFilter(rules.inbound, passed);
  return stage;
}

// ---- the data path ----------------------------------------------------------------------------

// Fields of the packet being matched, parsed once into these slots (no object per packet).
const F_FAMILY = 0;
const F_PROTO = 1;
const F_NON_FIRST = 2; // 1: a non-first fragment
const F_HAS_PORTS = 3;
const F_SPORT = 4;
const F_DPORT = 5;
const F_SRC = 6; // 4 words (v4: 1)
const F_DST = 10; // 4 words (v4: 1)
const FIELDS = 14;

function makeFilter(rules: readonly Rule[], passed: Float64Array): (batch: StageBatch) => void {
  const f = new Uint32Array(FIELDS);
  return (batch: StageBatch): void => {
    const { data, offsets, lengths, count } = batch;
    let dropped = 0;
    for (let i = 0; i < count; i++) {
      if (!parse(data, offsets[i]!, lengths[i]!, f)) {
        batch.drop(i, 'malformed');
        dropped++;
        continue;
      }
      const verdict = match(rules, f);
      if (verdict === PASS) continue;
      batch.drop(i, verdict === FRAGMENT ? 'fragment' : 'no_rule_matched');
      dropped++;
    }
    passed[0]! += count - dropped;
  };
}

const u16 = (d: Uint8Array, at: number): number => (d[at]! << 8) | d[at + 1]!;
const u32 = (d: Uint8Array, at: number): number => ((d[at]! << 24) | (d[at + 1]! << 16) | (d[at + 2]! << 8) | d[at + 3]!) >>> 0;

/** Fills `f` from the packet at data[o, o+len); false if it is malformed. */
function parse(d: Uint8Array, o: number, len: number, f: Uint32Array): boolean {
  if (len < 1) return false;
  const version = d[o]! >> 4;
  let proto: number;
  let l4: number;
  let end: number;
  let nonFirst = 0;
  if (version === 4) {
    if (len < 20) return false;
    const ihl = (d[o]! & 15) * 4;
    const total = u16(d, o + 2);
    if (ihl < 20 || total < ihl || total > len) return false;
    proto = d[o + 9]!;
    nonFirst = (u16(d, o + 6) & 0x1fff) !== 0 ? 1 : 0;
    f[F_FAMILY] = 4;
    f[F_SRC] = u32(d, o + 12);
    f[F_DST] = u32(d, o + 16);
    l4 = o + ihl;
    end = o + total;
  } else if (version === 6) {
    if (len < 40) return false;
    end = o + 40 + u16(d, o + 4);
    if (end > o + len) return false;
    proto = d[o + 6]!;
    f[F_FAMILY] = 6;
    for (let w = 0; w < 4; w++) {
      f[F_SRC + w] = u32(d, o + 8 + 4 * w);
      f[F_DST + w] = u32(d, o + 24 + 4 * w);
    }
    l4 = o + 40;
    for (let n = 0; ; n++) {
      if (proto !== 0 && proto !== 43 && proto !== 60 && proto !== 44 && proto !== 51) break;
      if (n === MAX_EXTENSION_HEADERS || l4 + 8 > end) return false;
      const size = proto === 44 ? 8 : proto === 51 ? (d[l4 + 1]! + 2) * 4 : (d[l4 + 1]! + 1) * 8;
      if (l4 + size > end) return false;
      if (proto === 44 && u16(d, l4 + 2) >>> 3 !== 0) nonFirst = 1;
      proto = d[l4]!;
      l4 += size;
      if (nonFirst) break; // what follows is the middle of the payload, not a header
    }
  } else {
    return false;
  }
  f[F_PROTO] = proto;
  f[F_NON_FIRST] = nonFirst;
  f[F_HAS_PORTS] = 0;
  if (!nonFirst && PORT_PROTOCOLS.has(proto)) {
    if (l4 + 4 > end) return false;
    f[F_HAS_PORTS] = 1;
    f[F_SPORT] = u16(d, l4);
    f[F_DPORT] = u16(d, l4 + 2);
  }
  return true;
}

const PASS = 0;
const NO_MATCH = 1;
const FRAGMENT = 2;

function match(rules: readonly Rule[], f: Uint32Array): number {
  const v4 = f[F_FAMILY] === 4;
  let verdict = NO_MATCH;
  for (let r = 0; r < rules.length; r++) {
    const rule = rules[r]!;
    if (rule.protocol >= 0 && rule.protocol !== f[F_PROTO]) continue;
    if (v4 ? !in4(rule.src4, f[F_SRC]!) || !in4(rule.dst4, f[F_DST]!) : !in6(rule.src6, f, F_SRC) || !in6(rule.dst6, f, F_DST)) continue;
    if (rule.needsPorts) {
      if (f[F_NON_FIRST]) {
        verdict = FRAGMENT;
        continue;
      }
      if (!f[F_HAS_PORTS] || !inPorts(rule.srcPorts, f[F_SPORT]!) || !inPorts(rule.dstPorts, f[F_DPORT]!)) continue;
    }
    return PASS;
  }
  return verdict;
}

function in4(list: Uint32Array | null, a: number): boolean {
  if (list === null) return true;
  for (let k = 0; k < list.length; k += 2) if (((a & list[k + 1]!) >>> 0) === list[k]) return true;
  return false;
}

function in6(list: Uint32Array | null, f: Uint32Array, at: number): boolean {
  if (list === null) return true;
  for (let k = 0; k < list.length; k += 8) {
    if (
      ((f[at]! & list[k + 4]!) >>> 0) === list[k] &&
      ((f[at + 1]! & list[k + 5]!) >>> 0) === list[k + 1] &&
      ((f[at + 2]! & list[k + 6]!) >>> 0) === list[k + 2] &&
      ((f[at + 3]! & list[k + 7]!) >>> 0) === list[k + 3]
    ) {
      return true;
    }
  }
  return false;
}

function inPorts(list: Uint16Array | null, port: number): boolean {
  if (list === null) return true;
  for (let k = 0; k < list.length; k += 2) if (port >= list[k]! && port <= list[k + 1]!) return true;
  return false;
}

// ---- the rules file ---------------------------------------------------------------------------

interface Rules {
  outbound: Rule[] | undefined;
  inbound: Rule[] | undefined;
}

/** Reads and compiles a rules file; errors name the file, the JSON path and what is wrong. */
export function loadRules(file: string): Rules {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FilterConfigError(`filter rules ${file}: cannot read it: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FilterConfigError(`filter rules ${file}: not valid JSON: ${(err as Error).message}`);
  }
  function fail(path: string, what: string): never {
    throw new FilterConfigError(`filter rules ${file}: ${path}: ${what}`);
  }
  if (!isObject(json)) fail('(top level)', 'expected an object { "outbound": [rules], "inbound": [rules] }');
  const top = json as Record<string, unknown>;
  for (const key of Object.keys(top)) {
    if (key !== 'outbound' && key !== 'inbound') fail(key, 'unknown key; the top level has only "outbound" and "inbound"');
  }
  const direction = (name: 'outbound' | 'inbound'): Rule[] | undefined => {
    const list = top[name];
    if (list === undefined) return undefined;
    if (!Array.isArray(list)) return fail(name, 'expected an array of rules (leave the key out to allow everything)');
    return list.map((rule, r) => compileRule(rule, `${name}[${r}]`, fail));
  };
  return { outbound: direction('outbound'), inbound: direction('inbound') };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function compileRule(raw: unknown, path: string, fail: (path: string, what: string) => never): Rule {
  if (!isObject(raw)) fail(path, 'expected a rule object { "src"?, "dst"?, "protocol"?, "srcPorts"?, "dstPorts"? }');
  const rule = raw as Record<string, unknown>;
  for (const key of Object.keys(rule)) {
    if (!RULE_KEYS.has(key)) fail(`${path}.${key}`, `unknown key; a rule has ${[...RULE_KEYS].join(', ')}`);
  }

  let protocol = -1;
  if (rule.protocol !== undefined) {
    const p = rule.protocol;
    if (typeof p === 'string' && p in PROTOCOLS) protocol = PROTOCOLS[p]!;
    else if (typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 255) protocol = p;
    else fail(`${path}.protocol`, `${JSON.stringify(p)} is not "tcp", "udp", "icmp", "icmpv6" or a protocol number 0..255`);
  }

  const src = prefixes(rule.src, `${path}.src`, fail);
  const dst = prefixes(rule.dst, `${path}.dst`, fail);
  const families = (l: Prefix[] | null) => (l === null ? 'any' : l.every((p) => p.family === 4) ? 4 : l.every((p) => p.family === 6) ? 6 : 'both');
  const fs = families(src);
  const fd = families(dst);
  if ((fs === 4 && fd === 6) || (fs === 6 && fd === 4)) {
    fail(path, `src has only IPv${fs} prefixes and dst only IPv${fd}: the rule can never match`);
  }

  const srcPorts = ports(rule.srcPorts, `${path}.srcPorts`, fail);
  const dstPorts = ports(rule.dstPorts, `${path}.dstPorts`, fail);
  const needsPorts = srcPorts !== null || dstPorts !== null;
  if (needsPorts && !PORT_PROTOCOLS.has(protocol)) {
    fail(`${path}.${srcPorts !== null ? 'srcPorts' : 'dstPorts'}`, 'ports need "protocol": "tcp" or "udp" (or 33, 132, 136) in the same rule');
  }
  return {
    protocol,
    needsPorts,
    src4: compile4(src),
    src6: compile6(src),
    dst4: compile4(dst),
    dst6: compile6(dst),
    srcPorts,
    dstPorts,
  };
}

function prefixes(raw: unknown, path: string, fail: (path: string, what: string) => never): Prefix[] | null {
  if (raw === undefined) return null;
  if (!Array.isArray(raw)) return fail(path, 'expected an array of prefixes such as ["10.0.0.0/8", "fd00::/8"]');
  if (raw.length === 0) fail(path, 'an empty list matches nothing; leave the key out to match any address');
  return raw.map((text, k) => {
    if (typeof text !== 'string') return fail(`${path}[${k}]`, `${JSON.stringify(text)} is not a prefix string`);
    try {
      return parsePrefix(text.trim());
    } catch (err) {
      if (err instanceof PrefixError) return fail(`${path}[${k}]`, `"${text}" is not a prefix: ${err.message}`);
      throw err;
    }
  });
}

function ports(raw: unknown, path: string, fail: (path: string, what: string) => never): Uint16Array | null {
  if (raw === undefined) return null;
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string') return fail(path, `expected a string of ports and ranges such as "22,8000-8100", not ${JSON.stringify(raw)}`);
  const pairs: number[] = [];
  for (const item of text.split(',')) {
    const m = /^\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?$/.exec(item);
    if (!m) fail(path, `"${item.trim()}" is not a port or a range LOW-HIGH (in "${text}")`);
    const lo = Number(m![1]);
    const hi = m![2] === undefined ? lo : Number(m![2]);
    if (lo > 65535 || hi > 65535) fail(path, `"${item.trim()}": ports are 0..65535`);
    if (lo > hi) fail(path, `"${item.trim()}": the range is backwards`);
    pairs.push(lo, hi);
  }
  return Uint16Array.from(pairs);
}

const mask32 = (bits: number): number => (bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0);

function compile4(list: Prefix[] | null): Uint32Array | null {
  if (list === null) return null;
  const v4 = list.filter((p) => p.family === 4);
  const out = new Uint32Array(v4.length * 2);
  v4.forEach((p, k) => {
    const m = mask32(p.bits);
    out[2 * k] = (new DataView(p.address.buffer, p.address.byteOffset, 4).getUint32(0) & m) >>> 0;
    out[2 * k + 1] = m;
  });
  return out;
}

function compile6(list: Prefix[] | null): Uint32Array | null {
  if (list === null) return null;
  const v6 = list.filter((p) => p.family === 6);
  const out = new Uint32Array(v6.length * 8);
  v6.forEach((p, k) => {
    const view = new DataView(p.address.buffer, p.address.byteOffset, 16);
    for (let w = 0; w < 4; w++) {
      const m = mask32(p.bits - 32 * w);
      out[8 * k + w] = (view.getUint32(4 * w) & m) >>> 0;
      out[8 * k + 4 + w] = m;
    }
  });
  return out;
}
