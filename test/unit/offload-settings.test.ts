// The offload switches: TUNDRA_OFFLOAD / --offload text to settings, and the CLI's
// answer to a bad one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ALL_OFFLOADS, OFFLOAD_NAMES, parseOffloadSettings } from '../../src/offload/settings.js';
import { SettingError } from '../../src/errors.js';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';

test('unset, empty and "all" allow every offload', () => {
  for (const text of [undefined, '', ' all ']) assert.deepEqual(parseOffloadSettings(text, 'X'), ALL_OFFLOADS);
});

test('"none" turns every offload off', () => {
  const s = parseOffloadSettings('none', 'X');
  for (const name of OFFLOAD_NAMES) assert.equal(s[name], false, name);
});

test('-NAME items turn single offloads off, the rest stay on', () => {
  const s = parseOffloadSettings('-tun-gro, -udp-gso', 'X');
  assert.deepEqual(s, { 'tun-tso': true, 'tun-uso': true, 'tun-gro': false, 'udp-gso': false, 'udp-gro': true });
  for (const name of OFFLOAD_NAMES) assert.equal(parseOffloadSettings(`-${name}`, 'X')[name], false);
});

test('anything else is an error that names the source and the choices', () => {
  for (const text of ['tun-gro', '-tun-gso', 'off', '-', '-udp-gro,,', 'none,-udp-gro']) {
    assert.throws(() => parseOffloadSettings(text, 'TUNDRA_OFFLOAD'), (err: Error) => {
      assert.ok(err instanceof SettingError);
      assert.match(err.message, /^TUNDRA_OFFLOAD: ".*" is not an offload switch; use "none", or a comma list of -NAME with NAME one of tun-tso, tun-uso, tun-gro, udp-gso, udp-gro$/);
      return true;
    }, text);
  }
});

test('the CLI refuses a bad --offload or TUNDRA_OFFLOAD before it creates anything', () => {
  const flag = spawnSync(process.execPath, [TUNDRA_MAIN, '-f', '--offload=-tun-gso', 'tdrbad0'], { encoding: 'utf8' });
  assert.equal(flag.status, 1);
  assert.match(flag.stderr, /^tundra: --offload: "-tun-gso" is not an offload switch/);
  const env = spawnSync(process.execPath, [TUNDRA_MAIN, '-f', 'tdrbad0'], { encoding: 'utf8', env: { ...process.env, TUNDRA_OFFLOAD: 'bogus' } });
  assert.equal(env.status, 1);
  assert.match(env.stderr, /TUNDRA_OFFLOAD: "bogus" is not an offload switch/);
  const missing = spawnSync(process.execPath, [TUNDRA_MAIN, '--offload'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--offload needs a value/);
});
