// The command line as a new user meets it: a misspelt command is not taken for an
// interface name, start-up errors say what to do, `tundra stats` reads a running
// daemon's counters (and says when it cannot), `npm install -g .` puts `tundra` on PATH.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkTestsUnavailable, TwoHosts, waitFor } from '../helpers/netns.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';
import { TUNDRA_MAIN } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'setpriv', 'npm']);
const REPO = fileURLToPath(new URL('../../..', import.meta.url));

describe('tundra on the command line', { skip }, () => {
  let hosts: TwoHosts;
  const id = process.pid % 10000;
  const name = `tdrcli${id}`;
  /** Runs tundra in namespace a (`noCaps`: as root without any capability, as in a bare container): status and both outputs. */
  const tundra = (args: string[], options: { noCaps?: boolean; env?: NodeJS.ProcessEnv } = {}): { status: number | null; stdout: string; stderr: string } => {
    const prefix = options.noCaps === true ? ['setpriv', '--inh-caps=-all', '--bounding-set=-all'] : [];
    const r = spawnSync('ip', ['netns', 'exec', hosts.a, ...prefix, process.execPath, TUNDRA_MAIN, ...args], {
      encoding: 'utf8', timeout: 40_000, env: { ...process.env, ...options.env },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const linkExists = (link: string): boolean => spawnSync('ip', ['-n', hosts.a, 'link', 'show', link]).status === 0;

  before(() => {
    hosts = new TwoHosts('cli');
  });
  after(() => {
    for (const link of [name, 'genkye', 'stat']) spawnSync('ip', ['-n', hosts.a, 'link', 'del', link]);
    hosts?.destroy();
  });

  test('a misspelt command is refused with the command meant, and creates nothing', () => {
    for (const [typed, meant] of [['genkye', 'genkey'], ['stat', 'stats'], ['pubky', 'pubkey'], ['upp', 'up']] as const) {
      const r = tundra([typed]);
      assert.equal(r.status, 1, `${typed}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`"${typed}" is not a command; did you mean "tundra ${meant}"\\?`));
      assert.equal(linkExists(typed), false, `no interface ${typed}`);
      assert.equal(existsSync(`/var/run/wireguard/${typed}.sock`), false, `no socket for ${typed}`);
    }
    assert.match(tundra(['genkye']).stderr, /to create an interface named "genkye", run: tundra -- genkye/);
  });

  test('errors say what to do: no privileges, a name too long', () => {
    const user = tundra(['-f', name], { noCaps: true });
    assert.equal(user.status, 1);
    assert.match(user.stderr, /Operation not permitted \(EPERM\)\n {2}creating a TUN interface needs root or CAP_NET_ADMIN/);
    const long = tundra(['-f', 'tdr-a-name-longer-than-15']);
    assert.equal(long.status, 1);
    assert.match(long.stderr, /too long for an interface name: Linux allows at most 15 characters \(it has 25\)/);
  });

  test('tundra stats reads a background daemon\'s counters, as a table and as JSON', async () => {
    const started = tundra(['--', name]);
    assert.equal(started.status, 0, started.stderr);
    assert.ok(linkExists(name), 'the background daemon made the interface');
    hosts.exec(hosts.a, 'wg', ['set', name, 'listen-port', '51820']);
    hosts.exec(hosts.a, 'ip', ['link', 'set', name, 'up']);
    // Three datagrams too short for any message: dropped and counted.
    hosts.exec(hosts.b, process.execPath, ['-e', `const s = require('node:dgram').createSocket('udp4');
      let n = 0; const go = () => s.send(Buffer.from([1]), 51820, '${hosts.underlayA}', () => (++n < 3 ? go() : s.close())); go();`]);
    let json: { interface: string; drops: Record<string, number>; offload: Record<string, unknown>; queues: Record<string, number>[] } | undefined;
    await waitFor('three too_short drops', () => {
      const r = tundra(['stats', name, '--json']);
      assert.equal(r.status, 0, r.stderr);
      json = JSON.parse(r.stdout) as typeof json;
      return json!.drops.too_short === 3;
    });
    assert.equal(json!.interface, name);
    assert.ok(json!.queues.length >= 1 && 'udp_received_datagrams' in json!.queues[0]!);
    assert.equal(typeof json!.offload.udp_rxq_overflows, 'number');
    const table = tundra(['stats', name]);
    assert.equal(table.status, 0, table.stderr);
    // Bringing the link up sends packets of its own (IPv6 solicitations: no_peer_for_destination).
    assert.match(table.stdout, new RegExp(`^interface: ${name}\ndrops:\n( {2}[a-z_]+ +\\d+\n)* {2}too_short +3\n( {2}[a-z_]+ +\\d+\n)*offload:\n`));
    assert.match(table.stdout, /\nqueues:\n {2}queue {2}tun_read_packets/);
    hosts.exec(hosts.a, 'ip', ['link', 'del', name]);
    await waitFor('the daemon to remove its socket', () => !existsSync(`/var/run/wireguard/${name}.sock`));
  });

  test('tundra stats says why it cannot: no such interface, not tundra\'s, no interface given', async () => {
    const missing = tundra(['stats', `${name}x`]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, new RegExp(`no UAPI socket at /var/run/wireguard/${name}x\\.sock: is the interface running\\? \\(start it with: tundra ${name}x\\)`));
    const usage = tundra(['stats']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /Usage: tundra stats INTERFACE \[--json\]/);
    const wgGo = `tdrclig${id}`;
    const { child } = await startWireguardGo(hosts, hosts.a, 'wireguard-go', wgGo, {});
    try {
      const other = tundra(['stats', wgGo]);
      assert.equal(other.status, 1);
      assert.match(other.stderr, new RegExp(`${wgGo} is not a tundra interface`));
    } finally {
      process.kill(child.pid!, 'SIGTERM');
    }
  });
});

describe('npm install -g . from the checkout', { skip }, () => {
  let prefix: string;
  before(() => {
    prefix = mkdtempSync(join(tmpdir(), 'tundra-npm-g-'));
  });
  after(() => rmSync(prefix, { recursive: true, force: true }));

  test('puts a working tundra command in PREFIX/bin', () => {
    // --prefix keeps it out of the machine's own global packages; --offline because
    // linking the checkout needs nothing from the registry; --ignore-scripts because the
    // checkout is built already, and rebuilding the addon here would pull it from under
    // the tests running beside this one. The environment is a shell's, not `npm test`'s.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    const install = spawnSync('npm', ['install', '-g', '.', '--prefix', prefix, '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: REPO, encoding: 'utf8', timeout: 60_000, env,
    });
    assert.equal(install.status, 0, `npm install -g . failed (${install.status ?? install.signal}): ${install.stdout}${install.stderr}`);
    const r = spawnSync(join(prefix, 'bin', 'tundra'), ['--version'], { encoding: 'utf8', cwd: tmpdir() });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^tundra v\d+\.\d+\.\d+\n$/);
    const key = spawnSync(join(prefix, 'bin', 'tundra'), ['genkey'], { encoding: 'utf8' });
    assert.match(key.stdout, /^[A-Za-z0-9+/]{43}=\n$/);
  });
});
