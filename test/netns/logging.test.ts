// Logs: LOG_LEVEL=verbose|error|silent as the README says (default error), and no
// private key or preshared key in any line, at the most talkative level, through a
// start, a handshake, a reload, a bad file and bad UAPI requests that carry keys.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable, TwoHosts, waitFor } from '../helpers/netns.js';
import { STOP_BOUND_MS, TUNDRA_MAIN } from '../helpers/tunnel.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go', 'ping']);

/** Sends one raw UAPI request and returns the answer. */
function uapi(path: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let answer = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer from ${path}`)); }, 5000);
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
      if (answer.endsWith('\n\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(answer);
      }
    });
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    socket.write(request);
  });
}

const hex = (key: Uint8Array): string => Buffer.from(key).toString('hex');

/** Sends bytes that are no operation: the server closes without an answer. */
function uapiClosed(path: string, request: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`${path} did not close`)); }, 5000);
    socket.on('error', () => {}); // EPIPE/ECONNRESET: closed, which is what we wait for
    socket.on('close', () => { clearTimeout(timer); resolve(); });
    socket.write(request);
  });
}

/** Each thread of `pid` as name, state and kernel wait channel, from /proc. */
function threadStates(pid: number): string {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      return `${name} ${state} ${readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8')}`;
    }).join('; ');
  } catch (err) {
    return `unreadable (${(err as Error).message})`;
  }
}

