// What an end-to-end run measures, from its command line: the short run (`npm run bench`),
// the whole matrix (`--full`), or the parts given; and the interleaved order of its steps.
import { parseFlags, UsageError } from '../cli.js';
import { builtinImpl, parseImpl, UPSTREAM_ENV, type ImplSpec } from './impls.js';
import { expectedSeconds, LOADS, type LoadName } from './loads.js';
import { TOPOLOGIES, type TopologyName } from './topology.js';

export const USAGE = `usage: npm run bench -- [OPTIONS]          (as root: it makes network namespaces)
  (nothing)            the short run: p2p, tundra and wireguard-go, tcp1 tcp4 udp, 3 rounds of 5 s
  --full               the whole matrix: every topology, implementation and load, 3 rounds of 6 s
  --topology LIST      p2p,router,router-tuned,exit-node (comma-separated)
  --impl IMPL          an implementation; repeat it for more (replaces the default list):
                       tundra | tundra-nooffload | wireguard-go | wireguard-go-upstream (needs
                       ${UPSTREAM_ENV}=PATH) | kernel | NAME=COMMAND, where COMMAND
                       starts a wireguard-go-like daemon in the foreground for %IF%, e.g.
                       'tundra-q2=env TUNDRA_QUEUES=2 tundra -f %IF%' or 'wg-new=/opt/wireguard-go -f %IF%'
  --load LIST          tcp1,tcp4,udp,udp-gso,secnetperf,latency
  --rounds N           repeats of every cell, interleaved (A B A B ...)
  --seconds S          length of each throughput load
  --reference NAME     the implementation ratios are taken against (default wireguard-go when measured)
  --start-timeout S    how long an implementation has to create its interface (default 10)
  --out DIR            where the reports and logs go (default bench-out/e2e-<time>-<run id>)
  --help`;

export { UsageError };

export interface Plan {
  full: boolean;
  rounds: number;
  seconds: number;
  topologies: TopologyName[];
  impls: ImplSpec[];
  loads: LoadName[];
  reference: string | undefined;
  startTimeoutMs: number;
  out: string | undefined;
}

export interface Step {
  /** 1-based, of steps(plan).length */
  index: number;
  round: number;
  topology: TopologyName;
  impl: ImplSpec;
}

const SHORT_LOADS: LoadName[] = ['tcp1', 'tcp4', 'udp'];

function list<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${flag}: empty list (one or more of ${allowed.join(', ')})`);
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new UsageError(`${flag}: ${item} is not one of ${allowed.join(', ')}`);
  }
  return [...new Set(items)] as T[];
}

function whole(flag: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${flag} ${text}: a whole number from 1 to ${max}`);
  return n;
}

/** The plan of a command line (without the node and script words); 'help' for --help. */
export function parsePlan(argv: string[], env: NodeJS.ProcessEnv = process.env): Plan | 'help' {
  const values = parseFlags(argv, {
    full: { type: 'boolean' },
    topology: { type: 'string' },
    impl: { type: 'string', multiple: true },
    load: { type: 'string' },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    reference: { type: 'string' },
    'start-timeout': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help === true) return 'help';
  const full = values.full === true;
  const defaultImpls = full
    ? ['tundra', 'tundra-nooffload', 'wireguard-go', ...(env[UPSTREAM_ENV] ? ['wireguard-go-upstream'] : []), 'kernel']
    : ['tundra', 'wireguard-go'];
  let impls: ImplSpec[];
  try {
    impls = values.impl === undefined ? defaultImpls.map((n) => builtinImpl(n, env)!) : values.impl.map((t) => parseImpl(t, env));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const labels = impls.map((i) => i.label);
  const twice = labels.find((l, i) => labels.indexOf(l) !== i);
  if (twice !== undefined) throw new UsageError(`--impl: ${twice} is given twice (give each its own NAME)`);
  let reference = values.reference;
  if (reference !== undefined && !labels.includes(reference)) {
    throw new UsageError(`--reference ${reference}: not one of the implementations (${labels.join(', ')})`);
  }
  reference ??= labels.includes('wireguard-go') ? 'wireguard-go' : undefined;
  return {
    full,
    rounds: whole('--rounds', values.rounds, 3, 100),
    seconds: whole('--seconds', values.seconds, full ? 6 : 5, 3600),
    topologies: values.topology === undefined ? (full ? [...TOPOLOGIES] : ['p2p']) : list('--topology', values.topology, TOPOLOGIES),
    impls,
    loads: values.load === undefined ? (full ? [...LOADS] : SHORT_LOADS) : list('--load', values.load, LOADS),
    reference,
    startTimeoutMs: whole('--start-timeout', values['start-timeout'], 10, 600) * 1000,
    out: values.out,
  };
}

/**
 * Round after round; in each, every topology and in it every implementation, so that the
 * implementations of one topology alternate (A B A B ...) and a noisy minute on a shared
 * machine lands on all of them rather than on one.
 */
export function steps(plan: Plan): Step[] {
  const out: Step[] = [];
  for (let round = 1; round <= plan.rounds; round++) {
    for (const topology of plan.topologies) {
      for (const impl of plan.impls) out.push({ index: out.length + 1, round, topology, impl });
    }
  }
  return out;
}

/** Loads flow from the far host to the client in the router topologies (downloads, the
 *  direction rx-udp-gro-forwarding on the router's LAN side changes), client to peer in p2p. */
export function reverseFor(topology: TopologyName): boolean {
  return topology !== 'p2p';
}

/** Seconds bringing a topology up is expected to take. */
export const SETUP_SECONDS = 4;

/** Seconds a step is expected to take: bringing the topology up, then its loads. */
export function stepSeconds(plan: Plan, loads: readonly LoadName[]): number {
  return SETUP_SECONDS + loads.reduce((sum, l) => sum + expectedSeconds(l, plan.seconds), 0);
}
