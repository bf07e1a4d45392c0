// The UAPI directory under umask 077 (which some hardened hosts set): what the server
// creates is 0755, as wireguard-go makes /var/run/wireguard, so `wg` run by anyone
// can find the socket; the socket is 0600 whatever the umask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkTestsUnavailable } from '../helpers/netns.js';

const CHILD = fileURLToPath(new URL('../helpers/uapi-umask-child.js', import.meta.url));

interface Report {
  umask: string;
  modes: Record<string, string>;
  socket: string;
  wg?: { status: number | null; out: string };
}

function runChild(command: string, args: string[]): Report {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Report;
}

test('under umask 077, directories the UAPI server makes are 0755 and its socket 0600', { timeout: 30_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'tundra-umask-'));
  try {
    const top = join(base, 'run');
    const directory = join(top, 'wireguard');
    const report = runChild(process.execPath, [CHILD, directory, `tdru${process.pid % 100000}`, top, '']);
    assert.equal(report.umask, '77');
    assert.deepEqual(report.modes, { [directory]: '755', [top]: '755' });
    assert.equal(report.socket, '600');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

// wg finds userspace sockets only in /var/run/wireguard: a private mount namespace with
// an empty /run lets the child create that directory afresh without touching the host's.
const skip = networkTestsUnavailable(['wg', 'unshare', 'mount']);
test('under umask 077, a fresh /var/run/wireguard is 0755 and `wg show` works', { skip, timeout: 30_000 }, () => {
  const name = `tdru${process.pid % 100000}`;
  const script = `mount -t tmpfs -o mode=0755 tdr-umask /run && exec "$0" "$@"`;
  const report = runChild('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script,
    process.execPath, CHILD, '/var/run/wireguard', name, '/var/run/wireguard', 'wg']);
  assert.equal(report.umask, '77');
  assert.deepEqual(report.modes, { '/var/run/wireguard': '755' });
  assert.equal(report.socket, '600');
  assert.equal(report.wg?.status, 0, report.wg?.out);
  assert.match(report.wg!.out, new RegExp(`interface: ${name}\\n\\s+listening port: 51820`));
});
