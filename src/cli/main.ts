#!/usr/bin/env node
// tundra's command line: a wireguard-go compatible daemon (`tundra [-f] IFNAME`),
// `tundra up CONFIG`, `tundra stats`, and key tools compatible with `wg genkey|pubkey|genpsk`.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { decodeKey, encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from '../crypto/keys.js';
import { detach, tellParent } from '../daemon/detach.js';
import { startInterface } from '../daemon/foreground.js';
import { up } from '../daemon/up.js';
import { Logger, logLevelFromEnv } from '../log.js';
import { settingsFromEnv, takeSettingFlags } from '../daemon/settings.js';
import { ConfigError, errnoOf, KeyFormatError, SettingError, UpError } from '../errors.js';
import { runDoctor } from '../doctor/doctor.js';
import { runStats } from './stats.js';
import { interfaceNameProblem } from '../tun/tun.js';

const VERSION = '0.1.0';

const USAGE = `Usage: tundra [-f|--foreground] [--offload=…] [--crypto=…] [--stage=…]
              [--queues=N] [--workers=N] [--metrics-listen=ADDR:PORT]
              [--metrics-peers=on|off] [--aqm-target=MS] [--aqm-interval=MS]
              [--nice=N] [--rekey-after-seconds=N] [--] INTERFACE
       tundra up [SETTINGS…] CONFIG-FILE
       tundra stats INTERFACE [--json]
       tundra doctor [--json] [--skip=CHECK,…] [INTERFACE]
       tundra genkey | genpsk | pubkey
       tundra --version

  INTERFACE          create a WireGuard interface and serve its UAPI socket in
                     /var/run/wireguard, as wireguard-go does; without -f the
                     daemon goes to the background once the interface is ready
  up CONFIG-FILE     bring up the interface named by a wg-quick file (wg0.conf
                     makes wg0) with its addresses and routes, in the foreground
  stats INTERFACE    print a running daemon's drop, offload and queue counters
                     (--json: as JSON)
  doctor [INTERFACE] check this host's router set-up and say what to fix
                     (exit 0 only when nothing is wrong; see README)
  genkey             print a new private key (base64)
  genpsk             print a new preshared key (base64)
  pubkey             read a private key on standard input, print its public key

  --offload=none     use no segmentation offload; --offload=-NAME,… turns single
                     ones off: tun-tso, tun-uso, tun-gro, udp-gso, udp-gro
                     (default: every offload the kernel has)
  --crypto=NAME      the ChaCha20-Poly1305 of the data path: native (default,
                     batched OpenSSL in the addon), node (node:crypto per packet)
                     or noble (@noble/ciphers per packet, the reference)
  --stage=MODULE[=CONFIG]
                     run a user stage on every batch (see examples/README.md);
                     repeat the flag or separate several with commas
  --queues=N         queue workers: threads that each run the data path of a
                     TUN queue and a UDP socket of the listen port (default 1,
                     0 on a single core); 0 runs it on the main thread (the
                     inline mode)
  --workers=N        crypto pool threads that seal and open for the queue
                     workers (default 0: each queue worker does its own)
  --metrics-listen=ADDR:PORT
                     serve Prometheus metrics at http://ADDR:PORT/metrics
                     (default: off; e.g. 127.0.0.1:9587, [::1]:9587, :9587)
  --metrics-peers=off
                     leave out the per-peer series (routers with many peers)
  --aqm-target=MS, --aqm-interval=MS
                     the receive queue's CoDel: the delay it lets stand and how
                     long before it acts (default 5 and 100; target 0: off)
  --nice=N           the data path threads' nice value, -20 to 19 (default: the
                     process's; the main thread, the control plane, keeps it)
  --rekey-after-seconds=N
                     a testing knob: as a session's initiator, rekey after N
                     seconds (5 to 120) instead of 120, for tests and soaks
  --                 the next argument is an interface name, even one that
                     looks like a command

Environment: LOG_LEVEL=verbose|error|silent (default error), WG_PROCESS_FOREGROUND=1,
             TUNDRA_OFFLOAD, TUNDRA_CRYPTO, TUNDRA_STAGES, TUNDRA_QUEUES,
             TUNDRA_WORKERS, TUNDRA_METRICS_LISTEN, TUNDRA_METRICS_PEERS,
             TUNDRA_AQM_TARGET, TUNDRA_AQM_INTERVAL, TUNDRA_NICE,
             TUNDRA_REKEY_AFTER_SECONDS
             (as the flags; a flag wins)
`;

/** The subcommands, for suggestions when an interface name looks like a misspelt one. */
const COMMANDS = ['up', 'stats', 'doctor', 'genkey', 'genpsk', 'pubkey', 'help', 'version'];

function fail(message: string, status = 1): never {
  process.stderr.write(`tundra: ${message}\n`);
  process.exit(status);
}

/**
 * Optimal string alignment distance (a swap of two neighbours counts one), for "did you mean".
 * Bounds: 0 ≤ i ≤ a.length and 0 ≤ j ≤ b.length, the loops' limits, and d is (a.length + 1) × (b.length + 1).
 */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The command `word` is probably a misspelling of, if any (one edit for short commands, two for longer). */
