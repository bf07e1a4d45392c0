// `tundra stats INTERFACE [--json]`: a running daemon's drop, offload and queue
// counters, asked over its UAPI socket with tundra's own `tundra-stats=1` operation
// (foreground or background daemon alike; `kill -USR1` prints the same line).
import { connect } from 'node:net';
import { join } from 'node:path';
import { interfaceNameProblem } from '../tun/tun.js';
import type { DeviceStats } from '../device/device.js';
import { DEFAULT_SOCKET_DIRECTORY } from '../uapi/server.js';
import { STATS_OPERATION } from '../uapi/protocol.js';
import { StatsError } from '../errors.js';

const TIMEOUT_MS = 5000;

/** Asks the daemon serving `name` for its counters. */
export async function fetchStats(name: string, directory = DEFAULT_SOCKET_DIRECTORY): Promise<DeviceStats> {
  const problem = interfaceNameProblem(name);
  if (problem !== undefined) throw new StatsError(problem);
  const path = join(directory, `${name}.sock`);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new StatsError(`${name}: no answer on ${path} within ${TIMEOUT_MS / 1000} s`));
    }, TIMEOUT_MS);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${STATS_OPERATION}=1\n\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (/(^|\n)errno=-?\d+\n\n$/.test(text)) {
        clearTimeout(timer);
        socket.end();
        resolve(text);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new StatsError(socketError(name, path, err)));
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new StatsError(`${name} is not a tundra interface: whatever serves ${path} closed the connection on "${STATS_OPERATION}" (wireguard-go does)`));
    });
  });
  const errno = Number(/errno=(-?\d+)\n\n$/.exec(answer)![1]);
  const line = /^stats=(.*)$/m.exec(answer)?.[1];
  if (errno !== 0 || line === undefined) throw new StatsError(`${name}: the daemon answered errno=${errno}`);
  return JSON.parse(line) as DeviceStats;
}

export function socketError(name: string, path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT': return `${name}: no UAPI socket at ${path}: is the interface running? (start it with: tundra ${name})`;
    case 'EACCES': return `${name}: permission denied on ${path}: run as root (the socket is 0600, as wireguard-go's)`;
    case 'ECONNREFUSED': return `${name}: nothing listens on ${path} (a daemon that ended without removing it)`;
    default: return `${name}: cannot connect to ${path}: ${err.message}`;
  }
}

/** The counters as aligned text: one section per group, non-zero drops only. */
export function formatStats(stats: DeviceStats): string {
  const out: string[] = [`interface: ${stats.interface}`];
  const section = (title: string, rows: [string, number][]): void => {
    out.push(`${title}:`);
    if (rows.length === 0) out.push('  none');
    const width = Math.max(0, ...rows.map(([k]) => k.length));
    for (const [k, v] of rows) out.push(`  ${k.padEnd(width)}  ${v}`);
  };
  section('drops', Object.entries(stats.drops).filter(([, v]) => v > 0).sort(([a], [b]) => a.localeCompare(b)));
  const { fallbacks, ...counters } = stats.offload;
  section('offload', Object.entries(counters).filter((e): e is [string, number] => typeof e[1] === 'number'));
  section('offload fallbacks', Object.entries((fallbacks ?? {}) as Record<string, number>));
  if (Object.keys(stats.stages).length > 0) section('stages', Object.entries(stats.stages));
  const columns = [...new Set(stats.queues.flatMap((q) => Object.keys(q)))];
  out.push('queues:');
  const header = ['queue', ...columns];
  const table = [header, ...stats.queues.map((q, i) => [String(i), ...columns.map((c) => String(q[c] ?? ''))])];
  // Every row has header.length cells; a missing one would be as wide as an empty one.
  const widths = header.map((_, c) => Math.max(...table.map((row) => row[c]?.length ?? 0)));
  for (const row of table) out.push(`  ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')}`);
  if (stats.pool !== undefined) section('crypto pool', Object.entries(stats.pool));
  return `${out.join('\n')}\n`;
}

/** The subcommand: returns the exit status. */
export async function runStats(args: readonly string[]): Promise<number> {
  const json = args.includes('--json');
  const names = args.filter((a) => a !== '--json');
  const [name] = names;
  if (names.length !== 1 || name === undefined || name.startsWith('-')) {
    process.stderr.write('Usage: tundra stats INTERFACE [--json]\n');
    return 2;
  }
  try {
    const stats = await fetchStats(name);
    process.stdout.write(json ? `${JSON.stringify(stats, null, 2)}\n` : formatStats(stats));
    return 0;
  } catch (err) {
    if (!(err instanceof StatsError)) throw err;
    process.stderr.write(`tundra: ${err.message}\n`);
    return 1;
  }
}
