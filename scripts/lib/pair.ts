// Two namespaces with a WireGuard daemon in each, peers of each other: bench/e2e's p2p
// Topology (built by testnet/) started from a daemon command template. Shared by the
// demo (scripts/demo.ts) and bench/rss/run.ts.
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { builtinImpl, implProblem, parseImpl, type ImplSpec } from '../../bench/e2e/impls.js';
import { missingToolMessage, which } from '../../bench/e2e/tools.js';
import { downAllSync, Topology } from '../../bench/e2e/topology.js';

/**
 * The daemon from a template: the command with %IF% where the interface name goes,
 * split on white space (no quoting), optionally `env VAR=VALUE ... CMD`; it stays in the
 * foreground and serves /var/run/wireguard/%IF%.sock. Empty: this checkout's tundra.
 */
export function daemonImpl(template: string | undefined): ImplSpec {
  if (template === undefined || template.trim() === '') return builtinImpl('tundra')!;
  return parseImpl(`daemon=${template}`);
}

/** What keeps the pair from running here (root, the tools, the daemon's program); empty when it can. */
export function hostProblems(impl: ImplSpec, tools: string[]): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('needs root (network namespaces): run it with sudo');
  for (const tool of ['ip', 'wg', 'ping', 'sysctl', 'ss', ...tools]) {
    if (which(tool) === null) problems.push(missingToolMessage(tool));
  }
  const daemon = implProblem(impl);
  if (daemon !== undefined) problems.push(daemon);
  return problems;
}

export interface Pair {
  topology: Topology;
  /** The daemons' logs and the programs' output; removed by close(). */
  logDir: string;
  /** The last lines of both daemon logs, for when something failed. */
  logTails(): string;
  /** Stops everything it started and deletes the namespaces. */
  close(): Promise<void>;
}

/**
 * Builds the pair and waits for the first handshake; on failure it has removed what it
 * made and throws. Ctrl-C or a kill removes it too.
 */
export async function pairUp(impl: ImplSpec, handshakeTimeoutMs: number, log: (line: string) => void): Promise<Pair> {
  process.on('exit', downAllSync);
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      log('interrupted, tearing down');
      downAllSync();
      process.exit(status);
    });
  }
  const logDir = mkdtempSync(join(tmpdir(), 'tdr-pair-'));
  const logTails = (): string => ['a', 'b'].map((side) => {
    const file = join(logDir, `daemon-${side}.log`);
    const text = readFileSync(file, 'utf8').trimEnd();
    return text === '' ? `${file} is empty` : `last lines of ${file}:\n${text.split('\n').slice(-15).join('\n')}`;
  }).join('\n');
  // Four characters, as the benchmark's runs: namespaces tdr-b<id>-a and -b.
  const runId = (randomBytes(4).readUInt32BE() % 36 ** 4).toString(36).padStart(4, '0');
  log(`namespaces tdr-b${runId}-a and tdr-b${runId}-b`);
  let topology: Topology;
  try {
    topology = await Topology.up({ name: 'p2p', runId, impl, logDir, handshakeTimeoutMs, log });
  } catch (err) {
    // Topology's error says what failed, with the failing daemon's log.
    rmSync(logDir, { recursive: true, force: true });
    throw err;
  }
  return {
    topology, logDir, logTails,
    async close() {
      await topology.down();
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}

/** Runs argv in ns to its end (it must bound itself), output to logDir/name.log; returns that output. */
export async function runInPair(pair: Pair, ns: string, argv: string[], name: string): Promise<string> {
  const file = join(pair.logDir, `${name}.log`);
  const child = pair.topology.spawn(ns, argv, file);
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  return readFileSync(file, 'utf8');
}
