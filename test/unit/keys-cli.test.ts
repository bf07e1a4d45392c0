// Key tooling: `tundra genkey|pubkey|genpsk` against `wg` (when installed) and @noble.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { x25519 } from '@noble/curves/ed25519.js';
import { decodeKey, encodeKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const hasWg = spawnSync('sh', ['-c', 'command -v wg']).status === 0;

function tundra(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function wg(args: string[], input?: string): string {
  const r = spawnSync('wg', args, { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('genkey makes a clamped 32-byte key in base64', () => {
  const r = tundra(['genkey']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^[A-Za-z0-9+/]{43}=\n$/);
  const key = decodeKey(r.stdout);
  assert.equal(key[0]! & 7, 0);
  assert.equal(key[31]! & 0xc0, 0x40);
});

test('pubkey equals @noble/curves on the same key', () => {
  const key = generatePrivateKey();
  const r = tundra(['pubkey'], `${encodeKey(key)}\n`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${encodeKey(x25519.getPublicKey(key))}\n`);
});

test('genpsk makes 32 random bytes in base64', () => {
  const a = tundra(['genpsk']).stdout;
  const b = tundra(['genpsk']).stdout;
  assert.equal(decodeKey(a).length, 32);
  assert.notEqual(a, b);
});

test('pubkey rejects a malformed key with a message, not a stack trace', () => {
  for (const input of ['', 'not a key\n', 'AAAA\n', `${'A'.repeat(43)}B\n`]) {
    const r = tundra(['pubkey'], input);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'tundra: key is not the correct length or format\n');
  }
});

test('unknown commands and extra arguments fail with usage', () => {
  const r = tundra(['--frobnicate']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown command or option "--frobnicate"/);
  assert.equal(tundra(['genkey', 'x']).status, 1);
  assert.match(tundra(['--help']).stdout, /genkey/);
});

test('tundra keys and wg keys are interchangeable', { skip: hasWg || process.env.CI === 'true' ? false : 'wg is not installed' }, () => {
  for (let i = 0; i < 5; i++) {
    const ours = tundra(['genkey']).stdout;
    assert.equal(wg(['pubkey'], ours), tundra(['pubkey'], ours).stdout);
    const theirs = wg(['genkey']);
    assert.equal(tundra(['pubkey'], theirs).stdout, wg(['pubkey'], theirs));
    assert.equal(encodeKey(publicKeyOf(decodeKey(theirs))), wg(['pubkey'], theirs).trim());
  }
});
