// tundra's own settings: every flag is checked and copied into its variable (what the
// daemon reads, also after detaching and under wg-quick); a flag wins; bad values are
// refused with a message that names the flag or the variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_QUEUES, SETTINGS, settingsFromEnv, takeSettingFlags } from '../../src/daemon/settings.js';
import { SettingError } from '../../src/errors.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('flags go into their variables, the rest stays; a flag wins over the variable', () => {
  const env: NodeJS.ProcessEnv = { TUNDRA_CRYPTO: 'noble' };
  const rest = takeSettingFlags(['-f', '--crypto=node', '--offload', 'none', 'wg0'], env);
  assert.deepEqual(rest, ['-f', 'wg0']);
  assert.equal(env.TUNDRA_CRYPTO, 'node');
  assert.equal(env.TUNDRA_OFFLOAD, 'none');
  const settings = settingsFromEnv(env);
  assert.equal(settings.crypto, 'node');
  assert.equal(settings.offload['udp-gso'], false);
  assert.equal(settingsFromEnv({}).crypto, 'native', 'native by default');
});

test('a bad --crypto or TUNDRA_CRYPTO is refused before anything is created', () => {
  assert.throws(() => takeSettingFlags(['--crypto=fast'], {}), /^SettingError: --crypto: unknown crypto backend "fast" \(expected native, node or noble\)$/);
  assert.throws(() => settingsFromEnv({ TUNDRA_CRYPTO: 'fast' }), /TUNDRA_CRYPTO: unknown crypto backend "fast"/);
  const flag = spawnSync(process.execPath, [CLI, '-f', '--crypto=fast', 'tdrbad1'], { encoding: 'utf8' });
  assert.equal(flag.status, 1);
  assert.equal(flag.stderr, 'tundra: --crypto: unknown crypto backend "fast" (expected native, node or noble)\n');
  const env = spawnSync(process.execPath, [CLI, '-f', 'tdrbad1'], { encoding: 'utf8', env: { ...process.env, TUNDRA_CRYPTO: 'fast' } });
  assert.equal(env.status, 1);
  assert.match(env.stderr, /TUNDRA_CRYPTO: unknown crypto backend "fast"/);
  const missing = spawnSync(process.execPath, [CLI, '--crypto'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--crypto needs a value/);
});

test('--queues / TUNDRA_QUEUES: 0 (inline) to 64 queue workers, by default 1 (0 on one core); anything else is refused', () => {
  const env: NodeJS.ProcessEnv = {};
  takeSettingFlags(['--queues', '2'], env);
  assert.equal(env.TUNDRA_QUEUES, '2');
  assert.equal(settingsFromEnv(env).queues, 2);
  assert.equal(settingsFromEnv({}).queues, DEFAULT_QUEUES);
  assert.equal(DEFAULT_QUEUES, availableParallelism() > 1 ? 1 : 0);
  assert.equal(settingsFromEnv({ TUNDRA_QUEUES: '0' }).queues, 0);
  for (const bad of ['-1', '65', '1.5', 'two', '']) {
    assert.throws(() => takeSettingFlags([`--queues=${bad}`], {}), /^SettingError: --queues: ".*" is not a queue count \(0 for the inline mode, or 1 to 64 queue workers\)$/, bad);
  }
  assert.throws(() => settingsFromEnv({ TUNDRA_QUEUES: 'x' }), /TUNDRA_QUEUES: "x" is not a queue count/);
});

test('--workers / TUNDRA_WORKERS: a crypto pool of 0 (none, the default) to 64; anything else is refused', () => {
  const env: NodeJS.ProcessEnv = {};
  takeSettingFlags(['--workers=2'], env);
  assert.equal(settingsFromEnv(env).workers, 2);
  assert.equal(settingsFromEnv({}).workers, 0);
  for (const bad of ['-1', '65', 'x']) {
    assert.throws(() => takeSettingFlags(['--workers', bad], {}), /^SettingError: --workers: ".*" is not a crypto worker count \(0 for none, or 1 to 64\)$/, bad);
  }
  assert.throws(() => settingsFromEnv({ TUNDRA_WORKERS: '1.5' }), /TUNDRA_WORKERS: "1.5" is not a crypto worker count/);
});

test('--metrics-listen / TUNDRA_METRICS_LISTEN: ADDR:PORT, [V6]:PORT or :PORT; off by default; --metrics-peers on/off', () => {
  assert.equal(settingsFromEnv({}).metricsListen, undefined, 'no endpoint by default');
  assert.equal(settingsFromEnv({}).metricsPeers, true, 'per-peer series by default');
  const env: NodeJS.ProcessEnv = {};
  takeSettingFlags(['--metrics-listen', '127.0.0.1:9587', '--metrics-peers=off'], env);
  assert.deepEqual(settingsFromEnv(env).metricsListen, { host: '127.0.0.1', port: 9587 });
  assert.equal(settingsFromEnv(env).metricsPeers, false);
  assert.deepEqual(settingsFromEnv({ TUNDRA_METRICS_LISTEN: '[::1]:9100' }).metricsListen, { host: '::1', port: 9100 });
  assert.deepEqual(settingsFromEnv({ TUNDRA_METRICS_LISTEN: ':9100' }).metricsListen, { host: '::', port: 9100 }, 'every address');
  for (const bad of ['9587', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '::1:9100', 'host:port']) {
    assert.throws(() => settingsFromEnv({ TUNDRA_METRICS_LISTEN: bad }), new RegExp(`TUNDRA_METRICS_LISTEN: "${bad.replace(/[.[\]]/g, '\\$&')}" is not ADDR:PORT`), bad);
  }
  assert.throws(() => takeSettingFlags(['--metrics-peers=maybe'], {}), /^SettingError: --metrics-peers: "maybe" is not on or off \(also yes\/no, true\/false, 1\/0\)$/);
});

test('every setting refuses a bad value with a SettingError (code TUNDRA_SETTING) that names the flag', () => {
  for (const setting of SETTINGS) {
    assert.throws(() => takeSettingFlags([`${setting.flag}=,`], {}), (err: unknown) => {
      assert.ok(err instanceof SettingError, `${setting.flag}: ${String(err)}`);
      assert.equal(err.code, 'TUNDRA_SETTING');
      assert.ok(err.message.startsWith(`${setting.flag}: `), err.message);
      return true;
    });
  }
});

test('--rekey-after-seconds / TUNDRA_REKEY_AFTER_SECONDS: a testing knob, 5 to 120 whole seconds; unset by default', () => {
  assert.equal(settingsFromEnv({}).rekeyAfterSeconds, undefined, 'REKEY_AFTER_TIME by default');
  const env: NodeJS.ProcessEnv = {};
  assert.deepEqual(takeSettingFlags(['--rekey-after-seconds', '5', 'wg0'], env), ['wg0']);
  assert.equal(env.TUNDRA_REKEY_AFTER_SECONDS, '5');
  assert.equal(settingsFromEnv(env).rekeyAfterSeconds, 5);
  assert.equal(settingsFromEnv({ TUNDRA_REKEY_AFTER_SECONDS: '120' }).rekeyAfterSeconds, 120);
  for (const bad of ['4', '121', '2.5', 'soon', '']) {
    assert.throws(() => takeSettingFlags([`--rekey-after-seconds=${bad}`], {}),
      /^SettingError: --rekey-after-seconds: ".*" is not a rekey interval \(whole seconds, 5 to 120; a testing knob, unset by default\)$/, bad);
  }
  assert.throws(() => settingsFromEnv({ TUNDRA_REKEY_AFTER_SECONDS: '0' }), /TUNDRA_REKEY_AFTER_SECONDS: "0" is not a rekey interval/);
  const cli = spawnSync(process.execPath, [CLI, '-f', '--rekey-after-seconds=1', 'tdrbad1'], { encoding: 'utf8' });
  assert.equal(cli.status, 1);
  assert.equal(cli.stderr, 'tundra: --rekey-after-seconds: "1" is not a rekey interval (whole seconds, 5 to 120; a testing knob, unset by default)\n');
});

test('--aqm-target / --aqm-interval: milliseconds, fq_codel\'s 5 and 100 by default, a target of 0 switches the AQM off', () => {
  assert.deepEqual(settingsFromEnv({}).aqm, { targetMs: 5, intervalMs: 100 });
  const env: NodeJS.ProcessEnv = {};
  assert.deepEqual(takeSettingFlags(['--aqm-target', '0.5', '--aqm-interval=10', 'wg0'], env), ['wg0']);
  assert.deepEqual([env.TUNDRA_AQM_TARGET, env.TUNDRA_AQM_INTERVAL], ['0.5', '10']);
  assert.deepEqual(settingsFromEnv(env).aqm, { targetMs: 0.5, intervalMs: 10 });
  assert.deepEqual(settingsFromEnv({ TUNDRA_AQM_TARGET: '0' }).aqm, { targetMs: 0, intervalMs: 100 });
  for (const bad of ['-1', '1001', '5ms', '']) {
    assert.throws(() => takeSettingFlags([`--aqm-target=${bad}`], {}),
      /^SettingError: --aqm-target: ".*" is not an AQM target \(0 switches the AQM off\) \(milliseconds, 0 to 1000\)$/, bad);
  }
  for (const bad of ['0', '10001', 'x']) {
    assert.throws(() => takeSettingFlags([`--aqm-interval=${bad}`], {}), /^SettingError: --aqm-interval: ".*" is not an AQM interval \(milliseconds, 1 to 10000\)$/, bad);
  }
  assert.throws(() => settingsFromEnv({ TUNDRA_AQM_INTERVAL: '0' }), /TUNDRA_AQM_INTERVAL: "0" is not an AQM interval/);
});

test('--nice / TUNDRA_NICE: the data path threads\' nice value, -20 to 19; unset by default (the process\'s)', () => {
  assert.equal(settingsFromEnv({}).nice, undefined);
  const env: NodeJS.ProcessEnv = {};
  assert.deepEqual(takeSettingFlags(['--nice', '0', 'wg0'], env), ['wg0']);
  assert.equal(settingsFromEnv(env).nice, 0);
  assert.equal(settingsFromEnv({ TUNDRA_NICE: '-20' }).nice, -20);
  for (const bad of ['-21', '20', '1.5', 'high', '']) {
    assert.throws(() => takeSettingFlags([`--nice=${bad}`], {}), /^SettingError: --nice: ".*" is not a nice value \(-20, the highest priority, to 19\)$/, bad);
  }
});
