// The /metrics endpoint, scraped the way Prometheus does while a tunnel carries a
// transfer: tundra against Debian's wireguard-go, with queue workers and inline.
// Byte counters must move during the transfer and agree with `wg show … transfer`
// afterwards; the required names and labels must be there; a bad or busy address
// is a clear start-up error; per-peer series can be switched off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKey, publicKeyOf } from '../../src/crypto/keys.js';
import { captureOutput, networkTestsUnavailable } from '../helpers/netns.js';
import { Tunnel, TUNDRA_MAIN } from '../helpers/tunnel.js';

const skip = networkTestsUnavailable(['ip', 'wg', 'wireguard-go']);
const LISTEN = '127.0.0.1:9587';
const BYTES = 60 * 1024 * 1024;

/** A Prometheus text exposition as samples: `name{labels}` → value. */
type Samples = Map<string, number>;

function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** GET http://LISTEN/metrics from inside the namespace. */
async function scrape(tunnel: Tunnel, path = '/metrics'): Promise<{ status: number; type: string; text: string }> {
  const script = `const r = await fetch('http://${LISTEN}${path}'); console.log(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), text: await r.text() }));`;
  const child = tunnel.hosts.spawn(tunnel.ns('a'), process.execPath, ['--input-type=module', '-e', script]);
  const output = captureOutput(child);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `scrape failed: ${output()}`);
  return JSON.parse(output()) as { status: number; type: string; text: string };
}

function value(samples: Samples, key: string): number {
  const v = samples.get(key);
  assert.ok(v !== undefined, `no sample ${key}; have: ${[...samples.keys()].filter((k) => k.startsWith('tundra_')).join(', ')}`);
  return v;
}

for (const queues of ['1', '0']) {
  describe(`metrics during a transfer (tundra --queues ${queues} ↔ Debian wireguard-go)`, { skip }, () => {
    let tunnel: Tunnel;
    before(async () => {
      tunnel = new Tunnel(`met${queues}`, { a: 'tundra', b: 'wireguard-go', env: { a: { TUNDRA_METRICS_LISTEN: LISTEN, TUNDRA_QUEUES: queues } } });
      await tunnel.start();
    });
    after(() => tunnel?.destroy());

    test('counters move during the transfer and per-peer bytes agree with wg show transfer', async () => {
      const peer = encodeKey(publicKeyOf(tunnel.keys.b));
      const received = `tundra_peer_received_bytes_total{peer="${peer}"}`;
      const sent = `tundra_peer_sent_bytes_total{peer="${peer}"}`;
      const first = await scrape(tunnel);
      assert.equal(first.status, 200);
      assert.match(first.type, /^text\/plain; version=0\.0\.4/);
      const before = parse(first.text);
      const transfer = tunnel.transfer('b', BYTES);
      let finished = false;
      void transfer.finally(() => { finished = true; });
      const during: Samples[] = [];
      for (let i = 0; i < 100 && !finished; i++) {
        during.push(parse((await scrape(tunnel)).text));
        await new Promise((r) => setTimeout(r, 200));
      }
      const result = await transfer;
      assert.equal(result.received.sha256, result.sent.sha256, 'byte-exact');
      assert.ok(during.length >= 2, `scraped ${during.length} times during the transfer`);
      // Monotonic, and moving while the transfer runs.
      const series = [before, ...during].map((s) => value(s, received));
      for (let i = 1; i < series.length; i++) assert.ok(series[i]! >= series[i - 1]!, `received bytes never go back: ${series.join(' ')}`);
      assert.ok(during.some((s) => value(s, received) > value(before, received) + 1_000_000), `received bytes moved during the transfer: ${series.join(' ')}`);

      // Quiet now: the scrape agrees with wg show (taken before and after it, equal).
      let agreed = false;
      for (const giveUp = Date.now() + 30_000; Date.now() < giveUp && !agreed;) {
        await new Promise((r) => setTimeout(r, 300));
        const show = (): string => tunnel.wg('a', ['show', tunnel.ifName.a, 'transfer']).trim();
        const showBefore = show();
        const samples = parse((await scrape(tunnel)).text);
        if (show() !== showBefore) continue;
        const [, rx, tx] = showBefore.split('\t');
        assert.equal(value(samples, received), Number(rx), 'received bytes = wg show transfer');
        assert.equal(value(samples, sent), Number(tx), 'sent bytes = wg show transfer');
        assert.ok(Number(rx) > BYTES, 'the transfer is in the received bytes');
        assert.equal(value(samples, 'tundra_received_bytes_total'), Number(rx), 'one peer: the device total is its bytes');
        const packetsRead = [...samples].filter(([k]) => k.startsWith('tundra_udp_received_datagrams_total')).reduce((a, [, v]) => a + v, 0);
        assert.ok(packetsRead > BYTES / 1500, `datagrams received: ${packetsRead}`);
        // Every datagram received but the handshake messages is a transport message of the one peer.
        const rxPackets = value(samples, `tundra_peer_received_packets_total{peer="${peer}"}`);
        assert.ok(packetsRead - rxPackets >= 0 && packetsRead - rxPackets <= 5, `peer packets ${rxPackets} of ${packetsRead} datagrams`);
        assert.equal(value(samples, 'tundra_received_packets_total'), rxPackets);
        assert.ok(value(samples, `tundra_peer_sent_packets_total{peer="${peer}"}`) > 0, 'packets sent to the peer');
        const written = [...samples].filter(([k]) => k.startsWith('tundra_tun_written_packets_total')).reduce((a, [, v]) => a + v, 0);
        assert.ok(written > BYTES / 1500, `packets written to the TUN: ${written}`);
        assert.equal(value(samples, `tundra_peer_keypairs{peer="${peer}"}`) >= 1, true, 'a keypair');
        const sinceHandshake = value(samples, `tundra_peer_last_handshake_seconds{peer="${peer}"}`);
        assert.ok(sinceHandshake >= 0 && sinceHandshake < 120, `seconds since the handshake: ${sinceHandshake}`);
        assert.ok(value(samples, 'tundra_handshake_responses_sent_total') + value(samples, 'tundra_handshake_responses_received_total') >= 1, 'a handshake counted');
        assert.ok(value(samples, 'tundra_tun_write_segments_count') > 0, 'TUN write histogram');
        assert.equal(value(samples, 'tundra_tun_write_segments_bucket{le="+Inf"}'), value(samples, 'tundra_tun_write_segments_count'));
        // Every datagram the socket delivered is in the per-message histogram once.
        assert.equal(value(samples, 'tundra_udp_receive_segments_sum'), packetsRead, 'datagrams per received message: the sum is every datagram');
        assert.ok(value(samples, 'tundra_udp_send_segments_count') > 0, 'UDP send histogram');
        assert.ok(value(samples, 'tundra_udp_socket_buffer_bytes{buffer="receive"}') > 0, 'granted receive buffer');
        assert.equal(value(samples, 'tundra_offload_enabled{offload="udp-gso"}') <= 1, true);
        assert.ok(samples.has('process_cpu_seconds_total'), 'prom-client default metrics');
        agreed = true;
      }
      assert.ok(agreed, 'wg show transfer held still long enough to compare');
    });

    test('drops are counted by direction and reason', async () => {
      // Garbage to the listen port from b's namespace: too short for any message type.
      tunnel.hosts.exec(tunnel.ns('b'), process.execPath, ['-e',
        `const s = require('node:dgram').createSocket('udp4'); s.send(Buffer.from([1, 2, 3]), 51820, '${tunnel.underlay('a')}', () => s.close());`]);
      let count = 0;
      // Bounded for a hang: a busy machine may take longer to count it.
      for (const giveUp = Date.now() + 30_000; Date.now() < giveUp && count === 0;) {
        await new Promise((r) => setTimeout(r, 100));
        count = parse((await scrape(tunnel)).text).get('tundra_dropped_packets_total{direction="inbound",reason="too_short"}') ?? 0;
      }
      assert.equal(count, 1, 'one inbound too_short drop');
    });

    test('/ points at /metrics; other paths are 404', async () => {
      assert.match((await scrape(tunnel, '/')).text, /\/metrics/);
      assert.equal((await scrape(tunnel, '/nothing')).status, 404);
    });
  });
}

