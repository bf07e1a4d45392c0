// The many-peers benchmark's parts that need no namespace: the idle peers' configuration
// text, `wg show dump` read back, and the daemon's CPU ticks and memory from /proc.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { processTicks, ticksPerSecond } from '../e2e/cpu.js';

/** An idle peer: index k (from 1) picks its endpoint and allowed IP, so no two collide. */
export interface IdlePeer { publicKey: string; k: number }

/** Fresh random public keys for the peers numbered from..from+count-1 (no private key is needed: none answers). */
export function makePeers(from: number, count: number): IdlePeer[] {
  const out: IdlePeer[] = [];
  for (let k = from; k < from + count; k++) out.push({ publicKey: randomBytes(32).toString('base64'), k });
  return out;
}

/**
 * Endpoint 198.19.x.y:51820 (IDLE_ENDPOINTS): side a routes them to b, where a blackhole
 * route drops every datagram without an ICMP error, as an unreachable host on the internet
 * does: the daemon sees neither an answer nor an error, and keeps retrying. (Unused
 * addresses on the a–b link would instead fill a's neighbour table with failed ARP entries,
 * and a closed port on b would answer with ICMP port unreachable.) Allowed IP
 * 100.96.128.0/17 + k, a /32 of its own.
 */
export function peerConf(peer: IdlePeer, keepalive: number | undefined): string {
  const { k } = peer;
  if (!Number.isInteger(k) || k < 1 || k > 32_766) throw new RangeError(`idle peer number ${k}: 1 to 32,766`);
  const hi = k >> 8;
  const lo = k & 255;
  return [
    '[Peer]',
    `PublicKey = ${peer.publicKey}`,
    `Endpoint = 198.19.${hi}.${lo}:51820`,
    `AllowedIPs = 100.96.${128 + hi}.${lo}/32`,
    ...(keepalive === undefined ? [] : [`PersistentKeepalive = ${keepalive}`]),
    '',
  ].join('\n');
}

/** The peers as a `wg addconf` file (or the tail of a `wg syncconf` one). */
export function peersConf(peers: readonly IdlePeer[], keepalive?: number): string {
  return peers.map((p) => peerConf(p, keepalive)).join('\n');
}

/** Where the idle peers' endpoints are. */
export const IDLE_ENDPOINTS = '198.19.0.0/16';
/** b's address on the a–b link of bench/e2e/topology.ts. */
const PEER_UNDERLAY = '198.18.0.2';

/** The `ip` commands (without `ip netns exec`) that send a's datagrams to the idle
 *  endpoints to b and drop them there, silently. */
export function idleEndpointRoutes(): { client: string[]; peer: string[] } {
  return {
    client: ['ip', 'route', 'add', IDLE_ENDPOINTS, 'via', PEER_UNDERLAY],
    peer: ['ip', 'route', 'add', 'blackhole', IDLE_ENDPOINTS],
  };
}

/** The peers' public keys from `wg show IF dump` (its first line is the interface's). */
export function dumpPeerKeys(dump: string): string[] {
  const lines = dump.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error('wg show dump printed nothing');
  return lines.slice(1).map((l) => l.split('\t')[0]!);
}

/** Throws unless the dump lists exactly the expected peers (in any order), saying how it differs. */
export function checkDump(dump: string, expected: readonly string[]): void {
  const got = dumpPeerKeys(dump);
  const have = new Set(got);
  const want = new Set(expected);
  const missing = [...want].filter((k) => !have.has(k)).length;
  const extra = [...have].filter((k) => !want.has(k)).length;
  if (got.length !== expected.length || missing > 0 || extra > 0) {
    throw new Error(`wg show dump lists ${got.length} peers, expected ${expected.length} (${missing} missing, ${extra} not configured)`);
  }
}

/** The public keys of the [Peer] sections of a `wg showconf` text. */
export function confPeerKeys(conf: string): string[] {
  return [...conf.matchAll(/^\s*PublicKey\s*=\s*(\S+)\s*$/gm)].map((m) => m[1]!);
}

/** VmRSS of a process, in bytes, from the text of /proc/PID/status. */
export function parseVmRss(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (m === null) throw new Error('no VmRSS line in /proc/PID/status');
  return Number(m[1]) * 1024;
}

export function rssBytes(pid: number): number {
  return parseVmRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** The process's CPU (utime + stime, every thread) over a window: ticks, and percent of one core. */
export async function idleCpu(pid: number, seconds: number): Promise<{ ticks: number; corePct: number }> {
  const t0 = performance.now();
  const c0 = processTicks(pid);
  await sleep(seconds * 1000);
  const ticks = processTicks(pid) - c0;
  const wall = (performance.now() - t0) / 1000;
  return { ticks, corePct: (ticks / ticksPerSecond() / wall) * 100 };
}

/** Seconds fn takes, by performance.now() around it. */
export function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}