describe('logging', { skip, timeout: 180_000 }, () => {
  let hosts: TwoHosts;
  let dir: string;
  const name = `tdrg${process.pid % 100000}`;
  const peerName = `tdrh${process.pid % 100000}`;
  const key = generatePrivateKey();
  const psk = generatePresharedKey();
  const psk2 = generatePresharedKey();
  const peerKey = generatePrivateKey();

  before(async () => {
    hosts = new TwoHosts('lg');
    dir = mkdtempSync(join(tmpdir(), 'tundra-logging-'));
    await startWireguardGo(hosts, hosts.b, 'wireguard-go', peerName);
    writeFileSync(join(dir, 'b.key'), encodeKey(peerKey), { mode: 0o600 });
    writeFileSync(join(dir, 'psk'), encodeKey(psk2), { mode: 0o600 });
    hosts.exec(hosts.b, 'wg', ['set', peerName, 'private-key', join(dir, 'b.key'), 'listen-port', '51821',
      'peer', encodeKey(publicKeyOf(key)), 'preshared-key', join(dir, 'psk'), 'allowed-ips', '100.96.0.1/32']);
    hosts.exec(hosts.b, 'ip', ['address', 'add', '100.96.0.2/24', 'dev', peerName]);
    hosts.exec(hosts.b, 'ip', ['link', 'set', 'up', 'dev', peerName]);
  });

  after(() => {
    hosts?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(config: string, peerPsk: string): void {
    writeFileSync(config, [
      '[Interface]', `PrivateKey = ${encodeKey(key)}`, 'Address = 100.96.0.1/24', '',
      '[Peer]', `PublicKey = ${encodeKey(publicKeyOf(peerKey))}`, `PresharedKey = ${peerPsk}`,
      'AllowedIPs = 100.96.0.2/32', `Endpoint = ${hosts.underlayB}:51821`, '',
    ].join('\n'), { mode: 0o600 });
  }

  /**
   * SIGTERM, and the exit within STOP_BOUND_MS. A daemon that does not go is killed and
   * the test fails with what its threads were doing and what it printed, rather than
   * hanging until the suite's timeout cancels it with neither.
   */
  async function stop(child: ChildProcess, output: () => string): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<true>((resolve) => child.once('exit', () => resolve(true)));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), STOP_BOUND_MS); });
    const inTime = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (inTime) return;
    const threads = threadStates(child.pid!);
    child.kill('SIGKILL');
    await exited;
    throw new Error(`not exited ${STOP_BOUND_MS} ms after SIGTERM; its threads (name state wchan): ${threads}\n${output()}`);
  }

  test('LOG_LEVEL=verbose: tundra up through a handshake, reloads and bad requests prints no key', async () => {
    const config = join(dir, `${name}.conf`);
    writeConfig(config, encodeKey(psk));
    // Others may enter the directory and read the file: wg-quick's warning, and tundra goes on.
    chmodSync(dir, 0o755);
    chmodSync(config, 0o644);
    const warnings = (): number => (output().match(/WARNING: .*`[^']*\.conf' is world accessible.*chmod 600 /g) ?? []).length;
    const up = hosts.spawn(hosts.a, process.execPath, [TUNDRA_MAIN, 'up', config], { LOG_LEVEL: 'verbose' });
    const output = captureOutput(up);
    try {
      await waitFor('tundra up to route the peer', () => {
        if (up.exitCode !== null) throw new Error(`tundra up exited: ${output()}`);
        try { return hosts.exec(hosts.a, 'ip', ['route', 'show', 'dev', name]).includes('100.96.0.2'); } catch { return false; }
      });
      assert.equal(warnings(), 1, `tundra up warns of the file others can read:\n${output()}`);
      // The PSKs differ: the handshake fails until the reload below gives tundra the right one.
      writeConfig(config, encodeKey(psk2));
      chmodSync(config, 0o600); // fixed: the reload does not warn
      up.kill('SIGHUP');
      await waitFor('the reload', () => /Reloaded .* 1 updated/.test(output()));
      // The next handshake attempt (one each 5 s) now succeeds.
      await waitFor('a ping through the tunnel', () => {
        try { return /1 received/.test(hosts.exec(hosts.a, 'ping', ['-c', '1', '-W', '1', '100.96.0.2'])); } catch { return false; }
      });

      // A file whose private key is one character short, and UAPI requests with malformed keys.
      const nearKey = encodeKey(key).slice(0, 42) + '=';
      writeFileSync(config, `[Interface]\nPrivateKey = ${nearKey}\n`, { mode: 0o600 });
      chmodSync(config, 0o604); // readable by others again: the reload warns
      up.kill('SIGHUP');
      await waitFor('the bad file to be reported', () => /reload: .*PrivateKey/.test(output()));
      assert.equal(warnings(), 2, `the reload of a file others can read warns again:\n${output()}`);
      const path = `/var/run/wireguard/${name}.sock`;
      assert.match(await uapi(path, `set=1\nprivate_key=${hex(key).slice(0, 63)}\n\n`), /errno=-22/);
      assert.match(await uapi(path, `set=1\npublic_key=${hex(publicKeyOf(peerKey))}\npreshared_key=${hex(psk2).slice(1)}\n\n`), /errno=-22/);
      assert.match(await uapi(path, `set=1\nprivate_key=${hex(key)}x\n\n`), /errno=-22/);
      await uapiClosed(path, `private_key=${hex(key)}\n\n`); // set=1 forgotten
      await waitFor('the bad requests to be logged', () => (output().match(/UAPI: /g) ?? []).length >= 4);
      assert.match(output(), /UAPI: invalid operation "private_key" \(the value is not shown\)/);
      await stop(up, output);

      const log = output();
      assert.match(log, /DEBUG: /, 'verbose prints DEBUG lines');
      for (const secret of [key, psk, psk2]) {
        for (const text of [encodeKey(secret), encodeKey(secret).slice(0, 40), hex(secret), hex(secret).slice(1, 60)]) {
          assert.ok(!log.includes(text), `the log holds a secret (${text.slice(0, 6)}…):\n${log}`);
        }
      }
      assert.ok(!log.includes(nearKey.slice(0, 40)), 'the near-miss key is not echoed');
    } finally {
      await stop(up, output);
    }
  });

  for (const level of ['error', 'silent', undefined] as const) {
    test(`tundra -f with LOG_LEVEL=${level ?? '(unset: error)'}: ${level === 'silent' ? 'nothing' : 'ERROR lines only'}`, async () => {
      const env: NodeJS.ProcessEnv = { LOG_LEVEL: level };
      if (level === undefined) delete env.LOG_LEVEL;
      const daemon = hosts.spawn(hosts.a, 'env', [...(level === undefined ? ['-u', 'LOG_LEVEL'] : []), process.execPath, TUNDRA_MAIN, '-f', name], env);
      const output = captureOutput(daemon);
      try {
        await waitFor(`tundra to serve ${name}`, () => {
          if (daemon.exitCode !== null) throw new Error(`tundra exited: ${output()}`);
          try { hosts.exec(hosts.a, 'wg', ['show', name]); return true; } catch { return false; }
        });
        // A refused request is an error-level line.
        assert.match(await uapi(`/var/run/wireguard/${name}.sock`, 'set=1\nlisten_port=70000\n\n'), /errno=-22/);
        if (level !== 'silent') await waitFor('the error line', () => /ERROR: .*listen_port/.test(output()));
        else await new Promise((r) => setTimeout(r, 300));
        await stop(daemon, output);
        if (level === 'silent') assert.equal(output(), '');
        else {
          assert.doesNotMatch(output(), /DEBUG/);
          assert.match(output(), new RegExp(`^ERROR: \\(${name}\\) \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UAPI: `, 'm'));
        }
      } finally {
        await stop(daemon, output);
      }
    });
  }
});
