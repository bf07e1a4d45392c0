// Interop of tundra's protocol core with Debian's wireguard-go, without TUN on
// tundra's side: handshakes both ways, then ICMP echo through the tunnel, sealed
// and opened by tundra and answered by the kernel behind wireguard-go.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeKey, generatePresharedKey, generatePrivateKey, publicKeyOf } from '../../src/crypto/keys.js';
import { networkTestsUnavailable, TwoHosts } from '../helpers/netns.js';
import { startWireguardGo } from '../helpers/wireguard-go.js';

const DRIVER = fileURLToPath(new URL('../helpers/interop-driver.js', import.meta.url));
const WG_PORT = 51820;
const TUNDRA_PORT = 51821;
const WG_TUNNEL = '100.96.0.1';
const TUNDRA_TUNNEL = '100.96.0.2';

interface DriverReport {
  handshakes: number;
  keepalivesReceived: number;
  firstMessageType: number;
  echoReplies: { seq: number; payloadMatches: boolean; checksumsValid: boolean; src: string; dst: string }[];
  drops: Record<string, number>;
  error?: string;
}

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go']);

describe('interop with wireguard-go', { timeout: 120_000, skip }, () => {
  let hosts: TwoHosts;
  let dir: string;
  const wgIf = `tdrwg${process.pid % 100000}`;
  const tundraKey = generatePrivateKey();
  const wgKey = generatePrivateKey();
  const psk = generatePresharedKey();

  before(async () => {
    hosts = new TwoHosts('io');
    dir = mkdtempSync(join(tmpdir(), 'tundra-interop-'));
    await startWireguardGo(hosts, hosts.a, 'wireguard-go', wgIf, { LOG_LEVEL: 'verbose' });
    writeFileSync(join(dir, 'wg.key'), encodeKey(wgKey), { mode: 0o600 });
    writeFileSync(join(dir, 'psk'), encodeKey(psk), { mode: 0o600 });
    hosts.exec(hosts.a, 'ip', ['addr', 'add', `${WG_TUNNEL}/24`, 'dev', wgIf]);
    hosts.exec(hosts.a, 'ip', ['link', 'set', wgIf, 'up']);
  });

  after(() => {
    hosts?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Configures wireguard-go's one peer (tundra) afresh, with or without its endpoint. */
  function configureWireguardGo(extra: string[]): void {
    hosts.exec(hosts.a, 'wg', [
      'set', wgIf, 'private-key', join(dir, 'wg.key'), 'listen-port', String(WG_PORT),
      'peer', encodeKey(publicKeyOf(tundraKey)), 'preshared-key', join(dir, 'psk'),
      'allowed-ips', `${TUNDRA_TUNNEL}/32`, ...extra,
    ]);
  }

  function removeTundraPeer(): void {
    hosts.exec(hosts.a, 'wg', ['set', wgIf, 'peer', encodeKey(publicKeyOf(tundraKey)), 'remove']);
  }

  /** Runs the driver; `whenReady` runs once its socket is bound. */
  async function runDriver(mode: 'initiate' | 'respond', whenReady: () => void): Promise<DriverReport> {
    const config = {
      privateKey: encodeKey(tundraKey),
      peerPublicKey: encodeKey(publicKeyOf(wgKey)),
      presharedKey: encodeKey(psk),
      listen: { address: hosts.underlayB, port: TUNDRA_PORT },
      ...(mode === 'initiate' ? { peerEndpoint: { address: hosts.underlayA, port: WG_PORT } } : {}),
      localTunnelAddress: TUNDRA_TUNNEL,
      peerTunnelAddress: WG_TUNNEL,
      mode,
      echoes: 3,
      timeoutMs: 20_000,
    };
    const child = spawn('ip', ['netns', 'exec', hosts.b, process.execPath, DRIVER, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      const wasReady = stderr.includes('ready\n');
      stderr += d.toString();
      if (!wasReady && stderr.includes('ready\n')) whenReady();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const line = stdout.trim().split('\n').pop() ?? '';
    assert.ok(line.startsWith('{'), `driver printed no report (exit ${code}): ${stderr}${stdout}`);
    const report = JSON.parse(line) as DriverReport;
    assert.equal(code, 0, `driver failed: ${JSON.stringify(report)} ${stderr}`);
    return report;
  }

  function assertEchoes(report: DriverReport): void {
    assert.deepEqual(report.echoReplies.map((e) => e.seq), [1, 2, 3]);
    for (const echo of report.echoReplies) {
      assert.ok(echo.payloadMatches, 'echo payload came back unchanged');
      assert.ok(echo.checksumsValid, 'echo reply has valid IP and ICMP checksums');
      assert.equal(echo.src, WG_TUNNEL);
      assert.equal(echo.dst, TUNDRA_TUNNEL);
    }
  }

  test('tundra initiates, pings through wireguard-go', async () => {
    configureWireguardGo([]);
    const report = await runDriver('initiate', () => {});
    assert.equal(report.firstMessageType, 2, 'the first reply is a handshake response');
    assert.equal(report.handshakes, 1);
    assertEchoes(report);
    const handshake = hosts.exec(hosts.a, 'wg', ['show', wgIf, 'latest-handshakes']);
    assert.match(handshake, /\t[1-9]\d*\n/, 'wireguard-go records the handshake');
    removeTundraPeer();
  });

  test('wireguard-go initiates, tundra answers and pings', async () => {
    const underlayB = hosts.underlayB;
    const report = await runDriver('respond', () => {
      configureWireguardGo(['endpoint', `${underlayB}:${TUNDRA_PORT}`, 'persistent-keepalive', '1']);
    });
    assert.equal(report.firstMessageType, 1, 'the first message is wireguard-go\'s initiation');
    assert.ok(report.handshakes >= 1);
    assert.ok(report.keepalivesReceived >= 1, 'wireguard-go confirmed the session with a keepalive');
    assertEchoes(report);
    removeTundraPeer();
  });
});
