// The end-to-end benchmark's parsers on real output captured here (test/fixtures/bench/:
// iperf3 3.12 -J, iputils ping -q, sockperf 3.7, msquic v2.6.0's secnetperf; also
// secnetperf's lines as msquic's src/perf/readme.md shows them), the tool lookup and the /proc CPU parsers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Unavailable } from '../../bench/e2e/errors.js';
import { machineBusySeconds, parseMachineStat, parseProcessStat, processCpuSeconds, threadCpuSeconds } from '../../bench/e2e/cpu.js';
import { LOADS, expectedSeconds, loadTools, parseIperf3, parsePing, parseSecnetperf, parseSockperf, percentile } from '../../bench/e2e/loads.js';
import { DEBIAN_PACKAGES, missingToolMessage, requireTool, which } from '../../bench/e2e/tools.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../../test/fixtures/bench/${name}`, import.meta.url), 'utf8');

describe('parseIperf3', () => {
  test('TCP, one stream: the receiver\'s bytes and rate, the sender\'s retransmits', () => {
    assert.deepEqual(parseIperf3(fixture('iperf3-tcp1.json'), false), { bytes: 2976579208, bps: 11901639487.68134, retransmits: 9457 });
  });

  test('TCP -R: still the client\'s (now receiving) figures, and the server\'s retransmits', () => {
    assert.deepEqual(parseIperf3(fixture('iperf3-tcp1-reverse.json'), false), { bytes: 2959211792, bps: 11836705127.538471, retransmits: 8969 });
  });

  test('TCP -P 4: the sums over the streams', () => {
    assert.deepEqual(parseIperf3(fixture('iperf3-tcp4.json'), false), { bytes: 4057071616, bps: 16191499377.414513, retransmits: 5265 });
  });

  test('UDP: received bytes, loss over sent datagrams, out-of-order over received ones', () => {
    assert.deepEqual(parseIperf3(fixture('iperf3-udp.json'), true), {
      bytes: 541712100, bps: 2166667483.2651477, lostRatio: 1285 / 393830, reorderRatio: 0,
    });
    const r = parseIperf3(fixture('iperf3-udp-reverse.json'), true);
    assert.equal(r.lostRatio, 3654 / 226949);
    assert.equal(r.bytes, 308147100);
  });

  test('UDP out-of-order counts come from the streams', () => {
    const doc = JSON.parse(fixture('iperf3-udp.json')) as { end: { streams: { udp: { out_of_order: number } }[] } };
    doc.end.streams[0]!.udp.out_of_order = 3928;
    assert.equal(parseIperf3(JSON.stringify(doc), true).reorderRatio, 3928 / (393830 - 1285));
  });

  test('iperf3\'s own error becomes the message; lines around the JSON are ignored', () => {
    assert.throws(() => parseIperf3(fixture('iperf3-refused.json'), false), /^Error: iperf3: unable to connect to server: Connection refused$/);
    const noisy = `iperf3: warning: something\n${fixture('iperf3-tcp1.json')}\n`;
    assert.equal(parseIperf3(noisy, false).bytes, 2976579208);
    assert.throws(() => parseIperf3('iperf3: error - unable to start\n', false), /no JSON/);
  });
});

describe('parsePing', () => {
  test('a line per reply: their median and 99th percentile beside the summary', () => {
    // 20 replies; sorted, the 10th is 1.35 ms and the 20th 26.6 ms (nearest rank).
    assert.deepEqual(parsePing(fixture('ping-replies.txt')), { sent: 20, received: 20, avgMs: 3.334, p50Ms: 1.35, p99Ms: 26.6 });
  });

  test('percentile: nearest rank', () => {
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 51), 3);
    assert.equal(percentile([1, 2, 3, 4], 99), 4);
    assert.equal(percentile([7], 1), 7);
  });

  test('no loss', () => {
    assert.deepEqual(parsePing(fixture('ping.txt')), { sent: 20, received: 20, avgMs: 0.049 });
  });

  test('some loss', () => {
    assert.deepEqual(parsePing(fixture('ping-loss.txt')), { sent: 20, received: 15, avgMs: 0.071 });
  });

  test('every reply lost, or no summary: null', () => {
    assert.equal(parsePing(fixture('ping-all-lost.txt')), null);
    assert.equal(parsePing('--- 198.18.0.2 ping statistics ---\n5 packets transmitted, 0 received, +5 errors, 100% packet loss, time 4005ms\n'), null);
    assert.equal(parsePing('ping: connect: Network is unreachable\n'), null);
  });
});

describe('parseSockperf', () => {
  test('ping-pong --full-rtt: mean and p99 round trip in ms, through its colour codes, and the messages measured', () => {
    assert.deepEqual(parseSockperf(fixture('sockperf.txt')),
      { avgMs: 32.241 / 1000, p50Ms: 30.658 / 1000, p99Ms: 87.335 / 1000, sent: 48022, received: 48022 });
  });

  test('under-load --mps 100 --reply-every 1 under a UDP flood (sockperf 3.7): the same, with the messages lost', () => {
    assert.deepEqual(parseSockperf(fixture('sockperf-under-load.txt')),
      { avgMs: 6607.097 / 1000, p50Ms: 6261.123 / 1000, p99Ms: 16327.965 / 1000, sent: 355, received: 296 });
  });

  test('no summary: null', () => {
    assert.equal(parseSockperf('sockperf: ERROR: Failed to connect\n'), null);
  });
});

