// What a soak runs, from its command line.
import { parseFlags, UsageError } from '../cli.js';

export const USAGE = `usage: npm run bench:soak -- [OPTIONS]     (as root: it makes network namespaces)
  Two tundra daemons in a p2p tunnel (bench/e2e's topology), keys rotated every few seconds
  (--rekey-after-seconds at both ends), byte-exact TCP transfers of random data both ways
  at once (SHA-256 at both ends) and a checked UDP stream each way, for --minutes. Every
  --sample-seconds it takes each daemon's VmRSS, open fds, threads and libuv handles, and
  its handshake counters. Exit 0: every transfer matched, keys rotated and the daemons
  stayed flat; 1: something did not (the report says what); 2: bad usage or not root.
  --minutes M          how long the traffic runs (default 10; fractions allowed)
  --rekey-seconds N    the daemons' --rekey-after-seconds, 5 to 120 (default 5)
  --tcp-mbits R        TCP rate per direction, Mbit/s (default 100)
  --transfer-mib S     size of each TCP transfer, MiB (default 16)
  --udp-mbits R        UDP rate per direction, Mbit/s; 0 for no UDP (default 5)
  --sample-seconds S   time between samples (default 10)
  --warmup-seconds S   samples before this are not judged (default 60)
  --rss-bound-mib B    the most RSS may grow after the warm-up (default 10)
  --out DIR            where report.md, samples.json and the logs go
                       (default bench-out/soak-<time>-<run id>)
  --help`;

export { UsageError };

export interface SoakPlan {
  seconds: number;
  rekeySeconds: number;
  tcpMbits: number;
  transferBytes: number;
  udpMbits: number;
  sampleSeconds: number;
  warmupSeconds: number;
  rssBoundBytes: number;
  out: string | undefined;
}

function num(flag: string, text: string | undefined, fallback: number, min: number, max: number, whole = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw new UsageError(`${flag} ${text}: ${whole ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  }
  return n;
}

/** The plan of a command line (without the node and script words); 'help' for --help. */
export function parseSoakPlan(argv: string[]): SoakPlan | 'help' {
  const values = parseFlags(argv, {
    minutes: { type: 'string' },
    'rekey-seconds': { type: 'string' },
    'tcp-mbits': { type: 'string' },
    'transfer-mib': { type: 'string' },
    'udp-mbits': { type: 'string' },
    'sample-seconds': { type: 'string' },
    'warmup-seconds': { type: 'string' },
    'rss-bound-mib': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help === true) return 'help';
  const plan: SoakPlan = {
    seconds: num('--minutes', values.minutes, 10, 0.1, 24 * 60) * 60,
    rekeySeconds: num('--rekey-seconds', values['rekey-seconds'], 5, 5, 120, true),
    tcpMbits: num('--tcp-mbits', values['tcp-mbits'], 100, 1, 10_000),
    transferBytes: Math.round(num('--transfer-mib', values['transfer-mib'], 16, 0.01, 4096) * 2 ** 20),
    udpMbits: num('--udp-mbits', values['udp-mbits'], 5, 0, 1000),
    sampleSeconds: num('--sample-seconds', values['sample-seconds'], 10, 1, 600),
    warmupSeconds: num('--warmup-seconds', values['warmup-seconds'], 60, 0, 24 * 3600),
    rssBoundBytes: num('--rss-bound-mib', values['rss-bound-mib'], 10, 0, 4096) * 2 ** 20,
    out: values.out,
  };
  if (plan.warmupSeconds >= plan.seconds) {
    throw new UsageError(`--warmup-seconds ${plan.warmupSeconds}: must be shorter than the run (${plan.seconds} s), or nothing is judged`);
  }
  return plan;
}
