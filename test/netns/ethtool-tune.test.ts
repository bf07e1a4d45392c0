// scripts/ethtool-tune.sh on a veth in a test namespace whose default route leaves by
// it: --dry-run changes nothing, a run sets rx-udp-gro-forwarding on and rx-gro-list
// off and records what it found, a second run changes nothing, --revert puts the
// original back; bad input gets its exit status. And the script is shellcheck-clean.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkTestsUnavailable, run } from '../helpers/netns.js';

const skip = networkTestsUnavailable(['ip', 'ethtool', 'shellcheck', 'bash']);
const SCRIPT = fileURLToPath(new URL('../../../scripts/ethtool-tune.sh', import.meta.url));

describe('scripts/ethtool-tune.sh', { skip, timeout: 180_000 }, () => {
  const id = process.pid % 100000;
  const ns = `tdr-eth${id}`;
  const dev = `tdr${id}ea`.slice(0, 15);
  const stateDir = mkdtempSync(join(tmpdir(), 'tundra-ethtool-'));
  const script = (...args: string[]) =>
    spawnSync('ip', ['netns', 'exec', ns, 'bash', SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, TUNDRA_ETHTOOL_STATE_DIR: stateDir } });
  const features = (): Record<string, string> => {
    const out = run('ip', ['netns', 'exec', ns, 'ethtool', '-k', dev]);
    const get = (f: string): string => new RegExp(`^${f}: (on|off)`, 'm').exec(out)?.[1] ?? '?';
    return { 'rx-udp-gro-forwarding': get('rx-udp-gro-forwarding'), 'rx-gro-list': get('rx-gro-list') };
  };
  const ORIGINAL = { 'rx-udp-gro-forwarding': 'off', 'rx-gro-list': 'on' };
  const TUNED = { 'rx-udp-gro-forwarding': 'on', 'rx-gro-list': 'off' };

  before(() => {
    run('ip', ['netns', 'add', ns]);
    run('ip', ['-n', ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev.slice(0, 14)}b`]);
    run('ip', ['-n', ns, 'address', 'add', '198.18.7.1/24', 'dev', dev]);
    run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    run('ip', ['-n', ns, 'link', 'set', `${dev.slice(0, 14)}b`, 'up']);
    run('ip', ['-n', ns, 'route', 'add', 'default', 'via', '198.18.7.2']);
    run('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, 'rx-udp-gro-forwarding', 'off', 'rx-gro-list', 'on']);
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('is shellcheck-clean', () => {
    const r = spawnSync('shellcheck', [SCRIPT], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('--dry-run says what it would change and changes nothing', () => {
    const r = script('--dry-run');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`would run: ethtool -K ${dev} rx-udp-gro-forwarding on`));
    assert.match(r.stdout, new RegExp(`would run: ethtool -K ${dev} rx-gro-list off`));
    assert.match(r.stdout, /CPU idle states: .*\n.*C-states/);
    assert.deepEqual(features(), ORIGINAL);
    assert.equal(existsSync(join(stateDir, `${dev}.state`)), false, 'no state written');
  });

  test('tunes the default-route interface, records what it found, and a second run changes nothing', () => {
    const r = script();
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(features(), TUNED);
    assert.equal(readFileSync(join(stateDir, `${dev}.state`), 'utf8'), 'rx-udp-gro-forwarding=off\nrx-gro-list=on\n');
    const again = script();
    assert.equal(again.status, 0);
    assert.match(again.stdout, /nothing to change/);
    assert.equal(readFileSync(join(stateDir, `${dev}.state`), 'utf8'), 'rx-udp-gro-forwarding=off\nrx-gro-list=on\n', 'the original record is kept');
  });

  test('--revert puts back what the first run found, once', () => {
    const r = script('--revert', '--interface', dev);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(features(), ORIGINAL);
    const again = script('--revert');
    assert.equal(again.status, 0);
    assert.match(again.stdout, /nothing to revert/);
  });

  test('bad input gets its exit status and a message', () => {
    const missing = script('--interface', 'tdrnosuchif');
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no interface tdrnosuchif here/);
    const usage = script('--frobnicate');
    assert.equal(usage.status, 1);
    assert.match(usage.stderr, /unknown argument: --frobnicate/);
    run('ip', ['-n', ns, 'route', 'del', 'default']);
    const noRoute = script();
    assert.equal(noRoute.status, 2);
    assert.match(noRoute.stderr, /no default route to find the interface by: give --interface NAME/);
  });
});