describe('metrics settings', { skip }, () => {
  let tunnel: Tunnel;
  before(async () => {
    tunnel = new Tunnel('metset', { a: 'tundra', b: 'wireguard-go', env: { a: { TUNDRA_METRICS_LISTEN: LISTEN, TUNDRA_METRICS_PEERS: 'off' } } });
    await tunnel.start();
  });
  after(() => tunnel?.destroy());

  test('TUNDRA_METRICS_PEERS=off drops the per-peer series', async () => {
    assert.ok(tunnel.ping('a', 4) > 0, 'the tunnel works');
    const samples = parse((await scrape(tunnel)).text);
    assert.ok(samples.has('tundra_received_bytes_total'));
    assert.deepEqual([...samples.keys()].filter((k) => k.startsWith('tundra_peer_')), []);
  });

  test('an address in use is a start-up error naming it', () => {
    let out = '';
    try {
      tunnel.hosts.exec(tunnel.ns('a'), process.execPath, [TUNDRA_MAIN, '-f', '--metrics-listen', LISTEN, `tdrmet${process.pid % 10000}x`]);
    } catch (err) {
      out = (err as Error).message;
    }
    assert.match(out, /cannot serve metrics on 127\.0\.0\.1:9587: the address is in use/);
  });

  test('a malformed address is refused before anything starts', () => {
    let out = '';
    try {
      tunnel.hosts.exec(tunnel.ns('a'), process.execPath, [TUNDRA_MAIN, '-f', '--metrics-listen', '9587', 'tdrmetbad']);
    } catch (err) {
      out = (err as Error).message;
    }
    assert.match(out, /--metrics-listen: "9587" is not ADDR:PORT/);
  });
});
