#!/usr/bin/env node
// tundra's command line: a wireguard-go compatible daemon (`tundra [-f] IFNAME`),
// `tundra up CONFIG`, and key tools compatible with `wg genkey|pubkey|genpsk`.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/wg-config.js';
import { decodeKey, encodeKey, generatePresharedKey, generatePrivateKey, KeyFormatError, publicKeyOf } from '../crypto/keys.js';
import { detach, tellParent } from '../daemon/detach.js';
import { startInterface } from '../daemon/foreground.js';
import { up, UpError } from '../daemon/up.js';
import { Logger, logLevelFromEnv } from '../log.js';
import { isSettingError, settingsFromEnv, takeSettingFlags } from '../daemon/settings.js';

const VERSION = '0.1.0';

const USAGE = `Usage: tundra [-f|--foreground] [--offload=…] [--crypto=…] [--stage=…]
              [--queues=N] [--workers=N] INTERFACE
       tundra up CONFIG-FILE
       tundra doctor [--json] [INTERFACE]   check a router's set-up (see tundra doctor --help)
       tundra genkey | genpsk | pubkey
       tundra --version

  INTERFACE          create a WireGuard interface and serve its UAPI socket in
                     /var/run/wireguard, as wireguard-go does; without -f the
                     daemon goes to the background once the interface is ready
  up CONFIG-FILE     bring up the interface named by a wg-quick file (wg0.conf
                     makes wg0) with its addresses and routes, in the foreground
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

Environment: LOG_LEVEL=verbose|error|silent (default error), WG_PROCESS_FOREGROUND=1,
             TUNDRA_OFFLOAD, TUNDRA_CRYPTO, TUNDRA_STAGES, TUNDRA_QUEUES,
             TUNDRA_WORKERS (as the flags; a flag wins)
`;

function fail(message: string, status = 1): never {
  process.stderr.write(`tundra: ${message}\n`);
  process.exit(status);
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
  if (!foreground) process.exit(await detach(fileURLToPath(import.meta.url), name));
  const logger = new Logger(name, logLevelFromEnv(process.env.LOG_LEVEL));
  let running;
  try {
    running = await startInterface(name, logger, settingsFromEnv(process.env));
  } catch (err) {
    const message = `${name}: ${(err as Error).message}`;
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
  if (first === 'doctor') process.exit(await (await import('../doctor/doctor.js')).runDoctor(rest));
  if (first === 'up') {
    if (rest.length !== 1) fail(`up takes one configuration file\n${USAGE}`);
    try {
      await up(rest[0]!, logLevelFromEnv(process.env.LOG_LEVEL ?? 'verbose'));
    } catch (err) {
      if (err instanceof ConfigError || err instanceof UpError || isSettingError(err)) fail(err.message);
      throw err;
    }
    return;
  }
  let foreground = process.env.WG_PROCESS_FOREGROUND === '1';
  const names: string[] = [];
  let args: string[];
  try {
    // The daemon reads its settings from the environment, also after detaching and under wg-quick.
    args = takeSettingFlags(argv, process.env);
  } catch (err) {
    fail(`${(err as Error).message}${isSettingError(err) ? '' : `\n${USAGE}`}`);
  }
  for (const arg of args) {
    if (arg === '-f' || arg === '--foreground') foreground = true;
    else names.push(arg);
  }
  if (names.length !== 1 || names[0]!.startsWith('-')) fail(`unknown command or option "${argv.join(' ')}"\n${USAGE}`);
  await runInterface(names[0]!, foreground);
}

main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).message));
