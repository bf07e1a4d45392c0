// What a many-peers run measures, from its command line, and the interleaved order of its
// steps: per round, each kind of step with every implementation in turn (A B A B ...).
import { parseFlags, UsageError } from '../cli.js';
import { builtinImpl, parseImpl, UPSTREAM_ENV, type ImplSpec } from '../e2e/impls.js';

export const MEASURES = ['idle', 'tcp', 'rss', 'wg'] as const;
export type MeasureName = (typeof MEASURES)[number];

export const USAGE = `usage: npm run bench:peers -- [OPTIONS]     (as root: it makes network namespaces)
  Measures on side a (the client) of a p2p tunnel, per implementation, interleaved:
    idle  the daemon's CPU with no load, 1 peer and 1 + --peers peers (persistent keepalive 25,
          endpoints that never answer, so every idle peer keeps retrying its handshake)
    tcp   iperf3 tcp1 of the one active peer, with 1 and with 1 + --peers peers
    rss   the daemon's VmRSS with 1 peer and with 1 + N peers, N from --rss-peers
    wg    wg addconf of N peers, wg syncconf to N peers (half of them replaced), wg show dump
  --impl IMPL          an implementation; repeat it for more (replaces the default list:
                       tundra and wireguard-go-upstream, which needs ${UPSTREAM_ENV}=PATH
                       and is skipped, saying so, without it); as npm run bench: tundra |
                       tundra-nooffload | wireguard-go | wireguard-go-upstream | kernel | NAME=COMMAND
  --only LIST          idle,tcp,rss,wg (comma-separated; default all)
  --skip-tcp           the same as --only idle,rss,wg
  --rounds N           repeats of every cell, interleaved (default 3)
  --peers N            idle peers added for idle and tcp (default 2000)
  --rss-peers LIST     idle peers added for rss and wg (default 1000,10000)
  --settle-seconds S   wait after adding the keepalive peers, before idle CPU is taken (default 12)
  --idle-seconds S     the idle CPU window (default 5)
  --seconds S          length of each iperf3 run (default 5)
  --reference NAME     the implementation ratios are taken against (default
                       wireguard-go-upstream when measured)
  --start-timeout S    how long an implementation has to create its interface (default 10)
  --out DIR            where the reports and logs go (default bench-out/peers-<time>-<run id>)
  --help`;

export { UsageError };

export interface PeersPlan {
  impls: ImplSpec[];
  /** Default implementations that cannot run here (upstream without its path), and why. */
  unavailable: { label: string; reason: string }[];
  measures: MeasureName[];
  rounds: number;
  peers: number;
  rssPeers: number[];
  settleSeconds: number;
  idleSeconds: number;
  seconds: number;
  reference: string | undefined;
  startTimeoutMs: number;
  out: string | undefined;
}

/** 'load': idle and tcp with 1 then 1 + plan.peers peers; 'scale': rss and wg with 1 + rssPeers. */
export type StepKind = { kind: 'load' } | { kind: 'scale'; peers: number };

export interface PeersStep {
  /** 1-based, of peerSteps(plan).length */
  index: number;
  round: number;
  step: StepKind;
  impl: ImplSpec;
}

/** At most 20,000 idle peers: theirs and the half that syncconf brings in instead need a
 *  /32 each of 100.96.128.0/17 (bench/peers/peers.ts). */
export const MAX_PEERS = 20_000;
const DEFAULT_IMPLS = ['tundra', 'wireguard-go-upstream'];