function suggestCommand(word: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const command of COMMANDS) {
    const distance = editDistance(word.toLowerCase(), command);
    if (distance <= (command.length <= 3 ? 1 : 2) && distance < bestDistance) {
      best = command;
      bestDistance = distance;
    }
  }
  return best;
}

/** A start-up error with what to do about it, when the cause is a usual one (a long name is refused before: interfaceNameProblem). */
function explain(message: string, err: unknown): string {
  // The errno the error carries (a system error's, a UapiError's), else the one its message names.
  const named = /\((E[A-Z]+)\)/.exec(message)?.[1];
  const errno = errnoOf(err, named === undefined ? 0 : (constants.errno as Record<string, number | undefined>)[named] ?? 0);
  const { EACCES, EADDRINUSE, EPERM } = constants.errno;
  if (errno === EPERM || errno === EACCES) {
    return `${message}\n  creating a TUN interface needs root or CAP_NET_ADMIN: run it with sudo, or give node the capability (setcap cap_net_admin+ep "$(command -v node)")`;
  }
  const port = /cannot listen on port (\d+)/.exec(message)?.[1];
  if (errno === EADDRINUSE && port !== undefined) {
    return `${message}\n  another program or interface has UDP port ${port} (see: ss -ulpn 'sport = ${port}'): stop it, or give this interface another ListenPort`;
  }
  return message;
}

function keyCommand(command: string): void {
  switch (command) {
    case 'genkey':
      process.stdout.write(`${encodeKey(generatePrivateKey())}\n`);
      return;
    case 'genpsk':
      process.stdout.write(`${encodeKey(generatePresharedKey())}\n`);
      return;
    default: {
      let key: Uint8Array;
      try {
        key = decodeKey(readFileSync(0, 'utf8'));
      } catch (err) {
        if (err instanceof KeyFormatError) fail('key is not the correct length or format');
        throw err;
      }
      process.stdout.write(`${encodeKey(publicKeyOf(key))}\n`);
    }
  }
}

async function runInterface(name: string, foreground: boolean): Promise<void> {
  const bad = interfaceNameProblem(name);
  if (bad !== undefined) fail(bad);
  if (!foreground) {
    const status = await detach(fileURLToPath(import.meta.url), name);
    if (status === 0 && process.env.WG_QUICK_USERSPACE_IMPLEMENTATION === undefined && process.stderr.isTTY) {
      process.stderr.write(`tundra: ${name} is up; its daemon runs in the background (stop it with: ip link del ${name})\n`);
    }
    process.exit(status);
  }
  const logger = new Logger(name, logLevelFromEnv(process.env.LOG_LEVEL));
  let running;
  try {
    running = await startInterface(name, logger, settingsFromEnv(process.env));
  } catch (err) {
    const message = explain(`${name}: ${(err as Error).message}`, err);
    tellParent({ ready: false, error: message });
    fail(message);
  }
  tellParent({ ready: true });
  await running.done;
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`tundra v${VERSION}\n`);
    return;
  }
  if (first === 'genkey' || first === 'genpsk' || first === 'pubkey') {
    if (rest.length > 0) fail(`${first} takes no arguments\n${USAGE}`);
    keyCommand(first);
    return;
  }
  if (first === 'up') {
    let files: string[];
    try {
      files = takeSettingFlags(rest, process.env);
    } catch (err) {
      fail((err as Error).message);
    }
    const [file] = files;
    if (files.length !== 1 || file === undefined || file.startsWith('-')) fail(`up takes one configuration file (and tundra's settings)\n${USAGE}`);
    try {
      await up(file, logLevelFromEnv(process.env.LOG_LEVEL));
    } catch (err) {
      if (err instanceof ConfigError || err instanceof UpError || err instanceof SettingError) fail(err.message);
      fail(explain((err as Error).message, err));
    }
    return;
  }
  if (first === 'stats') process.exit(await runStats(rest));
  if (first === 'doctor') process.exit(await runDoctor(rest));
  let foreground = process.env.WG_PROCESS_FOREGROUND === '1';
  const names: string[] = [];
  let args: string[];
  try {
    // The daemon reads its settings from the environment, also after detaching and under wg-quick.
    args = takeSettingFlags(argv, process.env);
  } catch (err) {
    fail(`${(err as Error).message}${err instanceof SettingError ? '' : `\n${USAGE}`}`);
  }
  let forced = false;
  for (const arg of args) {
    if (forced) names.push(arg);
    else if (arg === '--') forced = true;
    else if (arg === '-f' || arg === '--foreground') foreground = true;
    else names.push(arg);
  }
  // A misspelt command must not quietly become an interface of that name in the background.
  const [name] = names;
  const meant = forced || name === undefined ? undefined : suggestCommand(name);
  if (meant !== undefined) {
    const forceHint = names.length === 1 ? ` (to create an interface named "${name}", run: tundra -- ${name})` : '';
    fail(`"${name}" is not a command; did you mean "tundra ${meant}"?${forceHint}`);
  }
  if (names.length !== 1 || name === undefined || (!forced && name.startsWith('-'))) fail(`unknown command or option "${argv.join(' ')}"\n${USAGE}`);
  await runInterface(name, foreground);
}

main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).message));