describe('parseSecnetperf', () => {
  test('one download line', () => {
    assert.deepEqual(parseSecnetperf(fixture('secnetperf-download.txt')), { bps: 4793496 * 1000, bytes: 2996595053 });
  });

  test('one line per connection: summed', () => {
    assert.deepEqual(parseSecnetperf(fixture('secnetperf-upload-2conns.txt')), { bps: (2869166 + 2865446) * 1000, bytes: 3590914048 + 3586523136 });
  });

  test('msquic v2.6.0 -ptput:1: the total line, no bytes', () => {
    assert.deepEqual(parseSecnetperf(fixture('secnetperf-v2.6.0-upload.txt')), { bps: 2750961 * 1000, bytes: null });
  });

  test('msquic v2.6.0 -ptput:1 -pctput:1: the total line\'s rate, the streams\' bytes', () => {
    assert.deepEqual(parseSecnetperf(fixture('secnetperf-v2.6.0-download-pctput.txt')), { bps: 3910753 * 1000, bytes: 1471926059 });
    assert.deepEqual(parseSecnetperf(fixture('secnetperf-v2.6.0-upload-2conns-pctput.txt')), { bps: 5285258 * 1000, bytes: 1061158912 + 966656000 });
  });

  test('no throughput line: null', () => {
    assert.equal(parseSecnetperf('Started!\nFailed to connect to the server\n'), null);
  });
});

describe('loads', () => {
  test('every load names its tools and takes longer than its seconds', () => {
    assert.deepEqual([...LOADS], ['tcp1', 'tcp4', 'udp', 'udp-gso', 'secnetperf', 'latency']);
    for (const load of LOADS) {
      assert.ok(loadTools(load).includes('ss'), load);
      assert.ok(expectedSeconds(load, 10) > 10, load);
    }
    assert.ok(loadTools('secnetperf').includes('secnetperf'));
    assert.ok(!loadTools('latency').includes('sockperf'), 'sockperf is optional: its tests are skipped without it');
  });
});

describe('tools', () => {
  test('which() searches PATH and checks paths', () => {
    const sh = which('sh');
    assert.ok(sh !== null && sh.startsWith('/'), String(sh));
    assert.equal(which('no-such-tool-xyz'), null);
    assert.equal(which('/etc/passwd'), null, 'not executable');
    assert.equal(which(sh), sh);
    assert.equal(which(''), null);
  });

  test('missing-tool messages say how to get the tool', () => {
    assert.equal(missingToolMessage('sockperf'), 'sockperf is not installed (Debian: apt-get install -y sockperf)');
    assert.equal(missingToolMessage('ping'), 'ping is not installed (Debian: apt-get install -y iputils-ping)');
    assert.equal(missingToolMessage('wg'), 'wg is not installed (Debian: apt-get install -y wireguard-tools)');
    assert.equal(missingToolMessage('frobnicate'), 'frobnicate is not on PATH');
    const secnetperf = missingToolMessage('secnetperf');
    assert.match(secnetperf, /^secnetperf is not on PATH: it is not packaged for Debian; build it from msquic \(https:\/\/github\.com\/microsoft\/msquic/);
    assert.match(secnetperf, /QUIC_BUILD_PERF=ON/);
    assert.match(secnetperf, /and put it on PATH$/);
    for (const cmd of ['iperf3', 'ip', 'ethtool', 'nft', 'wireguard-go']) assert.ok(DEBIAN_PACKAGES[cmd] !== undefined, cmd);
  });

  test('requireTool() gives the path or throws Unavailable with that message', () => {
    assert.equal(requireTool('sh'), which('sh'));
    assert.throws(() => requireTool('no-such-tool-xyz'), (err: unknown) => err instanceof Unavailable && err.message === 'no-such-tool-xyz is not on PATH');
  });
});

describe('cpu', () => {
  test('parseProcessStat: utime + stime, whatever the comm holds', () => {
    const line = '1234 ((a) b)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 8 20 0 3 0 12345 1000000 200 18446744073709551615\n';
    assert.equal(parseProcessStat(line), 300);
    assert.throws(() => parseProcessStat('garbage'), /not a \/proc stat line/);
  });

  test('parseMachineStat: user+nice+system+irq+softirq+steal of the "cpu " line', () => {
    const stat = 'cpu  100 20 30 400 50 6 7 8 9 10\ncpu0 50 10 15 200 25 3 3 4 4 5\nintr 1 2 3\n';
    assert.equal(parseMachineStat(stat), 100 + 20 + 30 + 6 + 7 + 8);
    assert.throws(() => parseMachineStat('cpu0 1 2 3\n'), /no "cpu " line/);
  });

  test('live readings: this process, its main thread, the machine; a gone pid throws', () => {
    const deadline = Date.now() + 50;
    while (Date.now() < deadline); // burn a little CPU
    const all = processCpuSeconds([process.pid]);
    assert.ok(all > 0);
    assert.ok(threadCpuSeconds(process.pid, process.pid) <= all + 0.01);
    assert.ok(machineBusySeconds() > 0);
    const gone = spawnSync('true').pid!;
    assert.throws(() => processCpuSeconds([gone]), new RegExp(`process ${gone} is gone`));
  });
});
