#!/usr/bin/env node
// tundra's command line. For now: the key tools, compatible with `wg genkey`,
// `wg pubkey` and `wg genpsk` (base64 keys on standard output, one per line).
import { readFileSync } from 'node:fs';
import { decodeKey, encodeKey, generatePresharedKey, generatePrivateKey, KeyFormatError, publicKeyOf } from '../crypto/keys.js';

const USAGE = `Usage: tundra <command>

Commands:
  genkey   print a new private key (base64)
  genpsk   print a new preshared key (base64)
  pubkey   read a private key on standard input, print its public key
`;

function fail(message: string, status = 1): never {
  process.stderr.write(`tundra: ${message}\n`);
  process.exit(status);
}

function main(argv: string[]): void {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (rest.length > 0 && ['genkey', 'genpsk', 'pubkey'].includes(command)) fail(`${command} takes no arguments\n${USAGE}`);
  switch (command) {
    case 'genkey':
      process.stdout.write(`${encodeKey(generatePrivateKey())}\n`);
      return;
    case 'genpsk':
      process.stdout.write(`${encodeKey(generatePresharedKey())}\n`);
      return;
    case 'pubkey': {
      let key: Uint8Array;
      try {
        key = decodeKey(readFileSync(0, 'utf8'));
      } catch (err) {
        if (err instanceof KeyFormatError) fail('key is not the correct length or format');
        throw err;
      }
      process.stdout.write(`${encodeKey(publicKeyOf(key))}\n`);
      return;
    }
    default:
      fail(`unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2));
