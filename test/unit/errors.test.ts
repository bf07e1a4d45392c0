// tundra's error classes: each has its stable code and its own name, all are
// TundraErrors, and errnoOf finds the errno of a failure whatever its sign.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import {
  ConfigError, errnoOf, KeyFormatError, PeerTableFullError, PrefixError, SettingError, StatsError, TundraError, UapiError, UpError,
} from '../../src/errors.js';
import * as tundra from '../../src/index.js';

const { EADDRINUSE, EINVAL, EIO } = constants.errno;

test('every class has its stable code and its own name, and is a TundraError', () => {
  const cases: [TundraError, string, string][] = [
    [new SettingError('--queues: "x" is not a queue count'), 'TUNDRA_SETTING', 'SettingError'],
    [new ConfigError('has no value', 'wg0.conf', 3, 'Endpoint'), 'TUNDRA_CONFIG', 'ConfigError'],
    [new PrefixError('10.0.0.0/33', 'prefix length 33 is out of range 0..32'), 'TUNDRA_PREFIX', 'PrefixError'],
    [new KeyFormatError('a key is 32 bytes in base64'), 'TUNDRA_KEY_FORMAT', 'KeyFormatError'],
    [new PeerTableFullError('no room for another peer'), 'TUNDRA_PEER_TABLE_FULL', 'PeerTableFullError'],
    [new UapiError(EINVAL, 'listen_port: must be an integer'), 'TUNDRA_UAPI', 'UapiError'],
    [new UpError('ip link add: failed'), 'TUNDRA_UP', 'UpError'],
    [new StatsError('wg0: no answer'), 'TUNDRA_STATS', 'StatsError'],
  ];
  for (const [err, code, name] of cases) {
    assert.ok(err instanceof TundraError && err instanceof Error, name);
    assert.equal(err.code, code);
    assert.equal(err.name, name);
    assert.match(String(err), new RegExp(`^${name}: `));
  }
  assert.equal(new Set(cases.map(([err]) => err.code)).size, cases.length, 'no two classes share a code');
  assert.equal(tundra.PeerTableFullError, PeerTableFullError, 'the toolkit still exports PeerTableFullError');
});

test('a ConfigError reads file:line: Key: detail, with what it knows of the place', () => {
  assert.equal(new ConfigError('has no value', 'wg0.conf', 3, 'Endpoint').message, 'wg0.conf:3: Endpoint: has no value');
  assert.equal(new ConfigError('cannot read the file (ENOENT)', 'wg0.conf').message, 'wg0.conf: cannot read the file (ENOENT)');
  const unplaced = new ConfigError('"x" is neither true nor false');
  assert.equal(unplaced.message, '"x" is neither true nor false');
  assert.equal(unplaced.file, undefined);
  assert.equal(unplaced.detail, unplaced.message);
});

test('errnoOf: positive whatever the sign; a UapiError\'s or a system error\'s; otherwise the fallback (EIO unless given)', () => {
  assert.equal(errnoOf(new UapiError(EADDRINUSE, 'port taken')), EADDRINUSE);
  assert.equal(errnoOf(new UapiError(-EINVAL, 'bad')), EINVAL);
  assert.equal(errnoOf(Object.assign(new Error('bind'), { errno: -EADDRINUSE, code: 'EADDRINUSE' })), EADDRINUSE);
  for (const none of [new UapiError(0, 'no code'), new Error('other'), { errno: 1.5 }, { errno: '22' }, undefined, null, 'string']) {
    assert.equal(errnoOf(none), EIO, String(none));
    assert.equal(errnoOf(none, 55), 55, String(none));
  }
});
