// contrib/systemd/tundra@.service: `systemd-analyze verify` finds nothing to say about
// it (it exits 0 even on unknown keys, so its output must be empty), and it runs
// `tundra up` on /etc/wireguard/%i.conf, reloads with SIGHUP and may make a TUN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';

const UNIT = fileURLToPath(new URL('../../../contrib/systemd/tundra@.service', import.meta.url));
const EXEC_START = 'ExecStart=/usr/local/bin/tundra up /etc/wireguard/%i.conf';

function verifyUnavailable(): string | false {
  if (spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0) return false;
  // .ci/run installs systemd: in CI a missing systemd-analyze is a failure, not a skip.
  if (process.env.CI === 'true') throw new Error('systemd-analyze is missing in CI');
  return 'needs systemd-analyze (Debian package systemd)';
}

test('tundra@.service: what it runs, how it reloads, what it may do', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const lines = unit.split('\n');
  assert.ok(lines.includes(EXEC_START));
  assert.ok(lines.includes('ExecReload=/bin/kill -HUP $MAINPID'));
  assert.ok(lines.includes('CapabilityBoundingSet=CAP_NET_ADMIN'));
  assert.ok(lines.includes('DeviceAllow=/dev/net/tun rw'));
  assert.match(unit, /^RestrictAddressFamilies=.*\bAF_NETLINK\b/m);
  assert.match(unit, /^RestrictAddressFamilies=.*\bAF_UNIX\b.*\bAF_INET\b.*\bAF_INET6\b/m);
  assert.ok(lines.includes('RuntimeDirectory=wireguard') && lines.includes('RuntimeDirectoryMode=0755'));
  // V8 needs writable code pages.
  assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=yes/m);
});

test('systemd-analyze verify tundra@.service says nothing', { skip: verifyUnavailable(), timeout: 30_000 }, () => {
  // verify wants ExecStart's binary to exist: the built CLI stands in for /usr/local/bin/tundra.
  const dir = mkdtempSync(join(tmpdir(), 'tundra-unit-'));
  try {
    const copy = join(dir, 'tundra@.service');
    const unit = readFileSync(UNIT, 'utf8');
    writeFileSync(copy, unit.replace(EXEC_START, `ExecStart=${TUNDRA_MAIN} up /etc/wireguard/%i.conf`));
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
    // The check itself speaks up about a bad key.
    writeFileSync(copy, unit.replace('ProtectClock=yes', 'ProtectClok=yes').replace(EXEC_START, `ExecStart=${TUNDRA_MAIN} up /etc/wireguard/%i.conf`));
    const bad = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 20_000 });
    assert.match(bad.stderr, /Unknown key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