function whole(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} ${text}: a whole number from ${min} to ${max}`);
  return n;
}

function measureList(text: string): MeasureName[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`--only: empty list (one or more of ${MEASURES.join(', ')})`);
  for (const item of items) {
    if (!(MEASURES as readonly string[]).includes(item)) throw new UsageError(`--only: ${item} is not one of ${MEASURES.join(', ')}`);
  }
  // In the fixed order, whatever order they were given in.
  return MEASURES.filter((m) => items.includes(m));
}

/** The plan of a command line (without the node and script words); 'help' for --help. */
export function parsePeersPlan(argv: string[], env: NodeJS.ProcessEnv = process.env): PeersPlan | 'help' {
  const values = parseFlags(argv, {
    impl: { type: 'string', multiple: true },
    only: { type: 'string' },
    'skip-tcp': { type: 'boolean' },
    rounds: { type: 'string' },
    peers: { type: 'string' },
    'rss-peers': { type: 'string' },
    'settle-seconds': { type: 'string' },
    'idle-seconds': { type: 'string' },
    seconds: { type: 'string' },
    reference: { type: 'string' },
    'start-timeout': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help === true) return 'help';

  const impls: ImplSpec[] = [];
  const unavailable: PeersPlan['unavailable'] = [];
  try {
    if (values.impl === undefined) {
      for (const name of DEFAULT_IMPLS) {
        // The default upstream is skipped without its path; asked for by name, it is a usage error.
        if (name === 'wireguard-go-upstream' && !env[UPSTREAM_ENV]) {
          unavailable.push({ label: name, reason: `${name}: not measured: name its binary with ${UPSTREAM_ENV}=PATH` });
        } else {
          impls.push(builtinImpl(name, env)!);
        }
      }
    } else {
      for (const text of values.impl) impls.push(parseImpl(text, env));
    }
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const labels = impls.map((i) => i.label);
  const twice = labels.find((l, i) => labels.indexOf(l) !== i);
  if (twice !== undefined) throw new UsageError(`--impl: ${twice} is given twice (give each its own NAME)`);
  const kernel = impls.find((i) => i.kind === 'kernel');
  if (kernel !== undefined) throw new UsageError(`--impl ${kernel.label}: the kernel has no daemon whose CPU and memory this measures`);

  if (values.only !== undefined && values['skip-tcp'] === true) throw new UsageError('--only and --skip-tcp: give one of them');
  const measures = values.only !== undefined ? measureList(values.only)
    : values['skip-tcp'] === true ? MEASURES.filter((m) => m !== 'tcp') : [...MEASURES];

  const rssPeers = values['rss-peers'] === undefined ? [1000, 10_000]
    : [...new Set(values['rss-peers'].split(',').map((s) => s.trim()).filter((s) => s !== '')
      .map((s) => whole('--rss-peers', s, 0, 1, MAX_PEERS)))];
  if (rssPeers.length === 0) throw new UsageError('--rss-peers: empty list (peer counts, e.g. 1000,10000)');

  let reference = values.reference;
  if (reference !== undefined && !labels.includes(reference)) {
    throw new UsageError(`--reference ${reference}: not one of the implementations (${labels.join(', ')})`);
  }
  reference ??= labels.includes('wireguard-go-upstream') ? 'wireguard-go-upstream' : undefined;
  return {
    impls,
    unavailable,
    measures,
    rounds: whole('--rounds', values.rounds, 3, 1, 100),
    peers: whole('--peers', values.peers, 2000, 1, MAX_PEERS),
    rssPeers: rssPeers.sort((x, y) => x - y),
    settleSeconds: whole('--settle-seconds', values['settle-seconds'], 12, 1, 600),
    idleSeconds: whole('--idle-seconds', values['idle-seconds'], 5, 1, 600),
    seconds: whole('--seconds', values.seconds, 5, 1, 3600),
    reference,
    startTimeoutMs: whole('--start-timeout', values['start-timeout'], 10, 1, 600) * 1000,
    out: values.out,
  };
}

/**
 * Round after round; in each, the load step (when idle or tcp is measured) and a scale step
 * per --rss-peers count (when rss or wg is), each with every implementation in turn.
 */
export function peerSteps(plan: PeersPlan): PeersStep[] {
  const kinds: StepKind[] = [];
  if (plan.measures.includes('idle') || plan.measures.includes('tcp')) kinds.push({ kind: 'load' });
  if (plan.measures.includes('rss') || plan.measures.includes('wg')) {
    for (const peers of plan.rssPeers) kinds.push({ kind: 'scale', peers });
  }
  const out: PeersStep[] = [];
  for (let round = 1; round <= plan.rounds; round++) {
    for (const step of kinds) {
      for (const impl of plan.impls) out.push({ index: out.length + 1, round, step, impl });
    }
  }
  return out;
}
